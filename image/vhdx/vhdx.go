// Package vhdx reads Hyper-V VHDX images (Microsoft [MS-VHDX] v1.0):
// dynamic and fixed disks. Differencing disks are refused, as are images
// whose log still has to be replayed.
//
// # Format
//
// All fields are little-endian; GUIDs use Microsoft's mixed-endian layout.
//
//	0       file type identifier: "vhdxfile", creator (UTF-16)
//	64 KiB  header 1 ┐ "head", CRC-32C, sequence number, ..., log GUID;
//	128 KiB header 2 ┘ the valid one with the higher sequence number wins
//	192 KiB region table 1 ┐ "regi", CRC-32C, entries: GUID, file offset,
//	256 KiB region table 2 ┘ length — locate the BAT and metadata regions
//
// The metadata region ("metadata" table) holds items by GUID: file
// parameters (block size, has-parent), virtual disk size, logical sector
// size. The BAT is an array of uint64 entries: bits 0-2 the state, bits
// 20-63 the file offset in MiB. Payload block b's entry is at index
// b + b/chunkRatio, because after every chunkRatio payload entries comes
// one sector-bitmap entry (chunkRatio = 2^23 × logical sector size / block
// size). A block that is not fully present (not present, undefined, zero,
// unmapped) reads as zeros, as in qemu's block/vhdx.c.
package vhdx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/imgtool/imgtool/internal/readat"
	"github.com/imgtool/imgtool/internal/where"
)

var (
	le         = binary.LittleEndian
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// Layout constants.
const (
	Signature      = "vhdxfile"
	header1Off     = 64 << 10
	header2Off     = 128 << 10
	headerSize     = 4 << 10
	region1Off     = 192 << 10
	region2Off     = 256 << 10
	regionSize     = 64 << 10
	maxRegions     = 2047
	metaTableSize  = 64 << 10
	maxMetaEntries = 2047
	mib            = 1 << 20

	// BAT entry states.
	BlockNotPresent       = 0
	BlockUndefined        = 1
	BlockZero             = 2
	BlockUnmapped         = 3
	BlockFullyPresent     = 6
	BlockPartiallyPresent = 7

	maxDiskSize = 64 << 40 // the format's limit: 64 TiB
)

// GUIDs as they appear on disk (mixed-endian) of the regions and metadata
// items this package needs.
var (
	guidBAT          = mustGUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
	guidMetadata     = mustGUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
	guidFileParams   = mustGUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
	guidVirtualSize  = mustGUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
	guidLogicalSect  = mustGUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
	guidPhysicalSect = mustGUID("CDA348C7-445D-4471-9CC9-E9885251C556")
)

// mustGUID turns the text form into the on-disk bytes: the first three
// groups little-endian, the last two as written.
func mustGUID(s string) [16]byte {
	var hex []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '-' {
			hex = append(hex, s[i])
		}
	}
	var raw [16]byte
	for i := 0; i < 16; i++ {
		var v byte
		for _, c := range hex[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= c - '0'
			case c >= 'A' && c <= 'F':
				v |= c - 'A' + 10
			}
		}
		raw[i] = v
	}
	var g [16]byte
	g[0], g[1], g[2], g[3] = raw[3], raw[2], raw[1], raw[0]
	g[4], g[5] = raw[5], raw[4]
	g[6], g[7] = raw[7], raw[6]
	copy(g[8:], raw[8:])
	return g
}

// Errors; test with errors.Is.
var (
	ErrNotVHDX      = errors.New("not a VHDX image (no \"vhdxfile\" signature)")
	ErrDifferencing = errors.New("VHDX differencing disks are not supported")
	ErrLogReplay    = errors.New("VHDX log must be replayed before the image can be read (open it once read-write with Hyper-V or qemu)")
)

// Header is the chosen VHDX header.
type Header struct {
	Sequence   uint64
	LogGUID    [16]byte
	LogVersion uint16
	Version    uint16
	LogLength  uint32
	LogOffset  uint64
	At         int64 // byte offset of this header
}

// Disk is an opened VHDX.
type Disk struct {
	Header            Header
	BlockSize         uint32
	LogicalSectorSize uint32
	PhysicalSector    uint32
	Fixed             bool // LeaveBlocksAllocated: made as a fixed disk
	Notes             []string

	// Path names the file in located errors (internal/where: a bad BAT
	// entry, region table entry or header is reported at its byte in the
	// file); OpenNamed sets it, "" reads as "(vhdx file)".
	Path string

	r        io.ReaderAt
	fileSize int64
	size     int64
	chunk    int64 // chunk ratio
	bat      []uint64
	batOff   int64 // byte offset of the BAT in the file
}

