package partition

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"unicode/utf16"

	"github.com/imgtool/imgtool/internal/where"
	"github.com/imgtool/imgtool/internal/zero"
)

// A GUID partition table (UEFI spec, chapter 5) has a header in LBA 1 and a
// backup header in the last LBA of the disk. Each header points at an array
// of partition entries (the primary's normally starts at LBA 2, the backup's
// ends just before the backup header). Both the header and the array are
// protected by CRC32s kept in the header.
//
// Header, all integers little-endian:
//
//	offset  size  field
//	     0     8  signature "EFI PART"
//	     8     4  revision (0x00010000)
//	    12     4  header size in bytes (92 ≤ size ≤ sector size)
//	    16     4  CRC32 of the header's first "header size" bytes, computed
//	              with this field zeroed
//	    20     4  reserved, zero
//	    24     8  MyLBA: the LBA of this header
//	    32     8  AlternateLBA: the LBA of the other header
//	    40     8  FirstUsableLBA
//	    48     8  LastUsableLBA
//	    56    16  disk GUID
//	    72     8  PartitionEntryLBA: first LBA of the entry array
//	    80     4  NumberOfPartitionEntries
//	    84     4  SizeOfPartitionEntry (128 × 2^n)
//	    88     4  CRC32 of the entry array (count × size bytes)
const (
	gptSignature        = "EFI PART"
	gptMinHeaderSize    = 92
	gptMinEntrySize     = 128
	gptOffHeaderSize    = 12
	gptOffHeaderCRC     = 16
	gptOffMyLBA         = 24
	gptOffAlternateLBA  = 32
	gptOffFirstUsable   = 40
	gptOffLastUsable    = 48
	gptOffDiskGUID      = 56
	gptOffEntryLBA      = 72
	gptOffEntryCount    = 80
	gptOffEntrySize     = 84
	gptOffEntryArrayCRC = 88
)

// Partition entry (the first 128 bytes of each SizeOfPartitionEntry slot):
//
//	offset  size  field
//	     0    16  partition type GUID (all zero: slot unused)
//	    16    16  unique partition GUID
//	    32     8  first LBA
//	    40     8  last LBA (inclusive)
//	    48     8  attribute bits
//	    56    72  name, UTF-16LE, NUL-padded
const (
	gptEntOffType  = 0
	gptEntOffUUID  = 16
	gptEntOffFirst = 32
	gptEntOffLast  = 40
	gptEntOffAttrs = 48
	gptEntOffName  = 56
	gptEntNameLen  = 72
)

// GPT attribute bits that sfdisk names; bits 48-63 belong to the partition
// type ("GUID:N").
const (
	AttrRequiredPartition  = 1 << 0
	AttrNoBlockIOProtocol  = 1 << 1
	AttrLegacyBIOSBootable = 1 << 2
	attrTypeSpecificFirst  = 48
)

// gptHeader mirrors the on-disk GPT header.
type gptHeader struct {
	Signature                [8]byte
	Revision                 uint32
	HeaderSize               uint32
	HeaderCRC32              uint32
	Reserved                 uint32
	MyLBA                    uint64
	AlternateLBA             uint64
	FirstUsableLBA           uint64
	LastUsableLBA            uint64
	DiskGUID                 [16]byte
	PartitionEntryLBA        uint64
	NumberOfPartitionEntries uint32
	SizeOfPartitionEntry     uint32
	PartitionEntryArrayCRC32 uint32
}

