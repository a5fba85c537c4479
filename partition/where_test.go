package partition

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// located is what every located error implements (internal/where,
// ext.CorruptError).
type located interface{ VolumeOffset() int64 }

// TestErrorsCarryOffset (issue 12.5): a damaged GPT is reported with the
// byte offset of the structure that failed: the entry array (LBA 2 =
// byte 1024 of the part-gpt fixture) for a bad array CRC, the header
// field for a bad field, and Table.Damage holds the error behind the
// "primary GPT is damaged" note.
func TestErrorsCarryOffset(t *testing.T) {
	img := gptImage(t)
	backup := len(img) - 512
	// Entry 1's name: byte 1024+56, inside the primary array.
	img[1024+gptEntOffName] = 'X'
	tab, err := Read(bytes.NewReader(img), int64(len(img)), nil)
	if err != nil {
		t.Fatal(err)
	}
	var l located
	if len(tab.Damage) != 1 || !errors.As(tab.Damage[0], &l) || l.VolumeOffset() != 1024 {
		t.Fatalf("Damage = %v, want one error at byte 1024", tab.Damage)
	}
	if !hasNote(tab.Notes, tab.Damage[0].Error()) {
		t.Errorf("the damage %q is not in a note: %q", tab.Damage[0], tab.Notes)
	}
	// The backup array too: both copies fail, Read fails, and the error
	// names the primary's array.
	bl := int(le64(img[backup+gptOffEntryLBA:]))
	img[bl*512+gptEntOffName] = 'Y'
	_, err = Read(bytes.NewReader(img), int64(len(img)), nil)
	if err == nil || !errors.As(err, &l) || l.VolumeOffset() != 1024 {
		t.Fatalf("both arrays bad: %v, want an error at byte 1024", err)
	}
	// A header field: the entry size at byte 512+84.
	img = gptImage(t)
	img[512+gptOffEntrySize] = 100
	fixHeaderCRC(img, 512)
	tab, err = Read(bytes.NewReader(img), int64(len(img)), nil)
	if err != nil || len(tab.Damage) != 1 || !errors.As(tab.Damage[0], &l) || l.VolumeOffset() != 512+gptOffEntrySize {
		t.Fatalf("entry size: %v %v, want damage at byte %d", err, tab.Damage, 512+gptOffEntrySize)
	}
}

func le64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// ebrChain reads the sfdisk-made part-mbr-logical fixture and walks its
// EBR chain by the documented layout (package doc of mbr.go: entries at
// byte 446, 16 bytes each, LBA at entry byte 8; an EBR's link start is
// relative to the extended partition, whose start sfdisk -J gives). It
// returns the image, the EBRs' byte offsets and the byte of each EBR's
// link entry (-1 for the last).
func ebrChain(t *testing.T) (img []byte, ebrs, links []int64) {
	t.Helper()
	path := fixturetest.Image(t, "part-mbr-logical")
	out, err := exec.Command("sfdisk", "-J", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	var sf sfdiskJSON
	if err := json.Unmarshal(out, &sf); err != nil {
		t.Fatal(err)
	}
	ext := int64(-1)
	for _, p := range sf.PartitionTable.Partitions {
		if p.Type == "5" || p.Type == "f" || p.Type == "85" {
			ext = int64(p.Start) * 512
		}
	}
	if ext < 0 {
		t.Fatalf("sfdisk -J lists no extended partition: %s", out)
	}
	if img, err = os.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	for e := ext; len(ebrs) < 16; {
		ebrs = append(ebrs, e)
		link := int64(-1)
		for i := int64(0); i < 4; i++ {
			at := e + 446 + 16*i
			if typ := img[at+4]; binary.LittleEndian.Uint32(img[at+12:]) != 0 && (typ == 5 || typ == 0xf || typ == 0x85) {
				link = at
				break
			}
		}
		links = append(links, link)
		if link < 0 {
			break
		}
		e = ext + int64(binary.LittleEndian.Uint32(img[link+8:]))*512
	}
	if len(ebrs) < 3 {
		t.Fatalf("only %d EBRs", len(ebrs))
	}
	return img, ebrs, links
}

// TestEBRChainLocated (issue 12.5): damage that stops the EBR chain is in
// Table.Damage, located at the entry holding the bad link (or the EBR's
// signature), and its text is a note.
func TestEBRChainLocated(t *testing.T) {
	for _, c := range []struct {
		name string
		bad  func(img []byte, ebrs, links []int64) int64 // returns the expected offset
	}{
		{"link past the disk", func(img []byte, ebrs, links []int64) int64 {
			binary.LittleEndian.PutUint32(img[links[0]+8:], uint32(len(img)/512))
			return links[0]
		}},
		{"loop", func(img []byte, ebrs, links []int64) int64 {
			// EBR 3 links back to EBR 2.
			copy(img[links[2]+8:links[2]+12], img[links[0]+8:links[0]+12])
			return links[2]
		}},
		{"signature", func(img []byte, ebrs, links []int64) int64 {
			img[ebrs[1]+510] = 0
			return ebrs[1] + 510
		}},
	} {
		img, ebrs, links := ebrChain(t)
		want := c.bad(img, ebrs, links)
		tab, err := Read(bytes.NewReader(img), int64(len(img)), nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var l located
		if len(tab.Damage) != 1 || !errors.As(tab.Damage[0], &l) || l.VolumeOffset() != want {
			t.Errorf("%s: Damage = %v, want one error at byte %d", c.name, tab.Damage, want)
			continue
		}
		if !hasNote(tab.Notes, tab.Damage[0].Error()) {
			t.Errorf("%s: the damage %q is not in a note: %q", c.name, tab.Damage[0], tab.Notes)
		}
	}
}

// TestEntryOffset (issue 12.5): every partition of the sfdisk-made
// part-mbr-logical and part-gpt fixtures names the table entry that
// describes it: read there by the documented layouts (MBR/EBR: LBA at
// entry byte 8, relative to the EBR for a logical; GPT: first LBA at
// entry byte 32), it gives the partition's start.
func TestEntryOffset(t *testing.T) {
	for _, name := range []string{"part-mbr-logical", "part-gpt"} {
		img, err := os.ReadFile(fixturetest.Image(t, name))
		if err != nil {
			t.Fatal(err)
		}
		tab, err := Read(bytes.NewReader(img), int64(len(img)), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range tab.Partitions {
			e := p.EntryOffset
			var start uint64
			switch {
			case tab.Scheme == SchemeGPT:
				start = binary.LittleEndian.Uint64(img[e+32:])
			case p.Number > 4: // the EBR holding the entry is the sector it is in
				start = uint64(e/512) + uint64(binary.LittleEndian.Uint32(img[e+8:]))
			default:
				start = uint64(binary.LittleEndian.Uint32(img[e+8:]))
			}
			if e <= 0 || start != p.StartSector {
				t.Errorf("%s p%d: entry at byte %d gives start %d, want %d", name, p.Number, e, start, p.StartSector)
			}
		}
	}
}
