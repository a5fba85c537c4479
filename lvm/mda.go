package lvm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/imgtool/imgtool/internal/where"
)

// A metadata area (lib/format_text/layout.h) starts with a 512-byte header:
//
//	offset size
//	0      4    checksum_xl  LVM CRC of bytes 4..511
//	4      16   magic        " LVM2 x[5A%r0N*>"
//	20     4    version      1
//	24     8    start        absolute byte offset of this area on the PV
//	32     8    size         bytes in the area, header included
//	40     24*n raw_locn     {offset u64, size u64, checksum u32, flags u32},
//	                         ended by an entry with offset 0
//
// The rest of the area is a circular buffer of metadata text. raw_locn slot
// 0 points at the committed copy (offset relative to the area start), slot 1
// at a precommitted copy while a command runs. A copy that runs past the end
// of the area continues right after the 512-byte header. New copies are
// written after the current one, rounded up to 512 bytes, so at least two
// copies are in the ring.
const (
	mdaHeaderSize  = 512
	fmttMagic      = " LVM2 x[5A%r0N*>"
	fmttVersion    = 1
	rawLocnSize    = 24
	rawLocnOffset  = 40
	mdaAlignment   = 512 // MDA_ORIGINAL_ALIGNMENT
	maxRingRead    = 256 << 20
	RawLocnIgnored = 0x1 // RAW_LOCN_IGNORED: this mda is not used
)

// RawLocn mirrors struct raw_locn.
type RawLocn struct {
	Offset   uint64 `json:"offset"`
	Size     uint64 `json:"size"`
	Checksum uint32 `json:"checksum"`
	Flags    uint32 `json:"flags"`
}

// MDAHeader mirrors struct mda_header.
type MDAHeader struct {
	Checksum uint32
	Magic    [16]byte
	Version  uint32
	Start    uint64
	Size     uint64
	RawLocns []RawLocn
	// Raw is the 512-byte sector as read (for rewriting).
	Raw []byte
}

// parseMDAHeader decodes and checks the header sector of the area at off.
func parseMDAHeader(buf []byte, off uint64) (*MDAHeader, error) {
	if len(buf) < mdaHeaderSize {
		return nil, located(int64(off), "mda header at byte %d: short sector", off)
	}
	h := &MDAHeader{Raw: append([]byte(nil), buf[:mdaHeaderSize]...)}
	h.Checksum = binary.LittleEndian.Uint32(buf)
	copy(h.Magic[:], buf[4:20])
	h.Version = binary.LittleEndian.Uint32(buf[20:])
	h.Start = binary.LittleEndian.Uint64(buf[24:])
	h.Size = binary.LittleEndian.Uint64(buf[32:])
	if string(h.Magic[:]) != fmttMagic {
		return nil, located(int64(off), "mda header at byte %d: wrong magic %q", off, h.Magic[:])
	}
	if c := lvmCRC(initialCRC, buf[4:mdaHeaderSize]); c != h.Checksum {
		return nil, located(int64(off), "mda header at byte %d: checksum %#08x, computed %#08x", off, h.Checksum, c)
	}
	if h.Version != fmttVersion {
		return nil, located(int64(off), "mda header at byte %d: unsupported version %d", off, h.Version)
	}
	if h.Start != off {
		return nil, located(int64(off), "mda header at byte %d: says it starts at byte %d", off, h.Start)
	}
	for p := rawLocnOffset; p+rawLocnSize <= mdaHeaderSize; p += rawLocnSize {
		rl := RawLocn{
			Offset:   binary.LittleEndian.Uint64(buf[p:]),
			Size:     binary.LittleEndian.Uint64(buf[p+8:]),
			Checksum: binary.LittleEndian.Uint32(buf[p+16:]),
			Flags:    binary.LittleEndian.Uint32(buf[p+20:]),
		}
		if rl.Offset == 0 {
			// Slot 0 may be empty but still carry the ignored flag.
			if len(h.RawLocns) == 0 && rl.Flags != 0 {
				h.RawLocns = append(h.RawLocns, rl)
			}
			break
		}
		h.RawLocns = append(h.RawLocns, rl)
	}
	return h, nil
}

