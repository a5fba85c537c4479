package tui

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
	"github.com/imgtool/imgtool/vfs"
)

// Preview limits: text is shown up to previewText bytes, binary data as a
// hex dump of its first previewHex bytes, a directory as its first
// previewNames names.
const (
	previewText  = 256 << 10
	previewHex   = 16 << 10
	previewNames = 200
	previewSort  = 5000 // bigger directories are listed unsorted
	maxLineCells = 1024 // longer lines are cut; the viewport scrolls sideways
)

// previewPane shows the selected file or volume in a viewport.
type previewPane struct {
	vp      viewport.Model
	seq     int
	title   string
	key     string // what is shown (volume address or file path + inode)
	loading bool
	utc     bool // Options.UTC: times in UTC, not the local zone
}

func newPreviewPane() previewPane {
	vp := viewport.New()
	vp.SetHorizontalStep(8)
	return previewPane{vp: vp}
}

// previewMsg carries loaded preview lines.
type previewMsg struct {
	seq   int
	title string
	lines []string
}

// setLines shows static lines (a volume's details) at once.
func (p *previewPane) setLines(key, title string, lines []string) {
	if p.key == key {
		return
	}
	p.seq++
	p.key, p.title, p.loading = key, title, false
	p.vp.SetContentLines(lines)
	p.vp.GotoTop()
}

// load asks for the preview of a file entry; nothing happens when it is
// already shown.
func (p *previewPane) load(fsys vfs.FS, dir string, e *entry) tea.Cmd {
	full := path.Join(dir, e.name)
	key := fmt.Sprintf("%p:%s:%d", fsys, full, e.ino)
	if p.key == key {
		return nil
	}
	p.seq++
	p.key, p.title, p.loading = key, full, true
	seq, ino, ft := p.seq, e.ino, e.ftype
	return func() tea.Msg {
		return previewMsg{seq: seq, title: full, lines: previewLines(fsys, ino, ft, p.utc)}
	}
}

func (p *previewPane) loaded(msg previewMsg) {
	if msg.seq != p.seq {
		return
	}
	p.loading = false
	p.title = msg.title
	p.vp.SetContentLines(msg.lines)
	p.vp.GotoTop()
	p.vp.SetXOffset(0)
}

func (p *previewPane) clear() {
	p.seq++
	p.key, p.title, p.loading = "", "", false
	p.vp.SetContentLines(nil)
}

// previewLines builds the preview of inode ino: a stat header, then the
// content. Errors become lines: damage is shown, not fatal.
func previewLines(fsys vfs.FS, ino vfs.Ino, ft uint8, utc bool) []string {
	in, err := fsys.Stat(ino)
	if err != nil {
		return []string{"! cannot read inode " + fmt.Sprint(ino) + ":", "  " + err.Error()}
	}
	// Short lines: the preview may be narrow.
	out := []string{
		fmt.Sprintf("%s %d:%d", modeString(in.FileMode()), in.UID, in.GID),
		fmt.Sprintf("%s · inode %d · %d link%s", sizeText(in), ino, in.Nlink, plural(int(in.Nlink))),
		zoned(in.Mtime, utc).Format("2006-01-02 15:04:05 -0700"),
		"",
	}
	switch {
	case in.IsSymlink():
		t, err := fsys.Readlink(ino)
		if err != nil {
			return append(out, "! symlink unreadable: "+err.Error())
		}
		return append(out, "symbolic link → "+safeName(t))
	case in.IsDir():
		return append(out, dirPreview(fsys, ino)...)
	case !in.IsRegular():
		return append(out, "(special file: no content)")
	}
	f, err := fsys.Open(ino)
	if err != nil {
		return append(out, "! cannot read the file: "+err.Error())
	}
	n := min(f.Size(), previewText)
	buf := make([]byte, n)
	got, err := f.ReadAt(buf, 0)
	buf = buf[:got]
	if err != nil && !errors.Is(err, io.EOF) {
		out = append(out, fmt.Sprintf("! read error after %d bytes: %v", got, err), "")
	}
	if f.Size() == 0 {
		return append(out, "(empty file)")
	}
	if isText(buf) {
		out = append(out, textLines(buf)...)
		if f.Size() > int64(len(buf)) {
			out = append(out, "", fmt.Sprintf("… first %s of %s shown", humanSize(int64(len(buf))), humanSize(f.Size())))
		}
		return out
	}
	h := buf[:min(len(buf), previewHex)]
	out = append(out, hexLines(h)...)
	if f.Size() > int64(len(h)) {
		out = append(out, "", fmt.Sprintf("… binary: first %s of %s shown", humanSize(int64(len(h))), humanSize(f.Size())))
	}
	return out
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func sizeText(in *vfs.Stat) string {
	if in.Size < 1024 {
		return fmt.Sprintf("%d bytes", in.Size)
	}
	return fmt.Sprintf("%s (%d bytes)", humanSize(min(in.Size, 1<<62)), in.Size)
}

func dirPreview(fsys vfs.FS, ino vfs.Ino) []string {
	des, err := fsys.ReadDir(ino)
	var out []string
	if err != nil {
		out = append(out, "! "+err.Error(), "")
	}
	names := make([]string, 0, len(des))
	for _, d := range des {
		n := safeName(d.Name)
		if d.Type == vfs.DTDir {
			n += "/"
		}
		names = append(names, n)
	}
	out = append(out, fmt.Sprintf("directory, %d entr%s", len(names), map[bool]string{true: "y", false: "ies"}[len(names) == 1]))
	if len(names) <= previewSort {
		slices.Sort(names)
	} else {
		out = append(out, "(first names in on-disk order)")
	}
	if len(names) > previewNames {
		names = append(names[:previewNames], fmt.Sprintf("… and %d more", len(names)-previewNames))
	}
	return append(out, names...)
}

// isText reports whether b looks like text: valid UTF-8 (allowing a rune
// cut at the end) and no NUL or other C0 controls but tab, newline, CR,
// form feed and escape.
func isText(b []byte) bool {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != 0x1b {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return !utf8.FullRune(b[i:]) // only a rune cut by the read limit is fine
		}
		i += n
	}
	return true
}

