package tui

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
)

// TestSkippedEntriesInLossBox (issue 13.4 and 13.6, the TUI's part): an
// entry the reader skips and a marked directory that is not extracted are
// lines in the loss box after x.
//
// hostile-ext's root names a symlink "evil" and then a directory "evil";
// a mark is a path, so marking all extracts the symlink the path reaches,
// and the directory must be listed as refused (it was left out in
// silence). tui-damaged's /docs holds "ghost", an entry pointing past the
// inode count that the reader skips: extracting the marked /docs lists it.
func TestSkippedEntriesInLossBox(t *testing.T) {
	extract := func(m *Model) *Summary {
		t.Helper()
		press(m, "x")
		m.ex.input.SetValue(filepath.Join(t.TempDir(), "out"))
		_, cmd := m.Update(kEnter)
		drive(m, cmd)
		s := m.LastExtract()
		if s == nil || !s.Partial {
			t.Fatalf("summary %+v: want losses", s)
		}
		if scr := ansi.Strip(m.render()); !strings.Contains(scr, "lost: ") {
			t.Errorf("losses not shown:\n%s", scr)
		}
		return s
	}

	m := newSized(t, "hostile-ext", 120, 40)
	drive(m, m.enterVolume())
	if m.files.fsys == nil {
		t.Fatalf("hostile-ext not opened: %s", m.status)
	}
	if scr := ansi.Strip(m.render()); !strings.Contains(scr, "inode 17 has an empty name") {
		t.Errorf("the root's listing does not say inode 17 was skipped:\n%s", scr)
	}
	press(m, "a")
	s := extract(m)
	if lost := strings.Join(s.Lost, "\n"); !strings.Contains(lost, "/evil (inode 13)") {
		t.Errorf("the loss box does not list the directory evil (inode 13):\n%s", lost)
	}

	m = newSized(t, "tui-damaged", 120, 40)
	drive(m, m.enterVolume())
	drive(m, m.files.chdir("/", "docs"))
	if m.Current() != "docs" {
		t.Fatalf("cursor on %q, want docs", m.Current())
	}
	press(m, " ")
	s = extract(m)
	if lost := strings.Join(s.Lost, "\n"); !strings.Contains(lost, `"ghost" points to inode 4294967040`) {
		t.Errorf("the loss box does not list the skipped entry ghost:\n%s", lost)
	}
}
