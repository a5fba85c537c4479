package tui

import (
	"unicode"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/progress"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
)

// styles are the few attributes the UI uses. Colours are plain ANSI so the
// terminal's theme decides; Bubble Tea downsamples or strips them for the
// detected profile (NO_COLOR strips colour, keeping bold and reverse, so
// the cursor stays visible).
type styles struct {
	Plain, Header, Title, Dim, Cursor, CursorBlur lipgloss.Style
	Dir, Link, Exec, Special, Marked              lipgloss.Style
	Err, Warn, OK, Badge, Sep                     lipgloss.Style
}

func defaultStyles() styles {
	s := lipgloss.NewStyle
	return styles{
		Plain:      s(),
		Header:     s().Bold(true),
		Title:      s().Bold(true).Foreground(lipgloss.Cyan),
		Dim:        s().Faint(true),
		Cursor:     s().Reverse(true),
		CursorBlur: s().Underline(true),
		Dir:        s().Bold(true).Foreground(lipgloss.Blue),
		Link:       s().Foreground(lipgloss.Cyan),
		Exec:       s().Foreground(lipgloss.Green),
		Special:    s().Foreground(lipgloss.Magenta),
		Marked:     s().Bold(true).Foreground(lipgloss.Yellow),
		Err:        s().Foreground(lipgloss.Red),
		Warn:       s().Foreground(lipgloss.Yellow),
		OK:         s().Foreground(lipgloss.Green),
		Badge:      s().Foreground(lipgloss.Magenta),
		Sep:        s().Faint(true),
	}
}

// newTextInput is a bubbles textinput styled like the rest of the UI:
// no colours of its own (prompt and text in the terminal's colours, the
// placeholder faint), and a steady reverse-video cursor. A blinking cursor
// would tick a timer through Update for as long as a prompt is open; the
// old-style steady block is also what the NO_COLOR rendering keeps.
func newTextInput(prompt, placeholder string) textinput.Model {
	ti := textinput.New()
	ti.Prompt = prompt
	ti.Placeholder = placeholder
	plain := lipgloss.NewStyle()
	state := textinput.StyleState{
		Text:        plain,
		Prompt:      plain,
		Placeholder: plain.Faint(true),
		Suggestion:  plain.Faint(true),
	}
	ti.SetStyles(textinput.Styles{
		Focused: state,
		Blurred: state,
		Cursor:  textinput.CursorStyle{Color: lipgloss.NoColor{}, Shape: tea.CursorBlock},
	})
	return ti
}

// sizeInput gives ti room for w cells of text (prompt and cursor not
// counted). textinput recomputes its scroll window only when the cursor
// moves, so after a change of width the cursor is moved to the end (which
// rebuilds the window from the right) and back.
func sizeInput(ti *textinput.Model, w int) {
	w = max(1, w)
	if ti.Width() == w {
		return
	}
	ti.SetWidth(w)
	pos := ti.Position()
	ti.CursorEnd()
	ti.SetCursor(pos)
}

// editKey passes one key to ti, except that ctrl+w (and alt+backspace)
// delete back to the previous '/' or space rather than to the previous
// space only, as in a shell: the inputs hold paths and file names.
func editKey(ti *textinput.Model, k tea.KeyPressMsg) tea.Cmd {
	if key.Matches(k, ti.KeyMap.DeleteWordBackward) {
		v := []rune(ti.Value())
		pos := min(ti.Position(), len(v))
		i := pos
		for i > 0 && unicode.IsSpace(v[i-1]) {
			i--
		}
		for i > 0 && !unicode.IsSpace(v[i-1]) && v[i-1] != '/' {
			i--
		}
		if i == pos && i > 0 {
			i-- // only a separator before the cursor: delete it
		}
		ti.SetValue(string(v[:i]) + string(v[pos:]))
		ti.SetCursor(i)
		return nil
	}
	var cmd tea.Cmd
	*ti, cmd = ti.Update(k)
	return cmd
}

// newProgressBar is a bubbles progress bar drawn in the terminal's own
// green on its bright-black, with full blocks. The bar is rendered
// statically (ViewAs) from each progress message, so its spring
// animation is never started. Its colours are plain ANSI ones, which
// Bubble Tea's renderer strips under NO_COLOR like every other style.
func newProgressBar() progress.Model {
	return progress.New(
		progress.WithColors(lipgloss.Green),
		progress.WithFillCharacters(progress.DefaultFullCharFullBlock, progress.DefaultEmptyCharBlock),
		func(p *progress.Model) { p.EmptyColor = lipgloss.BrightBlack },
	)
}
