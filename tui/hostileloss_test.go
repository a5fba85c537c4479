package tui

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/imgtool/imgtool/image"
	"github.com/imgtool/imgtool/inspect"
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

// TestDirHardLinkInLossBox (issue 13.6, the TUI's part): a directory
// reached a second time through a directory hard link (debugfs ln makes
// /a/loop and /b/alias name /a's inode) is listed in the loss box when the
// marked /a and /b are extracted, with the inode debugfs gives it; /a
// itself is extracted whole.
func TestDirHardLinkInLossBox(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "a"), 0o755)
	os.MkdirAll(filepath.Join(src, "b"), 0o755)
	os.WriteFile(filepath.Join(src, "a", "f"), []byte("hi\n"), 0o644)
	img := filepath.Join(dir, "hl.img")
	for _, c := range [][]string{
		{"mke2fs", "-q", "-F", "-t", "ext4", "-d", src, img, "4M"},
		{"debugfs", "-w", "-R", "ln /a /a/loop", img},
		{"debugfs", "-w", "-R", "ln /a /b/alias", img},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", c, err, out)
		}
	}
	out, err := exec.Command("debugfs", "-R", "stat /a", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out)) // "Inode: 12   Type: directory ..."
	if len(f) < 2 || f[0] != "Inode:" {
		t.Fatalf("debugfs stat /a: %q", out)
	}
	ino := f[1]
	im, err := image.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	tree, err := inspect.Inspect([]inspect.Source{{Name: "hl.img", R: im, Size: im.Size()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := New(tree, Options{})
	_, cmd := m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	drive(m, cmd)
	drive(m, m.enterVolume())
	for _, name := range []string{"a", "b"} {
		drive(m, m.files.chdir("/", name))
		press(m, " ")
	}
	if got := strings.Join(m.Marked(), " "); got != "/a /b" {
		t.Fatalf("marked %q", got)
	}
	dest := filepath.Join(dir, "out")
	press(m, "x")
	m.ex.input.SetValue(dest)
	_, cmd = m.Update(kEnter)
	drive(m, cmd)
	s := m.LastExtract()
	if s == nil || !s.Partial {
		t.Fatalf("summary %+v: want losses", s)
	}
	lost := strings.Join(s.Lost, "\n")
	for _, want := range []string{"/a/loop (inode " + ino + ")", "/b/alias (inode " + ino + ")"} {
		if !strings.Contains(lost, want) {
			t.Errorf("the loss box lacks %s:\n%s", want, lost)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dest, "a", "f")); string(b) != "hi\n" {
		t.Errorf("a/f: %q, %v", b, err)
	}
}
