package tui

import "charm.land/lipgloss/v2"

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
