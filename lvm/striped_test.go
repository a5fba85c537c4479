package lvm

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestStripedTwoImages(t *testing.T) {
	vgs := assemble(t, openPV(t, "lvm-striped-a"), openPV(t, "lvm-striped-b"))
	if len(vgs) != 1 || len(vgs[0].Missing) != 0 {
		t.Fatalf("VGs %d, missing %v", len(vgs), vgs[0].Missing)
	}
	checkFacts(t, vgs, "lvm-striped")
	checkContents(t, vgs, "lvm-striped.sha256")
}

// With image a missing, the LV that lives only on b reads in full; the
// striped and raid0 LVs fail with an error naming the missing PV.
func TestStripedMissingPV(t *testing.T) {
	a := openPV(t, "lvm-striped-a")
	vgs := assemble(t, openPV(t, "lvm-striped-b"))
	vg := findVG(t, vgs, "vgstripe")
	if len(vg.Missing) != 1 || vg.Missing[0] != a.UUID {
		t.Fatalf("missing %v, want [%s]", vg.Missing, a.UUID)
	}
	want := goldenSHA(t, "lvm-striped.sha256")
	r, err := vg.LV("lone").Open()
	if err != nil {
		t.Fatal(err)
	}
	if got := shaOf(t, r); got != want["vgstripe/lone"] {
		t.Errorf("lone: sha256 %s, want %s", got, want["vgstripe/lone"])
	}
	for _, name := range []string{"stripe", "rz"} {
		r, err := vg.LV(name).Open()
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
		var mp *MissingPVError
		if !errors.As(err, &mp) {
			t.Fatalf("%s: read error %v, want a MissingPVError", name, err)
		}
		if mp.PV != a.UUID || mp.VG != "vgstripe" || mp.LV != name || !strings.Contains(err.Error(), a.UUID) {
			t.Errorf("%s: error %q does not name PV %s, VG and LV", name, err, a.UUID)
		}
		// The first stripe chunk is on PV a (stripe 0): offset 0 fails;
		// the second chunk is on PV b and reads.
		ss := vg.LV(name).Segments[0].StripeSize
		if mp.Offset != 0 {
			t.Errorf("%s: failing offset %d, want 0", name, mp.Offset)
		}
		buf := make([]byte, ss)
		if _, err := r.ReadAt(buf, ss); err != nil {
			t.Errorf("%s: chunk on the present PV: %v", name, err)
		}
	}
}