func parseGPTHeader(b []byte) gptHeader {
	le := binary.LittleEndian
	var h gptHeader
	copy(h.Signature[:], b)
	h.Revision = le.Uint32(b[8:])
	h.HeaderSize = le.Uint32(b[gptOffHeaderSize:])
	h.HeaderCRC32 = le.Uint32(b[gptOffHeaderCRC:])
	h.Reserved = le.Uint32(b[20:])
	h.MyLBA = le.Uint64(b[gptOffMyLBA:])
	h.AlternateLBA = le.Uint64(b[gptOffAlternateLBA:])
	h.FirstUsableLBA = le.Uint64(b[gptOffFirstUsable:])
	h.LastUsableLBA = le.Uint64(b[gptOffLastUsable:])
	copy(h.DiskGUID[:], b[gptOffDiskGUID:])
	h.PartitionEntryLBA = le.Uint64(b[gptOffEntryLBA:])
	h.NumberOfPartitionEntries = le.Uint32(b[gptOffEntryCount:])
	h.SizeOfPartitionEntry = le.Uint32(b[gptOffEntrySize:])
	h.PartitionEntryArrayCRC32 = le.Uint32(b[gptOffEntryArrayCRC:])
	return h
}

// gptCopy is one verified header with its verified entry array.
type gptCopy struct {
	h       gptHeader
	entries []byte
}

// detectSectorSize finds the logical sector size from where a GPT header
// signature is: LBA 1 of a 512- or 4096-byte-sector disk, else the last
// sector (backup header). Without any, 512.
func detectSectorSize(r io.ReaderAt, size int64) int64 {
	sig := make([]byte, len(gptSignature))
	at := func(off int64) bool {
		if off < 0 || off+int64(len(sig)) > size {
			return false
		}
		n, _ := r.ReadAt(sig, off)
		return n == len(sig) && string(sig) == gptSignature
	}
	for _, ss := range []int64{512, 4096} {
		if size >= 2*ss && at(ss) {
			return ss
		}
	}
	for _, ss := range []int64{512, 4096} {
		if size >= 2*ss && at((size/ss-1)*ss) {
			return ss
		}
	}
	return 512
}

// hasGPTSignature reports "EFI PART" at LBA 1 or in the last sector.
func hasGPTSignature(d *disk) bool {
	for _, lba := range []uint64{1, d.sectors() - 1} {
		if b, err := d.readSector(lba, len(gptSignature)); err == nil && string(b) == gptSignature {
			return true
		}
	}
	return false
}

