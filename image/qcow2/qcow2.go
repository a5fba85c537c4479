// Package qcow2 reads QEMU copy-on-write images (qcow2, versions 2 and 3).
//
// Cluster reads — L1/L2 tables, zero clusters, zlib (raw deflate) and zstd
// compressed clusters, backing files — are done by
// github.com/lima-vm/go-qcow2reader; this package adds what imgtool needs
// around it:
//
//   - its own parse and sanity check of the header (docs/interop/qcow2.txt
//     in the QEMU tree), so that absurd sizes are refused before the
//     library allocates tables for them;
//   - a clear error for encrypted images (crypt_method 1 = AES, 2 = LUKS),
//     which are reported, not read;
//   - backing chains resolved the way qemu does (a relative backing file
//     name is relative to the directory of the image naming it), with a
//     clear error naming a missing backing file, and loop/depth limits;
//   - the internal snapshot table, which the library does not expose;
//   - the zstd decompressor (github.com/klauspost/compress/zstd) plugged
//     into the library's decompressor hook.
package qcow2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/imgtool/imgtool/internal/readat"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/imgtool/imgtool/image/ref"
	"github.com/imgtool/imgtool/internal/where"
	"github.com/klauspost/compress/zstd"
	limage "github.com/lima-vm/go-qcow2reader/image"
	lqcow2 "github.com/lima-vm/go-qcow2reader/image/qcow2"
	"github.com/lima-vm/go-qcow2reader/image/raw"
	llog "github.com/lima-vm/go-qcow2reader/log"
)

var be = binary.BigEndian

func init() {
	lqcow2.SetDecompressor(lqcow2.CompressionTypeZstd, func(r io.Reader) (io.ReadCloser, error) {
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	})
	// The library prints warnings with the standard logger; keep
	// libraries quiet and route them to slog at debug level.
	llog.SetWarnFunc(func(s string) { slog.Debug("go-qcow2reader: " + s) })
}

// Header constants (QEMU docs/interop/qcow2.txt).
const (
	Magic = "QFI\xfb"

	CryptNone = 0
	CryptAES  = 1
	CryptLUKS = 2

	// Incompatible feature bits (v3).
	IncompatDirty        = 1 << 0
	IncompatCorrupt      = 1 << 1
	IncompatExternalData = 1 << 2
	IncompatCompression  = 1 << 3
	IncompatExtendedL2   = 1 << 4
	incompatKnown        = IncompatDirty | IncompatCorrupt | IncompatExternalData | IncompatCompression | IncompatExtendedL2

	CompressionZlib = 0
	CompressionZstd = 1

	minClusterBits = 9
	maxClusterBits = 21 // 2 MiB, qemu's limit
	maxBackingName = 1023
	maxChain       = 32
	maxSnapshots   = 65536 // QCOW_MAX_SNAPSHOTS
)

// Header is the qcow2 header (big-endian on disk). Fields after
// RefcountTableClusters... SnapshotsOffset exist in v2 and v3; the rest only
// in v3.
type Header struct {
	Magic                 [4]byte // 0: "QFI\xfb"
	Version               uint32  // 4: 2 or 3
	BackingFileOffset     uint64  // 8: byte offset of the backing file name
	BackingFileSize       uint32  // 16: its length (no NUL), <= 1023
	ClusterBits           uint32  // 20: log2 cluster size, 9..21
	Size                  uint64  // 24: virtual disk size in bytes
	CryptMethod           uint32  // 32: 0 none, 1 AES, 2 LUKS
	L1Size                uint32  // 36: L1 entries
	L1TableOffset         uint64  // 40
	RefcountTableOffset   uint64  // 48
	RefcountTableClusters uint32  // 56
	NbSnapshots           uint32  // 60
	SnapshotsOffset       uint64  // 64
	// v3:
	IncompatibleFeatures uint64 // 72
	CompatibleFeatures   uint64 // 80
	AutoclearFeatures    uint64 // 88
	RefcountOrder        uint32 // 96
	HeaderLength         uint32 // 100
	CompressionType      uint8  // 104, if HeaderLength > 104
}

