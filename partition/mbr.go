package partition

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/imgtool/imgtool/internal/where"
)

// The master boot record is the first 512 bytes of the disk, whatever the
// logical sector size:
//
//	offset  size  field
//	     0   440  boot code
//	   440     4  disk identifier (Windows NT "disk signature"), little-endian
//	   444     2  0x0000 (or 0x5A5A when copy-protected)
//	   446    64  four 16-byte partition entries
//	   510     2  boot signature 0x55 0xAA
//
// An extended boot record (EBR) has the same layout, sits in the first sector
// of each link of the extended partition's chain and uses only its first two
// entries: a logical partition (start relative to this EBR) and a link to the
// next EBR (start relative to the start of the extended partition).
const (
	mbrSize             = 512
	mbrDiskIDOffset     = 440
	mbrTableOffset      = 446
	mbrEntrySize        = 16
	mbrEntries          = 4
	mbrSignatureOffset  = 510
	mbrStatusActive     = 0x80 // boot flag: the partition BIOS boots from
	mbrStatusInactive   = 0x00
	mbrTypeEmpty        = 0x00
	mbrTypeProtective   = 0xEE // GPT protective partition
	mbrTypeExtendedCHS  = 0x05 // DOS extended partition
	mbrTypeExtendedLBA  = 0x0F // W95 extended partition (LBA)
	mbrTypeExtendedLinx = 0x85 // Linux extended partition
)

// mbrEntry is one 16-byte partition entry:
//
//	offset  size  field
//	     0     1  status: 0x80 bootable, 0x00 not
//	     1     3  CHS address of the first sector (ignored: LBA rules)
//	     4     1  partition type
//	     5     3  CHS address of the last sector (ignored)
//	     8     4  first sector (LBA), little-endian; relative in an EBR
//	    12     4  number of sectors, little-endian
type mbrEntry struct {
	Status   byte
	Type     byte
	StartLBA uint32
	Sectors  uint32
}

func parseMBREntry(b []byte) mbrEntry {
	return mbrEntry{
		Status:   b[0],
		Type:     b[4],
		StartLBA: binary.LittleEndian.Uint32(b[8:]),
		Sectors:  binary.LittleEndian.Uint32(b[12:]),
	}
}

// used reports whether the entry describes a partition. Like libfdisk, an
// entry counts when its size is not zero.
func (e mbrEntry) used() bool { return e.Sectors != 0 }

func isExtended(t byte) bool {
	return t == mbrTypeExtendedCHS || t == mbrTypeExtendedLBA || t == mbrTypeExtendedLinx
}

// mbr is a parsed MBR or EBR sector.
type mbr struct {
	signature bool
	diskID    uint32
	entries   [mbrEntries]mbrEntry
}

func parseMBR(b []byte) mbr {
	var m mbr
	m.signature = b[mbrSignatureOffset] == 0x55 && b[mbrSignatureOffset+1] == 0xAA
	m.diskID = binary.LittleEndian.Uint32(b[mbrDiskIDOffset:])
	for i := range m.entries {
		m.entries[i] = parseMBREntry(b[mbrTableOffset+i*mbrEntrySize:])
	}
	return m
}

// hasProtective reports an 0xEE entry, the mark of a GPT disk.
func (m *mbr) hasProtective() bool {
	for _, e := range m.entries {
		if e.used() && e.Type == mbrTypeProtective {
			return true
		}
	}
	return false
}

// isHybrid reports an 0xEE entry together with other used entries.
func (m *mbr) isHybrid() bool {
	if !m.hasProtective() {
		return false
	}
	for _, e := range m.entries {
		if e.used() && e.Type != mbrTypeProtective {
			return true
		}
	}
	return false
}

