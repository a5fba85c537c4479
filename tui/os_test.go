package tui

import (
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/osinspect"
	"github.com/imgtool/imgtool/vfs"
)

// osLabels is what `imgtool tui` passes: the OS found on each disk.
func osLabels(t *inspect.Tree) map[string]string {
	out := map[string]string{}
	for _, o := range osinspect.Inspect(t, func(v *inspect.Volume) (vfs.FS, error) { return v.OpenFS(vfs.OpenOptions{}) }) {
		out[o.Disk] = o.Label()
	}
	return out
}

// The disk holding a guest OS says which, on its row: the CentOS 5
// fixture's image row, and in the demo the guest disk LV domu1 (its OS is
// in the nested VG; dom0's own root has no fstab).
func TestOSRow(t *testing.T) {
	for _, c := range []struct{ fixture, row, label string }{
		{"os-centos5", "os-centos5.img", "CentOS 5.8 (www1)"},
		{"dom0", "domu1", "Linux (domu1)"},
	} {
		t.Run(c.fixture, func(t *testing.T) {
			tree := openTree(t, c.fixture)
			labels := osLabels(tree)
			m := New(tree, Options{Title: c.fixture, OSLabels: labels})
			tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(140, 30),
				teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.Ascii)))
			waitModel(t, tm, "idle", idle)
			found := false
			for _, line := range strings.Split(screen(t, tm), "\n") {
				if strings.Contains(line, " "+c.row+" ") || strings.Contains(line, " "+c.row+"\u00a0") {
					if !strings.Contains(line, c.label) {
						t.Errorf("row %q does not show %q: %q", c.row, c.label, line)
					}
					found = true
				} else if strings.Contains(line, c.label) {
					t.Errorf("%q shown on another row: %q", c.label, line)
				}
			}
			if !found {
				t.Errorf("no row %q:\n%s", c.row, screen(t, tm))
			}
		})
	}
}