// ParseHeader decodes and sanity-checks a header; fileSize bounds the
// tables it points at.
func ParseHeader(b []byte, fileSize int64) (*Header, error) {
	if len(b) < 72 || string(b[:4]) != Magic {
		return nil, ErrNotQcow2
	}
	h := &Header{
		Version:               be.Uint32(b[4:]),
		BackingFileOffset:     be.Uint64(b[8:]),
		BackingFileSize:       be.Uint32(b[16:]),
		ClusterBits:           be.Uint32(b[20:]),
		Size:                  be.Uint64(b[24:]),
		CryptMethod:           be.Uint32(b[32:]),
		L1Size:                be.Uint32(b[36:]),
		L1TableOffset:         be.Uint64(b[40:]),
		RefcountTableOffset:   be.Uint64(b[48:]),
		RefcountTableClusters: be.Uint32(b[56:]),
		NbSnapshots:           be.Uint32(b[60:]),
		SnapshotsOffset:       be.Uint64(b[64:]),
		HeaderLength:          72,
		RefcountOrder:         4,
	}
	copy(h.Magic[:], b[:4])
	switch h.Version {
	case 2:
	case 3:
		if len(b) < 104 {
			return nil, fieldErr(72, nil, "qcow2 v3 header at byte 72: short (%d bytes of 104)", len(b))
		}
		h.IncompatibleFeatures = be.Uint64(b[72:])
		h.CompatibleFeatures = be.Uint64(b[80:])
		h.AutoclearFeatures = be.Uint64(b[88:])
		h.RefcountOrder = be.Uint32(b[96:])
		h.HeaderLength = be.Uint32(b[100:])
		if h.HeaderLength < 104 || h.HeaderLength > 4096 {
			return nil, fieldErr(100, nil, "qcow2 header at byte 100: header length %d outside 104..4096", h.HeaderLength)
		}
		if h.HeaderLength > 104 && len(b) > 104 {
			h.CompressionType = b[104]
		}
	default:
		return nil, fieldErr(4, ErrUnsupported, "qcow2 version %d (byte 4); only 2 and 3 exist", h.Version)
	}
	if h.ClusterBits < minClusterBits || h.ClusterBits > maxClusterBits {
		return nil, fieldErr(20, nil, "qcow2 header at byte 20: cluster bits %d outside %d..%d", h.ClusterBits, minClusterBits, maxClusterBits)
	}
	cs := uint64(1) << h.ClusterBits
	if h.Size > 1<<56 {
		return nil, fieldErr(24, nil, "qcow2 header at byte 24: virtual size %d is absurd", h.Size)
	}
	// Each L1 entry maps cs/8 clusters; the table must cover the disk and
	// lie inside the file.
	need := (h.Size + cs*(cs/8) - 1) / (cs * (cs / 8))
	if uint64(h.L1Size) < need {
		return nil, fieldErr(36, nil, "qcow2 header at byte 36: L1 table of %d entries cannot map %d bytes (need %d)", h.L1Size, h.Size, need)
	}
	if h.L1TableOffset > uint64(fileSize) || h.L1TableOffset+8*uint64(h.L1Size) > uint64(fileSize) {
		return nil, fieldErr(40, nil, "qcow2 header at byte 40: L1 table (%d entries at byte %d) outside the %d-byte file", h.L1Size, h.L1TableOffset, fileSize)
	}
	if h.BackingFileOffset != 0 {
		if h.BackingFileSize == 0 || h.BackingFileSize > maxBackingName {
			return nil, fieldErr(16, nil, "qcow2 header at byte 16: backing file name length %d outside 1..%d", h.BackingFileSize, maxBackingName)
		}
		if h.BackingFileOffset > uint64(fileSize) || h.BackingFileOffset+uint64(h.BackingFileSize) > uint64(fileSize) {
			return nil, fieldErr(8, nil, "qcow2 header at byte 8: backing file name at byte %d outside the %d-byte file", h.BackingFileOffset, fileSize)
		}
	}
	return h, nil
}

