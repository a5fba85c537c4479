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

// TestTerminalSafeNamesTUI (issue 13.5, the TUI's part): files named with
// ESC[2J, the byte 0x9B, U+009B (CSI) and U+202E, made by mke2fs -d, reach
// the screen as termsafe quotes them — in the file list, in the preview's
// title and in the loss box — never as they are.
func TestTerminalSafeNamesTUI(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	names := []string{"clear\x1b[2J", "csi\x9b31m", "csi\u009b32m", "evil\u202etxt.exe"}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(src, n), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, "names.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-d", src, img, "4M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	im, err := image.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	tree, err := inspect.Inspect([]inspect.Source{{Name: "names.img", R: im, Size: im.Size()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := New(tree, Options{})
	_, cmd := m.Update(tea.WindowSizeMsg{Width: 160, Height: 30})
	drive(m, cmd)
	drive(m, m.enterVolume())
	bad := func(s string) bool {
		return strings.Contains(s, "\x1b[2J") || strings.ContainsAny(s, "\u009b\u202e") || strings.Contains(s, "\x9b")
	}
	check := func(what string, quoted []string) {
		t.Helper()
		raw := m.render()
		if bad(raw) {
			t.Errorf("%s: a control reached the screen:\n%q", what, raw)
		}
		scr := ansi.Strip(raw)
		for _, q := range quoted {
			if !strings.Contains(scr, q) {
				t.Errorf("%s: %s not on screen:\n%s", what, q, scr)
			}
		}
	}
	check("list", []string{`"clear\x1b[2J"`, `"csi\x9b31m"`, `"csi\u009b32m"`, `"evil\u202etxt.exe"`})
	drive(m, m.files.chdir("/", "evil\u202etxt.exe"))
	check("preview", []string{`"/evil\u202etxt.exe"`})
	// DEST already holds files of those names: extracting everything
	// loses each of them by name, in the loss box.
	dest := filepath.Join(dir, "out")
	os.Mkdir(dest, 0o755)
	for _, n := range names {
		os.WriteFile(filepath.Join(dest, n), []byte("mine"), 0o644)
	}
	press(m, "a")
	press(m, "x")
	m.ex.input.SetValue(dest)
	_, cmd = m.Update(kEnter)
	drive(m, cmd)
	if s := m.LastExtract(); s == nil || !s.Partial {
		t.Fatalf("extraction: %+v, want losses", s)
	}
	check("loss box", []string{`evil\u202etxt.exe`})
}
