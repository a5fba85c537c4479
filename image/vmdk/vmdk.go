// Package vmdk reads VMware virtual disks (VMDK), following VMware's
// "Virtual Disk Format 1.1" specification: hosted sparse extents (magic
// "KDMV"), including the streamOptimized variant with deflate-compressed
// grains and markers, and text descriptors that list flat, sparse and zero
// extents in other files (monolithicFlat, twoGbMaxExtentSparse,
// twoGbMaxExtentFlat).
//
// # Sparse extents
//
// A sparse extent starts with a 512-byte little-endian SparseExtentHeader.
// Its data is cut into grains (grainSize sectors, 64 KiB by default). A
// two-level table maps them: the grain directory (GD) holds the sector of
// each grain table (GT); a GT holds numGTEsPerGT (512) entries, each the
// sector where a grain is stored, 0 for a grain never written (zeros; or
// the parent's data in a delta disk, which this package refuses), or 1 for
// a grain known to be zero (when the header's zeroed-grain flag is set).
//
// In a streamOptimized extent (flags bit 16 "compressed grains", bit 17
// "markers") each grain is stored as a grain marker — uint64 LBA, uint32
// compressed size — followed by that many bytes of zlib data. The header at
// offset 0 may say the GD is "at the end" (gdOffset = all ones); then the
// real header is a footer copy 1024 bytes before the end of the file,
// between a footer marker and the end-of-stream marker.
//
// Reads follow qemu's block/vmdk.c where the specification leaves room, so
// that the bytes equal `qemu-img convert -O raw`.
package vmdk

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/imgtool/imgtool/image/ref"
	"github.com/imgtool/imgtool/internal/readat"
	"github.com/imgtool/imgtool/internal/where"
)

var le = binary.LittleEndian

// SparseExtentHeader constants.
const (
	SparseMagic = 0x564d444b // "KDMV" read as little-endian uint32
	HeaderSize  = 512
	sector      = 512

	FlagValidNewlineTest = 1 << 0
	FlagRedundantGT      = 1 << 1
	FlagZeroedGrainGTE   = 1 << 2
	FlagCompressed       = 1 << 16
	FlagMarkers          = 1 << 17

	CompressionNone    = 0
	CompressionDeflate = 1

	// GDAtEnd in gdOffset means: the grain directory is found through the
	// footer at the end of a streamOptimized file.
	GDAtEnd = 0xffffffffffffffff

	// Marker types in streamOptimized extents.
	MarkerEOS    = 0
	MarkerGT     = 1
	MarkerGD     = 2
	MarkerFooter = 3

	// gteZero is the GT entry for a zeroed grain (with FlagZeroedGrainGTE).
	gteZero = 1

	maxGrainSectors = 128 << 20 / sector // qemu's limit: 128 MiB grains
	maxGTEs         = 1 << 16
	maxDescriptor   = 1 << 20
)

// SparseHeader is the on-disk SparseExtentHeader (packed, little-endian).
type SparseHeader struct {
	MagicNumber        uint32 // 0: "KDMV"
	Version            uint32 // 4: 1, 2 or 3
	Flags              uint32 // 8
	Capacity           uint64 // 12: sectors
	GrainSize          uint64 // 20: sectors per grain
	DescriptorOffset   uint64 // 28: sector of the embedded descriptor, 0 if none
	DescriptorSize     uint64 // 36: sectors
	NumGTEsPerGT       uint32 // 44: 512
	RGDOffset          uint64 // 48: redundant grain directory sector
	GDOffset           uint64 // 56: grain directory sector (GDAtEnd: see footer)
	OverHead           uint64 // 64: sectors of metadata before the first grain
	UncleanShutdown    uint8  // 72
	SingleEndLineChar  uint8  // 73: '\n'
	NonEndLineChar     uint8  // 74: ' '
	DoubleEndLineChar1 uint8  // 75: '\r'
	DoubleEndLineChar2 uint8  // 76: '\n'
	CompressAlgorithm  uint16 // 77: 0 none, 1 deflate
}

