// Package compressed recognises compressed disk images (xz, gzip, zstd,
// bzip2) by their magic numbers and decompresses them into sparse files.
//
// A compressed stream cannot be read at random offsets, so imgtool
// decompresses a compressed image once into a temporary file and reads
// that. Runs of zero bytes are skipped with seeks, so the copy of a
// mostly-empty disk takes little space.
package compressed

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
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

// Decompress decompresses src (kind) into dst, writing only non-zero
// blocks so dst stays sparse, and truncates dst to the decompressed size,
// which it returns. progress, if not nil, is called now and then with the
// number of compressed bytes consumed so far.
func Decompress(dst *os.File, src io.Reader, kind string, progress func(compressed int64)) (int64, error) {
	cr := &countingReader{r: src, progress: progress}
	zr, err := NewReader(kind, bufio.NewReaderSize(cr, 1<<20))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", kind, err)
	}
	defer zr.Close()
	const block = 64 << 10
	buf := make([]byte, 1<<20)
	var off int64
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
		for i := 0; i < n; i += block {
			j := min(i+block, n)
			if !allZero(buf[i:j]) {
				if _, err := dst.WriteAt(buf[i:j], off+int64(i)); err != nil {
					return off, err
				}
			}
		}
		off += int64(n)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return off, fmt.Errorf("%s: decompressing at output byte %d (input byte %d): %w", kind, off, cr.n, rerr)
		}
	}
	if err := dst.Truncate(off); err != nil {
		return off, err
	}
	if progress != nil {
		progress(cr.n)
	}
	return off, nil
}

type countingReader struct {
	r        io.Reader
	n        int64
	last     int64
	progress func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.progress != nil && c.n-c.last >= 4<<20 {
		c.last = c.n
		c.progress(c.n)
	}
	return n, err
}

func allZero(b []byte) bool {
	// Compare 8 bytes at a time via bytes.Count-free loop; the compiler
	// vectorises this well enough for disk-image sizes.
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
