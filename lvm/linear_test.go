package lvm

import (
	"os"
	"strings"
	"testing"
)

func TestLinear(t *testing.T) {
	pv := openPV(t, "lvm-linear")
	if pv.LabelSector != 1 {
		t.Errorf("label in sector %d, lvm2 writes it to sector 1", pv.LabelSector)
	}
	if len(pv.Notes) != 0 {
		t.Errorf("notes on a clean PV: %v", pv.Notes)
	}
	vgs := assemble(t, pv)
	if len(vgs) != 1 {
		t.Fatalf("%d VGs", len(vgs))
	}
	vg := vgs[0]
	if len(vg.Notes) != 0 || vg.Inconsistent {
		t.Errorf("notes on a clean VG: %v", vg.Notes)
	}
	checkFacts(t, vgs, "lvm-linear")
	checkContents(t, vgs, "lvm-linear.sha256")
}

// The metadata text chosen from disk has the same VG section as the one
// vgcfgbackup wrote (which adds comments and a header of its own).
func TestLinearMetadataMatchesBackup(t *testing.T) {
	vg := assemble(t, openPV(t, "lvm-linear"))[0]
	backup, err := os.ReadFile("../fixtures/golden/lvm-linear-vglin.vg")
	if err != nil {
		t.Fatal(err)
	}
	md, err := ParseMetadata(backup)
	if err != nil {
		t.Fatalf("ParseMetadata(vgcfgbackup file): %v", err)
	}
	if md.ID != vg.UUID || md.Seqno != vg.Seqno || md.VGName != vg.Name || md.ExtentSize != vg.ExtentSize {
		t.Errorf("backup says %s %s seqno %d, disk %s %s seqno %d", md.VGName, md.ID, md.Seqno, vg.Name, vg.UUID, vg.Seqno)
	}
	if len(md.LVs) != len(vg.LVs) {
		t.Fatalf("backup has %d LVs, disk %d", len(md.LVs), len(vg.LVs))
	}
	for i, l := range md.LVs {
		d := vg.LVs[i]
		if l.Name != d.Name || l.ID != d.UUID || len(l.Segments) != len(d.Segments) {
			t.Errorf("LV %d: backup %s %s, disk %s %s", i, l.Name, l.ID, d.Name, d.UUID)
		}
	}
	if !strings.HasPrefix(string(vg.Text), "vglin {") {
		t.Errorf("metadata text starts %q", vg.Text[:20])
	}
}