// readGPTCopy reads and verifies the header at lba and its entry array. The
// error says what is wrong and at which byte offset.
func (d *disk) readGPTCopy(lba uint64) (*gptCopy, error) {
	off, ok := d.byteOffset(lba)
	if !ok || off > d.size-d.ss {
		return nil, where.At("gpt", -1, fmt.Sprintf("LBA %d is beyond the end of the disk (%d bytes)", lba, d.size), nil)
	}
	b, err := d.read(off, int(d.ss))
	if err != nil {
		return nil, where.At("gpt", off, "", err)
	}
	h := parseGPTHeader(b)
	bad := func(at int64, format string, a ...any) error {
		return where.At("gpt", at, fmt.Sprintf(format, a...), nil)
	}
	at := fmt.Sprintf("header at LBA %d (byte offset %d)", lba, off)
	if string(h.Signature[:]) != gptSignature {
		return nil, bad(off, "%s: no %q signature", at, gptSignature)
	}
	if h.HeaderSize < gptMinHeaderSize || int64(h.HeaderSize) > d.ss {
		return nil, bad(off+gptOffHeaderSize, "%s: header size %d out of range %d-%d (byte offset %d)", at, h.HeaderSize, gptMinHeaderSize, d.ss, off+gptOffHeaderSize)
	}
	hb := bytes.Clone(b[:h.HeaderSize])
	clear(hb[gptOffHeaderCRC : gptOffHeaderCRC+4])
	if sum := crc32.ChecksumIEEE(hb); sum != h.HeaderCRC32 {
		return nil, bad(off, "%s: header CRC32 mismatch: stored 0x%08x, computed 0x%08x", at, h.HeaderCRC32, sum)
	}
	if h.MyLBA != lba {
		return nil, bad(off+gptOffMyLBA, "%s: header says it is at LBA %d (byte offset %d)", at, h.MyLBA, off+gptOffMyLBA)
	}
	if h.FirstUsableLBA > h.LastUsableLBA {
		return nil, bad(off, "%s: first usable LBA %d is after last usable LBA %d", at, h.FirstUsableLBA, h.LastUsableLBA)
	}
	es, n := int64(h.SizeOfPartitionEntry), int64(h.NumberOfPartitionEntries)
	if es < gptMinEntrySize || es%gptMinEntrySize != 0 {
		return nil, bad(off+gptOffEntrySize, "%s: partition entry size %d is not a multiple of %d (byte offset %d)", at, es, gptMinEntrySize, off+gptOffEntrySize)
	}
	if es > MaxEntryArray || n > MaxEntryArray/es {
		return nil, bad(off+gptOffEntryCount, "%s: entry array of %d × %d bytes exceeds the %d-byte limit (byte offset %d)", at, n, es, MaxEntryArray, off+gptOffEntryCount)
	}
	arrOff, ok := d.byteOffset(h.PartitionEntryLBA)
	if !ok || arrOff > d.size || n*es > d.size-arrOff {
		return nil, bad(off, "%s: entry array at LBA %d (%d bytes) lies beyond the end of the disk (%d bytes)", at, h.PartitionEntryLBA, n*es, d.size)
	}
	if h.PartitionEntryLBA == lba {
		return nil, bad(off, "%s: entry array starts at the header's own LBA", at)
	}
	arr, err := d.read(arrOff, int(n*es))
	if err != nil {
		return nil, where.At("gpt", arrOff, at+": entry array", err)
	}
	if sum := crc32.ChecksumIEEE(arr); sum != h.PartitionEntryArrayCRC32 {
		return nil, bad(arrOff, "entry array at LBA %d (byte offset %d, %d bytes) of the %s: CRC32 mismatch: stored 0x%08x, computed 0x%08x",
			h.PartitionEntryLBA, arrOff, n*es, at, h.PartitionEntryArrayCRC32, sum)
	}
	return &gptCopy{h: h, entries: arr}, nil
}

