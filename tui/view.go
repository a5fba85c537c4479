package tui

import (
	"strconv"
	"strings"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
)

// Layout thresholds (terminal columns).
const (
	wideCols   = 110 // volumes │ files │ preview
	mediumCols = 70  // focused list │ preview
	stackRows  = 18  // below mediumCols: preview stacked under the list if this many body rows
)

// bodyHeight is the rows between the header and the two bottom lines,
// minus the extraction box when one is open.
func (m *Model) bodyHeight() int {
	h := m.height - 3
	if m.ex.state != exIdle {
		h -= len(m.viewExtract(m.width)) + 1
	}
	return max(1, h)
}

// previewShown reports whether the layout has room for the preview.
func (m *Model) previewShown() bool {
	return m.width >= mediumCols || m.bodyHeight() >= stackRows
}

// layout recomputes pane sizes after a resize.
func (m *Model) layout() {
	m.help.SetWidth(m.width)
	m.files.height = max(1, m.bodyHeight()-1)
}

// previewGeom returns the preview pane's size under the current layout
// (the same rules as render), 0x0 when it is hidden.
func (m *Model) previewGeom() (w, h int) {
	W := max(m.width, 10)
	bh := m.bodyHeight()
	switch {
	case W >= wideCols:
		compact := m.focus != paneVolumes && m.files.fsys != nil
		vw := clamp(m.vols.naturalWidth(compact), 16, W/3)
		return (W - vw) * 3 / 10, bh
	case W >= mediumCols:
		return W - W*3/5 - 1, bh
	case bh >= stackRows:
		return W, bh - bh*3/5 - 1
	case m.focus == panePreview:
		return W, bh
	}
	return 0, 0
}

// sizePreview gives the viewport its size before keys scroll it (render
// sets it too, but keys can arrive before the first frame after a
// change of layout).
func (m *Model) sizePreview() {
	w, h := m.previewGeom()
	m.prev.vp.SetWidth(max(1, w))
	m.prev.vp.SetHeight(max(1, h-1))
}

// column is one pane's rendered lines and width.
type column struct {
	lines []string
	w     int
}

func (m *Model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.WindowTitle = "imgtool " + m.opts.Title
	return v
}

// render draws the whole screen as a string of exactly m.height lines.
// Every pane renders only its visible rows.
func (m *Model) render() string {
	if m.quitting {
		return ""
	}
	w, h := max(m.width, 10), max(m.height, 3)
	st := &m.st
	out := make([]string, 0, h)
	out = append(out, m.header(w))

	if m.showHelp {
		out = append(out, st.Title.Render(fit(" Keys (any key closes this)", w)), "")
		for _, l := range m.helpLines(w - 1) {
			out = append(out, " "+l)
		}
		out = append(out, "",
			fit(" Volumes: enter opens an ext2/3/4 filesystem; others show why they cannot.", w),
			fit(" Marks span directories; x extracts them (or the entry under the cursor).", w),
			fit(" Rows marked ! have damage: the rest keeps working. S salvages a whole volume", w),
			fit(" (even one no longer recognised): what is unreachable goes to #orphans.", w))
		return finish(out, w, h)
	}

	bh := m.bodyHeight()
	var cols []column
	focusFiles := m.focus != paneVolumes && m.files.fsys != nil
	listFocused := m.focus != panePreview
	switch {
	case w >= wideCols:
		// The volumes pane takes what it needs while it has the focus,
		// and shrinks to names once a filesystem is being browsed.
		compact := m.focus != paneVolumes && m.files.fsys != nil
		vw := clamp(m.vols.naturalWidth(compact), 16, w/3)
		pw := (w - vw) * 3 / 10
		fw := w - vw - pw - 2
		cols = []column{
			{m.viewVolumes(vw, bh, m.focus == paneVolumes, compact), vw},
			{m.viewFiles(fw, bh, m.focus == paneFiles), fw},
			{m.viewPreview(pw, bh, m.focus == panePreview), pw},
		}
	case w >= mediumCols:
		lw := w * 3 / 5
		pw := w - lw - 1
		if focusFiles {
			cols = append(cols, column{m.viewFiles(lw, bh, m.focus == paneFiles), lw})
		} else {
			cols = append(cols, column{m.viewVolumes(lw, bh, listFocused, false), lw})
		}
		cols = append(cols, column{m.viewPreview(pw, bh, m.focus == panePreview), pw})
	default:
		list := func(lh int) []string {
			if focusFiles {
				return m.viewFiles(w, lh, m.focus == paneFiles)
			}
			return m.viewVolumes(w, lh, listFocused, false)
		}
		if bh >= stackRows {
			lh := bh * 3 / 5
			lines := padLines(list(lh), w, lh)
			lines = append(lines, st.Sep.Render(strings.Repeat("─", w)))
			lines = append(lines, m.viewPreview(w, bh-lh-1, m.focus == panePreview)...)
			cols = []column{{lines, w}}
		} else if m.focus == panePreview {
			cols = []column{{m.viewPreview(w, bh, true), w}}
		} else {
			cols = []column{{list(bh), w}}
		}
	}
	out = append(out, joinColumns(cols, bh, st.Sep.Render("│"))...)

	if m.ex.state != exIdle {
		out = append(out, st.Sep.Render(strings.Repeat("─", w)))
		out = append(out, m.viewExtract(w)...)
	}
	// Status line, then the key hint line.
	status := m.status
	if m.ex.state == exDone {
		status = "" // the summary box says it
	}
	switch {
	case status == "" && m.files.fsys != nil:
		status = m.filesStatus()
	case status == "":
		status = "enter opens a filesystem · ? for all keys"
	}
	if m.statusErr && m.status != "" && m.ex.state != exDone {
		out = append(out, st.Err.Render(fit(" "+status, w)))
	} else {
		out = append(out, st.Dim.Render(fit(" "+status, w)))
	}
	out = append(out, fit(m.help.ShortHelpView(m.keys.ShortHelp()), w))
	return finish(out, w, h)
}

