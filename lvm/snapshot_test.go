package lvm

import (
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

func TestSnapshotPointInTimeView(t *testing.T) {
	vgs := assemble(t, openPV(t, "lvm-snapshot"))
	checkFacts(t, vgs, "lvm-snapshot")
	// base = the origin now; snap = the origin as it was (script-built).
	checkContents(t, vgs, "lvm-snapshot.sha256")
	vg := findVG(t, vgs, "vgsnap")
	snap := vg.LV("snap")
	info := snap.Snapshot()
	if info == nil || info.Err != nil {
		t.Fatalf("Snapshot info %+v", info)
	}
	// lvm-snapshot.cow: "vgsnap/snap exceptions N chunk_size C valid V"
	f := strings.Fields(string(fixturetest.Golden(t, "lvm-snapshot.cow")))
	if len(f) != 7 {
		t.Fatalf("bad golden %q", f)
	}
	if int64(info.Exceptions) != atoi(t, f[2]) || info.ChunkSize != atoi(t, f[4]) || info.Valid != (f[6] == "1") || info.Origin != "base" {
		t.Errorf("snapshot info %+v, script wrote %v", info, f)
	}
	r, _ := snap.Open()
	if r.Size() != vg.LV("base").Size {
		t.Errorf("snapshot view has %d bytes, origin %d", r.Size(), vg.LV("base").Size)
	}
	raw, _ := snap.OpenRaw()
	if raw.Size() != snap.Size {
		t.Errorf("raw COW has %d bytes, LV %d", raw.Size(), snap.Size)
	}
}
