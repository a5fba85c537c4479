package tui

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/inspect"
)

// The binary preview is `hexdump -C` of the file's first previewHex bytes,
// as debugfs reads them (both real tools are the oracle, run now).
func TestHexPreviewMatchesHexdump(t *testing.T) {
	img := fixturetest.Image(t, "ext-ext4")
	cat := exec.Command("debugfs", "-R", "cat /sparse40", img)
	raw, err := cat.Output()
	if err != nil {
		t.Fatalf("debugfs: %v", err)
	}
	if len(raw) < previewHex {
		t.Fatalf("debugfs gave %d bytes", len(raw))
	}
	hd := exec.Command("hexdump", "-C")
	hd.Stdin = bytes.NewReader(raw[:previewHex])
	want, err := hd.Output()
	if err != nil {
		t.Fatalf("hexdump: %v", err)
	}

	m := newSized(t, "ext-ext4", 120, 40)
	var fs *inspect.Volume
	for _, r := range m.vols.rows {
		if r.v.Salvageable() {
			fs = r.v
		}
	}
	if fs == nil {
		t.Fatal("no ext volume")
	}
	m.vols.find(fs.Address)
	drive(m, m.enterVolume())
	drive(m, m.files.chdir("/", "sparse40"))
	if m.Current() != "sparse40" {
		t.Fatalf("cursor on %q", m.Current())
	}
	got := m.prev.vp.GetContent()
	wantText := strings.TrimSuffix(string(want), "\n")
	if !strings.Contains(got, wantText) {
		t.Errorf("preview is not hexdump -C of the first %d bytes:\n--- preview\n%s\n--- hexdump -C\n%s", previewHex, got, wantText)
	}
	if !strings.Contains(got, "binary: first 16K of 40M shown") {
		t.Errorf("preview does not say it is partial:\n%s", got)
	}
}

func TestIsText(t *testing.T) {
	for _, c := range []struct {
		b    string
		text bool
	}{
		{"hello\n", true},
		{"tab\tand\r\nCRLF", true},
		{"日本語\n", true},
		{"nul\x00", false},
		{"\xff\xfe", false},
		{"cut rune \xe6\x97", true}, // a rune cut by the read limit
		{"bell\a", false},
	} {
		if got := isText([]byte(c.b)); got != c.text {
			t.Errorf("isText(%q) = %v", c.b, got)
		}
	}
}