// invalidReason returns why a sector with the 0x55AA signature is not an MBR
// partition table, or "" when it is one. These are libblkid's checks: the
// boot sector of a bare FAT/NTFS/exFAT filesystem also ends in 0x55AA, and a
// status byte other than 0x00/0x80 means the "entries" are boot code.
func (m *mbr) invalidReason(sector0 []byte) string {
	if fs := vbrFilesystem(sector0, m); fs != "" {
		return fmt.Sprintf("sector 0 is the boot sector of a bare %s filesystem, not an MBR", fs)
	}
	for i, e := range m.entries {
		if e.Status != mbrStatusActive && e.Status != mbrStatusInactive {
			return fmt.Sprintf("MBR entry %d (byte offset %d) has status byte 0x%02x, not 0x00 or 0x80: not a partition table",
				i+1, mbrTableOffset+i*mbrEntrySize, e.Status)
		}
	}
	// An entry starting at sector 0 is odd but real: xorriso's hybrid ISO
	// images put the ISO filesystem in a partition 1 that starts there, and
	// sfdisk and blkid accept it. It gets a note, not a rejection.
	return ""
}

// vbrFilesystem recognises the boot sector (volume boot record) of a FAT,
// NTFS or exFAT filesystem written to a whole disk, returning its name or "".
//
// NTFS and exFAT carry an OEM name at byte 3. FAT is recognised by a sane
// BIOS parameter block: a jump instruction at byte 0, bytes per sector (11) a
// power of two from 512 to 4096, sectors per cluster (13) a power of two,
// reserved sectors (14) at least 1, one or two FATs (16) and a media byte (21)
// of 0xF0 or 0xF8-0xFF; plus either a "FAT" file-system-type string (byte 54
// for FAT12/16, 82 for FAT32) or no used partition entries at all. The last
// condition keeps an MBR whose boot code happens to start with a jump (GRUB's
// does) from being taken for a filesystem.
func vbrFilesystem(b []byte, m *mbr) string {
	switch {
	case bytes.Equal(b[3:11], []byte("NTFS    ")):
		return "NTFS"
	case bytes.Equal(b[3:11], []byte("EXFAT   ")):
		return "exFAT"
	}
	jump := (b[0] == 0xEB && b[2] == 0x90) || b[0] == 0xE9
	bps := binary.LittleEndian.Uint16(b[11:])
	spc := b[13]
	reserved := binary.LittleEndian.Uint16(b[14:])
	fats := b[16]
	media := b[21]
	if !jump || (bps != 512 && bps != 1024 && bps != 2048 && bps != 4096) ||
		spc == 0 || spc&(spc-1) != 0 || reserved == 0 || fats < 1 || fats > 2 ||
		(media != 0xF0 && media < 0xF8) {
		return ""
	}
	if bytes.HasPrefix(b[54:], []byte("FAT")) || bytes.HasPrefix(b[82:], []byte("FAT32")) {
		return "FAT"
	}
	for _, e := range m.entries {
		if e.used() {
			return ""
		}
	}
	return "FAT"
}

// mbrPartition turns an MBR/EBR entry, at byte entryAt of the disk, into a
// Partition whose first sector is base+e.StartLBA.
func (d *disk) mbrPartition(n int, e mbrEntry, base uint64, entryAt int64) (Partition, bool) {
	p := Partition{
		EntryOffset: entryAt,
		Number:      n,
		Type:        fmt.Sprintf("%x", e.Type),
		TypeName:    mbrTypeNames[e.Type],
		Bootable:    e.Status == mbrStatusActive,
		Container:   isExtended(e.Type),
	}
	if !d.setRange(&p, base+uint64(e.StartLBA), uint64(e.Sectors)) {
		return p, false
	}
	d.checkEnd(&p)
	return p, true
}

// mbrPartitions lists the used entries of a protective or hybrid MBR.
func (d *disk) mbrPartitions(m mbr) []Partition {
	var out []Partition
	for i, e := range m.entries {
		if !e.used() {
			continue
		}
		if p, ok := d.mbrPartition(i+1, e, 0, int64(mbrTableOffset+i*mbrEntrySize)); ok {
			out = append(out, p)
		}
	}
	return out
}

