// Package vhd reads Microsoft Virtual Hard Disk (VHD, "Virtual PC") images:
// fixed and dynamic disks, as written by Virtual PC, Hyper-V, XenServer and
// qemu-img (-O vpc).
//
// # Format
//
// Every VHD ends with a 512-byte footer (big-endian) whose cookie is
// "conectix". A fixed disk is the raw disk bytes followed by the footer. A
// dynamic disk starts with a copy of the footer, then a 1024-byte dynamic
// disk header (cookie "cxsparse") pointing at the Block Allocation Table
// (BAT): one big-endian uint32 per block, the sector at which the block is
// stored, or 0xFFFFFFFF when the block was never written (it reads as
// zeros). A stored block is a sector bitmap (one bit per sector, padded to a
// whole sector) followed by the block's data. Differencing disks (type 4)
// read unwritten sectors from a parent image; they are not supported.
//
// # Size
//
// The footer holds both a CHS geometry and a "current size". Which one is
// the disk size depends on the program that made the image; this package
// follows qemu's rule (block/vpc.c), so that it reads exactly the bytes
// `qemu-img convert -f vpc -O raw` writes: images whose creator application
// is "win " (Hyper-V), "qem2" (qemu with force_size), "d2v " (Disk2vhd),
// "CTXS" (XenConverter) or "tap\0" (XenServer) use the current size; all
// others (Virtual PC's "vpc ", qemu's default "qemu") use cylinders × heads
// × sectors per track, except that the maximum geometry 65535/16/255 means
// "too big for CHS" and the current size is used.
//
// Like qemu, reads of a dynamic disk ignore the sector bitmaps: a block that
// is present is read whole.
package vhd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/imgtool/imgtool/internal/readat"
	"io"
	"strings"
	"unicode/utf16"

	"github.com/imgtool/imgtool/internal/where"
)

var be = binary.BigEndian

// Footer and dynamic-header constants (VHD specification 1.0, 2006).
const (
	FooterSize       = 512
	DynHeaderSize    = 1024
	FooterCookie     = "conectix"
	DynHeaderCookie  = "cxsparse"
	unallocatedBlock = 0xFFFFFFFF
	sectorSize       = 512

	// Disk types (footer offset 60).
	TypeFixed        = 2
	TypeDynamic      = 3
	TypeDifferencing = 4

	// maxGeometrySectors is CHS 65535/16/255: the geometry tools write when
	// the disk is too large to describe by CHS.
	maxGeometrySectors = 65535 * 16 * 255
	// maxDiskSize: the VHD format limit (2040 GiB) qemu enforces.
	maxDiskSize = 2040 << 30
)

// Footer is the 512-byte structure at the end of every VHD (and, for
// dynamic disks, also at offset 0). Fields are big-endian on disk.
type Footer struct {
	Cookie           [8]byte // 0: "conectix"
	Features         uint32  // 8: 2 = reserved bit always set
	Version          uint32  // 12: 0x00010000
	DataOffset       uint64  // 16: dynamic header offset, all-ones for fixed disks
	Timestamp        uint32  // 24: seconds since 2000-01-01 UTC
	CreatorApp       [4]byte // 28: "vpc ", "qemu", "win ", ...
	CreatorVersion   uint32  // 32
	CreatorOS        [4]byte // 36: "Wi2k", "Mac "
	OriginalSize     uint64  // 40: bytes
	CurrentSize      uint64  // 48: bytes
	Cylinders        uint16  // 56
	Heads            uint8   // 58
	SectorsPerTrack  uint8   // 59
	DiskType         uint32  // 60: 2 fixed, 3 dynamic, 4 differencing
	Checksum         uint32  // 64: one's complement of the byte sum, this field as 0
	UniqueID         [16]byte
	SavedState       uint8
	ChecksumOK       bool  `json:"-"` // computed, not on disk
	FooterFileOffset int64 `json:"-"` // where it was found
}

