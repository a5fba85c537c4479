package tui

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/vfs"
)

// TestDamage walks the tui-damaged fixture: every damage e2fsck reports
// shows up inline (a row, the directory pane, the preview, the extraction
// summary) and the UI keeps working around it.
func TestDamage(t *testing.T) {
	golden := string(fixturetest.Golden(t, "tui-damaged-e2fsck.txt"))
	corrupt := map[vfs.Ino]bool{}
	for _, m := range regexp.MustCompile(`Inode (\d+) has corrupt extent header`).FindAllStringSubmatch(golden, -1) {
		n, _ := strconv.Atoi(m[1])
		corrupt[vfs.Ino(n)] = true
	}
	if len(corrupt) != 2 || !strings.Contains(golden, "Entry 'ghost' in /docs (12) has invalid inode #") {
		t.Fatalf("golden does not describe the damage the test expects:\n%s", golden)
	}

	tree := openTree(t, "tui-damaged")
	m := New(tree, Options{})
	_, cmd := m.Update(tea.WindowSizeMsg{Width: 120, Height: 30})
	drive(m, cmd)
	drive(m, m.enterVolume())
	drive(m, m.files.chdir("/docs", ""))
	// ghost points beyond the inode count: the reader skips it and says
	// so with the directory's entries (a loss, issue 13.4), which the pane
	// shows.
	if m.files.err == nil || !strings.Contains(m.files.err.Error(), `"ghost" points to inode 4294967040`) {
		t.Fatalf("/docs: err = %v; want the skipped entry ghost", m.files.err)
	}
	want := []string{"baddir", "badfile", "ok.txt", "zz-after.txt"}
	if got := m.Shown(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("shown %q, want %q", got, want)
	}
	scr := ansi.Strip(m.render())

	if !strings.Contains(scr, `"ghost" points to inode 4294967040`) {
		t.Errorf("the skipped entry ghost is not reported in the pane:\n%s", scr)
	}
	// badfile: the inode reads, its extent tree does not: the row says
	// so inline, the rows around it are whole.
	var badfile *entry
	for i := range m.files.entries {
		if e := &m.files.entries[i]; e.name == "badfile" {
			badfile = e
		}
	}
	if !corrupt[badfile.ino] {
		t.Fatalf("badfile is inode %d; e2fsck names %v", badfile.ino, corrupt)
	}
	if badfile.stat == nil || badfile.stat.err == nil {
		t.Fatal("badfile: no error on its row")
	}
	if row := findLine(scr, "badfile"); !strings.Contains(row, "! ") || !strings.Contains(row, "extent") {
		t.Errorf("badfile row lacks the inline error: %q", row)
	}
	for _, n := range []string{"ok.txt", "zz-after.txt"} {
		if row := findLine(scr, n); !strings.Contains(row, "-rw-r--r--") {
			t.Errorf("row %s is not whole: %q\n%s", n, row, scr)
		}
	}
	// Its preview says the data cannot be read.
	drive(m, m.files.chdir("/docs", "badfile"))
	if c := m.prev.vp.GetContent(); !strings.Contains(c, "! cannot read the file") {
		t.Errorf("badfile preview lacks the error:\n%s", c)
	}
	// The next file previews fine.
	press(m, "G")
	if c := m.prev.vp.GetContent(); !strings.Contains(c, "still here") {
		t.Errorf("zz-after.txt preview:\n%s", c)
	}

	// baddir: entering shows the error in the pane; backspace still works.
	drive(m, m.files.chdir("/docs", "baddir"))
	if e := m.files.current(); e == nil || !corrupt[e.ino] {
		t.Fatalf("baddir is not one of e2fsck's corrupt inodes %v", corrupt)
	}
	press(m, "enter")
	if _, d := m.Dir(); d != "/docs/baddir" || m.files.err == nil {
		t.Fatalf("in %s, err %v: want /docs/baddir with an error", d, m.files.err)
	}
	scr = ansi.Strip(m.render())
	if !strings.Contains(scr, "! ") || !strings.Contains(scr, "extent") {
		t.Errorf("directory error not shown:\n%s", scr)
	}
	press(m, "backspace")
	if _, d := m.Dir(); d != "/docs" || m.Current() != "baddir" {
		t.Fatalf("back: at %s on %q", d, m.Current())
	}

	// Extract ok.txt and badfile: one copied, one reported lost.
	drive(m, m.files.chdir("/docs", "ok.txt"))
	press(m, " ")
	drive(m, m.files.chdir("/docs", "badfile"))
	press(m, " ")
	dest := filepath.Join(t.TempDir(), "out")
	press(m, "x")
	m.ex.input.SetValue(dest)
	press(m, "enter")
	s := m.LastExtract()
	if s == nil || s.Err != nil || !s.Partial {
		t.Fatalf("summary %+v: want a partial run", s)
	}
	if len(s.Lost) != 1 || !strings.Contains(s.Lost[0], "badfile") {
		t.Errorf("lost %q, want badfile", s.Lost)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "ok.txt")); err != nil || string(b) != "intact text\n" {
		t.Errorf("ok.txt: %q %v", b, err)
	}
	scr = ansi.Strip(m.render())
	if !strings.Contains(scr, "with losses") || !strings.Contains(scr, "badfile") {
		t.Errorf("summary does not show the loss:\n%s", scr)
	}
}