// fieldError is a header field that is out of range: off is the field's
// byte in the file, which OpenPolicy turns into a located error naming
// the file (internal/where). The text keeps the old shape: the cause (an
// Err* sentinel), if any, first.
type fieldError struct {
	off int64
	msg string
	err error
}

func fieldErr(off int64, cause error, format string, a ...any) *fieldError {
	return &fieldError{off, fmt.Sprintf(format, a...), cause}
}

func (e *fieldError) Error() string {
	switch {
	case e.err == nil:
		return e.msg
	case errors.Is(e.err, ErrEncrypted):
		return e.err.Error() + " (" + e.msg + ")"
	}
	return e.err.Error() + ": " + e.msg
}

func (e *fieldError) Unwrap() error { return e.err }

// locate turns a fieldError in err into a located error in the file path.
func locate(path string, err error) error {
	var fe *fieldError
	if errors.As(err, &fe) {
		return where.InFile("qcow2", path, fe.off, "", err)
	}
	return err
}

// ClusterSize returns the cluster size in bytes.
func (h *Header) ClusterSize() int64 { return 1 << h.ClusterBits }

// Compression names the compression type: "zlib" or "zstd".
func (h *Header) Compression() string {
	switch h.CompressionType {
	case CompressionZlib:
		return "zlib"
	case CompressionZstd:
		return "zstd"
	}
	return fmt.Sprintf("type-%d", h.CompressionType)
}

// Errors; test with errors.Is.
var (
	ErrNotQcow2       = errors.New("not a qcow2 image")
	ErrEncrypted      = errors.New("qcow2 image is encrypted; imgtool does not read encrypted images")
	ErrMissingBacking = errors.New("backing file does not exist")
	ErrUnsupported    = errors.New("unsupported qcow2 feature")
)

// Snapshot is one entry of the internal snapshot table.
type Snapshot struct {
	ID           string
	Name         string
	Date         time.Time
	VMClock      time.Duration // guest clock at the snapshot
	VMStateSize  uint64        // bytes of saved VM state (0: disk-only)
	DiskSize     uint64        // virtual disk size at the snapshot (extra data, v3)
	L1TableOff   uint64
	L1Size       uint32
	EntryAtBytes int64 // where the entry starts in the file
}

// ReadSnapshots parses the snapshot table. Entries (all big-endian):
//
//	0  u64 l1_table_offset   8  u32 l1_size
//	12 u16 id_str_size       14 u16 name_size
//	16 u32 date_sec          20 u32 date_nsec
//	24 u64 vm_clock_nsec     32 u32 vm_state_size
//	36 u32 extra_data_size   40 extra data: u64 vm_state_size_large,
//	                            u64 disk_size, u64 icount (as long as given)
//	then id_str, name, padding to a multiple of 8.
func ReadSnapshots(r io.ReaderAt, h *Header, fileSize int64) ([]Snapshot, error) {
	if h.NbSnapshots == 0 {
		return nil, nil
	}
	if h.NbSnapshots > maxSnapshots {
		return nil, fmt.Errorf("qcow2 header at byte 60: %d snapshots (qemu allows %d)", h.NbSnapshots, maxSnapshots)
	}
	off := int64(h.SnapshotsOffset)
	if h.SnapshotsOffset > uint64(fileSize) {
		return nil, fmt.Errorf("qcow2 header at byte 64: snapshot table at byte %d outside the %d-byte file", h.SnapshotsOffset, fileSize)
	}
	var out []Snapshot
	for i := uint32(0); i < h.NbSnapshots; i++ {
		var fix [40]byte
		if off+40 > fileSize {
			return out, fmt.Errorf("qcow2 snapshot %d at byte %d: runs past the end of the file", i, off)
		}
		if _, err := r.ReadAt(fix[:], off); err != nil {
			return out, fmt.Errorf("qcow2 snapshot %d at byte %d: %w", i, off, err)
		}
		s := Snapshot{
			L1TableOff:   be.Uint64(fix[0:]),
			L1Size:       be.Uint32(fix[8:]),
			Date:         time.Unix(int64(be.Uint32(fix[16:])), int64(be.Uint32(fix[20:]))).UTC(),
			VMClock:      time.Duration(be.Uint64(fix[24:])),
			VMStateSize:  uint64(be.Uint32(fix[32:])),
			EntryAtBytes: off,
		}
		idLen, nameLen := int64(be.Uint16(fix[12:])), int64(be.Uint16(fix[14:]))
		extra := int64(be.Uint32(fix[36:]))
		if extra > 1024 {
			return out, fmt.Errorf("qcow2 snapshot %d at byte %d: extra data of %d bytes (qemu allows 1024)", i, off, extra)
		}
		total := 40 + extra + idLen + nameLen
		if off+total > fileSize {
			return out, fmt.Errorf("qcow2 snapshot %d at byte %d: %d-byte entry runs past the end of the file", i, off, total)
		}
		rest := make([]byte, extra+idLen+nameLen)
		if _, err := r.ReadAt(rest, off+40); err != nil {
			return out, fmt.Errorf("qcow2 snapshot %d at byte %d: %w", i, off, err)
		}
		if extra >= 8 {
			s.VMStateSize = be.Uint64(rest[0:])
		}
		if extra >= 16 {
			s.DiskSize = be.Uint64(rest[8:])
		}
		s.ID = string(rest[extra : extra+idLen])
		s.Name = string(rest[extra+idLen:])
		out = append(out, s)
		off += (total + 7) &^ 7
	}
	return out, nil
}

