package tui

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// FuzzPreview feeds arbitrary file contents and names to the preview and
// row formatting: nothing may panic, and no control character (which
// could move the cursor or change the terminal's state) may reach the
// screen.
func FuzzPreview(f *testing.F) {
	for _, s := range []string{"hello\n", "a\tb\r\n", "\x1b[2J\x1b]0;title\a", "nul\x00", "\xff\xfe", "日本語", "x\u202eevil", ""} {
		f.Add([]byte(s), s)
	}
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		defer fixturetest.Watchdog(5 * time.Second)()
		var lines []string
		if isText(data) {
			lines = textLines(data)
		} else {
			lines = hexLines(data)
		}
		lines = append(lines, safeName(name), fit(safeName(name), 20), fitLeft(safeName(name), 7))
		for _, l := range lines {
			for _, r := range l {
				if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
					t.Fatalf("control character %U in %q", r, l)
				}
			}
			if !utf8.ValidString(l) && strings.ContainsRune(l, utf8.RuneError) {
				t.Fatalf("invalid UTF-8 reached the screen: %q", l)
			}
		}
		if w := ansi.StringWidth(fit(safeName(name), 20)); w != 20 {
			t.Fatalf("fit gave width %d", w)
		}
	})
}
