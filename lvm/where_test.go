package lvm

import (
	"encoding/binary"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/internal/where"
)

// TestDamageCarriesOffset (issue 12.5): the lvm-corrupt fixture's newest
// metadata copy was overwritten (fixtures/scripts/lvm-corrupt.sh). The
// damage is reported with the copy's byte offset on the PV, read here from
// the file itself: the metadata area starts at byte 4096 (pvcreate's
// default), and raw_locn 0's offset is the 8 bytes at 40 into its header.
func TestDamageCarriesOffset(t *testing.T) {
	b, err := os.ReadFile(fixturetest.Image(t, "lvm-corrupt"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b[4096+4:4096+20]) != " LVM2 x[5A%r0N*>" {
		t.Fatalf("no mda header at byte 4096")
	}
	want := 4096 + int64(binary.LittleEndian.Uint64(b[4096+40:]))
	pv, err := ReadPV(readerAt(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(pv.Damage) != 1 || where.VolumeOffset(pv.Damage[0]) != want {
		t.Fatalf("Damage %v, want one error at byte %d", pv.Damage, want)
	}
	found := false
	for _, n := range pv.Notes {
		found = found || strings.Contains(n, pv.Damage[0].Error())
	}
	if !found {
		t.Errorf("no note holds %q: %q", pv.Damage[0], pv.Notes)
	}
	// A label whose checksum fails: located at its sector, and still
	// ErrNoLabel.
	bad := append([]byte(nil), b...)
	bad[512+100] ^= 0xff
	_, err = ReadPV(readerAt(bad), int64(len(bad)))
	if err == nil || where.VolumeOffset(err) != 512 || !strings.Contains(err.Error(), ErrNoLabel.Error()) {
		t.Errorf("bad label: %v (offset %d), want ErrNoLabel at byte 512", err, where.VolumeOffset(err))
	}
}

type readerAt []byte

func (r readerAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(r)) {
		return 0, io.EOF
	}
	return copy(p, r[off:]), nil
}