// errAt is a located error: the structure at byte off of the file.
func (d *Disk) errAt(off int64, cause error, format string, a ...any) error {
	path := d.Path
	if path == "" {
		path = "(vhdx file)"
	}
	return where.InFile("vhdx", path, off, fmt.Sprintf(format, a...), cause)
}

// Probe reports whether b (the start of a file) is a VHDX.
func Probe(b []byte) bool { return bytes.HasPrefix(b, []byte(Signature)) }

// Open opens the VHDX r of fileSize bytes.
func Open(r io.ReaderAt, fileSize int64) (*Disk, error) { return OpenNamed(r, fileSize, "") }

// OpenNamed is Open naming the file r reads path in located errors (it
// sets Disk.Path).
func OpenNamed(r io.ReaderAt, fileSize int64, path string) (*Disk, error) {
	var sig [8]byte
	if fileSize < region2Off+regionSize {
		return nil, fmt.Errorf("%w: file of %d bytes is shorter than the VHDX header section", ErrNotVHDX, fileSize)
	}
	if _, err := r.ReadAt(sig[:], 0); err != nil || string(sig[:]) != Signature {
		return nil, ErrNotVHDX
	}
	d := &Disk{r: r, fileSize: fileSize, Path: path}
	if err := d.readHeaders(); err != nil {
		return nil, err
	}
	if d.Header.LogGUID != ([16]byte{}) {
		return nil, d.errAt(d.Header.At+48, fmt.Errorf("%w (header at byte %d has log GUID %x)", ErrLogReplay, d.Header.At, d.Header.LogGUID), "")
	}
	batOff, batLen, metaOff, metaLen, err := d.readRegions()
	if err != nil {
		return nil, err
	}
	if err := d.readMetadata(metaOff, metaLen); err != nil {
		return nil, err
	}
	if err := d.readBAT(batOff, batLen); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Disk) readHeaders() error {
	var best *Header
	var errs []string
	for _, off := range []int64{header1Off, header2Off} {
		b := make([]byte, headerSize)
		if _, err := d.r.ReadAt(b, off); err != nil {
			errs = append(errs, fmt.Sprintf("byte %d: %v", off, err))
			continue
		}
		if string(b[:4]) != "head" {
			errs = append(errs, fmt.Sprintf("byte %d: signature %q, want \"head\"", off, b[:4]))
			continue
		}
		if !crcOK(b, 4) {
			errs = append(errs, fmt.Sprintf("byte %d: CRC-32C mismatch", off))
			continue
		}
		h := Header{
			Sequence:   le.Uint64(b[8:]),
			LogVersion: le.Uint16(b[64:]),
			Version:    le.Uint16(b[66:]),
			LogLength:  le.Uint32(b[68:]),
			LogOffset:  le.Uint64(b[72:]),
			At:         off,
		}
		copy(h.LogGUID[:], b[48:64])
		if h.Version != 1 {
			errs = append(errs, fmt.Sprintf("byte %d: version %d, want 1", off, h.Version))
			continue
		}
		if best == nil || h.Sequence > best.Sequence {
			hc := h
			best = &hc
		}
	}
	if best == nil {
		return d.errAt(header1Off, nil, "vhdx: no valid header (%s)", join(errs))
	}
	if len(errs) > 0 {
		d.Notes = append(d.Notes, "one VHDX header is damaged: "+join(errs))
	}
	d.Header = *best
	return nil
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += "; "
		}
		out += x
	}
	return out
}

// crcOK checks a CRC-32C stored at b[at:at+4], computed with that field
// zeroed.
func crcOK(b []byte, at int) bool {
	want := le.Uint32(b[at:])
	c := make([]byte, len(b))
	copy(c, b)
	clear(c[at : at+4])
	return crc32.Checksum(c, castagnoli) == want
}