func parseFooter(b []byte, at int64) (*Footer, error) {
	if len(b) < FooterSize {
		return nil, fmt.Errorf("vhd footer at byte %d: short (%d bytes)", at, len(b))
	}
	if string(b[:8]) != FooterCookie {
		return nil, fmt.Errorf("vhd footer at byte %d: cookie %q, want %q", at, b[:8], FooterCookie)
	}
	f := &Footer{FooterFileOffset: at}
	copy(f.Cookie[:], b[0:8])
	f.Features = be.Uint32(b[8:])
	f.Version = be.Uint32(b[12:])
	f.DataOffset = be.Uint64(b[16:])
	f.Timestamp = be.Uint32(b[24:])
	copy(f.CreatorApp[:], b[28:32])
	f.CreatorVersion = be.Uint32(b[32:])
	copy(f.CreatorOS[:], b[36:40])
	f.OriginalSize = be.Uint64(b[40:])
	f.CurrentSize = be.Uint64(b[48:])
	f.Cylinders = be.Uint16(b[56:])
	f.Heads = b[58]
	f.SectorsPerTrack = b[59]
	f.DiskType = be.Uint32(b[60:])
	f.Checksum = be.Uint32(b[64:])
	copy(f.UniqueID[:], b[68:84])
	f.SavedState = b[84]
	f.ChecksumOK = checksum(b[:FooterSize], 64) == f.Checksum
	return f, nil
}

// checksum is the VHD checksum: the one's complement of the sum of all
// bytes, with the 4-byte checksum field at csumOff counted as zero.
func checksum(b []byte, csumOff int) uint32 {
	var s uint32
	for i, c := range b {
		if i >= csumOff && i < csumOff+4 {
			continue
		}
		s += uint32(c)
	}
	return ^s
}

// VirtualSize is the disk size by qemu's rule (see the package doc).
func (f *Footer) VirtualSize() int64 {
	chs := int64(f.Cylinders) * int64(f.Heads) * int64(f.SectorsPerTrack)
	switch string(f.CreatorApp[:]) {
	case "win ", "qem2", "d2v ", "CTXS", "tap\x00":
		return int64(f.CurrentSize / sectorSize * sectorSize)
	}
	if chs == maxGeometrySectors {
		return int64(f.CurrentSize / sectorSize * sectorSize)
	}
	return chs * sectorSize
}

// DynHeader is the dynamic disk header (big-endian on disk).
type DynHeader struct {
	Cookie          [8]byte // 0: "cxsparse"
	DataOffset      uint64  // 8: unused, all-ones
	TableOffset     uint64  // 16: byte offset of the BAT
	HeaderVersion   uint32  // 24: 0x00010000
	MaxTableEntries uint32  // 28: BAT entries
	BlockSize       uint32  // 32: bytes per block (2 MiB by default)
	Checksum        uint32  // 36
	ParentUUID      [16]byte
	ParentTimestamp uint32
	ParentName      string // 64: UTF-16BE, 512 bytes
}