// readGPT reads the GPT: the primary header and array when they verify, else
// the backup ones, with notes on what was damaged.
func readGPT(d *disk) (*Table, error) {
	if d.size < 3*d.ss {
		return nil, fmt.Errorf("disk of %d bytes is too small for a GPT with %d-byte sectors", d.size, d.ss)
	}
	last := d.sectors() - 1
	var notes []string
	var damage []error
	primary, perr := d.readGPTCopy(1)

	backupLBA := last
	if primary != nil && primary.h.AlternateLBA != last {
		notes = append(notes, fmt.Sprintf("the primary header places the backup header at LBA %d, but the last LBA is %d (disk resized or truncated?)", primary.h.AlternateLBA, last))
		if primary.h.AlternateLBA < last {
			backupLBA = primary.h.AlternateLBA
		}
	}
	backup, berr := d.readGPTCopy(backupLBA)

	use := primary
	switch {
	case primary == nil && backup == nil:
		// Where the primary lies: the copy every tool reads first.
		return nil, where.At("gpt", where.VolumeOffset(perr), fmt.Sprintf("primary GPT: %v; backup GPT: %v", perr, berr), nil)
	case primary == nil:
		use = backup
		damage = append(damage, perr)
		notes = append(notes, fmt.Sprintf("primary GPT is damaged (%v); using the backup header at LBA %d (byte offset %d)", perr, backupLBA, int64(backupLBA)*d.ss))
	case backup == nil:
		damage = append(damage, berr)
		notes = append(notes, fmt.Sprintf("backup GPT is damaged (%v); the primary is fine and used", berr))
	default:
		if primary.h.DiskGUID != backup.h.DiskGUID || !bytes.Equal(primary.entries, backup.entries) {
			notes = append(notes, "primary and backup GPT differ; using the primary")
		}
	}

	h := use.h
	t := &Table{
		Scheme:     SchemeGPT,
		SectorSize: int(d.ss),
		ID:         formatGUID(h.DiskGUID[:]),
		FirstLBA:   h.FirstUsableLBA,
		LastLBA:    h.LastUsableLBA,
		Notes:      notes,
		Damage:     damage,
	}
	if h.LastUsableLBA >= last {
		t.Notes = append(t.Notes, fmt.Sprintf("last usable LBA %d is at or beyond the last LBA %d of the disk (image truncated?)", h.LastUsableLBA, last))
	}
	es := int(h.SizeOfPartitionEntry)
	for i := 0; i < int(h.NumberOfPartitionEntries); i++ {
		e := use.entries[i*es : i*es+gptMinEntrySize]
		typ := e[gptEntOffType : gptEntOffType+16]
		if zero.Is(typ) {
			continue
		}
		p := Partition{
			EntryOffset: int64(h.PartitionEntryLBA)*d.ss + int64(i*es),
			Number:      i + 1,
			Type:        formatGUID(typ),
			UUID:        formatGUID(e[gptEntOffUUID : gptEntOffUUID+16]),
			Attrs:       binary.LittleEndian.Uint64(e[gptEntOffAttrs:]),
			Name:        decodeName(e[gptEntOffName : gptEntOffName+gptEntNameLen]),
		}
		p.TypeName = gptTypeNames[p.Type]
		first := binary.LittleEndian.Uint64(e[gptEntOffFirst:])
		lastLBA := binary.LittleEndian.Uint64(e[gptEntOffLast:])
		if lastLBA < first {
			t.Notes = append(t.Notes, fmt.Sprintf("GPT entry %d: last LBA %d is before first LBA %d; ignored", i+1, lastLBA, first))
			continue
		}
		if !d.setRange(&p, first, lastLBA-first+1) {
			t.Notes = append(t.Notes, fmt.Sprintf("GPT entry %d: sectors %d-%d are far beyond the end of the disk; ignored", i+1, first, lastLBA))
			continue
		}
		if first < h.FirstUsableLBA || lastLBA > h.LastUsableLBA {
			p.Notes = append(p.Notes, fmt.Sprintf("sectors %d-%d lie outside the usable area %d-%d", first, lastLBA, h.FirstUsableLBA, h.LastUsableLBA))
		}
		d.checkEnd(&p)
		t.Partitions = append(t.Partitions, p)
	}
	checkOverlaps(t.Partitions)
	return t, nil
}

// formatGUID formats a GUID stored in the mixed-endian on-disk layout (the
// first three fields little-endian) the way sfdisk prints it: upper case.
func formatGUID(b []byte) string {
	le := binary.LittleEndian
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X", le.Uint32(b[0:]), le.Uint16(b[4:]), le.Uint16(b[6:]), b[8:10], b[10:16])
}

// decodeName decodes a NUL-padded UTF-16LE partition name.
func decodeName(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// AttrString formats GPT attribute bits as sfdisk does ("RequiredPartition
// NoBlockIOProtocol LegacyBIOSBootable GUID:48,63"). Reserved bits 3-47 are
// not shown, as sfdisk does not show them.
func AttrString(a uint64) string {
	var b []byte
	add := func(s string) {
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = append(b, s...)
	}
	if a&AttrRequiredPartition != 0 {
		add("RequiredPartition")
	}
	if a&AttrNoBlockIOProtocol != 0 {
		add("NoBlockIOProtocol")
	}
	if a&AttrLegacyBIOSBootable != 0 {
		add("LegacyBIOSBootable")
	}
	first := true
	for n := attrTypeSpecificFirst; n < 64; n++ {
		if a&(1<<n) == 0 {
			continue
		}
		if first {
			add(fmt.Sprintf("GUID:%d", n))
			first = false
		} else {
			b = fmt.Appendf(b, ",%d", n)
		}
	}
	return string(b)
}
