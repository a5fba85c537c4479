package tui

import (
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// ctrl+w in the prompts deletes back to the previous path separator, the
// way readline's unix-filename-rubout does, not the whole path.
func TestEditKeyDeletesPathComponents(t *testing.T) {
	ti := newTextInput("> ", "")
	ti.Focus()
	ti.SetValue("/tmp/out/dir")
	ctrlW := tea.KeyPressMsg{Code: 'w', Mod: tea.ModCtrl}
	for _, want := range []string{"/tmp/out/", "/tmp/out", "/tmp/", "/tmp", "/", ""} {
		editKey(&ti, ctrlW)
		if got := ti.Value(); got != want {
			t.Fatalf("after ctrl+w: %q, want %q", got, want)
		}
	}
	// Other keys reach textinput: typing, cursor movement, deletion.
	for _, r := range "abc" {
		editKey(&ti, tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	editKey(&ti, tea.KeyPressMsg{Code: tea.KeyLeft})
	editKey(&ti, tea.KeyPressMsg{Code: tea.KeyBackspace})
	if got := ti.Value(); got != "ac" {
		t.Fatalf("typed abc, left, backspace: %q", got)
	}
}

// A value longer than the box scrolls so that the cursor end stays in
// view, also after the width changes.
func TestInputScrollsToCursor(t *testing.T) {
	ti := newTextInput("extract to: ", "")
	ti.Focus()
	long := "/srv/salvage/" + strings.Repeat("x", 80) + "/END"
	ti.SetValue(long)
	for _, w := range []int{200, 30, 12, 50} {
		sizeInput(&ti, w)
		v := ansi.Strip(ti.View())
		if !strings.Contains(v, "/END") {
			t.Errorf("width %d: end of the value not shown: %q", w, v)
		}
		if got := ansi.StringWidth(v); w < len(long) && got > w+len("extract to: ")+1 {
			t.Errorf("width %d: view is %d cells: %q", w, got, v)
		}
	}
}
