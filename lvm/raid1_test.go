package lvm

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

func TestRaid1AndMirror(t *testing.T) {
	vgs := assemble(t, openPV(t, "lvm-raid1"))
	checkFacts(t, vgs, "lvm-raid1")
	checkContents(t, vgs, "lvm-raid1.sha256")
	vg := findVG(t, vgs, "vgr1")
	sc := bufio.NewScanner(bytes.NewReader(fixturetest.Golden(t, "lvm-raid1.differ")))
	n := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			continue
		}
		n++
		_, name, _ := strings.Cut(f[0], "/")
		diffs, err := vg.LV(name).Check()
		if err != nil {
			t.Fatalf("%s: Check: %v", name, err)
		}
		if len(diffs) != 1 {
			t.Fatalf("%s: %d mirrored segments", name, len(diffs))
		}
		want := Range{atoi(t, f[1]), atoi(t, f[2])}
		if d := diffs[0]; len(d.Differ) != 1 || d.Differ[0] != want || len(d.Unreadable) != 0 {
			t.Errorf("%s: Check found %+v, the script changed %+v of leg 1", name, d, want)
		}
	}
	if n != 2 {
		t.Fatalf("golden lvm-raid1.differ has %d entries", n)
	}
	if _, err := vg.LV("r1_rimage_0").Check(); err == nil {
		t.Error("Check of a linear LV should fail")
	}
}

// When one raid1 leg sits on a missing PV, reads come from the other leg.
// The metadata is lvm2's own backup of the fixture with r1_rimage_0 moved
// to an extra PV that does not exist.
func TestRaid1ReadsHealthyLeg(t *testing.T) {
	text := string(fixturetest.Golden(t, "lvm-raid1-vgr1.vg"))
	i := strings.Index(text, "r1_rimage_0 {")
	j := strings.Index(text[i:], `"pv0", 1`)
	if i < 0 || j < 0 {
		t.Fatal("golden metadata does not have the expected r1_rimage_0 layout")
	}
	text = text[:i+j] + `"pv1", 0` + text[i+j+len(`"pv0", 1`):]
	k := strings.Index(text, "\t}\n\n\tlogical_volumes")
	if k < 0 {
		t.Fatal("golden metadata layout changed")
	}
	text = text[:k] + "\t\tpv1 {\n\t\t\tid = \"MISSNG-0000-0000-0000-0000-0000-000000\"\n\t\t\tdev_size = 65536\n\t\t\tpe_start = 2048\n\t\t\tpe_count = 62\n\t\t}\n" + text[k:]
	md, err := ParseMetadata([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	vgs, err := Assemble([]*PV{openPV(t, "lvm-raid1")}, &AssembleOptions{Metadata: []*Metadata{md}, PreferSupplied: true})
	if err != nil {
		t.Fatal(err)
	}
	vg := findVG(t, vgs, "vgr1")
	if len(vg.Missing) != 1 {
		t.Fatalf("missing %v", vg.Missing)
	}
	r, err := vg.LV("r1").Open()
	if err != nil {
		t.Fatal(err)
	}
	leg1, _ := vg.LV("r1_rimage_1").Open()
	if shaOf(t, r) != shaOf(t, leg1) {
		t.Error("r1 with leg 0 missing does not read leg 1")
	}
	if _, err := vg.LV("r1_rimage_0").Open(); err != nil {
		t.Fatal(err)
	}
	diffs, err := vg.LV("r1").Check()
	if err != nil || len(diffs) != 1 || len(diffs[0].Unreadable) != 1 || diffs[0].Unreadable[0] != (Range{0, vg.LV("r1").Size}) {
		t.Errorf("Check with a missing leg: %+v, %v", diffs, err)
	}
}