// checkProtective notes a protective MBR whose 0xEE entry does not cover the
// disk as the UEFI spec asks (from LBA 1 to the last sector, or 0xFFFFFFFF
// sectors when the disk is larger).
func (d *disk) checkProtective(m mbr) []string {
	for i, e := range m.entries {
		if !e.used() || e.Type != mbrTypeProtective {
			continue
		}
		want := d.sectors() - 1
		if want > 0xFFFFFFFF {
			want = 0xFFFFFFFF
		}
		if e.StartLBA != 1 || uint64(e.Sectors) != want {
			return []string{fmt.Sprintf("protective MBR entry %d covers sectors %d+%d, not 1+%d (disk resized?)", i+1, e.StartLBA, e.Sectors, want)}
		}
	}
	return nil
}

// readDOS builds the "dos" table from the MBR m: the four primary slots, then
// the logical partitions of the first extended partition.
func readDOS(d *disk, m mbr) (*Table, error) {
	t := &Table{
		Scheme:     SchemeDOS,
		SectorSize: int(d.ss),
		ID:         fmt.Sprintf("0x%08x", m.diskID),
	}
	ext := -1
	for i, e := range m.entries {
		if !e.used() {
			if e.Type != mbrTypeEmpty {
				t.Notes = append(t.Notes, fmt.Sprintf("MBR entry %d has type 0x%02x but zero size; ignored", i+1, e.Type))
			}
			continue
		}
		p, ok := d.mbrPartition(i+1, e, 0, int64(mbrTableOffset+i*mbrEntrySize))
		if !ok {
			t.Notes = append(t.Notes, fmt.Sprintf("MBR entry %d: range not addressable; ignored", i+1))
			continue
		}
		if e.StartLBA == 0 {
			p.Notes = append(p.Notes, "starts at sector 0 and so contains the MBR itself (as in a hybrid ISO image)")
		}
		if p.Container {
			if ext < 0 {
				ext = len(t.Partitions)
			} else {
				p.Notes = append(p.Notes, "second extended partition; only the first one's logical partitions are read (as Linux does)")
			}
		}
		t.Partitions = append(t.Partitions, p)
	}
	if ext >= 0 {
		container := t.Partitions[ext]
		logicals, notes, damage := d.readEBRChain(&container)
		t.Notes = append(t.Notes, notes...)
		t.Damage = append(t.Damage, damage...)
		t.Partitions = append(t.Partitions, logicals...)
	}
	checkOverlaps(t.Partitions)
	d.checkContainers(t.Partitions)
	return t, nil
}

// checkContainers notes primaries that overlap an extended partition and
// logical partitions that stick out of it.
func (d *disk) checkContainers(parts []Partition) {
	for i := range parts {
		c := &parts[i]
		if !c.Container {
			continue
		}
		cEnd := c.StartSector + c.Sectors
		for j := range parts {
			p := &parts[j]
			if p.Container || p.Sectors == 0 {
				continue
			}
			inside := p.StartSector >= c.StartSector && p.StartSector+p.Sectors <= cEnd
			overlaps := p.StartSector < cEnd && c.StartSector < p.StartSector+p.Sectors
			switch {
			case p.Number <= mbrEntries && overlaps:
				p.Notes = append(p.Notes, fmt.Sprintf("overlaps extended partition p%d", c.Number))
			case p.Number > mbrEntries && !inside:
				p.Notes = append(p.Notes, fmt.Sprintf("lies outside extended partition p%d (sectors %d-%d)", c.Number, c.StartSector, cEnd-1))
			}
		}
		return // only the first extended partition holds logicals
	}
}

