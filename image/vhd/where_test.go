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
