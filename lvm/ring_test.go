package lvm

import (
	"strings"
	"testing"
)

func TestWrappedRing(t *testing.T) {
	pv := openPV(t, "lvm-wrap")
	if len(pv.MDAs) != 2 {
		t.Fatalf("%d metadata areas, the script asked for 2", len(pv.MDAs))
	}
	for i, m := range pv.MDAs {
		if m.Err != nil || len(m.Copies) != 1 {
			t.Fatalf("mda %d: err %v, %d copies", i, m.Err, len(m.Copies))
		}
		c := m.Copies[0]
		if c.Err != nil {
			t.Fatalf("mda %d: %v", i, c.Err)
		}
		// The script checks the first area; the second (64 KiB at the
		// end of the PV) has its own ring geometry.
		if i == 0 && (!c.Wrapped || c.Offset+c.Size <= m.Header.Size) {
			t.Errorf("mda %d: copy at %d+%d in a %d-byte area is not wrapped; the fixture script stops only once it is", i, c.Offset, c.Size, m.Header.Size)
		}
	}
	if pv.MDAs[1].Locn.Offset+pv.MDAs[1].Locn.Size != uint64(pv.Size) {
		t.Errorf("second mda at %+v does not end at the end of the PV (%d)", pv.MDAs[1].Locn, pv.Size)
	}
	if a, b := pv.MDAs[0].Copies[0], pv.MDAs[1].Copies[0]; string(a.Text) != string(b.Text) {
		t.Error("the two metadata areas hold different text")
	}
	vgs := assemble(t, pv)
	if vgs[0].Inconsistent || len(vgs[0].Notes) > 0 {
		t.Errorf("notes: %v", vgs[0].Notes)
	}
	checkFacts(t, vgs, "lvm-wrap")
	checkContents(t, vgs, "lvm-wrap.sha256")
}

func TestCorruptNewestCopyFallsBack(t *testing.T) {
	pv := openPV(t, "lvm-corrupt")
	if len(pv.Notes) == 0 {
		t.Error("no PV note about the damaged copy")
	}
	m := pv.MDAs[0]
	if len(m.Copies) < 2 || m.Copies[0].Err == nil || !m.Copies[0].Current {
		t.Fatalf("expected a damaged current copy plus recovered ones, got %d copies", len(m.Copies))
	}
	if !strings.Contains(m.Copies[0].Err.Error(), "checksum") {
		t.Errorf("damage reported as %v, want a checksum mismatch", m.Copies[0].Err)
	}
	vgs := assemble(t, pv)
	vg := findVG(t, vgs, "vgbad")
	if vg.Source == nil || vg.Source.Current {
		t.Fatalf("VG metadata should come from an older ring copy")
	}
	if !vg.Inconsistent {
		t.Error("VG with a damaged newest copy not flagged inconsistent")
	}
	var noted bool
	for _, n := range vg.Notes {
		if strings.Contains(n, "damaged") {
			noted = true
		}
	}
	if !noted {
		t.Errorf("no note about the fallback: %v", vg.Notes)
	}
	if vg.LV("late") != nil {
		t.Error("LV late comes from the damaged copy; it must not be there")
	}
	// The goldens were captured by lvm2 before the damaged update.
	checkFacts(t, vgs, "lvm-corrupt")
	checkContents(t, vgs, "lvm-corrupt.sha256")
}