// Image is an opened qcow2 image with its backing chain.
type Image struct {
	Header    *Header
	Snapshots []Snapshot
	// Backing is the backing chain, nearest first: resolved paths and
	// their formats ("qcow2" or "raw").
	Backing []Layer
	// Notes are oddities found while opening, for display.
	Notes []string

	img  limage.Image
	size int64
	// badL1 maps the index of each L1 entry that points past the end of
	// the file to the entry's byte offset in the file (checkL1); l1Span
	// is the virtual bytes one entry maps; path names the file in errors.
	badL1  map[int64]int64
	l1Span int64
	path   string
	// r and fileSize are the image file, read again to say which L2
	// entry a failed read went through (locateL2).
	r        io.ReaderAt
	fileSize int64
}

// Layer is one backing file.
type Layer struct {
	Name   string // as recorded in the image that names it
	Path   string // resolved
	Format string
}

type namedReaderAt struct {
	io.ReaderAt
	name string
}

// Name lets the library resolve relative backing names (its Namer).
func (n namedReaderAt) Name() string { return n.name }

// Open opens the qcow2 image r of fileSize bytes. path is the image's file
// name, used to resolve relative backing file names (it need not be the
// file r reads, e.g. for a decompressed copy).
//
// Backing files are opened under the default ref policy: only files inside
// the image's own directory. OpenPolicy takes another policy.
func Open(r io.ReaderAt, fileSize int64, path string) (*Image, error) {
	return OpenPolicy(r, fileSize, path, nil)
}