// ParseSparseHeader decodes a SparseExtentHeader; at is its byte offset for
// error messages.
func ParseSparseHeader(b []byte, at int64) (*SparseHeader, error) {
	if len(b) < 79 {
		return nil, fmt.Errorf("vmdk sparse header at byte %d: short (%d bytes)", at, len(b))
	}
	h := &SparseHeader{
		MagicNumber:        le.Uint32(b[0:]),
		Version:            le.Uint32(b[4:]),
		Flags:              le.Uint32(b[8:]),
		Capacity:           le.Uint64(b[12:]),
		GrainSize:          le.Uint64(b[20:]),
		DescriptorOffset:   le.Uint64(b[28:]),
		DescriptorSize:     le.Uint64(b[36:]),
		NumGTEsPerGT:       le.Uint32(b[44:]),
		RGDOffset:          le.Uint64(b[48:]),
		GDOffset:           le.Uint64(b[56:]),
		OverHead:           le.Uint64(b[64:]),
		UncleanShutdown:    b[72],
		SingleEndLineChar:  b[73],
		NonEndLineChar:     b[74],
		DoubleEndLineChar1: b[75],
		DoubleEndLineChar2: b[76],
		CompressAlgorithm:  le.Uint16(b[77:]),
	}
	if h.MagicNumber != SparseMagic {
		return nil, fmt.Errorf("%w: magic %#08x at byte %d", ErrNotVMDK, h.MagicNumber, at)
	}
	return h, nil
}

// Errors; test with errors.Is.
var (
	ErrNotVMDK     = errors.New("not a VMDK sparse extent (no KDMV magic)")
	ErrDelta       = errors.New("VMDK delta (child) disks are not supported")
	ErrUnsupported = errors.New("unsupported VMDK feature")
)

// Sparse is one opened hosted sparse extent.
type Sparse struct {
	Header *SparseHeader
	// Descriptor is the embedded descriptor text (monolithicSparse,
	// streamOptimized), "" if none.
	Descriptor string

	r        io.ReaderAt
	fileSize int64
	path     string // names the file in located errors
	hdrAt    int64  // byte of the header in use (0, or the footer's)
	gd       []uint32
	grain    int64 // bytes per grain
	gtCover  int64 // bytes covered by one grain table
	size     int64 // capacity in bytes

	mu      sync.Mutex
	gts     map[uint32][]uint32 // grain tables by GD index
	lastIdx int64               // cached decompressed grain index, -1 if none
	last    []byte
}

// OpenSparse opens the sparse extent r of fileSize bytes.
func OpenSparse(r io.ReaderAt, fileSize int64) (*Sparse, error) {
	return openSparse(r, fileSize, "")
}

// unnamed names a file in located errors when the caller gave no name.
const unnamed = "(vmdk file)"

// errAt is a located error: the structure at byte off of the extent file
// (issue 12.5).
func (s *Sparse) errAt(off int64, cause error, format string, a ...any) error {
	return where.InFile("vmdk", s.path, off, fmt.Sprintf(format, a...), cause)
}

