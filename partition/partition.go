package partition

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/imgtool/imgtool/internal/where"
)

// ErrNoTable is returned (wrapped, with the reason) by Read when the image
// carries no partition table.
var ErrNoTable = errors.New("no partition table")

// Scheme names, as sfdisk's "label" field spells them.
const (
	SchemeDOS = "dos"
	SchemeGPT = "gpt"
)

// Limits that keep a hostile table from making Read loop or allocate without
// bound.
const (
	// MaxLogical is the most logical partitions followed in an extended
	// partition's EBR chain.
	MaxLogical = 128
	// MaxEBRs is the most extended boot records visited, counting empty
	// ones, before the chain is declared too long.
	MaxEBRs = 2 * MaxLogical
	// MaxEntryArray is the largest GPT partition entry array accepted, in
	// bytes (8192 entries of 128 bytes). Real tables use 16 KiB.
	MaxEntryArray = 1 << 20
)

// Options tune Read. A nil *Options means the zero value.
type Options struct {
	// SectorSize is the logical sector size in bytes: 512, 1024, 2048 or
	// 4096. Zero detects it (see the package doc); MBR-only disks then
	// get 512.
	SectorSize int
}

// Table is a partition table as read from a disk.
type Table struct {
	// Scheme is "dos" (MBR) or "gpt", as sfdisk names its labels.
	Scheme string
	// SectorSize is the logical sector size in bytes the table was read
	// with; all sector numbers below are in these units.
	SectorSize int
	// ID is the MBR disk identifier as sfdisk prints it ("0x1234abcd"), or
	// the GPT disk GUID in upper case.
	ID string
	// FirstLBA and LastLBA bound the area a GPT allows partitions in (its
	// header's first and last usable LBA). Zero for dos.
	FirstLBA, LastLBA uint64
	// ProtectiveMBR is set when sector 0 holds an MBR with an 0xEE entry
	// and no other entries; HybridMBR when it has the 0xEE entry and
	// others. MBR lists those MBR entries (the 0xEE one included), as
	// sfdisk --label-nested dos lists them.
	ProtectiveMBR, HybridMBR bool
	MBR                      []Partition
	// Partitions in the order sfdisk lists them.
	Partitions []Partition
	// Notes are table-wide findings: damage worked around, oddities.
	Notes []string
	// Damage holds the errors behind the notes about damaged structures
	// worked around (a GPT copy that does not verify). Each carries the
	// byte offset of the structure on the disk (VolumeOffset), and its
	// text is part of its note.
	Damage []error
}

// Partition is one entry of a partition table.
type Partition struct {
	// Number is the Linux partition number: MBR slot 1..4, logical
	// partitions from 5, GPT entry index+1.
	Number int
	// Start and Size are in bytes from the start of the disk.
	Start, Size int64
	// StartSector and Sectors are the same range in logical sectors.
	StartSector, Sectors uint64
	// Type is the MBR type byte in hex without leading zeros as sfdisk -J
	// prints it ("83", "5", "c"), or the GPT type GUID in upper case.
	Type string
	// TypeName is sfdisk's name for Type, or "" when sfdisk has none.
	TypeName string
	// Name is the GPT partition name (decoded from UTF-16LE).
	Name string
	// UUID is the GPT unique partition GUID in upper case.
	UUID string
	// Bootable is the MBR boot flag (status byte 0x80).
	Bootable bool
	// Attrs are the GPT attribute bits; see AttrString.
	Attrs uint64
	// Container marks an MBR extended partition, which holds the EBR
	// chain and the logical partitions rather than data.
	Container bool
	// PastEnd is set when the range reaches beyond the end of the disk:
	// Start+Size is what the table says, and readers must clamp.
	PastEnd bool
	// EntryOffset is the byte offset on the disk of the table entry that
	// describes the partition: its 16-byte entry in the MBR or its EBR,
	// or its entry in the GPT entry array that was used. Damage to the
	// partition (a range past the end of the disk) is located there
	// (issue 12.5).
	EntryOffset int64
	// Notes are findings about this entry.
	Notes []string
}

// End returns the byte offset just past the partition.
func (p *Partition) End() int64 { return p.Start + p.Size }

// AllNotes returns the table's notes followed by every partition's notes,
// each prefixed with its partition's name ("p5: ...").
func (t *Table) AllNotes() []string {
	out := slices.Clone(t.Notes)
	for _, p := range t.Partitions {
		for _, n := range p.Notes {
			out = append(out, fmt.Sprintf("p%d: %s", p.Number, n))
		}
	}
	return out
}

