package partition

import (
	"bytes"
	"errors"
	"testing"
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