func parseDynHeader(b []byte, at int64) (*DynHeader, error) {
	if string(b[:8]) != DynHeaderCookie {
		return nil, fmt.Errorf("vhd dynamic header at byte %d: cookie %q, want %q", at, b[:8], DynHeaderCookie)
	}
	h := &DynHeader{}
	copy(h.Cookie[:], b[:8])
	h.DataOffset = be.Uint64(b[8:])
	h.TableOffset = be.Uint64(b[16:])
	h.HeaderVersion = be.Uint32(b[24:])
	h.MaxTableEntries = be.Uint32(b[28:])
	h.BlockSize = be.Uint32(b[32:])
	h.Checksum = be.Uint32(b[36:])
	copy(h.ParentUUID[:], b[40:56])
	h.ParentTimestamp = be.Uint32(b[56:])
	u := make([]uint16, 0, 256)
	for i := 64; i < 576; i += 2 {
		c := be.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	h.ParentName = string(utf16.Decode(u))
	return h, nil
}

// Errors; test with errors.Is.
var (
	ErrNotVHD          = errors.New("not a VHD image (no \"conectix\" footer)")
	ErrDifferencing    = errors.New("VHD differencing disks are not supported")
	ErrUnsupportedType = errors.New("unsupported VHD disk type")
)

// Disk is an opened VHD: an io.ReaderAt over the virtual disk.
type Disk struct {
	Footer *Footer
	Dyn    *DynHeader // nil for fixed disks
	// Notes are oddities found while opening (bad checksums, footer only
	// at the start), for display.
	Notes []string
	// Path names the file in errors (located ones: a bad BAT entry is
	// reported at its byte in the file); "" reads as "(vhd file)".
	Path string

	r    io.ReaderAt
	size int64 // virtual size
	bat  []uint32
	bmp  int64 // bitmap bytes in front of each block's data
}

// Probe reports whether r (of size bytes) looks like a VHD: a footer cookie
// at the end or, for dynamic disks, at the start.
func Probe(r io.ReaderAt, size int64) bool {
	var b [8]byte
	if size >= FooterSize {
		if _, err := r.ReadAt(b[:], size-FooterSize); err == nil && string(b[:]) == FooterCookie {
			return footerValid(r, size-FooterSize)
		}
	}
	if size >= FooterSize+DynHeaderSize {
		if _, err := r.ReadAt(b[:], 0); err == nil && string(b[:]) == FooterCookie {
			return footerValid(r, 0)
		}
	}
	return false
}

// footerValid: a raw disk may by chance end in "conectix"; require a good
// checksum and a known disk type as well.
func footerValid(r io.ReaderAt, off int64) bool {
	b := make([]byte, FooterSize)
	if _, err := r.ReadAt(b, off); err != nil {
		return false
	}
	f, err := parseFooter(b, off)
	if err != nil {
		return false
	}
	return f.ChecksumOK && f.DiskType >= TypeFixed && f.DiskType <= TypeDifferencing
}

// Type names the disk type: "fixed", "dynamic" or "differencing".
func (d *Disk) Type() string { return typeName(d.Footer.DiskType) }

func typeName(t uint32) string {
	switch t {
	case TypeFixed:
		return "fixed"
	case TypeDynamic:
		return "dynamic"
	case TypeDifferencing:
		return "differencing"
	}
	return fmt.Sprintf("type-%d", t)
}

// Open reads the footer (and for dynamic disks the header and BAT) of the
// VHD r of size bytes.
func Open(r io.ReaderAt, size int64) (*Disk, error) { return OpenNamed(r, size, "") }

// errAt is a located error: the structure at byte off of the file.
func (d *Disk) errAt(off int64, cause error, format string, a ...any) error {
	path := d.Path
	if path == "" {
		path = "(vhd file)"
	}
	return where.InFile("vhd", path, off, fmt.Sprintf(format, a...), cause)
}

// OpenNamed is Open naming the file r reads path in located errors (it
// sets Disk.Path): a footer or dynamic header field out of range is
// reported at its byte in the file.
func OpenNamed(r io.ReaderAt, size int64, path string) (*Disk, error) {
	d := &Disk{r: r, Path: path}
	b := make([]byte, FooterSize)
	var f *Footer
	var endErr error
	if size >= FooterSize {
		if _, err := r.ReadAt(b, size-FooterSize); err != nil {
			return nil, fmt.Errorf("vhd: reading footer at byte %d: %w", size-FooterSize, err)
		}
		f, endErr = parseFooter(b, size-FooterSize)
	}
	if f == nil {
		// A dynamic disk keeps a copy of the footer at offset 0; use it
		// when the end of the file is damaged or truncated.
		if size < FooterSize {
			return nil, ErrNotVHD
		}
		if _, err := r.ReadAt(b, 0); err != nil {
			return nil, fmt.Errorf("vhd: reading footer copy at byte 0: %w", err)
		}
		var err error
		if f, err = parseFooter(b, 0); err != nil {
			if endErr != nil {
				return nil, fmt.Errorf("%w: %v", ErrNotVHD, endErr)
			}
			return nil, fmt.Errorf("%w: %v", ErrNotVHD, err)
		}
		d.Notes = append(d.Notes, fmt.Sprintf("no footer at the end (byte %d); using the copy at byte 0", size-FooterSize))
	}
	if !f.ChecksumOK {
		d.Notes = append(d.Notes, fmt.Sprintf("footer at byte %d: checksum %#08x does not match the contents", f.FooterFileOffset, f.Checksum))
	}
	d.Footer = f
	d.size = f.VirtualSize()
	if d.size < 0 || d.size > maxDiskSize {
		return nil, d.errAt(f.FooterFileOffset+48, nil, "vhd footer at byte %d: disk size %d outside 0..%d", f.FooterFileOffset, d.size, int64(maxDiskSize))
	}
	switch f.DiskType {
	case TypeFixed:
		// Data is the file up to the footer. A file shorter than the disk
		// is truncated: say so rather than invent zeros.
		if avail := size - FooterSize; d.size > avail {
			return nil, d.errAt(f.FooterFileOffset+48, nil, "vhd: fixed disk of %d bytes, but only %d bytes precede the footer at byte %d (file truncated?)", d.size, avail, f.FooterFileOffset)
		}
		return d, nil
	case TypeDynamic:
		return d, d.openDynamic(size)
	case TypeDifferencing:
		d2 := *d
		if err := d2.openDynamic(size); err == nil {
			return nil, fmt.Errorf("%w (parent %q)", ErrDifferencing, d2.Dyn.ParentName)
		}
		return nil, ErrDifferencing
	}
	return nil, d.errAt(f.FooterFileOffset+60, fmt.Errorf("%w %d in footer at byte %d", ErrUnsupportedType, f.DiskType, f.FooterFileOffset), "")
}

func (d *Disk) openDynamic(size int64) error {
	f := d.Footer
	if f.DataOffset > uint64(size) || int64(f.DataOffset)+DynHeaderSize > size {
		return d.errAt(f.FooterFileOffset+16, nil, "vhd footer at byte %d: dynamic header offset %d is outside the %d-byte file", f.FooterFileOffset, f.DataOffset, size)
	}
	hoff := int64(f.DataOffset)
	b := make([]byte, DynHeaderSize)
	if _, err := d.r.ReadAt(b, hoff); err != nil {
		return fmt.Errorf("vhd: reading dynamic header at byte %d: %w", hoff, err)
	}
	h, err := parseDynHeader(b, hoff)
	if err != nil {
		return d.errAt(hoff, err, "")
	}
	d.Dyn = h
	if checksum(b, 36) != h.Checksum {
		d.Notes = append(d.Notes, fmt.Sprintf("dynamic header at byte %d: checksum %#08x does not match the contents", hoff, h.Checksum))
	}
	bs := int64(h.BlockSize)
	if bs < sectorSize || bs&(bs-1) != 0 || bs > 1<<30 {
		return d.errAt(hoff+32, nil, "vhd dynamic header at byte %d: block size %d is not a power of two between 512 and 1 GiB", hoff+32, bs)
	}
	n := int64(h.MaxTableEntries)
	if h.TableOffset > uint64(size) || int64(h.TableOffset)+4*n > size {
		return d.errAt(hoff+16, nil, "vhd dynamic header at byte %d: BAT of %d entries at byte %d does not fit in the %d-byte file", hoff, n, h.TableOffset, size)
	}
	if n*bs < d.size {
		return d.errAt(hoff+28, nil, "vhd dynamic header at byte %d: BAT covers %d bytes (%d blocks of %d), less than the disk size %d", hoff, n*bs, n, bs, d.size)
	}
	raw := make([]byte, 4*n)
	if _, err := d.r.ReadAt(raw, int64(h.TableOffset)); err != nil {
		return fmt.Errorf("vhd: reading BAT at byte %d: %w", h.TableOffset, err)
	}
	d.bat = make([]uint32, n)
	for i := range d.bat {
		d.bat[i] = be.Uint32(raw[4*i:])
	}
	// One bit per sector, rounded up to whole sectors.
	bits := bs / sectorSize
	d.bmp = (bits/8 + sectorSize - 1) / sectorSize * sectorSize
	if d.bmp == 0 {
		d.bmp = sectorSize
	}
	return nil
}

// Size returns the virtual disk size in bytes.
func (d *Disk) Size() int64 { return d.size }

// BlockSize returns the dynamic disk block size (0 for fixed disks).
func (d *Disk) BlockSize() int64 {
	if d.Dyn == nil {
		return 0
	}
	return int64(d.Dyn.BlockSize)
}

// Allocated returns the number of blocks present in a dynamic disk.
func (d *Disk) Allocated() int {
	n := 0
	for _, e := range d.bat {
		if e != unallocatedBlock {
			n++
		}
	}
	return n
}

// ReadAt implements io.ReaderAt over the virtual disk.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	p, clipped, err := readat.Clip(p, off, d.size, "vhd")
	if err != nil {
		return 0, err
	}
	var eof error
	if clipped {
		eof = io.EOF
	}
	if d.Dyn == nil {
		n, err := d.r.ReadAt(p, off)
		if err == io.EOF && n == len(p) {
			err = nil
		}
		if err != nil {
			return n, fmt.Errorf("vhd: reading fixed disk at byte %d: %w", off+int64(n), err)
		}
		return n, eof
	}
	bs := int64(d.Dyn.BlockSize)
	done := 0
	for done < len(p) {
		cur := off + int64(done)
		blk := cur / bs
		in := cur % bs
		chunk := p[done:]
		if int64(len(chunk)) > bs-in {
			chunk = chunk[:bs-in]
		}
		if blk >= int64(len(d.bat)) || d.bat[blk] == unallocatedBlock {
			clear(chunk)
		} else {
			at := int64(d.bat[blk])*sectorSize + d.bmp + in
			n, err := d.r.ReadAt(chunk, at)
			if err == io.EOF && n == len(chunk) {
				err = nil
			}
			if errors.Is(err, io.EOF) {
				// The file ends inside the block: not the end of the
				// disk, which callers would take io.EOF for.
				err = io.ErrUnexpectedEOF
			}
			if err != nil {
				path := d.Path
				if path == "" {
					path = "(vhd file)"
				}
				return done + n, where.InFile("vhd", path, int64(d.Dyn.TableOffset)+4*blk,
					fmt.Sprintf("vhd: block %d (BAT entry %d, sector %d): reading %d bytes at byte %d", blk, blk, d.bat[blk], len(chunk), at), err)
			}
		}
		done += len(chunk)
	}
	return done, eof
}

// Locate says where virtual byte v is stored: at byte v of a fixed disk's
// file, or in a dynamic disk's block as its BAT entry places it (the data
// after the block's sector bitmap). ok is false for an unallocated block
// (zeros) or an unnamed file.
func (d *Disk) Locate(v int64) (path string, off int64, ok bool) {
	if v < 0 || v >= d.size || d.Path == "" {
		return "", 0, false
	}
	if d.Dyn == nil {
		return d.Path, v, true
	}
	bs := int64(d.Dyn.BlockSize)
	blk := v / bs
	if blk >= int64(len(d.bat)) || d.bat[blk] == unallocatedBlock {
		return "", 0, false
	}
	return d.Path, int64(d.bat[blk])*sectorSize + d.bmp + v%bs, true
}

// String describes the disk for notes: type, size, creator.
func (d *Disk) String() string {
	s := fmt.Sprintf("VHD %s, %d bytes, creator %q", d.Type(), d.size, strings.TrimRight(string(d.Footer.CreatorApp[:]), "\x00 "))
	if d.Dyn != nil {
		s += fmt.Sprintf(", %d of %d blocks of %d KiB allocated", d.Allocated(), len(d.bat), d.Dyn.BlockSize>>10)
	}
	return s
}
