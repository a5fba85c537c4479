package vhdx

import (
	"bytes"
	"crypto/rand"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/imgtool/imgtool/internal/where"
)

// Issue 12.5: VHDX damage is reported at its byte in the file. The image
// is made by qemu-img; expected offsets are read from it through the
// layout of [MS-VHDX]: region table 1 at 192 KiB (16-byte header, then
// 32-byte entries: GUID, file offset u64, length u32, flags u32), the
// metadata table's entries at its byte 32 (GUID, offset u32, length u32),
// 8-byte BAT entries with the file offset in MiB in bits 20-63.

func vhdxImage(t *testing.T) (string, []byte) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw")
	data := make([]byte, 4<<20)
	rand.Read(data)
	if err := os.WriteFile(raw, data, 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "d.vhdx")
	if out, err := exec.Command("qemu-img", "convert", "-O", "vhdx", raw, p).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, out)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, b
}

// region returns the byte of region table 1's entry for guid and the
// region's file offset.
func region(t *testing.T, b []byte, guid [16]byte) (entry, off int64) {
	t.Helper()
	n := int64(le.Uint32(b[region1Off+8:]))
	for i := int64(0); i < n; i++ {
		e := region1Off + 16 + 32*i
		if bytes.Equal(b[e:e+16], guid[:]) {
			return e, int64(le.Uint64(b[e+16:]))
		}
	}
	t.Fatalf("no region %x", guid)
	return 0, 0
}

func fixRegionCRC(b []byte) {
	t := b[region1Off : region1Off+regionSize]
	clear(t[4:8])
	le.PutUint32(t[4:], crc32.Checksum(t, crc32.MakeTable(crc32.Castagnoli)))
}

func wantAt(t *testing.T, what string, err error, path string, off int64) {
	t.Helper()
	if p, o := where.FileOffset(err); p != path || o != off {
		t.Errorf("%s: %v: located at %q byte %d, want %q byte %d", what, err, p, o, path, off)
	}
}

// TestBATEntryLocated: BAT entry 0 (block 0) is pointed past the end of
// the file; a read of virtual byte 0 names the entry's byte.
func TestBATEntryLocated(t *testing.T) {
	p, b := vhdxImage(t)
	_, bat := region(t, b, guidBAT)
	if b[bat]&7 != BlockFullyPresent {
		t.Fatalf("block 0 is not present: BAT entry %#x", le.Uint64(b[bat:]))
	}
	le.PutUint64(b[bat:], uint64(len(b)/mib+64)<<20|BlockFullyPresent)
	d, err := OpenNamed(bytes.NewReader(b), int64(len(b)), p)
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.ReadAt(make([]byte, 4096), 0)
	wantAt(t, "BAT entry", err, p, bat)
}

// TestRegionTableLocated: the BAT's region table entry is pointed past
// the end of the file (CRC made good again): the open names the entry.
func TestRegionTableLocated(t *testing.T) {
	p, b := vhdxImage(t)
	ent, _ := region(t, b, guidBAT)
	le.PutUint64(b[ent+16:], uint64(len(b))+mib)
	fixRegionCRC(b)
	_, err := OpenNamed(bytes.NewReader(b), int64(len(b)), p)
	wantAt(t, "region entry", err, p, ent)
}

// TestMetadataLocated: the virtual disk size item is made a size no disk
// has (not a multiple of the sector size): the open names the item's
// byte (metadata region offset plus the item's offset from its entry).
func TestMetadataLocated(t *testing.T) {
	p, b := vhdxImage(t)
	_, meta := region(t, b, guidMetadata)
	n := int64(le.Uint16(b[meta+10:]))
	item := int64(-1)
	for i := int64(0); i < n; i++ {
		e := meta + 32 + 32*i
		if bytes.Equal(b[e:e+16], guidVirtualSize[:]) {
			item = meta + int64(le.Uint32(b[e+16:]))
		}
	}
	if item < 0 {
		t.Fatal("no virtual disk size item")
	}
	le.PutUint64(b[item:], 4<<20+3)
	_, err := OpenNamed(bytes.NewReader(b), int64(len(b)), p)
	wantAt(t, "virtual size", err, p, item)
}

// TestHeadersLocated: both headers lose their signature: the open names
// header 1 (64 KiB).
func TestHeadersLocated(t *testing.T) {
	p, b := vhdxImage(t)
	copy(b[header1Off:], "xxxx")
	copy(b[header2Off:], "xxxx")
	_, err := OpenNamed(bytes.NewReader(b), int64(len(b)), p)
	wantAt(t, "headers", err, p, header1Off)
}