// OpenPolicy is Open with a policy for which backing files may be opened.
func OpenPolicy(r io.ReaderAt, fileSize int64, path string, pol *ref.Policy) (*Image, error) {
	b := make([]byte, 512)
	n, err := r.ReadAt(b, 0)
	if err != nil && !(err == io.EOF && n >= 72) {
		return nil, fmt.Errorf("qcow2: reading header: %w", err)
	}
	name := path
	if name == "" {
		name = "(qcow2 image)"
	}
	h, err := ParseHeader(b[:n], fileSize)
	if err != nil {
		return nil, locate(name, err)
	}
	im := &Image{Header: h, size: int64(h.Size), r: r, fileSize: fileSize, path: name}
	switch h.CryptMethod {
	case CryptNone:
	case CryptAES:
		return nil, locate(name, fieldErr(32, ErrEncrypted, "legacy AES, crypt_method 1 at byte 32"))
	case CryptLUKS:
		return nil, locate(name, fieldErr(32, ErrEncrypted, "LUKS, crypt_method 2 at byte 32"))
	default:
		return nil, locate(name, fieldErr(32, ErrEncrypted, "unknown crypt_method %d at byte 32", h.CryptMethod))
	}
	if h.IncompatibleFeatures&IncompatExternalData != 0 {
		return nil, locate(name, fieldErr(72, ErrUnsupported, "external data file (incompatible feature bit 2, byte 72)"))
	}
	if unknown := h.IncompatibleFeatures &^ incompatKnown; unknown != 0 {
		return nil, locate(name, fieldErr(72, ErrUnsupported, "unknown incompatible feature bits %#x in incompatible_features at byte 72", unknown))
	}
	if h.IncompatibleFeatures&IncompatDirty != 0 {
		im.Notes = append(im.Notes, "dirty bit set: refcounts may be stale (the image was not closed cleanly); data reads are unaffected")
	}
	if h.IncompatibleFeatures&IncompatCorrupt != 0 {
		im.Notes = append(im.Notes, "corrupt bit set: qemu found metadata damage in this image")
	}
	if h.CompressionType > CompressionZstd {
		return nil, locate(name, fieldErr(104, ErrUnsupported, "compression type %d at byte 104", h.CompressionType))
	}
	im.checkL1(r, fileSize, path)
	im.Snapshots, err = ReadSnapshots(r, h, fileSize)
	if err != nil {
		im.Notes = append(im.Notes, "snapshot table: "+err.Error())
	}
	// Walk the backing chain ourselves first, for clear errors.
	chain, err := im.checkChain(r, h, path, pol)
	if err != nil {
		return nil, err
	}
	var ra io.ReaderAt = r
	if path != "" {
		abs, _ := filepath.Abs(path)
		ra = namedReaderAt{r, abs}
	}
	q, err := lqcow2.Open(ra, opener(0, chain))
	if err != nil {
		return nil, fmt.Errorf("qcow2: %w", err)
	}
	if err := q.Readable(); err != nil {
		q.Close()
		return nil, fmt.Errorf("qcow2: %w", err)
	}
	im.img = q
	return im, nil
}

func backingName(r io.ReaderAt, h *Header) (string, error) {
	if h.BackingFileOffset == 0 {
		return "", nil
	}
	nb := make([]byte, h.BackingFileSize)
	if _, err := r.ReadAt(nb, int64(h.BackingFileOffset)); err != nil {
		return "", fmt.Errorf("qcow2: reading backing file name at byte %d: %w", h.BackingFileOffset, err)
	}
	return string(nb), nil
}

// checkChain follows backing files from r (named path) and fills
// im.Backing; it fails with ErrMissingBacking naming the first file that
// is not there, and with ref.ErrRefused for a file the policy does not
// allow. It returns the files it checked, nearest first, so that the
// library's own opens can be held to exactly these files.
func (im *Image) checkChain(r io.ReaderAt, h *Header, path string, pol *ref.Policy) ([]os.FileInfo, error) {
	var self os.FileInfo
	if path != "" {
		self, _ = os.Stat(path)
	}
	var opened []*os.File
	var chain []os.FileInfo
	defer func() {
		for _, f := range opened {
			f.Close()
		}
	}()
	for depth := 0; ; depth++ {
		name, err := backingName(r, h)
		if err != nil || name == "" {
			return chain, err
		}
		if depth >= maxChain {
			return nil, fmt.Errorf("qcow2: backing chain longer than %d images", maxChain)
		}
		field := fmt.Sprintf("qcow2 backing file name (header byte 8 points at byte %d)", h.BackingFileOffset)
		f, p, err := pol.Open(path, field, name)
		if err != nil && depth > 0 {
			err = fmt.Errorf("in backing file %s: %w", path, err)
		}
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%w: %w", ErrMissingBacking, err)
			}
			return nil, err
		}
		opened = append(opened, f)
		fi, err := f.Stat()
		if err != nil {
			return nil, err
		}
		for _, prev := range append(chain, self) {
			if prev != nil && os.SameFile(prev, fi) {
				return nil, fmt.Errorf("qcow2: backing chain loops back to %s", p)
			}
		}
		chain = append(chain, fi)
		b := make([]byte, 512)
		n, _ := f.ReadAt(b, 0)
		bh, err := ParseHeader(b[:n], fi.Size())
		if errors.Is(err, ErrNotQcow2) {
			im.Backing = append(im.Backing, Layer{name, p, "raw"})
			return chain, nil
		}
		if err != nil {
			return nil, fmt.Errorf("qcow2 backing file %s: %w", p, err)
		}
		if bh.CryptMethod != CryptNone {
			return nil, fmt.Errorf("qcow2 backing file %s: %w", p, ErrEncrypted)
		}
		im.Backing = append(im.Backing, Layer{name, p, "qcow2"})
		r, h, path = f, bh, p
	}
}

