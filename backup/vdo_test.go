package backup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// A guest disk whose VG holds VDO and dm-integrity LVs (which imgtool
// cannot read) is never backed up silently: the run names each such LV on
// a line of its own and fails with IncompleteError; plan says the same.
func TestVDOAndIntegrityNamed(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "vdo.img")
	raw, err := os.ReadFile(fixturetest.Image(t, "lvm-vdo-integrity"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(disk, raw, 0o644)
	c := localConfig(t, dir, disk, `skip = ["vgv/plain"]`)
	r := quietRunner(dir)
	res, err := r.Run(context.Background(), []*Config{c})
	var ie *IncompleteError
	if !errors.As(err, &ie) {
		t.Fatalf("run: want IncompleteError, got %v", err)
	}
	lines := ie.Lines()
	want := []string{"#vgv/vpool: ", "#vgv/vdolv: ", "#vgv/integ: "}
	if len(lines) != len(want) {
		t.Fatalf("lines %q, want one for each of %q", lines, want)
	}
	for _, w := range want {
		n := 0
		for _, l := range lines {
			if strings.Contains(l, disk+w) && strings.Contains(l, "not readable") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("want one line naming %s%s as not readable, got %q", disk, w, lines)
		}
	}
	plan := r.Plan(c, time.Date(2026, 1, 2, 2, 0, 0, 0, time.Local))
	if len(plan.LeftOut) != 3 || len(res[0].Backups) != 0 {
		t.Errorf("plan leaves out %+v; run backed up %+v", plan.LeftOut, res[0].Backups)
	}
}
