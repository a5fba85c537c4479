package partition

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// TestEBRLoopFixture: sfdisk follows the looping chain until partition 60;
// we list each logical once and say the chain loops.
func TestEBRLoopFixture(t *testing.T) {
	tab := readFixture(t, "part-mbr-ebrloop", nil)
	g := loadSfdisk(t, "part-mbr-ebrloop.sfdisk.json")
	if n := len(g.PartitionTable.Partitions); n < 50 {
		t.Fatalf("golden: sfdisk lists only %d partitions; the loop was not made", n)
	}
	if !strings.Contains(string(fixturetest.Golden(t, "part-mbr-ebrloop.sfdisk.stderr")), "Omitting partitions after #60") {
		t.Errorf("golden: sfdisk did not complain about the loop")
	}
	// The first pass round the loop (p1, p2, p5, p6) is what sfdisk lists
	// before it repeats itself.
	g.PartitionTable.Partitions = g.PartitionTable.Partitions[:4]
	compareTable(t, tab, g)
	if !hasNote(tab.Notes, "EBR chain loops back to sector 6144") {
		t.Errorf("no loop note: %q", tab.Notes)
	}
}

// TestTruncatedFixture: partitions beyond the end of a cut image are flagged.
func TestTruncatedFixture(t *testing.T) {
	tab := readFixture(t, "part-mbr-truncated", nil)
	compareTable(t, tab, loadSfdisk(t, "part-mbr-truncated.sfdisk.json"))
	compareTable(t, tab, loadSfdisk(t, "part-mbr-truncated.after.sfdisk.json"))
	compareBlkid(t, "part-mbr-truncated", tab)
	fi, err := os.Stat(fixturetest.Image(t, "part-mbr-truncated"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range tab.Partitions {
		want := p.End() > fi.Size()
		if p.PastEnd != want {
			t.Errorf("p%d (bytes %d-%d, disk %d): PastEnd %v", p.Number, p.Start, p.End(), fi.Size(), p.PastEnd)
		}
		if want && !hasNote(p.Notes, "past the end of the disk") && !hasNote(p.Notes, "beyond the end of the disk") {
			t.Errorf("p%d: no note: %q", p.Number, p.Notes)
		}
	}
	if p := tab.Partition(3); p == nil || !hasNote(p.Notes, "starts at byte 27262976, beyond the end of the disk (20971520 bytes)") {
		t.Errorf("p3 note missing: %+v", p)
	}
}

func hasNote(notes []string, sub string) bool {
	for _, n := range notes {
		if strings.Contains(n, sub) {
			return true
		}
	}
	return false
}

// mbrDisk builds an in-memory disk of n sectors (512 bytes) with an MBR.
type mbrDisk []byte

func newMBRDisk(sectors int) mbrDisk {
	d := make(mbrDisk, sectors*512)
	d.sign(0)
	binary.LittleEndian.PutUint32(d[mbrDiskIDOffset:], 0xdeadbeef)
	return d
}

func (d mbrDisk) sign(lba int) { d[lba*512+510], d[lba*512+511] = 0x55, 0xAA }

// entry writes entry slot (0-3) of the MBR/EBR at sector lba.
func (d mbrDisk) entry(lba, slot int, status, typ byte, start, size uint32) {
	b := d[lba*512+mbrTableOffset+slot*mbrEntrySize:]
	b[0], b[4] = status, typ
	binary.LittleEndian.PutUint32(b[8:], start)
	binary.LittleEndian.PutUint32(b[12:], size)
}

func (d mbrDisk) read(t *testing.T) (*Table, error) {
	t.Helper()
	type result struct {
		t   *Table
		err error
	}
	done := make(chan result, 1)
	go func() {
		tab, err := Read(bytes.NewReader(d), int64(len(d)), nil)
		done <- result{tab, err}
	}()
	select {
	case r := <-done:
		return r.t, r.err
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not return within 10s")
		return nil, nil
	}
}

func numbers(tab *Table) []int {
	var n []int
	for _, p := range tab.Partitions {
		n = append(n, p.Number)
	}
	return n
}

func TestHostileMBR(t *testing.T) {
	tests := []struct {
		name  string
		build func(d mbrDisk)
		// want: partition numbers listed; notes that must appear (table
		// or partition, via AllNotes); or an error substring.
		nums    []int
		notes   []string
		err     string
		noTable bool
	}{
		{
			name: "ebr self loop",
			build: func(d mbrDisk) {
				d.entry(0, 0, 0, 0x05, 100, 1000)
				d.sign(100)
				d.entry(100, 0, 0, 0x83, 1, 10)
				d.entry(100, 1, 0, 0x05, 0, 20) // links to itself
			},
			nums:  []int{1, 5},
			notes: []string{"EBR chain loops back to sector 100"},
		},
		{
			name: "ebr chain longer than MaxLogical",
			build: func(d mbrDisk) {
				d.entry(0, 0, 0, 0x0f, 100, 1500)
				for i := 0; i < 300; i++ {
					lba := 100 + 4*i
					d.sign(lba)
					d.entry(lba, 0, 0, 0x83, 1, 2)
					d.entry(lba, 1, 0, 0x05, uint32(4*(i+1)), 4)
				}
			},
			notes: []string{"more than 128 logical partitions"},
		},
		{
			name: "ebr chain of empty records",
			build: func(d mbrDisk) {
				d.entry(0, 0, 0, 0x85, 100, 1500)
				for i := 0; i < 350; i++ {
					lba := 100 + 4*i
					d.sign(lba)
					d.entry(lba, 1, 0, 0x05, uint32(4*(i+1)), 4)
				}
			},
			nums:  []int{1},
			notes: []string{"EBR chain longer than 256 records"},
		},
		{
			name: "ebr link outside extended",
			build: func(d mbrDisk) {
				d.entry(0, 0, 0, 0x05, 100, 50)
				d.sign(100)
				d.entry(100, 0, 0, 0x83, 1, 10)
				d.entry(100, 1, 0, 0x05, 5000, 20)
			},
			nums:  []int{1, 5},
			notes: []string{"links to sector 5100, outside the extended partition"},
		},
		{
			name: "ebr without signature",
			build: func(d mbrDisk) {
				d.entry(0, 0, 0, 0x05, 100, 50)
				d.entry(100, 0, 0, 0x83, 1, 10)
			},
			nums:  []int{1},
			notes: []string{"EBR at sector 100 (byte offset 51200) has no 0x55AA signature"},
		},
		{
			name: "logical outside extended",
			build: func(d mbrDisk) {
				d.entry(0, 0, 0, 0x05, 100, 50)
				d.sign(100)
				d.entry(100, 0, 0, 0x83, 40, 100)
			},
			nums:  []int{1, 5},
			notes: []string{"p5: lies outside extended partition p1"},
		},
		{
			name: "overlapping primaries",
			build: func(d mbrDisk) {
				d.entry(0, 0, 0x80, 0x83, 100, 200)
				d.entry(0, 1, 0, 0x82, 250, 100)
				d.entry(0, 2, 0, 0x83, 120, 10)
			},
			nums:  []int{1, 2, 3},
			notes: []string{"p3: overlaps p1", "p2: overlaps p1"},
		},
		{
			name: "past end",
			build: func(d mbrDisk) {
				d.entry(0, 0, 0, 0x83, 100, 5000)
				d.entry(0, 1, 0, 0x83, 0xfffffff0, 0xffffffff)
			},
			nums:  []int{1, 2},
			notes: []string{"p1: extends past the end of the disk", "p2: starts at byte"},
		},
		{
			name: "zero size entry with a type",
			build: func(d mbrDisk) {
				d.entry(0, 0, 0, 0x83, 100, 0)
				d.entry(0, 1, 0, 0x83, 100, 10)
			},
			nums:  []int{2},
			notes: []string{"MBR entry 1 has type 0x83 but zero size"},
		},
		{
			name: "two extended partitions",
			build: func(d mbrDisk) {
				d.entry(0, 0, 0, 0x05, 100, 50)
				d.entry(0, 1, 0, 0x05, 200, 50)
			},
			nums:  []int{1, 2},
			notes: []string{"p2: second extended partition"},
		},
		{
			name:  "empty MBR is an empty dos table",
			build: func(d mbrDisk) {},
		},
		{
			name:    "no signature",
			build:   func(d mbrDisk) { d[510] = 0 },
			noTable: true,
			err:     "no 0x55AA boot signature at byte offset 510",
		},
		{
			name:    "boot code in the entries",
			build:   func(d mbrDisk) { copy(d[446:], "This is not a bootable disk.  Please insert a bootable floppy") },
			noTable: true,
			err:     "MBR entry 1 (byte offset 446) has status byte 0x54",
		},
		{
			name:  "entry at sector 0",
			build: func(d mbrDisk) { d.entry(0, 0, 0, 0x83, 0, 100) },
			nums:  []int{1},
			notes: []string{"p1: starts at sector 0 and so contains the MBR itself"},
		},
		{
			name: "protective MBR without any GPT",
			build: func(d mbrDisk) {
				d.entry(0, 0, 0, 0xee, 1, 2047)
			},
			err: "protective MBR found but",
		},
		{
			name: "hybrid MBR without any GPT falls back to the MBR",
			build: func(d mbrDisk) {
				d.entry(0, 0, 0, 0xee, 1, 99)
				d.entry(0, 1, 0x80, 0x83, 100, 200)
			},
			nums:  []int{1, 2},
			notes: []string{"GPT unreadable", "showing the hybrid MBR's entries instead"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newMBRDisk(2048)
			tc.build(d)
			tab, err := d.read(t)
			if tc.err != "" || tc.noTable {
				if err == nil {
					t.Fatalf("no error; table %+v", tab)
				}
				if errors.Is(err, ErrNoTable) != tc.noTable {
					t.Errorf("errors.Is(ErrNoTable) = %v, want %v: %v", !tc.noTable, tc.noTable, err)
				}
				if !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %q does not contain %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tab.Scheme != "dos" || tab.ID != "0xdeadbeef" {
				t.Errorf("scheme %s id %s", tab.Scheme, tab.ID)
			}
			if tc.nums != nil && !equalInts(numbers(tab), tc.nums) {
				t.Errorf("partitions %v, want %v", numbers(tab), tc.nums)
			}
			all := tab.AllNotes()
			for _, n := range tc.notes {
				if !hasNote(all, n) {
					t.Errorf("missing note %q in %q", n, all)
				}
			}
			if tc.notes == nil && len(all) != 0 {
				t.Errorf("unexpected notes %q", all)
			}
			for _, p := range tab.Partitions {
				if p.Number > 4+MaxLogical {
					t.Errorf("partition number %d beyond the limit", p.Number)
				}
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// gptImage is the part-gpt fixture in memory, for mutation.
func gptImage(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(fixturetest.Image(t, "part-gpt"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixHeaderCRC recomputes the CRC of the GPT header at byte offset off.
func fixHeaderCRC(img []byte, off int) {
	h := img[off:]
	size := binary.LittleEndian.Uint32(h[gptOffHeaderSize:])
	if size < gptMinHeaderSize || size > 512 {
		size = gptMinHeaderSize
	}
	binary.LittleEndian.PutUint32(h[gptOffHeaderCRC:], 0)
	binary.LittleEndian.PutUint32(h[gptOffHeaderCRC:], crc32.ChecksumIEEE(h[:size]))
}

// fixArrayCRC recomputes the entry-array CRC of the header at off (and then
// the header CRC).
func fixArrayCRC(img []byte, off int) {
	h := img[off:]
	lba := binary.LittleEndian.Uint64(h[gptOffEntryLBA:])
	n := binary.LittleEndian.Uint32(h[gptOffEntryCount:]) * binary.LittleEndian.Uint32(h[gptOffEntrySize:])
	binary.LittleEndian.PutUint32(h[gptOffEntryArrayCRC:], crc32.ChecksumIEEE(img[lba*512:lba*512+uint64(n)]))
	fixHeaderCRC(img, off)
}

func TestHostileGPT(t *testing.T) {
	const primary = 512
	backup := func(img []byte) int { return len(img) - 512 }
	entry := func(img []byte, i int) []byte { return img[1024+128*i:] }
	tests := []struct {
		name   string
		mutate func(img []byte)
		nums   []int
		notes  []string
		err    string
	}{
		{
			name: "primary header CRC",
			mutate: func(img []byte) {
				img[primary+gptOffFirstUsable]++
			},
			nums:  []int{1, 2, 3, 4, 5, 6},
			notes: []string{"primary GPT is damaged (header at LBA 1 (byte offset 512): header CRC32 mismatch", "using the backup header at LBA 81919"},
		},
		{
			name: "primary entry array CRC",
			mutate: func(img []byte) {
				entry(img, 0)[gptEntOffName] = 'X'
			},
			nums:  []int{1, 2, 3, 4, 5, 6},
			notes: []string{"entry array at LBA 2 (byte offset 1024, 16384 bytes) of the header at LBA 1 (byte offset 512): CRC32 mismatch"},
		},
		{
			name: "backup damaged, primary fine",
			mutate: func(img []byte) {
				copy(img[backup(img):], "EFI JUNK")
			},
			nums:  []int{1, 2, 3, 4, 5, 6},
			notes: []string{"backup GPT is damaged (header at LBA 81919 (byte offset 41942528): no \"EFI PART\" signature); the primary is fine and used"},
		},
		{
			name: "both damaged",
			mutate: func(img []byte) {
				img[primary+gptOffFirstUsable]++
				img[backup(img)+gptOffFirstUsable]++
			},
			err: "primary GPT: header at LBA 1 (byte offset 512): header CRC32 mismatch",
		},
		{
			name: "huge entry count in both",
			mutate: func(img []byte) {
				for _, off := range []int{primary, backup(img)} {
					binary.LittleEndian.PutUint32(img[off+gptOffEntryCount:], 0xFFFFFFFF)
					fixHeaderCRC(img, off)
				}
			},
			err: "entry array of 4294967295 × 128 bytes exceeds the 1048576-byte limit (byte offset 592)",
		},
		{
			name: "huge entry size in primary",
			mutate: func(img []byte) {
				binary.LittleEndian.PutUint32(img[primary+gptOffEntrySize:], 0x80000000)
				fixHeaderCRC(img, primary)
			},
			nums:  []int{1, 2, 3, 4, 5, 6},
			notes: []string{"exceeds the 1048576-byte limit"},
		},
		{
			name: "entry size not a multiple of 128",
			mutate: func(img []byte) {
				binary.LittleEndian.PutUint32(img[primary+gptOffEntrySize:], 130)
				fixHeaderCRC(img, primary)
			},
			nums:  []int{1, 2, 3, 4, 5, 6},
			notes: []string{"partition entry size 130 is not a multiple of 128 (byte offset 596)"},
		},
		{
			name: "entry array past the end",
			mutate: func(img []byte) {
				binary.LittleEndian.PutUint64(img[primary+gptOffEntryLBA:], 1<<40)
				fixHeaderCRC(img, primary)
			},
			nums:  []int{1, 2, 3, 4, 5, 6},
			notes: []string{"entry array at LBA 1099511627776 (16384 bytes) lies beyond the end of the disk"},
		},
		{
			name: "header size absurd",
			mutate: func(img []byte) {
				binary.LittleEndian.PutUint32(img[primary+gptOffHeaderSize:], 0xFFFFFFFF)
			},
			nums:  []int{1, 2, 3, 4, 5, 6},
			notes: []string{"header size 4294967295 out of range 92-512 (byte offset 524)"},
		},
		{
			name: "header at the wrong LBA",
			mutate: func(img []byte) {
				binary.LittleEndian.PutUint64(img[primary+gptOffMyLBA:], 7)
				fixHeaderCRC(img, primary)
			},
			nums:  []int{1, 2, 3, 4, 5, 6},
			notes: []string{"header says it is at LBA 7 (byte offset 536)"},
		},
		{
			name: "overlapping, inverted, past-end and unaddressable entries",
			mutate: func(img []byte) {
				for _, arr := range []int{1024, backup(img) - 32*512} {
					// p2 overlaps p1; p3 is inverted; p4 reaches past the end;
					// p5 starts beyond int64 bytes.
					binary.LittleEndian.PutUint64(img[arr+128+gptEntOffFirst:], 3000)
					binary.LittleEndian.PutUint64(img[arr+256+gptEntOffLast:], 10)
					binary.LittleEndian.PutUint64(img[arr+384+gptEntOffLast:], 1<<30)
					binary.LittleEndian.PutUint64(img[arr+512+gptEntOffFirst:], 1<<62)
					binary.LittleEndian.PutUint64(img[arr+512+gptEntOffLast:], 1<<63)
				}
				fixArrayCRC(img, primary)
				fixArrayCRC(img, backup(img))
			},
			nums: []int{1, 2, 4, 6},
			notes: []string{
				"p2: overlaps p1",
				"GPT entry 3: last LBA 10 is before first LBA 16384; ignored",
				"p4: extends past the end of the disk",
				"p4: sectors 32768-1073741824 lie outside the usable area 2048-81886",
				"GPT entry 5: sectors 4611686018427387904-9223372036854775808 are far beyond the end of the disk; ignored",
			},
		},
		{
			name: "stale GPT behind an MBR",
			mutate: func(img []byte) {
				clear(img[446:510])
				img[446+4] = 0x83
				binary.LittleEndian.PutUint32(img[446+8:], 2048)
				binary.LittleEndian.PutUint32(img[446+12:], 4096)
			},
			nums:  []int{1},
			notes: []string{"a valid GPT is also present but the MBR has no protective 0xEE entry"},
		},
		{
			name: "hybrid MBR entry matching no GPT partition",
			mutate: func(img []byte) {
				b := img[446+16:]
				b[0], b[4] = 0x80, 0x83
				binary.LittleEndian.PutUint32(b[8:], 4096)
				binary.LittleEndian.PutUint32(b[12:], 999)
			},
			nums:  []int{1, 2, 3, 4, 5, 6},
			notes: []string{"hybrid MBR entry 2 (sectors 4096+999, type 83) matches no GPT partition"},
		},
		{
			name: "primary and backup differ",
			mutate: func(img []byte) {
				arr := backup(img) - 32*512
				img[arr+gptEntOffName] = 'B' // "bios" -> "Bios" in the backup only
				fixArrayCRC(img, backup(img))
			},
			nums:  []int{1, 2, 3, 4, 5, 6},
			notes: []string{"primary and backup GPT differ; using the primary"},
		},
		{
			name:   "sector 0 wiped",
			mutate: func(img []byte) { clear(img[:512]) },
			nums:   []int{1, 2, 3, 4, 5, 6},
			notes:  []string{"no protective MBR (no 0x55AA boot signature at byte offset 510); GPT read anyway"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := gptImage(t)
			tc.mutate(img)
			tab, err := mbrDisk(img).read(t)
			if tc.err != "" {
				if err == nil {
					t.Fatalf("no error; table %+v", tab)
				}
				if errors.Is(err, ErrNoTable) {
					t.Errorf("damaged GPT reported as no table: %v", err)
				}
				if !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %q does not contain %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !equalInts(numbers(tab), tc.nums) {
				t.Errorf("partitions %v, want %v", numbers(tab), tc.nums)
			}
			all := tab.AllNotes()
			for _, n := range tc.notes {
				if !hasNote(all, n) {
					t.Errorf("missing note %q in %q", n, all)
				}
			}
		})
	}
}

// errReader fails every read after the first n bytes.
type errReader struct {
	r io.ReaderAt
	n int64
}

func (e errReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > e.n {
		return 0, errors.New("injected I/O error")
	}
	return e.r.ReadAt(p, off)
}

func TestReadErrors(t *testing.T) {
	img := gptImage(t)
	// Only sector 0 readable: the GPT cannot be read, and the error says
	// so rather than claiming there is no table.
	_, err := Read(errReader{bytes.NewReader(img), 512}, int64(len(img)), nil)
	if err == nil || errors.Is(err, ErrNoTable) || !strings.Contains(err.Error(), "injected I/O error") {
		t.Errorf("I/O error not reported: %v", err)
	}
	if _, err := Read(bytes.NewReader(img[:100]), 100, nil); !errors.Is(err, ErrNoTable) {
		t.Errorf("100-byte disk: %v", err)
	}
	if _, err := Read(bytes.NewReader(img), int64(len(img)), &Options{SectorSize: 600}); err == nil {
		t.Errorf("sector size 600 accepted")
	}
	// A size larger than the data: reads past the real end fail cleanly.
	if _, err := Read(bytes.NewReader(img[:4096]), 1<<40, nil); err == nil {
		t.Errorf("lying size: no error")
	}
}

func TestDecodeName(t *testing.T) {
	enc := func(s ...uint16) []byte {
		b := make([]byte, gptEntNameLen)
		for i, c := range s {
			binary.LittleEndian.PutUint16(b[2*i:], c)
		}
		return b
	}
	for _, tc := range []struct {
		in   []byte
		want string
	}{
		{enc('r', 'o', 'o', 't'), "root"},
		{enc(0xD83D, 0xDC27, ' ', 0x2603), "\U0001F427 \u2603"}, // surrogate pair, BMP
		{enc(0xD83D, 'x'), "\uFFFDx"},                           // lone surrogate
		{enc('a', 0, 'b'), "a"},                                 // NUL ends the name
		{enc(), ""},
	} {
		if got := decodeName(tc.in); got != tc.want {
			t.Errorf("decodeName(% x) = %q, want %q", tc.in[:8], got, tc.want)
		}
	}
	full := make([]uint16, 36)
	for i := range full {
		full[i] = 'x'
	}
	if got := decodeName(enc(full...)); got != strings.Repeat("x", 36) {
		t.Errorf("36-character name: %q", got)
	}
}

// TestGPT4KPrimaryGone: with the primary header's signature gone, the sector
// size comes from the backup header in the last 4096-byte sector.
func TestGPT4KPrimaryGone(t *testing.T) {
	img, err := os.ReadFile(fixturetest.Image(t, "part-gpt-4k"))
	if err != nil {
		t.Fatal(err)
	}
	copy(img[4096:], "NOT PART")
	tab, err := mbrDisk(img).read(t)
	if err != nil {
		t.Fatal(err)
	}
	compareTable(t, tab, loadSfdisk(t, "part-gpt-4k.sfdisk.json"))
	if !hasNote(tab.Notes, "primary GPT is damaged (header at LBA 1 (byte offset 4096): no \"EFI PART\" signature); using the backup header at LBA 16383 (byte offset 67104768)") {
		t.Errorf("notes %q", tab.Notes)
	}
}
