// Package compressed recognises compressed disk images (xz, gzip, zstd,
// bzip2) by their magic numbers and decompresses them into sparse files.
//
// A compressed stream cannot be read at random offsets, so imgtool
// decompresses a compressed image once into a temporary file and reads
// that. Runs of zero bytes are skipped with seeks, so the copy of a
// mostly-empty disk takes little space. A compressed file is untrusted: a
// few kilobytes can expand to terabytes, so the copy is held to the size
// the stream declares (Declared) and to a disk budget (DecompressLimited).
package compressed

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/imgtool/imgtool/internal/zero"
)

// Kinds of compression, as Detect returns them.
const (
	XZ    = "xz"
	Gzip  = "gzip"
	Zstd  = "zstd"
	Bzip2 = "bzip2"
)

// Magic numbers at the start of each format.
var (
	magicXZ    = []byte{0xFD, '7', 'z', 'X', 'Z', 0x00}
	magicGzip  = []byte{0x1F, 0x8B, 0x08} // ID1 ID2 CM=deflate
	magicZstd  = []byte{0x28, 0xB5, 0x2F, 0xFD}
	magicBzip2 = []byte{'B', 'Z', 'h'} // then '1'..'9', then the block magic 0x314159265359
)

// Detect returns the compression of a file that starts with b, or "".
// b should hold at least 10 bytes.
func Detect(b []byte) string {
	switch {
	case bytes.HasPrefix(b, magicXZ):
		return XZ
	case bytes.HasPrefix(b, magicGzip):
		return Gzip
	case bytes.HasPrefix(b, magicZstd):
		return Zstd
	case len(b) >= 10 && bytes.HasPrefix(b, magicBzip2) && b[3] >= '1' && b[3] <= '9' &&
		(bytes.Equal(b[4:10], []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59}) || // first block
			bytes.Equal(b[4:10], []byte{0x17, 0x72, 0x45, 0x38, 0x50, 0x90})): // empty stream end
		return Bzip2
	}
	return ""
}

// NewReader returns a decompressing reader for kind.
func NewReader(kind string, r io.Reader) (io.ReadCloser, error) {
	switch kind {
	case XZ:
		zr, err := xz.NewReader(r)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(zr), nil
	case Gzip:
		return gzip.NewReader(r)
	case Zstd:
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	case Bzip2:
		return io.NopCloser(bzip2.NewReader(r)), nil
	}
	return nil, fmt.Errorf("unknown compression %q", kind)
}

// Errors from DecompressLimited; test with errors.Is.
var (
	// ErrPastDeclared: the stream produced more bytes than its own
	// metadata declares (a bomb, or damage).
	ErrPastDeclared = errors.New("the stream decompresses past the size it declares")
	// ErrBudget: the data written would exceed the disk budget.
	ErrBudget = errors.New("the decompressed data does not fit in the space allowed for it")
)

// Limits bound a decompression.
type Limits struct {
	// Declared is the size the stream declares (Declared), or -1.
	// Producing more is ErrPastDeclared.
	Declared int64
	// Budget is how many bytes of data (the non-zero 64 KiB blocks, which
	// are all that take disk space) may be written to dst; 0 means no
	// limit. Going past it is ErrBudget.
	Budget int64
}

// Decompress decompresses src (kind) into dst without limits; see
// DecompressLimited.
func Decompress(dst *os.File, src io.Reader, kind string, progress func(out int64)) (int64, error) {
	return DecompressLimited(dst, src, kind, Limits{Declared: -1}, progress)
}

// DecompressLimited decompresses src (kind) into dst, writing only non-zero
// 64 KiB blocks so that runs of zeros become holes and dst stays sparse,
// and truncates dst to the decompressed size, which it returns. It stops
// with ErrPastDeclared or ErrBudget as soon as lim is exceeded, having
// written at most lim.Budget bytes of data. progress, if not nil, is
// called now and then with the number of decompressed bytes so far.
func DecompressLimited(dst *os.File, src io.Reader, kind string, lim Limits, progress func(out int64)) (int64, error) {
	// Count what the decoder takes, not what the buffer reads ahead: a
	// damaged stream is then located at or before that byte.
	cr := &countingReader{r: bufio.NewReaderSize(src, 1<<20)}
	zr, err := NewReader(kind, cr)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", kind, err)
	}
	defer zr.Close()
	const block = 64 << 10
	buf := make([]byte, 1<<20)
	var off, written, reported int64
	for {
		// Fill buf by hand: io.ReadFull would turn a truncated stream's
		// io.ErrUnexpectedEOF into something that looks like a short
		// last block.
		n := 0
		var rerr error
		for n < len(buf) && rerr == nil {
			var k int
			k, rerr = zr.Read(buf[n:])
			n += k
		}
		if lim.Declared >= 0 && off+int64(n) > lim.Declared {
			return off, fmt.Errorf("%s: output byte %d (input byte %d): %w (%d bytes)", kind, lim.Declared, cr.n, ErrPastDeclared, lim.Declared)
		}
		for i := 0; i < n; i += block {
			j := min(i+block, n)
			if !zero.Is(buf[i:j]) {
				if lim.Budget > 0 && written+int64(j-i) > lim.Budget {
					return off, fmt.Errorf("%s: at output byte %d (input byte %d, %d bytes of data written): %w (%d bytes)", kind, off+int64(i), cr.n, written, ErrBudget, lim.Budget)
				}
				if _, err := dst.WriteAt(buf[i:j], off+int64(i)); err != nil {
					return off, err
				}
				written += int64(j - i)
			}
		}
		off += int64(n)
		if progress != nil && off-reported >= 4<<20 {
			reported = off
			progress(off)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return off, fmt.Errorf("%s: stream damaged at or before input byte %d of the compressed file (output byte %d): %w", kind, cr.n, off, rerr)
		}
	}
	if err := dst.Truncate(off); err != nil {
		return off, err
	}
	if progress != nil {
		progress(off)
	}
	return off, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