// openSparse is OpenSparse for the file named path in located errors.
func openSparse(r io.ReaderAt, fileSize int64, path string) (*Sparse, error) {
	if path == "" {
		path = unnamed
	}
	s := &Sparse{r: r, fileSize: fileSize, path: path, lastIdx: -1, gts: map[uint32][]uint32{}}
	b := make([]byte, HeaderSize)
	if fileSize < HeaderSize {
		return nil, fmt.Errorf("%w: file of %d bytes is shorter than a header", ErrNotVMDK, fileSize)
	}
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("vmdk: reading header: %w", err)
	}
	h, err := ParseSparseHeader(b, 0)
	if err != nil {
		return nil, err
	}
	// Embedded descriptor (from the first header: the footer copy of a
	// streamOptimized file keeps the same offsets).
	if h.DescriptorOffset != 0 && h.DescriptorSize != 0 {
		if h.DescriptorSize > maxDescriptor/sector || h.DescriptorOffset > uint64(fileSize)/sector ||
			int64(h.DescriptorOffset+h.DescriptorSize)*sector > fileSize {
			return nil, s.errAt(28, nil, "vmdk header at byte 28: descriptor (sector %d, %d sectors) outside the %d-byte file", h.DescriptorOffset, h.DescriptorSize, fileSize)
		}
		d := make([]byte, h.DescriptorSize*sector)
		if _, err := r.ReadAt(d, int64(h.DescriptorOffset)*sector); err != nil {
			return nil, fmt.Errorf("vmdk: reading embedded descriptor at byte %d: %w", h.DescriptorOffset*sector, err)
		}
		if i := bytes.IndexByte(d, 0); i >= 0 {
			d = d[:i]
		}
		s.Descriptor = string(d)
	}
	if h.GDOffset == GDAtEnd {
		// streamOptimized: footer marker, footer, end-of-stream marker.
		at := fileSize - 2*sector
		if at < HeaderSize {
			return nil, s.errAt(56, nil, "vmdk header at byte 56: grain directory is at the end, but the %d-byte file has no room for a footer", fileSize)
		}
		if _, err := r.ReadAt(b, at); err != nil {
			return nil, fmt.Errorf("vmdk: reading footer at byte %d: %w", at, err)
		}
		f, err := ParseSparseHeader(b, at)
		if err != nil {
			return nil, s.errAt(at, err, "vmdk footer (streamOptimized, grain directory at end)")
		}
		if f.GDOffset == GDAtEnd {
			return nil, s.errAt(at+56, nil, "vmdk footer at byte %d: grain directory offset is still \"at end\"", at)
		}
		h = f
		s.hdrAt = at
	}
	s.Header = h
	if err := s.check(); err != nil {
		return nil, err
	}
	return s, s.readGD()
}

func (s *Sparse) check() error {
	h := s.Header
	if h.Version < 1 || h.Version > 3 {
		return s.errAt(s.hdrAt+4, ErrUnsupported, "vmdk header at byte %d: sparse header version %d (want 1..3)", s.hdrAt+4, h.Version)
	}
	if h.GrainSize == 0 || h.GrainSize > maxGrainSectors || h.GrainSize&(h.GrainSize-1) != 0 {
		return s.errAt(s.hdrAt+20, nil, "vmdk header at byte %d: grain size %d sectors is not a power of two up to %d", s.hdrAt+20, h.GrainSize, maxGrainSectors)
	}
	if h.NumGTEsPerGT == 0 || h.NumGTEsPerGT > maxGTEs {
		return s.errAt(s.hdrAt+44, nil, "vmdk header at byte %d: %d entries per grain table (want 1..%d)", s.hdrAt+44, h.NumGTEsPerGT, maxGTEs)
	}
	if h.Flags&FlagCompressed != 0 && h.CompressAlgorithm != CompressionDeflate {
		return s.errAt(s.hdrAt+77, ErrUnsupported, "vmdk header at byte %d: compression algorithm %d (only 1, deflate, exists)", s.hdrAt+77, h.CompressAlgorithm)
	}
	if h.Capacity > 1<<53/sector {
		return s.errAt(s.hdrAt+12, nil, "vmdk header at byte %d: capacity of %d sectors is absurd", s.hdrAt+12, h.Capacity)
	}
	s.grain = int64(h.GrainSize) * sector
	s.gtCover = s.grain * int64(h.NumGTEsPerGT)
	s.size = int64(h.Capacity) * sector
	return nil
}

func (s *Sparse) readGD() error {
	h := s.Header
	n := (s.size + s.gtCover - 1) / s.gtCover
	off := int64(h.GDOffset) * sector
	if h.GDOffset > uint64(s.fileSize)/sector || off+4*n > s.fileSize {
		return s.errAt(s.hdrAt+56, nil, "vmdk header at byte %d: grain directory of %d entries at sector %d does not fit in the %d-byte file", s.hdrAt+56, n, h.GDOffset, s.fileSize)
	}
	raw := make([]byte, 4*n)
	if _, err := s.r.ReadAt(raw, off); err != nil {
		return fmt.Errorf("vmdk: reading grain directory at byte %d: %w", off, err)
	}
	s.gd = make([]uint32, n)
	for i := range s.gd {
		s.gd[i] = le.Uint32(raw[4*i:])
	}
	return nil
}

// Size returns the extent capacity in bytes.
func (s *Sparse) Size() int64 { return s.size }