// opener opens backing files for the library: qcow2 or raw, decided by
// the recorded format or, if none, by content.
//
// The library opens backing files by name itself; chain holds the files
// checkChain allowed, and a file the library opened that is not the same
// file (a name swapped in between) is refused.
func opener(depth int, chain []os.FileInfo) limage.OpenWithType {
	return func(ra io.ReaderAt, t limage.Type) (limage.Image, error) {
		if depth >= maxChain {
			closeIf(ra)
			return nopImage{}, fmt.Errorf("backing chain longer than %d images", maxChain)
		}
		f, ok := ra.(*os.File)
		var fi os.FileInfo
		if ok {
			fi, _ = f.Stat()
		}
		if depth >= len(chain) || fi == nil || !os.SameFile(fi, chain[depth]) {
			closeIf(ra)
			return nopImage{}, fmt.Errorf("backing file at depth %d is not the file that was checked: %w", depth+1, ref.ErrRefused)
		}
		if t == "" {
			var m [4]byte
			if _, err := ra.ReadAt(m[:], 0); err == nil && string(m[:]) == Magic {
				t = lqcow2.Type
			} else {
				t = raw.Type
			}
		}
		switch t {
		case lqcow2.Type:
			q, err := lqcow2.Open(ra, opener(depth+1, chain))
			if err != nil {
				closeIf(ra)
				return nopImage{}, err
			}
			if err := q.Readable(); err != nil {
				q.Close()
				return nopImage{}, err
			}
			return q, nil
		case raw.Type:
			return raw.Open(ra)
		}
		closeIf(ra)
		return nopImage{}, fmt.Errorf("backing file format %q is not supported under qcow2 (only qcow2 and raw)", t)
	}
}

func closeIf(ra io.ReaderAt) {
	if c, ok := ra.(io.Closer); ok {
		c.Close()
	}
}

// nopImage is returned with errors: the library calls Close on whatever
// the opener returns, even on failure.
type nopImage struct{}

func (nopImage) ReadAt([]byte, int64) (int, error)          { return 0, io.EOF }
func (nopImage) Close() error                               { return nil }
func (nopImage) Extent(int64, int64) (limage.Extent, error) { return limage.Extent{}, io.EOF }
func (nopImage) Type() limage.Type                          { return "" }
func (nopImage) Size() int64                                { return 0 }
func (nopImage) Readable() error                            { return io.EOF }

// Size returns the virtual disk size.
func (im *Image) Size() int64 { return im.size }

