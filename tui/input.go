package tui

import (
	"strings"
	"unicode"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
)

// lineInput is a one-line text editor (prompt, value, cursor) for the
// filter and the extraction destination.
//
// It stands in for bubbles/textinput, whose clipboard dependency
// (github.com/atotto/clipboard) has no go.sum entry in this module yet;
// the method names match textinput's so switching back is mechanical.
type lineInput struct {
	Prompt      string
	Placeholder string
	value       []rune
	pos         int
	focused     bool
	width       int
	cursor      lipgloss.Style
	dim         lipgloss.Style
}

func newLineInput(prompt string) lineInput {
	return lineInput{
		Prompt: prompt,
		cursor: lipgloss.NewStyle().Reverse(true),
		dim:    lipgloss.NewStyle().Faint(true),
	}
}

func (t *lineInput) Value() string { return string(t.value) }

func (t *lineInput) SetValue(s string) {
	t.value = []rune(s)
	t.pos = len(t.value)
}

func (t *lineInput) SetWidth(w int) { t.width = w }
func (t *lineInput) CursorEnd()     { t.pos = len(t.value) }
func (t *lineInput) Focus() tea.Cmd { t.focused = true; return nil }
func (t *lineInput) Blur()          { t.focused = false }
func (t *lineInput) Focused() bool  { return t.focused }

// Update edits the value for one key: printable text is inserted;
// backspace, delete, ctrl+w (word), ctrl+u (to start), ctrl+k (to end),
// left/right, home/end (ctrl+a/ctrl+e) move or delete.
func (t *lineInput) Update(msg tea.Msg) (lineInput, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.PasteMsg:
		t.insert(strings.Map(func(r rune) rune {
			if r == '\n' || r == '\r' || r == '\t' {
				return ' '
			}
			return r
		}, msg.Content))
	case tea.KeyPressMsg:
		switch msg.String() {
		case "backspace", "ctrl+h":
			if t.pos > 0 {
				t.value = append(t.value[:t.pos-1], t.value[t.pos:]...)
				t.pos--
			}
		case "delete", "ctrl+d":
			if t.pos < len(t.value) {
				t.value = append(t.value[:t.pos], t.value[t.pos+1:]...)
			}
		case "ctrl+w", "alt+backspace":
			i := t.pos
			for i > 0 && unicode.IsSpace(t.value[i-1]) {
				i--
			}
			for i > 0 && !unicode.IsSpace(t.value[i-1]) && t.value[i-1] != '/' {
				i--
			}
			if i == t.pos && i > 0 {
				i--
			}
			t.value = append(t.value[:i], t.value[t.pos:]...)
			t.pos = i
		case "ctrl+u":
			t.value = append([]rune(nil), t.value[t.pos:]...)
			t.pos = 0
		case "ctrl+k":
			t.value = t.value[:t.pos]
		case "left", "ctrl+b":
			t.pos = max(0, t.pos-1)
		case "right", "ctrl+f":
			t.pos = min(len(t.value), t.pos+1)
		case "home", "ctrl+a":
			t.pos = 0
		case "end", "ctrl+e":
			t.pos = len(t.value)
		default:
			if msg.Text != "" && msg.Mod&^tea.ModShift == 0 {
				t.insert(msg.Text)
			}
		}
	}
	return *t, nil
}

func (t *lineInput) insert(s string) {
	var rs []rune
	for _, r := range s {
		if unicode.IsPrint(r) || r == ' ' {
			rs = append(rs, r)
		}
	}
	v := append([]rune(nil), t.value[:t.pos]...)
	v = append(v, rs...)
	t.value = append(v, t.value[t.pos:]...)
	t.pos += len(rs)
}

// View renders prompt and value, scrolled so the cursor is visible.
func (t *lineInput) View() string {
	if len(t.value) == 0 && !t.focused && t.Placeholder != "" {
		return t.Prompt + t.dim.Render(t.Placeholder)
	}
	v := t.value
	pos := t.pos
	if w := t.width - lipgloss.Width(t.Prompt) - 1; w > 0 && len(v) > w {
		start := max(0, min(pos-w/2, len(v)-w))
		v = v[start:min(len(v), start+w)]
		pos -= start
	}
	if !t.focused {
		return t.Prompt + string(v)
	}
	under := " "
	after := ""
	if pos < len(v) {
		under = string(v[pos])
		after = string(v[pos+1:])
	}
	return t.Prompt + string(v[:pos]) + t.cursor.Render(under) + after
}

// bar draws a progress bar of w cells for fraction f (0..1) with the
// percentage, like bubbles/progress (whose animation dependency,
// github.com/charmbracelet/harmonica, has no go.sum entry yet).
func bar(f float64, w int, fill, empty lipgloss.Style) string {
	f = max(0, min(1, f))
	pct := strings.Repeat(" ", 0) + itoa(int(f*100+0.5)) + "%"
	w = max(4, w-len(pct)-1)
	n := int(f*float64(w) + 0.5)
	return fill.Render(strings.Repeat("█", n)) + empty.Render(strings.Repeat("░", w-n)) + " " + pct
}