// Compressed reports a streamOptimized extent (compressed grains).
func (s *Sparse) Compressed() bool { return s.Header.Flags&FlagCompressed != 0 }

// gt returns grain table i (cached; the cache is dropped when it grows past
// 4096 tables, a few MiB).
func (s *Sparse) gt(i int64) ([]uint32, error) {
	if t, ok := s.gts[uint32(i)]; ok {
		return t, nil
	}
	sec := s.gd[i]
	n := int64(s.Header.NumGTEsPerGT)
	off := int64(sec) * sector
	if off+4*n > s.fileSize {
		gde := int64(s.Header.GDOffset)*sector + 4*i
		return nil, s.errAt(gde, nil, "vmdk: grain table %d at sector %d (GD entry at byte %d) runs past the end of the %d-byte file",
			i, sec, gde, s.fileSize)
	}
	raw := make([]byte, 4*n)
	if _, err := s.r.ReadAt(raw, off); err != nil {
		return nil, fmt.Errorf("vmdk: reading grain table %d at byte %d: %w", i, off, err)
	}
	t := make([]uint32, n)
	for j := range t {
		t[j] = le.Uint32(raw[4*j:])
	}
	if len(s.gts) >= 4096 {
		clear(s.gts)
	}
	s.gts[uint32(i)] = t
	return t, nil
}

// grainEntry returns the GT entry for the grain holding byte off and the
// entry's byte offset in the file (-1 for a grain with no grain table).
func (s *Sparse) grainEntry(off int64) (uint32, int64, error) {
	i := off / s.gtCover
	if i >= int64(len(s.gd)) || s.gd[i] == 0 {
		return 0, -1, nil
	}
	t, err := s.gt(i)
	if err != nil {
		return 0, -1, err
	}
	j := (off % s.gtCover) / s.grain
	return t[j], int64(s.gd[i])*sector + 4*j, nil
}

// ReadAt implements io.ReaderAt over the extent's capacity.
func (s *Sparse) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("vmdk: read at negative offset %d", off)
	}
	if off >= s.size {
		return 0, io.EOF
	}
	var eof error
	if int64(len(p)) > s.size-off {
		p = p[:s.size-off]
		eof = io.EOF
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	done := 0
	for done < len(p) {
		cur := off + int64(done)
		in := cur % s.grain
		chunk := p[done:]
		if int64(len(chunk)) > s.grain-in {
			chunk = chunk[:s.grain-in]
		}
		e, gte, err := s.grainEntry(cur)
		if err != nil {
			return done, err
		}
		switch {
		case e == 0, e == gteZero && s.Header.Flags&FlagZeroedGrainGTE != 0:
			clear(chunk)
		case s.Compressed():
			g, err := s.compressedGrain(cur/s.grain, e, gte)
			if err != nil {
				return done, err
			}
			if in+int64(len(chunk)) > int64(len(g)) {
				return done, s.errAt(int64(e)*sector, nil, "vmdk: compressed grain %d at sector %d holds %d bytes, need %d", cur/s.grain, e, len(g), in+int64(len(chunk)))
			}
			copy(chunk, g[in:])
		default:
			at := int64(e)*sector + in
			if int64(e) > s.fileSize/sector || at+int64(len(chunk)) > s.fileSize {
				return done, s.errAt(gte, nil, "vmdk: grain %d: GT entry at byte %d points to sector %d, past the end of the %d-byte file", cur/s.grain, gte, e, s.fileSize)
			}
			n, err := s.r.ReadAt(chunk, at)
			if err == io.EOF && n == len(chunk) {
				err = nil
			}
			if err != nil {
				return done + n, fmt.Errorf("vmdk: grain %d (sector %d): reading at byte %d: %w", cur/s.grain, e, at, err)
			}
		}
		done += len(chunk)
	}
	return done, eof
}