// ReadAt implements io.ReaderAt over the virtual disk.
func (im *Image) ReadAt(p []byte, off int64) (int, error) {
	p, clipped, err := readat.Clip(p, off, im.size, "qcow2")
	if err != nil {
		return 0, err
	}
	var eof error
	if clipped {
		eof = io.EOF
	}
	if err := im.l1Error(off, int64(len(p))); err != nil {
		return 0, err
	}
	n, err := im.img.ReadAt(p, off)
	if err == io.EOF && n == len(p) {
		err = nil
	}
	if err != nil {
		at, msg, comp := im.locateL2(off, int64(len(p)))
		if at >= 0 {
			// The library's error ends in the file's io.EOF, which is
			// not the end of the disk: callers would drop the chain, and
			// with it where the damage is, for an io.ErrUnexpectedEOF.
			return n, where.InFile("qcow2", im.path, at, fmt.Sprintf("qcow2: reading %d bytes at virtual offset %d: %s (%v)", len(p), off, msg, err), io.ErrUnexpectedEOF)
		}
		if comp >= 0 && !errors.Is(err, io.EOF) {
			// A compressed cluster that does not decompress: its data.
			return n, where.InFile("qcow2", im.path, comp, fmt.Sprintf("qcow2: reading %d bytes at virtual offset %d: compressed cluster data at byte %d of %s", len(p), off, comp, im.path), err)
		}
		return n, fmt.Errorf("qcow2: reading %d bytes at virtual offset %d: %w", len(p), off, err)
	}
	return n, eof
}

// Locate says where virtual byte v is stored: at byte off of this image's
// file, when its own L2 table maps v to a standard cluster (qemu's
// docs/interop/qcow2.txt; with extended L2 entries, an allocated
// subcluster). ok is false for a byte this file does not hold as such:
// unallocated (a backing file's, or zeros), a zero cluster, compressed, in
// an external data file, or behind a table that cannot be read.
func (im *Image) Locate(v int64) (path string, off int64, ok bool) {
	h := im.Header
	if v < 0 || v >= im.size || im.l1Span == 0 || h.IncompatibleFeatures&IncompatExternalData != 0 {
		return "", 0, false
	}
	cluster := h.ClusterSize()
	extended := h.IncompatibleFeatures&IncompatExtendedL2 != 0
	entry := int64(8)
	if extended {
		entry = 16
	}
	i := v / im.l1Span
	var b [16]byte
	if i >= int64(h.L1Size) {
		return "", 0, false
	}
	if _, err := im.r.ReadAt(b[:8], int64(h.L1TableOffset)+8*i); err != nil {
		return "", 0, false
	}
	l2 := int64(be.Uint64(b[:]) & 0x00fffffffffffe00)
	if l2 == 0 || l2 > im.fileSize-cluster {
		return "", 0, false
	}
	if _, err := im.r.ReadAt(b[:entry], l2+entry*((v%im.l1Span)/cluster)); err != nil {
		return "", 0, false
	}
	e := be.Uint64(b[:])
	host := int64(e & 0x00fffffffffffe00)
	switch {
	case e&(1<<62) != 0 || host == 0: // compressed, or not here
		return "", 0, false
	case extended:
		if be.Uint64(b[8:])&(1<<((v%cluster)/(cluster/32))) == 0 {
			return "", 0, false // the subcluster is not allocated
		}
	case e&1 != 0: // reads as zeros
		return "", 0, false
	}
	if off = host + v%cluster; off >= im.fileSize {
		return "", 0, false
	}
	return im.path, off, true
}

// maxL2Locate bounds the clusters locateL2 looks at.
const maxL2Locate = 1 << 12