func (d *Disk) readRegions() (batOff, batLen, metaOff, metaLen int64, err error) {
	var errs []string
	for _, off := range []int64{region1Off, region2Off} {
		b := make([]byte, regionSize)
		if _, err := d.r.ReadAt(b, off); err != nil {
			errs = append(errs, fmt.Sprintf("byte %d: %v", off, err))
			continue
		}
		if string(b[:4]) != "regi" {
			errs = append(errs, fmt.Sprintf("byte %d: signature %q, want \"regi\"", off, b[:4]))
			continue
		}
		if !crcOK(b, 4) {
			errs = append(errs, fmt.Sprintf("byte %d: CRC-32C mismatch", off))
			continue
		}
		n := le.Uint32(b[8:])
		if n > maxRegions {
			errs = append(errs, fmt.Sprintf("byte %d: %d entries (at most %d)", off, n, maxRegions))
			continue
		}
		batOff, batLen, metaOff, metaLen = -1, 0, -1, 0
		var batEnt, metaEnt int64
		for i := 0; i < int(n); i++ {
			e := b[16+32*i:]
			var g [16]byte
			copy(g[:], e[:16])
			fo, ln, req := int64(le.Uint64(e[16:])), int64(le.Uint32(e[24:])), le.Uint32(e[28:])&1 != 0
			switch g {
			case guidBAT:
				batOff, batLen, batEnt = fo, ln, off+16+32*int64(i)
			case guidMetadata:
				metaOff, metaLen, metaEnt = fo, ln, off+16+32*int64(i)
			default:
				if req {
					return 0, 0, 0, 0, d.errAt(off+16+32*int64(i), nil, "vhdx region table at byte %d: entry %d at byte %d: unknown required region %x", off, i, off+16+32*int64(i), g)
				}
			}
		}
		if batOff < 0 || metaOff < 0 {
			errs = append(errs, fmt.Sprintf("byte %d: no BAT or metadata region", off))
			continue
		}
		for _, reg := range [][3]int64{{batOff, batLen, batEnt}, {metaOff, metaLen, metaEnt}} {
			if reg[0] < 0 || reg[1] <= 0 || reg[0] > d.fileSize || reg[0]+reg[1] > d.fileSize {
				return 0, 0, 0, 0, d.errAt(reg[2], nil, "vhdx region table at byte %d: entry at byte %d: region at byte %d (%d bytes) outside the %d-byte file", off, reg[2], reg[0], reg[1], d.fileSize)
			}
		}
		return batOff, batLen, metaOff, metaLen, nil
	}
	return 0, 0, 0, 0, d.errAt(region1Off, nil, "vhdx: no valid region table (%s)", join(errs))
}

func (d *Disk) readMetadata(off, n int64) error {
	if n < metaTableSize {
		return d.errAt(off, nil, "vhdx metadata region at byte %d: %d bytes, shorter than its table", off, n)
	}
	b := make([]byte, metaTableSize)
	if _, err := d.r.ReadAt(b, off); err != nil {
		return fmt.Errorf("vhdx: reading metadata table at byte %d: %w", off, err)
	}
	if string(b[:8]) != "metadata" {
		return d.errAt(off, nil, "vhdx metadata table at byte %d: signature %q", off, b[:8])
	}
	count := int(le.Uint16(b[10:]))
	if count > maxMetaEntries {
		return d.errAt(off+10, nil, "vhdx metadata table at byte %d: %d entries", off, count)
	}
	// at records the byte of each item read, to locate a bad value.
	at := map[[16]byte]int64{}
	item := func(g [16]byte, size int) ([]byte, error) {
		for i := 0; i < count; i++ {
			e := b[32+32*i:]
			if !bytes.Equal(e[:16], g[:]) {
				continue
			}
			ioff, ln := int64(le.Uint32(e[16:])), int64(le.Uint32(e[20:]))
			if ln < int64(size) || ioff+ln > n {
				return nil, d.errAt(off+32+32*int64(i), nil, "vhdx metadata item %x at byte %d: offset %d length %d outside the region", g, off+32+32*int64(i), ioff, ln)
			}
			v := make([]byte, size)
			if _, err := d.r.ReadAt(v, off+ioff); err != nil {
				return nil, d.errAt(off+ioff, err, "vhdx metadata item %x at byte %d", g, off+ioff)
			}
			at[g] = off + ioff
			return v, nil
		}
		return nil, nil
	}
	fp, err := item(guidFileParams, 8)
	if err != nil {
		return err
	}
	vs, err := item(guidVirtualSize, 8)
	if err != nil {
		return err
	}
	ls, err := item(guidLogicalSect, 4)
	if err != nil {
		return err
	}
	ps, err := item(guidPhysicalSect, 4)
	if err != nil {
		return err
	}
	if fp == nil || vs == nil || ls == nil {
		return d.errAt(off, nil, "vhdx metadata at byte %d: missing file parameters, virtual disk size or logical sector size", off)
	}
	d.BlockSize = le.Uint32(fp)
	flags := le.Uint32(fp[4:])
	d.Fixed = flags&1 != 0
	if flags&2 != 0 {
		return ErrDifferencing
	}
	d.size = int64(le.Uint64(vs))
	d.LogicalSectorSize = le.Uint32(ls)
	if ps != nil {
		d.PhysicalSector = le.Uint32(ps)
	}
	bs := int64(d.BlockSize)
	if bs < mib || bs > 256*mib || bs&(bs-1) != 0 {
		return d.errAt(at[guidFileParams], nil, "vhdx file parameters at byte %d: block size %d is not a power of two between 1 and 256 MiB", at[guidFileParams], bs)
	}
	if d.LogicalSectorSize != 512 && d.LogicalSectorSize != 4096 {
		return d.errAt(at[guidLogicalSect], nil, "vhdx logical sector size at byte %d: %d (want 512 or 4096)", at[guidLogicalSect], d.LogicalSectorSize)
	}
	if d.size <= 0 || d.size > maxDiskSize || d.size%int64(d.LogicalSectorSize) != 0 {
		return d.errAt(at[guidVirtualSize], nil, "vhdx virtual disk size at byte %d: %d outside 1..64 TiB or not a multiple of the sector size", at[guidVirtualSize], d.size)
	}
	d.chunk = (int64(1) << 23) * int64(d.LogicalSectorSize) / bs
	return nil
}