// Partition returns the partition numbered n, or nil.
func (t *Table) Partition(n int) *Partition {
	for i := range t.Partitions {
		if t.Partitions[i].Number == n {
			return &t.Partitions[i]
		}
	}
	return nil
}

// disk is what the readers share: the source, its size, the sector size,
// and the notes gathered so far.
type disk struct {
	r    io.ReaderAt
	size int64
	ss   int64
}

// sectors returns how many whole logical sectors the disk has.
func (d *disk) sectors() uint64 { return uint64(d.size / d.ss) }

// read reads n bytes at off. n is small (a sector, or an entry array already
// checked against MaxEntryArray and the disk size).
func (d *disk) read(off int64, n int) ([]byte, error) {
	if off < 0 || n < 0 || off > d.size || int64(n) > d.size-off {
		return nil, where.At("partition", off, fmt.Sprintf("read of %d bytes at byte offset %d: beyond the end of the disk (%d bytes)", n, off, d.size), nil)
	}
	b := make([]byte, n)
	m, err := d.r.ReadAt(b, off)
	if m == n {
		return b, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return nil, where.At("partition", off, fmt.Sprintf("read of %d bytes at byte offset %d", n, off), err)
}

// readSector reads the logical sector at lba, or just its first n bytes.
func (d *disk) readSector(lba uint64, n int) ([]byte, error) {
	off, ok := d.byteOffset(lba)
	if !ok {
		return nil, fmt.Errorf("sector %d is beyond the end of the disk (%d bytes)", lba, d.size)
	}
	return d.read(off, n)
}

// byteOffset converts a sector number to a byte offset, reporting false when
// it does not fit in an int64.
func (d *disk) byteOffset(lba uint64) (int64, bool) {
	if lba > uint64(math.MaxInt64/d.ss) {
		return 0, false
	}
	return int64(lba) * d.ss, true
}

// Read reads the partition table of the disk r, which is size bytes long.
// See the package documentation for what it recognises and reports.
func Read(r io.ReaderAt, size int64, opts *Options) (*Table, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	switch o.SectorSize {
	case 0, 512, 1024, 2048, 4096:
	default:
		return nil, fmt.Errorf("partition: sector size %d not supported (want 512, 1024, 2048 or 4096)", o.SectorSize)
	}
	if size < mbrSize {
		return nil, fmt.Errorf("disk is %d bytes, smaller than one sector: %w", size, ErrNoTable)
	}
	d := &disk{r: r, size: size, ss: int64(o.SectorSize)}
	if d.ss == 0 {
		d.ss = detectSectorSize(r, size)
	}
	if size < d.ss {
		return nil, fmt.Errorf("disk is %d bytes, smaller than one %d-byte sector: %w", size, d.ss, ErrNoTable)
	}

	sector0, err := d.read(0, mbrSize)
	if err != nil {
		return nil, fmt.Errorf("partition: %w", err)
	}
	m := parseMBR(sector0)

	if m.signature && m.hasProtective() {
		// A GPT disk (protective or hybrid MBR): the GPT is the table.
		t, gerr := readGPT(d)
		if gerr == nil {
			t.MBR = d.mbrPartitions(m)
			if m.isHybrid() {
				t.HybridMBR = true
				t.Notes = append(t.Notes, "hybrid MBR: sector 0 holds an 0xEE entry and other entries that legacy systems see instead of the GPT")
				t.Notes = append(t.Notes, checkHybrid(t)...)
			} else {
				t.ProtectiveMBR = true
				t.Notes = append(t.Notes, d.checkProtective(m)...)
			}
			return t, nil
		}
		if m.isHybrid() {
			// Salvage: the legacy half of a hybrid MBR still describes
			// some partitions.
			t, err := readDOS(d, m)
			if err != nil {
				return nil, fmt.Errorf("partition: GPT: %v; hybrid MBR: %w", gerr, err)
			}
			t.HybridMBR = true
			t.MBR = d.mbrPartitions(m)
			t.Notes = append([]string{fmt.Sprintf("GPT unreadable (%v); showing the hybrid MBR's entries instead", gerr)}, t.Notes...)
			return t, nil
		}
		if o.SectorSize != 0 {
			if other := detectSectorSize(r, size); other != d.ss {
				return nil, fmt.Errorf("partition: protective MBR found but %w (a GPT header is present for %d-byte sectors; %d was asked for)", gerr, other, d.ss)
			}
		}
		return nil, fmt.Errorf("partition: protective MBR found but %w", gerr)
	}

	var why string
	switch {
	case !m.signature:
		why = fmt.Sprintf("no 0x55AA boot signature at byte offset %d", mbrSignatureOffset)
	default:
		why = m.invalidReason(sector0)
	}
	if why == "" {
		t, err := readDOS(d, m)
		if err != nil {
			return nil, err
		}
		if o.SectorSize == 0 {
			if hint := d.sectorSizeHint(m); hint != "" {
				t.Notes = append(t.Notes, hint)
			}
		}
		if _, gerr := readGPT(d); gerr == nil {
			t.Notes = append(t.Notes, "a valid GPT is also present but the MBR has no protective 0xEE entry; the MBR wins (stale GPT from an earlier label?)")
		}
		return t, nil
	}

	// No usable MBR. A GPT whose sector 0 was wiped is still a GPT; only a
	// header that verifies counts here.
	if hasGPTSignature(d) {
		t, gerr := readGPT(d)
		if gerr != nil {
			return nil, fmt.Errorf("partition: %s, and the GPT is unreadable: %w", why, gerr)
		}
		t.Notes = append([]string{fmt.Sprintf("no protective MBR (%s); GPT read anyway", why)}, t.Notes...)
		return t, nil
	}
	return nil, fmt.Errorf("%s: %w", why, ErrNoTable)
}

// checkOverlaps notes partitions that overlap an earlier one (by start), in
// O(n log n) and with at most one note per partition. Containers are skipped:
// their logical partitions lie inside them by design.
func checkOverlaps(parts []Partition) {
	idx := make([]int, 0, len(parts))
	for i := range parts {
		if !parts[i].Container && parts[i].Sectors > 0 {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		pa, pb := &parts[a], &parts[b]
		switch {
		case pa.StartSector < pb.StartSector:
			return -1
		case pa.StartSector > pb.StartSector:
			return 1
		}
		return 0
	})
	reach := -1 // index of the partition reaching furthest so far
	for _, i := range idx {
		p := &parts[i]
		if reach >= 0 {
			q := &parts[reach]
			if p.StartSector < q.StartSector+q.Sectors {
				p.Notes = append(p.Notes, fmt.Sprintf("overlaps p%d (sectors %d-%d)", q.Number, q.StartSector, q.StartSector+q.Sectors-1))
			}
		}
		if reach < 0 || p.StartSector+p.Sectors > parts[reach].StartSector+parts[reach].Sectors {
			reach = i
		}
	}
}

// checkEnd flags and notes a partition that reaches past the end of the disk.
func (d *disk) checkEnd(p *Partition) {
	if p.Start > d.size || p.Size > d.size-p.Start {
		p.PastEnd = true
		if p.Start >= d.size {
			p.Notes = append(p.Notes, fmt.Sprintf("starts at byte %d, beyond the end of the disk (%d bytes)", p.Start, d.size))
		} else {
			p.Notes = append(p.Notes, fmt.Sprintf("extends past the end of the disk: ends at byte %d, disk is %d bytes", p.Start+p.Size, d.size))
		}
	}
}

// setRange fills in a partition's sector and byte range. It reports false
// when the range cannot be expressed in int64 bytes (only a hostile table
// does that); the caller then drops the entry with a note.
func (d *disk) setRange(p *Partition, start, sectors uint64) bool {
	end := start + sectors
	if end < start {
		return false
	}
	s, ok1 := d.byteOffset(start)
	e, ok2 := d.byteOffset(end)
	if !ok1 || !ok2 {
		return false
	}
	p.StartSector, p.Sectors = start, sectors
	p.Start, p.Size = s, e-s
	return true
}

// checkHybrid notes hybrid-MBR entries that do not mirror a GPT partition
// exactly: legacy systems would see a different layout from the GPT's.
func checkHybrid(t *Table) []string {
	var notes []string
	for _, m := range t.MBR {
		if m.Type == fmt.Sprintf("%x", mbrTypeProtective) {
			continue
		}
		match := false
		for _, p := range t.Partitions {
			if p.StartSector == m.StartSector && p.Sectors == m.Sectors {
				match = true
				break
			}
		}
		if !match {
			notes = append(notes, fmt.Sprintf("hybrid MBR entry %d (sectors %d+%d, type %s) matches no GPT partition", m.Number, m.StartSector, m.Sectors, m.Type))
		}
	}
	return notes
}
