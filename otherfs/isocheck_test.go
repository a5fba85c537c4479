package otherfs

import (
	"bytes"
	"encoding/binary"
	"os"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// checkISO accepts the real ISO (xorriso -R -J) and refuses, naming the
// offset, each length go-diskfs would allocate blindly: a path table, the
// root directory, a subdirectory in its parent's record, a directory's own
// "." record, a missing terminator.
func TestCheckISO(t *testing.T) {
	good, err := os.ReadFile(fixturetest.Image(t, "otherfs-iso"))
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(good))
	if err := checkISO(bytes.NewReader(good), size); err != nil {
		t.Fatalf("real ISO refused: %v", err)
	}
	le := binary.LittleEndian
	pvd := int64(isoVDStart)
	rootExt := int64(le.Uint32(good[pvd+pvdRootDR+drExtent:]))
	rootSize := int64(le.Uint32(good[pvd+pvdRootDR+drSize:]))
	// The first subdirectory record in the root.
	sub := int64(-1)
	for off := rootExt * isoSectorSize; off < rootExt*isoSectorSize+rootSize; {
		n := int64(good[off])
		if n == 0 {
			break
		}
		if good[off+drFlags]&drFlagDir != 0 && !(good[off+drNameLen] == 1 && good[off+drName] <= 1) {
			sub = off
			break
		}
		off += n
	}
	if sub < 0 {
		t.Fatal("the fixture's root has no subdirectory")
	}
	subExt := int64(le.Uint32(good[sub+drExtent:]))
	for _, c := range []struct {
		name string
		at   int64
		want string
	}{
		{"path table length", pvd + vdPathTableSize, "path table of 4294967295 bytes"},
		{"root length", pvd + pvdRootDR + drSize, "directory at block"},
		{"subdirectory length in its parent", sub + drSize, "directory record at"},
		{"subdirectory's own . length", subExt*isoSectorSize + drSize, "length 4294967295 runs past the end"},
	} {
		bad := bytes.Clone(good)
		le.PutUint32(bad[c.at:], 0xFFFFFFFF)
		err := checkISO(bytes.NewReader(bad), size)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "0x") && !strings.Contains(err.Error(), "block") {
			t.Errorf("%s patched: %v; want an error with %q naming where", c.name, err, c.want)
		}
		if _, err := Open(bytes.NewReader(bad), size, "iso"); err == nil {
			t.Errorf("%s patched: Open succeeded", c.name)
		}
	}
	// No terminator: every descriptor after the primary made supplementary-less junk.
	bad := bytes.Clone(good)
	for i := int64(1); i < maxISODescs+1 && isoVDStart+(i+1)*isoSectorSize <= size; i++ {
		copy(bad[isoVDStart+i*isoSectorSize:], []byte{0, 'C', 'D', '0', '0', '1', 1})
	}
	if err := checkISO(bytes.NewReader(bad), size); err == nil || !strings.Contains(err.Error(), "terminator") {
		t.Errorf("no terminator: %v", err)
	}
}