// marshal encodes h into a 512-byte sector (starting from h.Raw, so unknown
// bytes are kept), with raw_locn slots 0 and 1 from h.RawLocns and a fresh
// checksum.
func (h *MDAHeader) marshal() []byte {
	buf := make([]byte, mdaHeaderSize)
	copy(buf, h.Raw)
	copy(buf[4:20], fmttMagic)
	binary.LittleEndian.PutUint32(buf[20:], h.Version)
	binary.LittleEndian.PutUint64(buf[24:], h.Start)
	binary.LittleEndian.PutUint64(buf[32:], h.Size)
	for i := 0; i < 2; i++ {
		p := rawLocnOffset + i*rawLocnSize
		var rl RawLocn
		if i < len(h.RawLocns) {
			rl = h.RawLocns[i]
		}
		binary.LittleEndian.PutUint64(buf[p:], rl.Offset)
		binary.LittleEndian.PutUint64(buf[p+8:], rl.Size)
		binary.LittleEndian.PutUint32(buf[p+16:], rl.Checksum)
		binary.LittleEndian.PutUint32(buf[p+20:], rl.Flags)
	}
	binary.LittleEndian.PutUint32(buf, lvmCRC(initialCRC, buf[4:]))
	return buf
}

// ringSpan is where a copy of size bytes at rel offset off lies in an area
// of areaSize bytes: first part [off, off+n1), wrapped part at
// [mdaHeaderSize, mdaHeaderSize+n2).
func ringSpan(off, size, areaSize uint64) (n1, n2 uint64) {
	if off+size > areaSize {
		n2 = off + size - areaSize
	}
	return size - n2, n2
}

// readRing reads size bytes of ring text at relative offset off of the area
// at areaStart of areaSize bytes, following the wrap.
func readRing(r io.ReaderAt, areaStart, areaSize, off, size uint64) ([]byte, error) {
	if off < mdaHeaderSize || off >= areaSize {
		return nil, located(int64(areaStart), "metadata offset %d outside the ring [%d, %d) of the area at byte %d", off, mdaHeaderSize, areaSize, areaStart)
	}
	if size == 0 || size > areaSize-mdaHeaderSize {
		return nil, located(int64(areaStart), "metadata size %d does not fit the ring of %d bytes of the area at byte %d", size, areaSize-mdaHeaderSize, areaStart)
	}
	n1, n2 := ringSpan(off, size, areaSize)
	buf := make([]byte, size)
	if _, err := r.ReadAt(buf[:n1], int64(areaStart+off)); err != nil {
		return nil, where.At("lvm", int64(areaStart+off), fmt.Sprintf("reading metadata at byte %d", areaStart+off), err)
	}
	if n2 > 0 {
		if _, err := r.ReadAt(buf[n1:], int64(areaStart+mdaHeaderSize)); err != nil {
			return nil, where.At("lvm", int64(areaStart+mdaHeaderSize), fmt.Sprintf("reading wrapped metadata at byte %d", areaStart+mdaHeaderSize), err)
		}
	}
	return buf, nil
}

// MetadataCopy is one copy of VG metadata text found in a metadata area.
type MetadataCopy struct {
	// PV is the UUID (dashed) of the PV holding the copy, MDA the index
	// of its metadata area on that PV.
	PV  string `json:"pv_uuid"`
	MDA int    `json:"mda"`
	// Offset is relative to the metadata area start; AbsOffset is the
	// byte offset on the PV.
	Offset    uint64 `json:"offset"`
	AbsOffset uint64 `json:"abs_offset"`
	Size      uint64 `json:"size"`
	Wrapped   bool   `json:"wrapped"`
	// Current is true for the copy raw_locn slot 0 points at; false for
	// older copies recovered by scanning the ring.
	Current bool `json:"current"`
	// Checksum from raw_locn (only for Current copies).
	Checksum uint32 `json:"checksum"`
	Text     []byte `json:"-"`
	// Meta is the parsed text; nil when Err is set.
	Meta *Metadata `json:"-"`
	Err  error     `json:"-"`
}

// MDA is one metadata area of a PV.
type MDA struct {
	Locn   DiskLocn
	Header *MDAHeader
	// Ignored is set when raw_locn slot 0 has RAW_LOCN_IGNORED.
	Ignored bool
	// Copies: the current copy first (if any), then older copies found by
	// scanning the ring when the current one is damaged.
	Copies []*MetadataCopy
	Err    error
}