// helpLines lays out every key binding in as many columns as fit in w:
// all groups side by side when there is room, else fewer per row.
func (m *Model) helpLines(w int) []string {
	groups := m.keys.FullHelp()
	hm := m.help
	hm.SetWidth(0) // measure without truncation
	for per := len(groups); per >= 1; per-- {
		var out []string
		fits := true
		for i := 0; i < len(groups); i += per {
			block := hm.FullHelpView(groups[i:min(i+per, len(groups))])
			for _, l := range strings.Split(block, "\n") {
				if lipgloss.Width(l) > w {
					fits = false
				}
				out = append(out, l)
			}
			out = append(out, "")
		}
		if fits || per == 1 {
			return out
		}
	}
	return nil
}

// filesStatus is the default status: position, counts and marks.
func (m *Model) filesStatus() string {
	p := &m.files
	if p.loading {
		return "loading…"
	}
	s := ""
	if len(p.view) > 0 {
		s = itoa(p.cursor+1) + "/" + itoa(len(p.view))
	} else {
		s = "0/0"
	}
	if len(p.view) != len(p.entries) {
		s += " (of " + itoa(len(p.entries)) + ")"
	}
	if !p.showDot {
		s += " · dotfiles hidden"
	}
	if n := len(p.marks); n > 0 {
		s += " · " + itoa(n) + " marked (x extracts)"
	}
	return s
}

// header is the first line: the image and VOLUME:/path, which is also how
// the CLI names the place.
func (m *Model) header(w int) string {
	st := &m.st
	where := ""
	if m.files.vol != nil {
		addr := m.files.vol.Address
		where = addr + ":" + m.files.dir
		if addr == "" {
			where = m.files.dir
		}
	}
	left := " imgtool " + m.opts.Title
	if where == "" {
		return st.Header.Render(fit(left, w))
	}
	lw := min(lipgloss.Width(left), w/3)
	return st.Header.Render(fit(left, lw)) + st.Title.Render(fit("  "+safeName(where), w-lw))
}

// joinColumns puts panes side by side, h rows, with a separator.
func joinColumns(cols []column, h int, sep string) []string {
	out := make([]string, h)
	for i := 0; i < h; i++ {
		var b strings.Builder
		for j, c := range cols {
			if j > 0 {
				b.WriteString(sep)
			}
			if i < len(c.lines) {
				l := c.lines[i]
				b.WriteString(l)
				if pad := c.w - lipgloss.Width(l); pad > 0 {
					b.WriteString(strings.Repeat(" ", pad))
				}
			} else {
				b.WriteString(strings.Repeat(" ", c.w))
			}
		}
		out[i] = b.String()
	}
	return out
}

func padLines(lines []string, w, h int) []string {
	for len(lines) < h {
		lines = append(lines, strings.Repeat(" ", w))
	}
	return lines[:h]
}

// finish cuts or pads the screen to h lines.
func finish(lines []string, w, h int) string {
	if len(lines) > h {
		lines = lines[:h]
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n")
}

func itoa(n int) string { return strconv.Itoa(n) }
