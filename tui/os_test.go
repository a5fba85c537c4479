package tui

import (
	"slices"
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

// imgtool tui --open VOL:@ enters the OS root as the guest sees it: /home
// of the CentOS 5 guest lists alice and bob, who live on their own LV
// (LogVol02), not on the root LV whose /home is an empty mount point.
func TestGuestViewInTUI(t *testing.T) {
	tree := openTree(t, "os-centos5")
	open := func(v *inspect.Volume) (vfs.FS, error) { return v.OpenFS(vfs.OpenOptions{}) }
	oses := osinspect.Inspect(tree, open)
	if len(oses) != 1 {
		t.Fatalf("%d OSes", len(oses))
	}
	g, err := oses[0].Guest(open, nil)
	if err != nil {
		t.Fatal(err)
	}
	root := oses[0].RootVolume()
	m := New(tree, Options{Title: "os-centos5", Open: root.Address, OpenFS: func(v *inspect.Volume) (vfs.FS, error) {
		if v == root {
			return g, nil
		}
		return open(v)
	}})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(120, 30),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.Ascii)))
	waitModel(t, tm, "guest root listing", func(m *Model) bool {
		v, d := m.Dir()
		return v == root.Address && d == "/" && idle(m) && len(m.Shown()) > 0
	})
	tm.Type("/home")
	tm.Send(kEnter)
	waitModel(t, tm, "cursor on home", func(m *Model) bool { return m.Current() == "home" })
	tm.Send(kEnter)
	waitModel(t, tm, "/home listing", func(m *Model) bool {
		_, d := m.Dir()
		return d == "/home" && idle(m) && len(m.Shown()) > 0
	})
	ch := make(chan []string, 1)
	tm.Send(funcMsg(func(m *Model) { ch <- slices.Clone(m.Shown()) }))
	if got := strings.Join(<-ch, " "); got != "alice bob lost+found" {
		t.Errorf("/home in the guest view: %s", got)
	}
}