// locateL2 finds, after a failed read of n bytes at virtual offset off,
// the first L2 entry of this file the read went through that points past
// the end of the file: its byte offset and what is wrong, or -1. The
// layout is qemu's docs/interop/qcow2.txt: an L1 entry holds its L2
// table's offset in bits 9-55; a standard L2 entry the cluster's in bits
// 9-55, a compressed one (bit 62) its offset in bits 0..61-(cluster_bits-8).
// Entries that leave the cluster to a backing file are not followed. The
// third result is the file offset of the first compressed cluster's data
// the read went through, or -1: where a decompression failure is.
func (im *Image) locateL2(off, n int64) (int64, string, int64) {
	h := im.Header
	cluster := h.ClusterSize()
	entry := int64(8)
	if h.IncompatibleFeatures&IncompatExtendedL2 != 0 {
		entry = 16
	}
	var b [8]byte
	comp := int64(-1)
	for c, k := off/cluster, 0; c*cluster < off+n && k < maxL2Locate; c, k = c+1, k+1 {
		v := c * cluster
		i := v / im.l1Span
		if i >= int64(h.L1Size) {
			break
		}
		if _, err := im.r.ReadAt(b[:], int64(h.L1TableOffset)+8*i); err != nil {
			break
		}
		l2 := int64(be.Uint64(b[:]) & 0x00fffffffffffe00)
		if l2 == 0 || l2 > im.fileSize-cluster {
			continue // unallocated, or past the end (checkL1's)
		}
		j := (v % im.l1Span) / cluster
		at := l2 + entry*j
		if _, err := im.r.ReadAt(b[:], at); err != nil {
			continue
		}
		e := be.Uint64(b[:])
		// The bytes of this cluster the read needs.
		end := min(off+n, v+cluster) - v
		var host int64
		if e&(1<<62) != 0 {
			bits := 62 - (h.ClusterBits - 8)
			host = int64(e & (1<<bits - 1))
			end = 1
			if comp < 0 {
				comp = host
			}
		} else {
			host = int64(e & 0x00fffffffffffe00)
			if host == 0 {
				continue // unallocated or zero
			}
		}
		if host > im.fileSize-end {
			return at, fmt.Sprintf("L2 entry %d (of L1 entry %d) at byte %d of %s points to byte %d, past the end of the %d-byte file", j, i, at, im.path, host, im.fileSize), comp
		}
	}
	return -1, "", comp
}

// Close closes the image and its backing files.
func (im *Image) Close() error {
	if im.img == nil {
		return nil
	}
	return im.img.Close()
}

// maxL1Check bounds the L1 entries checkL1 reads (8 MiB of table).
const maxL1Check = 1 << 20

// checkL1 reads the L1 table and notes every entry whose L2 table lies
// past the end of the file: reads of the virtual bytes it maps then fail
// with an error naming the entry's byte offset in the file, rather than
// the library's bare read error.
func (im *Image) checkL1(r io.ReaderAt, fileSize int64, path string) {
	h := im.Header
	cluster := int64(1) << h.ClusterBits
	entry := int64(8)
	if h.IncompatibleFeatures&IncompatExtendedL2 != 0 {
		entry = 16
	}
	im.l1Span = cluster * (cluster / entry)
	im.path = path
	if im.path == "" {
		im.path = "(qcow2 image)"
	}
	n := int64(h.L1Size)
	if need := (im.size + im.l1Span - 1) / im.l1Span; need < n {
		n = need
	}
	if n <= 0 || n > maxL1Check {
		return
	}
	tab := make([]byte, n*8)
	if _, err := r.ReadAt(tab, int64(h.L1TableOffset)); err != nil {
		return // ParseHeader checked the table lies inside the file
	}
	for i := int64(0); i < n; i++ {
		l2 := int64(be.Uint64(tab[i*8:]) & 0x00fffffffffffe00)
		if l2 == 0 || l2 <= fileSize-cluster {
			continue
		}
		at := int64(h.L1TableOffset) + i*8
		if im.badL1 == nil {
			im.badL1 = map[int64]int64{}
		}
		im.badL1[i] = at
		if len(im.badL1) <= 8 {
			im.Notes = append(im.Notes, fmt.Sprintf("L1 entry %d at byte %d of %s points to an L2 table at byte %d, past the end of the %d-byte file: virtual bytes %d-%d are unreadable",
				i, at, im.path, l2, fileSize, i*im.l1Span, (i+1)*im.l1Span-1))
		}
	}
}

// l1Error is the error for a read of n bytes at virtual offset off that
// needs an L1 entry checkL1 found bad, or nil.
func (im *Image) l1Error(off, n int64) error {
	if len(im.badL1) == 0 || n <= 0 {
		return nil
	}
	for i := off / im.l1Span; i <= (off+n-1)/im.l1Span; i++ {
		if at, ok := im.badL1[i]; ok {
			return where.InFile("qcow2", im.path, at, fmt.Sprintf("qcow2: reading %d bytes at virtual offset %d: L1 entry %d at byte %d of %s points past the end of the file", n, off, i, at, im.path), nil)
		}
	}
	return nil
}
