package partition

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// sfdiskJSON is what sfdisk -J prints.
type sfdiskJSON struct {
	PartitionTable struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		FirstLBA   uint64 `json:"firstlba"`
		LastLBA    uint64 `json:"lastlba"`
		SectorSize int    `json:"sectorsize"`
		Partitions []struct {
			Node     string `json:"node"`
			Start    uint64 `json:"start"`
			Size     uint64 `json:"size"`
			Type     string `json:"type"`
			UUID     string `json:"uuid"`
			Name     string `json:"name"`
			Attrs    string `json:"attrs"`
			Bootable bool   `json:"bootable"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

var trailingNumber = regexp.MustCompile(`[0-9]+$`)

func loadSfdisk(t *testing.T, golden string) sfdiskJSON {
	t.Helper()
	var g sfdiskJSON
	if err := json.Unmarshal(fixturetest.Golden(t, golden), &g); err != nil {
		t.Fatalf("golden %s: %v", golden, err)
	}
	if g.PartitionTable.Label == "" || len(g.PartitionTable.Partitions) == 0 {
		t.Fatalf("golden %s has no partitions", golden)
	}
	return g
}

// loadKV reads a blkid -o export golden.
func loadKV(t *testing.T, golden string) map[string]string {
	t.Helper()
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(fixturetest.Golden(t, golden)))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok {
			kv[k] = v
		}
	}
	return kv
}

func readFixture(t *testing.T, name string, opts *Options) *Table {
	t.Helper()
	path := fixturetest.Image(t, name)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	tab, err := Read(f, fi.Size(), opts)
	if err != nil {
		t.Fatalf("Read(%s): %v", name, err)
	}
	return tab
}

// comparePartitions checks parts against sfdisk's partition list.
func comparePartitions(t *testing.T, label string, ss int, parts []Partition, g sfdiskJSON) {
	t.Helper()
	gp := g.PartitionTable.Partitions
	if len(parts) != len(gp) {
		t.Errorf("%s: %d partitions, sfdisk lists %d", label, len(parts), len(gp))
	}
	for i := 0; i < len(parts) && i < len(gp); i++ {
		p, w := parts[i], gp[i]
		num, _ := strconv.Atoi(trailingNumber.FindString(w.Node))
		if p.Number != num {
			t.Errorf("%s: partition %d is numbered %d, sfdisk says %d (%s)", label, i, p.Number, num, w.Node)
		}
		if p.StartSector != w.Start || p.Sectors != w.Size {
			t.Errorf("%s p%d: sectors %d+%d, sfdisk %d+%d", label, p.Number, p.StartSector, p.Sectors, w.Start, w.Size)
		}
		if p.Start != int64(w.Start)*int64(ss) || p.Size != int64(w.Size)*int64(ss) {
			t.Errorf("%s p%d: bytes %d+%d, sfdisk %d+%d", label, p.Number, p.Start, p.Size, w.Start*uint64(ss), w.Size*uint64(ss))
		}
		if p.Type != w.Type {
			t.Errorf("%s p%d: type %q, sfdisk %q", label, p.Number, p.Type, w.Type)
		}
		if p.UUID != w.UUID {
			t.Errorf("%s p%d: uuid %q, sfdisk %q", label, p.Number, p.UUID, w.UUID)
		}
		if p.Name != w.Name {
			t.Errorf("%s p%d: name %q, sfdisk %q", label, p.Number, p.Name, w.Name)
		}
		if got := AttrString(p.Attrs); got != w.Attrs {
			t.Errorf("%s p%d: attrs %q, sfdisk %q", label, p.Number, got, w.Attrs)
		}
		if p.Bootable != w.Bootable {
			t.Errorf("%s p%d: bootable %v, sfdisk %v", label, p.Number, p.Bootable, w.Bootable)
		}
		if p.TypeName == "" {
			t.Errorf("%s p%d: no type name for %s", label, p.Number, p.Type)
		}
		wantContainer := g.PartitionTable.Label == "dos" && (w.Type == "5" || w.Type == "f" || w.Type == "85")
		if p.Container != wantContainer {
			t.Errorf("%s p%d: container %v, want %v", label, p.Number, p.Container, wantContainer)
		}
	}
}

func compareTable(t *testing.T, tab *Table, g sfdiskJSON) {
	t.Helper()
	pt := g.PartitionTable
	if tab.Scheme != pt.Label || tab.ID != pt.ID || tab.SectorSize != pt.SectorSize {
		t.Errorf("table %s %s %d, sfdisk %s %s %d", tab.Scheme, tab.ID, tab.SectorSize, pt.Label, pt.ID, pt.SectorSize)
	}
	if tab.FirstLBA != pt.FirstLBA || tab.LastLBA != pt.LastLBA {
		t.Errorf("usable LBAs %d-%d, sfdisk %d-%d", tab.FirstLBA, tab.LastLBA, pt.FirstLBA, pt.LastLBA)
	}
	comparePartitions(t, "partitions", tab.SectorSize, tab.Partitions, g)
}

// compareBlkid checks the table against blkid -p of the whole image (PTTYPE,
// PTUUID), and that each filesystem blkid found at a partition's offset
// carries, at the byte offset we computed for that partition, the UUID blkid
// reported.
func compareBlkid(t *testing.T, name string, tab *Table) {
	t.Helper()
	kv := loadKV(t, name+".blkid.txt")
	if kv["PTTYPE"] != tab.Scheme {
		t.Errorf("blkid PTTYPE %q, we say %q", kv["PTTYPE"], tab.Scheme)
	}
	wantID := strings.ToLower(strings.TrimPrefix(tab.ID, "0x"))
	if wantID == "00000000" {
		wantID = "" // blkid leaves out a zero MBR disk identifier
	}
	if kv["PTUUID"] != wantID {
		t.Errorf("blkid PTUUID %q, we say %q", kv["PTUUID"], tab.ID)
	}
	img, err := os.ReadFile(fixturetest.Image(t, name))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, p := range tab.Partitions {
		path := fixturetest.Dir() + "/golden/" + name + ".blkid-p" + strconv.Itoa(p.Number) + ".txt"
		if _, err := os.Stat(path); err != nil {
			continue
		}
		fs := loadKV(t, name+".blkid-p"+strconv.Itoa(p.Number)+".txt")
		got := fsUUID(img, p.Start, fs["TYPE"], fs["VERSION"])
		if got == "" || !strings.EqualFold(got, fs["UUID"]) {
			t.Errorf("p%d at byte %d: %s UUID %q, blkid found %q", p.Number, p.Start, fs["TYPE"], got, fs["UUID"])
		}
		checked++
	}
	if checked == 0 {
		t.Errorf("%s: no per-partition blkid goldens checked", name)
	}
}

// fsUUID reads the UUID a filesystem of the given blkid TYPE keeps, as blkid
// formats it, from the filesystem starting at byte off of img.
func fsUUID(img []byte, off int64, typ, version string) string {
	at := func(o int64, n int) []byte {
		if off+o < 0 || off+o+int64(n) > int64(len(img)) {
			return nil
		}
		return img[off+o : off+o+int64(n)]
	}
	uuid := func(b []byte) string {
		if b == nil {
			return ""
		}
		h := string(hexs(b))
		return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
	}
	switch typ {
	case "ext2", "ext3", "ext4":
		if m := at(1024+0x38, 2); m == nil || binary.LittleEndian.Uint16(m) != 0xEF53 {
			return ""
		}
		return uuid(at(1024+0x68, 16))
	case "swap":
		if s := at(4096-10, 10); string(s) != "SWAPSPACE2" {
			return ""
		}
		return uuid(at(1024+12, 16))
	case "vfat":
		o := int64(39)
		if version == "FAT32" {
			o = 67
		}
		b := at(o, 4)
		if b == nil {
			return ""
		}
		v := binary.LittleEndian.Uint32(b)
		return strings.ToUpper(strconv.FormatUint(uint64(v>>16|0x10000), 16)[1:] + "-" + strconv.FormatUint(uint64(v&0xffff|0x10000), 16)[1:])
	}
	return ""
}

func hexs(b []byte) []byte {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return out
}

func TestMBRLogical(t *testing.T) {
	tab := readFixture(t, "part-mbr-logical", nil)
	compareTable(t, tab, loadSfdisk(t, "part-mbr-logical.sfdisk.json"))
	compareBlkid(t, "part-mbr-logical", tab)
	if n := tab.AllNotes(); len(n) != 0 {
		t.Errorf("clean table has notes: %q", n)
	}
	if tab.ProtectiveMBR || tab.HybridMBR || tab.MBR != nil {
		t.Errorf("dos table reported as protective/hybrid")
	}
}

func TestGPT(t *testing.T) {
	tab := readFixture(t, "part-gpt", nil)
	compareTable(t, tab, loadSfdisk(t, "part-gpt.sfdisk.json"))
	compareBlkid(t, "part-gpt", tab)
	if n := tab.AllNotes(); len(n) != 0 {
		t.Errorf("clean table has notes: %q", n)
	}
	if !tab.ProtectiveMBR || tab.HybridMBR || len(tab.MBR) != 1 || tab.MBR[0].Type != "ee" {
		t.Errorf("protective MBR not reported: protective %v hybrid %v MBR %+v", tab.ProtectiveMBR, tab.HybridMBR, tab.MBR)
	}
	// An explicit sector size that matches changes nothing.
	tab2 := readFixture(t, "part-gpt", &Options{SectorSize: 512})
	compareTable(t, tab2, loadSfdisk(t, "part-gpt.sfdisk.json"))
}

func TestGPT4K(t *testing.T) {
	tab := readFixture(t, "part-gpt-4k", nil)
	compareTable(t, tab, loadSfdisk(t, "part-gpt-4k.sfdisk.json"))
	if tab.SectorSize != 4096 {
		t.Errorf("sector size %d, want 4096", tab.SectorSize)
	}
	// blkid read the loop device with 4096-byte sectors; the per-partition
	// golden was taken from the image file at the byte offset.
	compareBlkid(t, "part-gpt-4k", tab)
	if n := tab.AllNotes(); len(n) != 0 {
		t.Errorf("clean table has notes: %q", n)
	}
}

func TestGPTBadPrimary(t *testing.T) {
	tab := readFixture(t, "part-gpt-badprimary", nil)
	// The golden was captured before the damage.
	compareTable(t, tab, loadSfdisk(t, "part-gpt-badprimary.sfdisk.json"))
	// And sfdisk agrees after it (it falls back too).
	compareTable(t, tab, loadSfdisk(t, "part-gpt-badprimary.after.sfdisk.json"))
	if !strings.Contains(string(fixturetest.Golden(t, "part-gpt-badprimary.after.sfdisk.stderr")), "primary GPT table is corrupt") {
		t.Errorf("sfdisk did not see the damage; the fixture is wrong")
	}
	found := false
	for _, n := range tab.Notes {
		if strings.Contains(n, "primary GPT is damaged") && strings.Contains(n, "byte offset 512") &&
			strings.Contains(n, "CRC32 mismatch") && strings.Contains(n, "using the backup header at LBA 65535") {
			found = true
		}
	}
	if !found {
		t.Errorf("no note about the damaged primary: %q", tab.Notes)
	}
}

func TestHybrid(t *testing.T) {
	tab := readFixture(t, "part-hybrid", nil)
	compareTable(t, tab, loadSfdisk(t, "part-hybrid.sfdisk.json"))
	if !tab.HybridMBR || tab.ProtectiveMBR {
		t.Errorf("hybrid %v protective %v, want hybrid", tab.HybridMBR, tab.ProtectiveMBR)
	}
	comparePartitions(t, "hybrid MBR", 512, tab.MBR, loadSfdisk(t, "part-hybrid.mbr.sfdisk.json"))
	if n := tab.AllNotes(); len(n) != 1 || !strings.HasPrefix(n[0], "hybrid MBR:") {
		t.Errorf("want only the hybrid note, got %q", n)
	}
	compareBlkid(t, "part-hybrid", tab)
}

// TestBareFilesystems: a filesystem written to a whole disk has 0x55AA at
// byte 510 but no partition table. blkid reports the filesystem and no PTTYPE
// for FAT and NTFS. For exFAT, util-linux 2.38's blkid reports TYPE=exfat and
// also PTTYPE=dos with no partitions (it lacks an exFAT check in its dos
// prober); we deliberately treat exFAT like FAT and NTFS, since an empty "dos"
// table would hide the filesystem from inspect.
func TestBareFilesystems(t *testing.T) {
	for _, tc := range []struct{ name, typ, why string }{
		{"part-bare-fat", "vfat", "FAT"},
		{"part-bare-fat32", "vfat", "FAT"},
		{"part-bare-ntfs", "ntfs", "NTFS"},
		{"part-bare-exfat", "exfat", "exFAT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv := loadKV(t, tc.name+".blkid.txt")
			if kv["TYPE"] != tc.typ || (kv["PTTYPE"] != "" && tc.typ != "exfat") {
				t.Fatalf("golden: blkid says TYPE=%q PTTYPE=%q; expected a bare %s", kv["TYPE"], kv["PTTYPE"], tc.typ)
			}
			b, err := os.ReadFile(fixturetest.Image(t, tc.name))
			if err != nil {
				t.Fatal(err)
			}
			if b[510] != 0x55 || b[511] != 0xAA {
				t.Fatalf("fixture's boot sector lacks 0x55AA; the test would prove nothing")
			}
			tab, err := Read(bytes.NewReader(b), int64(len(b)), nil)
			if !errors.Is(err, ErrNoTable) {
				t.Fatalf("Read: %v, %+v; want ErrNoTable", err, tab)
			}
			if !strings.Contains(err.Error(), "bare "+tc.why+" filesystem") {
				t.Errorf("error does not say why: %v", err)
			}
		})
	}
}

// TestTypeNames checks the type-name tables against sfdisk's own lists.
func TestTypeNames(t *testing.T) {
	parse := func(golden string) map[string]string {
		m := map[string]string{}
		for _, line := range strings.Split(string(fixturetest.Golden(t, golden)), "\n")[2:] {
			code, name, ok := strings.Cut(strings.TrimSpace(line), "  ")
			if ok {
				m[code] = strings.TrimSpace(name)
			}
		}
		return m
	}
	dos := parse("part-types-dos.txt")
	if len(dos) < 50 || len(dos) != len(mbrTypeNames) {
		t.Errorf("sfdisk lists %d MBR types, we have %d", len(dos), len(mbrTypeNames))
	}
	for code, name := range dos {
		v, err := strconv.ParseUint(code, 16, 8)
		if err != nil {
			t.Fatalf("golden MBR code %q: %v", code, err)
		}
		if got := MBRTypeName(byte(v)); got != name {
			t.Errorf("MBR type %s: %q, sfdisk %q", code, got, name)
		}
	}
	gpt := parse("part-types-gpt.txt")
	if len(gpt) < 100 || len(gpt) != len(gptTypeNames) {
		t.Errorf("sfdisk lists %d GPT types, we have %d", len(gpt), len(gptTypeNames))
	}
	for guid, name := range gpt {
		if got := GPTTypeName(strings.ToLower(guid)); got != name {
			t.Errorf("GPT type %s: %q, sfdisk %q", guid, got, name)
		}
	}
}

func TestMBR4K(t *testing.T) {
	g := loadSfdisk(t, "part-mbr-4k.sfdisk.json")
	if g.PartitionTable.SectorSize != 4096 {
		t.Fatalf("golden sector size %d", g.PartitionTable.SectorSize)
	}
	tab := readFixture(t, "part-mbr-4k", &Options{SectorSize: 4096})
	compareTable(t, tab, g)
	compareBlkid(t, "part-mbr-4k", tab)
	if n := tab.AllNotes(); len(n) != 0 {
		t.Errorf("clean table has notes: %q", n)
	}
	// Nothing in an MBR records the sector size: without the option the
	// table is read in 512-byte units, and a note says 4096 fits better.
	tab = readFixture(t, "part-mbr-4k", nil)
	if tab.SectorSize != 512 || !hasNote(tab.Notes, "probably has 4096-byte sectors") {
		t.Errorf("no 4K hint: sector size %d, notes %q", tab.SectorSize, tab.Notes)
	}
}

func TestForcedSectorSizeMismatch(t *testing.T) {
	path := fixturetest.Image(t, "part-gpt-4k")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	_, err = Read(f, fi.Size(), &Options{SectorSize: 512})
	if err == nil || !strings.Contains(err.Error(), "a GPT header is present for 4096-byte sectors; 512 was asked for") {
		t.Errorf("4K GPT read as 512: %v", err)
	}
}

// TestISO reads the tables xorriso writes into hybrid ISO images.
func TestISO(t *testing.T) {
	for _, name := range []string{"part-iso-mbr", "part-iso-gpt"} {
		t.Run(name, func(t *testing.T) {
			tab := readFixture(t, name, nil)
			compareTable(t, tab, loadSfdisk(t, name+".sfdisk.json"))
			compareBlkid(t, name, tab)
			notes := tab.AllNotes()
			switch tab.Scheme {
			case "dos":
				// xorriso's partition 1 starts at sector 0.
				if len(notes) != 1 || !strings.HasPrefix(notes[0], "p1: starts at sector 0") {
					t.Errorf("notes %q", notes)
				}
			case "gpt":
				if len(notes) != 0 || !tab.ProtectiveMBR {
					t.Errorf("notes %q, protective MBR %v", notes, tab.ProtectiveMBR)
				}
			}
		})
	}
}