// readEBRChain follows the chain of extended boot records starting at the
// first sector of the extended partition ext and returns the logical
// partitions, numbered from 5, plus notes on anything odd. The walk stops at
// the end of the chain, on a revisited EBR (a loop), on a link outside the
// extended partition, on an unreadable or unsigned EBR, and after MaxEBRs
// records or MaxLogical partitions.
//
// The damage that stops the chain is also returned as located errors
// (internal/where), each the text of its note: a link that loops, leaves
// the extended partition or names an unreadable sector is located at the
// 16-byte entry holding that link (the MBR's entry of the extended
// partition for the first EBR), a missing signature at the EBR's bytes
// 510-511.
func (d *disk) readEBRChain(ext *Partition) ([]Partition, []string, []error) {
	var (
		out     []Partition
		notes   []string
		damage  []error
		visited = make(map[uint64]bool)
		extEnd  = ext.StartSector + ext.Sectors
		cur     = ext.StartSector
		number  = mbrEntries + 1
		// linkAt is the byte of the entry that points at cur.
		linkAt = int64(mbrTableOffset + (ext.Number-1)*mbrEntrySize)
	)
	bad := func(at int64, format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		notes = append(notes, msg)
		damage = append(damage, where.At("mbr", at, msg, nil))
	}
	for steps := 0; ; steps++ {
		if steps == MaxEBRs {
			notes = append(notes, fmt.Sprintf("EBR chain longer than %d records; stopped at sector %d", MaxEBRs, cur))
			break
		}
		if visited[cur] {
			bad(linkAt, "EBR chain loops back to sector %d (byte offset %d) through the link at byte %d; stopped", cur, int64(cur)*d.ss, linkAt)
			break
		}
		visited[cur] = true
		off, _ := d.byteOffset(cur) // cur < 2^33 sectors: always fits
		b, err := d.readSector(cur, mbrSize)
		if err != nil {
			bad(linkAt, "EBR at sector %d (linked at byte %d): %v; chain stopped", cur, linkAt, err)
			break
		}
		ebr := parseMBR(b)
		if !ebr.signature {
			bad(off+mbrSignatureOffset, "EBR at sector %d (byte offset %d) has no 0x55AA signature; chain stopped", cur, off)
			break
		}
		var data, link *mbrEntry
		var nextLinkAt, dataAt int64
		for i := range ebr.entries {
			e := &ebr.entries[i]
			if !e.used() {
				continue
			}
			switch {
			case isExtended(e.Type):
				if link == nil {
					link = e
					nextLinkAt = off + int64(mbrTableOffset+i*mbrEntrySize)
				} else {
					notes = append(notes, fmt.Sprintf("EBR at sector %d: extra link in entry %d ignored", cur, i+1))
				}
			case e.Type != mbrTypeEmpty:
				if data == nil {
					data = e
					dataAt = off + int64(mbrTableOffset+i*mbrEntrySize)
				} else {
					notes = append(notes, fmt.Sprintf("EBR at sector %d: extra partition in entry %d ignored", cur, i+1))
				}
			}
		}
		if data != nil {
			if len(out) == MaxLogical {
				notes = append(notes, fmt.Sprintf("more than %d logical partitions; the rest are ignored", MaxLogical))
				break
			}
			p, ok := d.mbrPartition(number, *data, cur, dataAt)
			if ok {
				if data.StartLBA == 0 {
					p.Notes = append(p.Notes, fmt.Sprintf("starts at its own EBR (sector %d)", cur))
				}
				out = append(out, p)
				number++
			}
		}
		if link == nil {
			break
		}
		next := ext.StartSector + uint64(link.StartLBA)
		if next >= extEnd {
			bad(nextLinkAt, "EBR at sector %d links to sector %d, outside the extended partition (sectors %d-%d), in the entry at byte %d; chain stopped",
				cur, next, ext.StartSector, extEnd-1, nextLinkAt)
			break
		}
		cur, linkAt = next, nextLinkAt
	}
	return out, notes, damage
}

// sectorSizeHint looks at the first EBR of an MBR's extended partition, read
// with 512-byte sectors. Nothing in an MBR records the sector size; but when
// that EBR has no 0x55AA signature at 512-byte units and does at 4096-byte
// units, the disk almost surely has 4096-byte sectors, and the note says so.
func (d *disk) sectorSizeHint(m mbr) string {
	if d.ss != 512 {
		return ""
	}
	for _, e := range m.entries {
		if !e.used() || !isExtended(e.Type) {
			continue
		}
		signed := func(ss int64) bool {
			off := int64(e.StartLBA) * ss
			if off+mbrSize > d.size {
				return false
			}
			b, err := d.read(off, mbrSize)
			return err == nil && parseMBR(b).signature
		}
		if !signed(512) && signed(4096) {
			return fmt.Sprintf("the extended partition's first EBR is found only when sectors are 4096 bytes (byte offset %d): this disk probably has 4096-byte sectors; read it with Options.SectorSize = 4096", int64(e.StartLBA)*4096)
		}
		return ""
	}
	return ""
}
