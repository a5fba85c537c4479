package otherfs

import (
	"encoding/binary"
	"os"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// fatKind accepts the real FAT32 boot sector (mkfs.vfat) and refuses the
// layouts go-diskfs would read blindly, each found by FuzzOtherFS: a FAT32
// with a 16-bit FAT size besides its 32-bit one (go-diskfs uses the 32-bit
// one, here 2.9 GB over a 34 MB volume), a FAT far larger than its
// clusters need, too many FAT copies.
func TestFatKindRefusals(t *testing.T) {
	f, err := os.Open(fixturetest.Image(t, "otherfs-fat32"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	good := make([]byte, 512)
	if _, err := f.ReadAt(good, 0); err != nil {
		t.Fatal(err)
	}
	if k, err := fatKind(good, st.Size()); err != nil || k != FAT32 {
		t.Fatalf("mkfs.vfat's FAT32: %v %v", k, err)
	}
	le := binary.LittleEndian
	for _, c := range []struct {
		name  string
		patch func(b []byte)
		want  string
	}{
		{"16-bit FAT size on FAT32", func(b []byte) {
			// As the fuzzer had it: a total sector count past the volume
			// (a truncated copy is allowed that) keeps it FAT32.
			le.PutUint16(b[bpbSectorsPerFAT16:], 8192)
			le.PutUint32(b[bpbTotalSectors32:], 1203568640)
		}, "16-bit FAT size"},
		{"FAT too large for its clusters", func(b []byte) {
			le.PutUint32(b[bpbSectorsPerFAT32:], le.Uint32(b[bpbSectorsPerFAT32:])*8)
		}, "which need"},
		{"5 FAT copies", func(b []byte) { b[bpbNumFATs] = 5 }, "FAT copies"},
	} {
		b := append([]byte(nil), good...)
		c.patch(b)
		if _, err := fatKind(b, st.Size()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}

// checkSquashfs lets the compressions go-diskfs decodes safely through
// (the mksquashfs fixture is gzip) and refuses LZO, whose decoder looped
// forever on a damaged block FuzzOtherFS made, and lzma, which it lacks.
func TestSquashfsCompression(t *testing.T) {
	f, err := os.Open(fixturetest.Image(t, "otherfs-squashfs"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	sb := make([]byte, sqSuperblockSize)
	if _, err := f.ReadAt(sb, 0); err != nil {
		t.Fatal(err)
	}
	for c, want := range map[uint16]string{1: "", 4: "", 5: "", 6: "", 2: "lzma", 3: "LZO", 7: "unknown"} {
		b := append([]byte(nil), sb...)
		binary.LittleEndian.PutUint16(b[sqCompression:], c)
		err := checkSquashfs(b, st.Size())
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("compression %d: %v, want %q", c, err, want)
		}
	}
}