// Locate says where byte v of the extent is stored: in its grain, at the
// sector the grain table gives. ok is false for an unallocated or zeroed
// grain, a compressed extent (the bytes are deflated), a table that cannot
// be read, or an unnamed file.
func (s *Sparse) Locate(v int64) (path string, off int64, ok bool) {
	if v < 0 || v >= s.size || s.Compressed() || s.path == "" || s.path == unnamed {
		return "", 0, false
	}
	s.mu.Lock()
	e, _, err := s.grainEntry(v)
	s.mu.Unlock()
	if err != nil || e == 0 || e == gteZero && s.Header.Flags&FlagZeroedGrainGTE != 0 {
		return "", 0, false
	}
	if off = int64(e)*sector + v%s.grain; off >= s.fileSize {
		return "", 0, false
	}
	return s.path, off, true
}

// compressedGrain returns grain idx stored at sector sec: a grain marker
// (uint64 LBA, uint32 size) and size bytes of zlib data. The last grain
// decompressed is cached, as reads usually come in runs.
func (s *Sparse) compressedGrain(idx int64, sec uint32, gte int64) ([]byte, error) {
	if s.lastIdx == idx {
		return s.last, nil
	}
	at := int64(sec) * sector
	if at+12 > s.fileSize {
		return nil, s.errAt(gte, nil, "vmdk: grain %d: GT entry at byte %d points to sector %d, past the end of the %d-byte file", idx, gte, sec, s.fileSize)
	}
	var hdr [12]byte
	if _, err := s.r.ReadAt(hdr[:], at); err != nil {
		return nil, fmt.Errorf("vmdk: grain %d: reading grain marker at byte %d: %w", idx, at, err)
	}
	data := at + 12
	size := int64(le.Uint32(hdr[8:]))
	if s.Header.Flags&FlagMarkers == 0 {
		// Compressed grains without markers: qemu reads up to two grains'
		// worth and lets zlib find the end.
		data, size = at, 2*s.grain
		if at+size > s.fileSize {
			size = s.fileSize - at
		}
	}
	if size <= 0 || size > 2*s.grain || data+size > s.fileSize {
		return nil, s.errAt(at, nil, "vmdk: grain %d: marker at byte %d gives compressed size %d (grain is %d bytes, file %d)", idx, at, size, s.grain, s.fileSize)
	}
	zr, err := zlib.NewReader(io.NewSectionReader(s.r, data, size))
	if err != nil {
		return nil, s.errAt(data, err, "vmdk: grain %d: zlib data at byte %d", idx, data)
	}
	buf := s.last[:0]
	if cap(buf) < int(s.grain) {
		buf = make([]byte, 0, s.grain)
	}
	buf = buf[:s.grain]
	n, err := io.ReadFull(zr, buf)
	if err != nil && err != io.ErrUnexpectedEOF {
		s.lastIdx = -1
		return nil, s.errAt(data, err, "vmdk: grain %d: decompressing zlib data at byte %d", idx, data)
	}
	s.last, s.lastIdx = buf[:n], idx
	return s.last, nil
}

// --- descriptors ------------------------------------------------------------

// Extent is one line of a descriptor's extent description:
//
//	RW 4192256 SPARSE "disk-s001.vmdk"
//	RW 2048 FLAT "disk-flat.vmdk" 0
type Extent struct {
	Access  string // RW, RDONLY, NOACCESS
	Sectors int64
	Type    string // FLAT, SPARSE, ZERO, VMFS, VMFSSPARSE, ...
	File    string
	Offset  int64 // sectors into File (FLAT/VMFS)
	Line    int   // line number in the descriptor
	At      int64 // byte offset of the line in the descriptor text
}

// lineError is a descriptor line that does not parse; at is the line's
// byte offset in the descriptor text, which Open turns into a located
// error in the file holding the descriptor.
type lineError struct {
	at  int64
	err error
}

func (e *lineError) Error() string { return e.err.Error() }
func (e *lineError) Unwrap() error { return e.err }

// Descriptor is a parsed VMDK text descriptor.
type Descriptor struct {
	Version    int
	CID        string
	ParentCID  string
	CreateType string
	Parent     string // parentFileNameHint
	Extents    []Extent
	// DDB holds the disk database entries (ddb.geometry.cylinders, ...).
	DDB map[string]string
}