// readMDA reads the area's header and its current metadata copy; when that
// copy is damaged it scans the ring for older ones.
func readMDA(r io.ReaderAt, size int64, pvUUID string, idx int, locn DiskLocn) *MDA {
	m := &MDA{Locn: locn}
	if locn.Size < 2*mdaHeaderSize || locn.Offset > uint64(size) || locn.Size > uint64(size)-locn.Offset {
		m.Err = located(-1, "metadata area at byte %d of %d bytes lies outside the %d-byte PV", locn.Offset, locn.Size, size)
		return m
	}
	buf := make([]byte, mdaHeaderSize)
	if _, err := r.ReadAt(buf, int64(locn.Offset)); err != nil {
		m.Err = where.At("lvm", int64(locn.Offset), fmt.Sprintf("reading mda header at byte %d", locn.Offset), err)
		return m
	}
	h, err := parseMDAHeader(buf, locn.Offset)
	if err != nil {
		m.Err = err
		return m
	}
	if h.Size != locn.Size {
		m.Err = located(int64(locn.Offset), "mda header at byte %d: size %d differs from the PV header's %d", locn.Offset, h.Size, locn.Size)
		return m
	}
	m.Header = h
	if len(h.RawLocns) == 0 {
		return m // empty area: orphan PV or never written
	}
	rl := h.RawLocns[0]
	if rl.Flags&RawLocnIgnored != 0 {
		m.Ignored = true
		return m
	}
	if rl.Offset == 0 && rl.Size == 0 {
		return m
	}
	c := &MetadataCopy{PV: FormatUUID(pvUUID), MDA: idx, Offset: rl.Offset, AbsOffset: locn.Offset + rl.Offset,
		Size: rl.Size, Current: true, Checksum: rl.Checksum}
	_, n2 := ringSpanSafe(rl.Offset, rl.Size, h.Size)
	c.Wrapped = n2 > 0
	c.Text, c.Err = readRing(r, locn.Offset, h.Size, rl.Offset, rl.Size)
	if c.Err == nil {
		if sum := lvmCRC(initialCRC, c.Text); sum != rl.Checksum {
			c.Err = located(int64(c.AbsOffset), "metadata at byte %d (%d bytes): checksum %#08x, computed %#08x", c.AbsOffset, c.Size, rl.Checksum, sum)
		}
	}
	if c.Err == nil {
		c.Meta, c.Err = ParseMetadata(c.Text)
		if c.Err != nil {
			c.Err = where.At("lvm", int64(c.AbsOffset), fmt.Sprintf("metadata at byte %d", c.AbsOffset), c.Err)
		}
	}
	m.Copies = append(m.Copies, c)
	if c.Err != nil {
		// Recover older copies from the ring. The damaged copy's name
		// may be readable even when the text is not.
		m.Copies = append(m.Copies, scanRing(r, locn.Offset, h.Size, pvUUID, idx, rl.Offset)...)
	}
	return m
}

func ringSpanSafe(off, size, areaSize uint64) (uint64, uint64) {
	if off > areaSize || size > areaSize {
		return size, 0
	}
	return ringSpan(off, size, areaSize)
}

// scanRing looks for older metadata copies: LVM starts every copy on a
// 512-byte boundary of the ring with "vgname {". Each candidate is read up
// to its NUL terminator (following the wrap) and kept if it parses as VG
// metadata. skip is the offset of the damaged current copy.
func scanRing(r io.ReaderAt, areaStart, areaSize uint64, pvUUID string, idx int, skip uint64) []*MetadataCopy {
	ringLen := areaSize - mdaHeaderSize
	if ringLen > maxRingRead {
		ringLen = maxRingRead
	}
	ring := make([]byte, ringLen)
	n, _ := r.ReadAt(ring, int64(areaStart+mdaHeaderSize))
	ring = ring[:n]
	var out []*MetadataCopy
	seen := map[uint64]bool{}
	maxText := (areaSize - mdaHeaderSize) / 2
	for rel := uint64(0); rel < uint64(len(ring)); rel += mdaAlignment {
		off := rel + mdaHeaderSize
		if off == skip || !looksLikeVGStart(ring[rel:]) {
			continue
		}
		// Gather the text up to its NUL, wrapping once.
		var text []byte
		rest := ring[rel:]
		if i := bytes.IndexByte(rest, 0); i >= 0 {
			text = rest[:i]
		} else {
			text = append(append([]byte(nil), rest...), ring[:rel]...)
			if i := bytes.IndexByte(text, 0); i >= 0 {
				text = text[:i]
			}
		}
		if uint64(len(text)) > maxText {
			text = text[:maxText]
		}
		md, err := parseMetadataLenient(text)
		if err != nil || seen[md.Seqno] {
			continue
		}
		seen[md.Seqno] = true
		size := uint64(len(md.Text))
		_, n2 := ringSpan(off, size, areaSize)
		out = append(out, &MetadataCopy{PV: FormatUUID(pvUUID), MDA: idx, Offset: off, AbsOffset: areaStart + off,
			Size: size, Wrapped: n2 > 0, Text: md.Text, Meta: md})
	}
	// Newest first.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Meta.Seqno > out[j-1].Meta.Seqno; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// looksLikeVGStart reports whether b starts with "NAME {" where NAME is a
// valid VG name.
func looksLikeVGStart(b []byte) bool {
	i := 0
	for i < len(b) && i < 128 && isKeyByte(b[i]) {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(b) && b[i] == ' ' {
		i++
	}
	return i < len(b) && b[i] == '{'
}
