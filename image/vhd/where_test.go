package vhd

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/internal/where"
)

// TestBadBATEntryLocated (issue 12.5): the qemu-img-made dynamic VHD's
// first allocated BAT entry is pointed past the end of the file; reading
// its block fails with the entry's byte in the file. The BAT's offset is
// the dynamic header's table offset (bytes 16-23 of the header the
// footer's data offset, bytes 16-23, points at), all read here from the
// file.
func TestBadBATEntryLocated(t *testing.T) {
	p, err := fixturetest.Decompress(filepath.Join(fixturetest.ImagesDir(), "fmt-vhd-dynamic.vhd.xz"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	foot := b[len(b)-512:]
	hdr := int64(binary.BigEndian.Uint64(foot[16:]))
	if string(b[hdr:hdr+8]) != "cxsparse" {
		t.Fatalf("no dynamic header at byte %d", hdr)
	}
	bat := int64(binary.BigEndian.Uint64(b[hdr+16:]))
	blockSize := int64(binary.BigEndian.Uint32(b[hdr+32:]))
	blk := int64(0)
	for binary.BigEndian.Uint32(b[bat+4*blk:]) == 0xffffffff {
		blk++
	}
	binary.BigEndian.PutUint32(b[bat+4*blk:], uint32(len(b)/512+1000))
	d, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	d.Path = "dyn.vhd"
	_, err = d.ReadAt(make([]byte, 512), blk*blockSize)
	if p, off := where.FileOffset(err); p != "dyn.vhd" || off != bat+4*blk {
		t.Fatalf("read: %v at %q byte %d, want byte %d", err, p, off, bat+4*blk)
	}
}

// TestHeaderFieldsLocated (issue 12.5): dynamic header and footer fields
// out of range fail the open at the field's byte. The layout is
// Microsoft's VHD specification: the footer (last 512 bytes) holds the
// dynamic header's offset at byte 16 and the disk type at 60; the dynamic
// header the BAT's offset at 16, its entry count at 28 and the block size
// at 32 (big-endian).
func TestHeaderFieldsLocated(t *testing.T) {
	p, err := fixturetest.Decompress(filepath.Join(fixturetest.ImagesDir(), "fmt-vhd-dynamic.vhd.xz"))
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	foot := int64(len(orig) - 512)
	hdr := int64(binary.BigEndian.Uint64(orig[foot+16:]))
	for _, c := range []struct {
		name string
		off  int64
		set  func(b []byte)
	}{
		{"block size", hdr + 32, func(b []byte) { binary.BigEndian.PutUint32(b[hdr+32:], 3) }},
		{"BAT offset", hdr + 16, func(b []byte) { binary.BigEndian.PutUint64(b[hdr+16:], uint64(len(b))) }},
		{"BAT entries", hdr + 28, func(b []byte) { binary.BigEndian.PutUint32(b[hdr+28:], 1) }},
		{"disk type", foot + 60, func(b []byte) { binary.BigEndian.PutUint32(b[foot+60:], 9) }},
		{"header offset", foot + 16, func(b []byte) { binary.BigEndian.PutUint64(b[foot+16:], uint64(len(b))) }},
	} {
		b := bytes.Clone(orig)
		c.set(b)
		_, err := OpenNamed(bytes.NewReader(b), int64(len(b)), "dyn.vhd")
		if p, off := where.FileOffset(err); p != "dyn.vhd" || off != c.off {
			t.Errorf("%s: %v at %q byte %d, want byte %d", c.name, err, p, off, c.off)
		}
	}
}