// ParseDescriptor parses descriptor text.
func ParseDescriptor(text string) (*Descriptor, error) {
	d := &Descriptor{DDB: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 4096), maxDescriptor)
	// Count the bytes each line takes, newline included, so that an
	// extent line's byte offset is known.
	var pos, next int64
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		adv, tok, err := bufio.ScanLines(data, atEOF)
		next += int64(adv)
		return adv, tok, err
	})
	ln := 0
	for sc.Scan() {
		ln++
		at := pos
		pos = next
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && !strings.ContainsAny(k, "\"") {
			k = strings.TrimSpace(k)
			v = strings.Trim(strings.TrimSpace(v), "\"")
			switch k {
			case "version":
				d.Version, _ = strconv.Atoi(v)
			case "CID":
				d.CID = v
			case "parentCID":
				d.ParentCID = v
			case "createType":
				d.CreateType = v
			case "parentFileNameHint":
				d.Parent = v
			default:
				if strings.HasPrefix(k, "ddb.") {
					d.DDB[k] = v
				}
			}
			continue
		}
		e, err := parseExtent(line, ln)
		if err != nil {
			return nil, &lineError{at, err}
		}
		e.At = at
		d.Extents = append(d.Extents, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("vmdk descriptor: %w", err)
	}
	return d, nil
}

func parseExtent(line string, ln int) (Extent, error) {
	e := Extent{Line: ln}
	// ACCESS SIZE TYPE ["FILE" [OFFSET]]
	f := strings.Fields(line)
	if len(f) < 3 {
		return e, fmt.Errorf("vmdk descriptor line %d: cannot parse %q", ln, line)
	}
	switch f[0] {
	case "RW", "RDONLY", "NOACCESS":
	default:
		return e, fmt.Errorf("vmdk descriptor line %d: unknown access %q in %q", ln, f[0], line)
	}
	e.Access = f[0]
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || n < 0 || n > 1<<53/sector {
		return e, fmt.Errorf("vmdk descriptor line %d: bad extent size %q", ln, f[1])
	}
	e.Sectors = n
	e.Type = f[2]
	rest := strings.TrimSpace(line[strings.Index(line, f[2])+len(f[2]):])
	if e.Type == "ZERO" {
		return e, nil
	}
	if !strings.HasPrefix(rest, "\"") {
		return e, fmt.Errorf("vmdk descriptor line %d: extent file name is not quoted in %q", ln, line)
	}
	end := strings.IndexByte(rest[1:], '"')
	if end < 0 {
		return e, fmt.Errorf("vmdk descriptor line %d: unterminated file name in %q", ln, line)
	}
	e.File = rest[1 : 1+end]
	if tail := strings.TrimSpace(rest[2+end:]); tail != "" {
		o, err := strconv.ParseInt(tail, 10, 64)
		if err != nil || o < 0 || o > 1<<53/sector {
			return e, fmt.Errorf("vmdk descriptor line %d: bad extent offset %q", ln, tail)
		}
		e.Offset = o
	}
	return e, nil
}

// ProbeDescriptor reports whether b (the start of a file) is a VMDK text
// descriptor.
func ProbeDescriptor(b []byte) bool {
	return bytes.HasPrefix(b, []byte("# Disk DescriptorFile")) ||
		(bytes.Contains(b, []byte("createType=")) && bytes.Contains(b, []byte("# Extent description")))
}

// --- whole disks ----------------------------------------------------------

// Disk is a VMDK virtual disk: one or more extents back to back.
type Disk struct {
	Descriptor *Descriptor
	// CreateType is the descriptor's createType (monolithicSparse,
	// streamOptimized, monolithicFlat, twoGbMaxExtentSparse, ...), or
	// "sparseExtent" for a bare extent file without a descriptor.
	CreateType string
	// Files are the extent files opened (paths), in order.
	Files []string

	parts   []part
	size    int64
	closers []io.Closer
}

type part struct {
	start, n int64
	r        io.ReaderAt // nil: zeros
	off      int64       // byte offset in r
	path     string      // a flat extent's file
}

// OpenFile opens the VMDK at path: a sparse file (monolithicSparse,
// streamOptimized or a bare sparse extent) or a descriptor naming extent
// files, which are resolved relative to the descriptor's directory.
func OpenFile(path string) (*Disk, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	d, err := Open(f, fi.Size(), path, nil)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	d.closers = append(d.closers, f)
	return d, nil
}

