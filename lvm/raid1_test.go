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