// textLines splits text into display lines: tabs expanded, control
// characters made visible, very long lines cut.
func textLines(b []byte) []string {
	s := string(b)
	s = strings.TrimSuffix(s, "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		var sb strings.Builder
		col := 0
		for _, r := range l {
			if col >= maxLineCells {
				sb.WriteString("…")
				break
			}
			switch {
			case r == '\t':
				n := 8 - col%8
				sb.WriteString(strings.Repeat(" ", n))
				col += n
			case r < 0x20 || r == 0x7f:
				fmt.Fprintf(&sb, "^%c", rune((r+0x40)&0x7f))
				col += 2
			case !unicode.IsGraphic(r):
				// C1 controls, bidi overrides and other format
				// characters would move or merge cells.
				sb.WriteRune('·')
				col++
			default:
				sb.WriteRune(r)
				col++
			}
		}
		lines[i] = sb.String()
	}
	return lines
}

// hexLines is exactly `hexdump -C` of b: offset, 16 bytes in two groups
// of 8, the printable ASCII column; a run of lines equal to the one before
// is squeezed into a single "*" (so a sparse file's zeros take one line),
// and the last line is the total length.
func hexLines(b []byte) []string {
	out := make([]string, 0, 8)
	var prev []byte
	squeezed := false
	for off := 0; off < len(b); off += 16 {
		row := b[off:min(off+16, len(b))]
		if prev != nil && len(row) == 16 && bytes.Equal(row, prev) {
			if !squeezed {
				out = append(out, "*")
				squeezed = true
			}
			continue
		}
		prev, squeezed = row, false
		var sb strings.Builder
		fmt.Fprintf(&sb, "%08x  ", off)
		for i := 0; i < 16; i++ {
			if i < len(row) {
				fmt.Fprintf(&sb, "%02x ", row[i])
			} else {
				sb.WriteString("   ")
			}
			if i == 7 {
				sb.WriteByte(' ')
			}
		}
		sb.WriteString(" |")
		for _, c := range row {
			if c < 0x20 || c > 0x7e {
				c = '.'
			}
			sb.WriteByte(c)
		}
		sb.WriteByte('|')
		out = append(out, sb.String())
	}
	if len(b) > 0 {
		out = append(out, fmt.Sprintf("%08x", len(b)))
	}
	return out
}

func (m *Model) viewPreview(w, h int, focused bool) []string {
	p := &m.prev
	st := &m.st
	title := p.title
	if p.loading {
		title += " …"
	}
	ts := st.Title
	if !focused {
		ts = st.Header
	}
	lines := []string{ts.Render(fit(" "+safeName(title), w))}
	p.vp.SetWidth(w)
	p.vp.SetHeight(max(1, h-1))
	body := p.vp.View()
	lines = append(lines, strings.Split(body, "\n")...)
	return lines
}