// Open opens the VMDK r of size bytes. container is the path of the file r
// reads: extent files named by a descriptor are resolved beside it and
// opened only if pol (nil: the default ref policy, the container's own
// directory) allows them. An empty container refuses descriptors that name
// other files.
func Open(r io.ReaderAt, size int64, container string, pol *ref.Policy) (*Disk, error) {
	return OpenNamed(r, size, container, container, pol)
}

// OpenNamed is Open naming the file r reads name in located errors
// (internal/where: a bad grain table entry, header field or descriptor
// line is reported at its byte in that file); name may be given when
// container is "" (a decompressed copy that must not name other files).
func OpenNamed(r io.ReaderAt, size int64, container, name string, pol *ref.Policy) (*Disk, error) {
	if name == "" {
		name = unnamed
	}
	var head [4]byte
	if size < 4 {
		return nil, ErrNotVMDK
	}
	if _, err := r.ReadAt(head[:], 0); err != nil {
		return nil, err
	}
	if le.Uint32(head[:]) == SparseMagic {
		s, err := openSparse(r, size, name)
		if err != nil {
			return nil, err
		}
		d := &Disk{CreateType: "sparseExtent", size: s.Size()}
		if s.Descriptor != "" {
			desc, err := ParseDescriptor(s.Descriptor)
			if err != nil {
				at := int64(s.Header.DescriptorOffset) * sector
				var lerr *lineError
				if errors.As(err, &lerr) {
					at += lerr.at
				}
				return nil, where.InFile("vmdk", name, at, fmt.Sprintf("embedded descriptor at sector %d", s.Header.DescriptorOffset), err)
			}
			d.Descriptor = desc
			if err := desc.checkParent(); err != nil {
				return nil, err
			}
			if desc.CreateType != "" {
				d.CreateType = desc.CreateType
			}
		}
		d.parts = []part{{start: 0, n: s.Size(), r: s}}
		return d, nil
	}
	if size > maxDescriptor {
		return nil, ErrNotVMDK
	}
	text := make([]byte, size)
	if _, err := r.ReadAt(text, 0); err != nil && err != io.EOF {
		return nil, err
	}
	// qemu pads descriptor files with NULs.
	if i := bytes.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	if !ProbeDescriptor(text) {
		return nil, ErrNotVMDK
	}
	desc, err := ParseDescriptor(string(text))
	if err != nil {
		var lerr *lineError
		if errors.As(err, &lerr) {
			return nil, where.InFile("vmdk", name, lerr.at, "", err)
		}
		return nil, err
	}
	return openDescriptor(desc, container, name, pol)
}

func (desc *Descriptor) checkParent() error {
	if desc.ParentCID != "" && !strings.EqualFold(desc.ParentCID, "ffffffff") {
		return fmt.Errorf("%w (parentCID %s, parent %q)", ErrDelta, desc.ParentCID, desc.Parent)
	}
	return nil
}

// openDescriptor opens the extents desc lists; name is the descriptor's
// file in located errors: a bad extent line is reported at its byte.
func openDescriptor(desc *Descriptor, container, name string, pol *ref.Policy) (_ *Disk, err error) {
	if err := desc.checkParent(); err != nil {
		return nil, err
	}
	d := &Disk{Descriptor: desc, CreateType: desc.CreateType}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if len(desc.Extents) == 0 {
		return nil, fmt.Errorf("vmdk descriptor (createType %q) lists no extents", desc.CreateType)
	}
	if len(desc.Extents) > 1<<16 {
		return nil, fmt.Errorf("vmdk descriptor lists %d extents", len(desc.Extents))
	}
	for _, e := range desc.Extents {
		p := part{start: d.size, n: e.Sectors * sector}
		switch e.Type {
		case "ZERO":
		case "FLAT", "VMFS":
			f, fsize, path, err := d.openExtent(container, pol, e)
			if err != nil {
				return nil, where.InFile("vmdk", name, e.At, "", err)
			}
			p.path = path
			if e.Offset*sector+p.n > fsize {
				return nil, where.InFile("vmdk", name, e.At, fmt.Sprintf("vmdk descriptor line %d (byte %d): flat extent %q needs %d bytes from byte %d, but the file has %d", e.Line, e.At, e.File, p.n, e.Offset*sector, fsize), nil)
			}
			p.r, p.off = f, e.Offset*sector
		case "SPARSE":
			f, fsize, path, err := d.openExtent(container, pol, e)
			if err != nil {
				return nil, where.InFile("vmdk", name, e.At, "", err)
			}
			// Damage inside the extent is located in the extent file.
			s, err := openSparse(f, fsize, path)
			if err != nil {
				return nil, fmt.Errorf("vmdk extent %q (descriptor line %d): %w", e.File, e.Line, err)
			}
			p.r = s
		default:
			return nil, where.InFile("vmdk", name, e.At, "", fmt.Errorf("%w: extent type %s (descriptor line %d)", ErrUnsupported, e.Type, e.Line))
		}
		if d.size+p.n > 1<<53 {
			return nil, fmt.Errorf("vmdk descriptor: extents add up to more than 2^53 bytes")
		}
		d.parts = append(d.parts, p)
		d.size += p.n
	}
	return d, nil
}