func (d *Disk) readBAT(off, n int64) error {
	bs := int64(d.BlockSize)
	blocks := (d.size + bs - 1) / bs
	entries := blocks + (blocks-1)/d.chunk
	if entries*8 > n {
		return d.errAt(off, nil, "vhdx BAT region at byte %d: %d bytes, need %d entries", off, n, entries)
	}
	raw := make([]byte, entries*8)
	if _, err := d.r.ReadAt(raw, off); err != nil {
		return d.errAt(off, err, "vhdx: reading BAT at byte %d", off)
	}
	d.batOff = off
	d.bat = make([]uint64, entries)
	for i := range d.bat {
		d.bat[i] = le.Uint64(raw[8*i:])
	}
	return nil
}

// Size returns the virtual disk size.
func (d *Disk) Size() int64 { return d.size }

// Type is "fixed" or "dynamic".
func (d *Disk) Type() string {
	if d.Fixed {
		return "fixed"
	}
	return "dynamic"
}

// Locate says where virtual byte v is stored: in its payload block, at the
// file offset its BAT entry gives ([MS-VHDX] 2.5: bits 20-63, in MiB), when
// the block is fully present inside the file. ok is false otherwise (zero,
// unmapped or partially present blocks, an unnamed file).
func (d *Disk) Locate(v int64) (path string, off int64, ok bool) {
	if v < 0 || v >= d.size || d.Path == "" {
		return "", 0, false
	}
	bs := int64(d.BlockSize)
	blk := v / bs
	idx := blk + blk/d.chunk
	if idx >= int64(len(d.bat)) {
		return "", 0, false
	}
	e := d.bat[idx]
	if e&7 != BlockFullyPresent || e>>20 > uint64(d.fileSize)/mib {
		return "", 0, false
	}
	if off = int64(e>>20)*mib + v%bs; off >= d.fileSize {
		return "", 0, false
	}
	return d.Path, off, true
}

// ReadAt implements io.ReaderAt over the virtual disk.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	p, clipped, err := readat.Clip(p, off, d.size, "vhdx")
	if err != nil {
		return 0, err
	}
	var eof error
	if clipped {
		eof = io.EOF
	}
	bs := int64(d.BlockSize)
	done := 0
	for done < len(p) {
		cur := off + int64(done)
		blk := cur / bs
		in := cur % bs
		chunk := p[done:]
		if int64(len(chunk)) > bs-in {
			chunk = chunk[:bs-in]
		}
		idx := blk + blk/d.chunk
		e := d.bat[idx]
		switch e & 7 {
		case BlockFullyPresent:
			ent := d.batOff + 8*idx
			if e>>20 > uint64(d.fileSize)/mib || int64(e>>20)*mib+in+int64(len(chunk)) > d.fileSize {
				return done, d.errAt(ent, nil, "vhdx: block %d: BAT entry %d at byte %d points to byte %d, past the end of the %d-byte file", blk, idx, ent, int64(e>>20)*mib, d.fileSize)
			}
			at := int64(e>>20)*mib + in
			n, err := d.r.ReadAt(chunk, at)
			if err == io.EOF && n == len(chunk) {
				err = nil
			}
			if err != nil {
				return done + n, d.errAt(ent, err, "vhdx: block %d (BAT entry %d at byte %d): reading at byte %d", blk, idx, ent, at)
			}
		case BlockPartiallyPresent:
			ent := d.batOff + 8*idx
			return done, d.errAt(ent, nil, "vhdx: block %d (BAT entry %d at byte %d) is partially present, which only differencing disks use", blk, idx, ent)
		default:
			clear(chunk)
		}
		done += len(chunk)
	}
	return done, eof
}