func (d *Disk) openExtent(container string, pol *ref.Policy, e Extent) (*os.File, int64, string, error) {
	if container == "" {
		return nil, 0, "", fmt.Errorf("vmdk descriptor line %d: extent file %q, but no directory to look in", e.Line, e.File)
	}
	f, p, err := pol.Open(container, fmt.Sprintf("vmdk descriptor line %d: extent file", e.Line), e.File)
	if err != nil {
		return nil, 0, "", err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, "", err
	}
	d.closers = append(d.closers, f)
	d.Files = append(d.Files, p)
	return f, fi.Size(), p, nil
}

// Size returns the virtual disk size in bytes.
func (d *Disk) Size() int64 { return d.size }

// ReadAt implements io.ReaderAt over the virtual disk.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	p, clipped, err := readat.Clip(p, off, d.size, "vmdk")
	if err != nil {
		return 0, err
	}
	var eof error
	if clipped {
		eof = io.EOF
	}
	done := 0
	// Find the first part by binary search.
	i, j := 0, len(d.parts)
	for i < j {
		h := (i + j) / 2
		if d.parts[h].start+d.parts[h].n <= off {
			i = h + 1
		} else {
			j = h
		}
	}
	for ; done < len(p) && i < len(d.parts); i++ {
		pt := d.parts[i]
		cur := off + int64(done)
		in := cur - pt.start
		if in < 0 || in >= pt.n {
			continue
		}
		chunk := p[done:]
		if int64(len(chunk)) > pt.n-in {
			chunk = chunk[:pt.n-in]
		}
		if pt.r == nil {
			clear(chunk)
		} else {
			n, err := pt.r.ReadAt(chunk, pt.off+in)
			if err == io.EOF && n == len(chunk) {
				err = nil
			}
			if err == io.EOF {
				// A sparse extent smaller than its descriptor entry:
				// the rest reads as zeros.
				clear(chunk[n:])
				err = nil
			}
			if err != nil {
				return done + n, err
			}
		}
		done += len(chunk)
	}
	return done, eof
}

// Locate says where virtual byte v is stored: in the flat extent file, or
// in a sparse extent as its grain table places it (Sparse.Locate). ok is
// false for a ZERO extent or a byte no file holds as such.
func (d *Disk) Locate(v int64) (path string, off int64, ok bool) {
	if v < 0 || v >= d.size {
		return "", 0, false
	}
	i := sort.Search(len(d.parts), func(i int) bool { return d.parts[i].start+d.parts[i].n > v })
	if i == len(d.parts) || v < d.parts[i].start {
		return "", 0, false
	}
	pt := d.parts[i]
	switch r := pt.r.(type) {
	case *Sparse:
		return r.Locate(pt.off + v - pt.start)
	case nil:
		return "", 0, false
	}
	if pt.path == "" {
		return "", 0, false
	}
	return pt.path, pt.off + v - pt.start, true
}

// Close closes the extent files.
func (d *Disk) Close() error {
	var first error
	for _, c := range d.closers {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	d.closers = nil
	return first
}
