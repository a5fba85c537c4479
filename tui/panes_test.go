package tui

import (
	"bufio"
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/vfs"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

func newSized(t *testing.T, fixture string, w, h int) *Model {
	t.Helper()
	m := New(openTree(t, fixture), Options{Title: fixture})
	_, cmd := m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	drive(m, cmd)
	return m
}

// The volumes pane shows every volume blkid found, with blkid's type and
// label; swap is listed but not entered.
func TestVolumesPane(t *testing.T) {
	m := newSized(t, "dom0", 120, 30)
	type probe struct{ typ, label string }
	want := map[string]*probe{}
	var cur *probe
	sc := bufio.NewScanner(bytes.NewReader(fixturetest.Golden(t, "dom0-blkid.txt")))
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "== ") {
			cur = &probe{}
			want[strings.Fields(l)[1]] = cur
		} else if v, ok := strings.CutPrefix(l, "TYPE="); ok {
			cur.typ = v
		} else if v, ok := strings.CutPrefix(l, "LABEL="); ok {
			cur.label = v
		}
	}
	if len(want) < 8 {
		t.Fatalf("golden has %d volumes", len(want))
	}
	scr := ansi.Strip(m.render())
	for addr, p := range want {
		if !m.vols.find(addr) {
			t.Errorf("%s not in the volumes pane", addr)
			continue
		}
		row := m.vols.cursor - m.vols.top
		lines := strings.Split(scr, "\n")
		line := lines[1+row]
		if !strings.Contains(line, p.typ) || !strings.Contains(line, p.label) {
			t.Errorf("%s: row %q lacks blkid's TYPE=%s LABEL=%s", addr, line, p.typ, p.label)
		}
		scr = ansi.Strip(m.render())
	}
	// Swap: shown, not entered, and the reason is said.
	m.vols.find("VolGroup00/domu1/VolGroup00/LogVol01")
	press(m, "enter")
	if m.focus != paneVolumes || m.files.vol != nil || !strings.Contains(m.status, "swap") {
		t.Errorf("enter on swap: focus %v, status %q", m.focus, m.status)
	}
	// The VG clash is flagged on both VGs.
	if n := strings.Count(ansi.Strip(m.render()), "! clash VG"); n != 2 {
		t.Errorf("%d clash badges, want 2", n)
	}
	// Enter on the guest root opens it; h at its root returns to volumes.
	m.vols.find(guestRoot)
	press(m, "enter")
	if v, d := m.Dir(); v != guestRoot || d != "/" || m.focus != paneFiles {
		t.Fatalf("after enter: %s:%s focus %v", v, d, m.focus)
	}
	press(m, "h")
	if m.focus != paneVolumes {
		t.Errorf("h at the root: focus %v, want volumes", m.focus)
	}
	press(m, "l") // back into the open filesystem, same place
	if v, d := m.Dir(); v != guestRoot || d != "/" || m.focus != paneFiles {
		t.Errorf("l: %s:%s focus %v", v, d, m.focus)
	}
}

// Every layout fits the terminal: no line wider than it, exactly its
// height, and the panes the size allows.
func TestLayouts(t *testing.T) {
	for _, sz := range [][2]int{{200, 50}, {120, 30}, {80, 24}, {60, 40}, {40, 24}, {40, 12}, {20, 8}} {
		m := newSized(t, "dom0", sz[0], sz[1])
		m.vols.find(guestRoot)
		drive(m, m.enterVolume())
		drive(m, m.files.chdir("/home/alice", "notes.txt"))
		for _, keys := range [][]string{nil, {"?"}, {"?", "x"}} {
			press(m, keys...)
			out := m.render()
			lines := strings.Split(out, "\n")
			if len(lines) != sz[1] {
				t.Errorf("%dx%d %v: %d lines", sz[0], sz[1], keys, len(lines))
			}
			for i, l := range lines {
				if w := ansi.StringWidth(l); w > sz[0] {
					t.Errorf("%dx%d %v: line %d is %d wide: %q", sz[0], sz[1], keys, i, w, ansi.Strip(l))
				}
			}
			plain := ansi.Strip(out)
			if len(keys) == 0 && sz[0] >= 80 && !strings.Contains(ansi.Strip(lines[len(lines)-1]), "q quit") {
				t.Errorf("%dx%d: key hints cut: %q", sz[0], sz[1], ansi.Strip(lines[len(lines)-1]))
			}
			preview := strings.Contains(plain, "57 bytes · inode")
			wantPreview := sz[0] >= mediumCols || m.bodyHeight() >= stackRows
			if len(keys) == 0 && preview != wantPreview {
				t.Errorf("%dx%d: preview shown %v, want %v:\n%s", sz[0], sz[1], preview, wantPreview, plain)
			}
			if len(keys) == 0 && sz[1] >= 8 && !strings.Contains(plain, "notes.txt") {
				t.Errorf("%dx%d: files not shown:\n%s", sz[0], sz[1], plain)
			}
			if slices.Equal(keys, []string{"?", "x"}) {
				press(m, "esc")
			}
		}
	}
}

// Hostile names (from the extract package's fixture: '/', NUL, empty,
// extra "." and "..") are shown harmlessly and cannot be marked or
// entered.
func TestHostileNames(t *testing.T) {
	m := newSized(t, "hostile-ext", 80, 24)
	drive(m, m.enterVolume())
	if m.files.fsys == nil {
		t.Fatalf("hostile-ext not opened: %s", m.status)
	}
	out := ansi.Strip(m.render())
	for _, c := range out {
		if c < 0x20 && c != '\n' {
			t.Fatalf("control character %#x reached the screen:\n%q", c, out)
		}
	}
	if !slices.Contains(m.Shown(), "a/b") || !strings.Contains(out, "good.txt") {
		t.Fatalf("shown %q", m.Shown())
	}
	drive(m, m.files.chdir("/", "a/b"))
	press(m, " ")
	if len(m.Marked()) != 0 || !strings.Contains(m.status, "'/'") {
		t.Errorf("marking a/b: marks %q status %q", m.Marked(), m.status)
	}
	press(m, "a")
	for _, p := range m.Marked() {
		if strings.Count(p, "/") != 1 || strings.ContainsRune(p, 0) || p == "/" {
			t.Errorf("impossible name marked: %q", p)
		}
	}
	if !slices.Contains(m.Marked(), "/good.txt") || !strings.Contains(m.status, "left out") {
		t.Errorf("a: marks %q status %q", m.Marked(), m.status)
	}
	press(m, "a") // all markable are marked: a unmarks them
	if len(m.Marked()) != 0 {
		t.Errorf("second a left %q", m.Marked())
	}
	press(m, "a", "u")
	if len(m.Marked()) != 0 {
		t.Errorf("u left %q", m.Marked())
	}
}

// Paging, tab focus and preview scrolling in the 100k directory.
func TestPagingAndFocus(t *testing.T) {
	m := openBig(t, 100, 30)
	page := m.files.height - 1
	press(m, "j")
	if m.files.cursor != 1 {
		t.Fatalf("j: cursor %d", m.files.cursor)
	}
	_, cmd := m.Update(tea.KeyPressMsg{Code: tea.KeyPgDown})
	drive(m, cmd)
	if m.files.cursor != 1+page {
		t.Errorf("pgdown: cursor %d, want %d", m.files.cursor, 1+page)
	}
	_, cmd = m.Update(tea.KeyPressMsg{Code: tea.KeyPgUp})
	drive(m, cmd)
	if m.files.cursor != 1 {
		t.Errorf("pgup: cursor %d", m.files.cursor)
	}
	// The rows on screen after paging have their inodes.
	press(m, "G")
	for i := m.files.top; i < min(len(m.files.view), m.files.top+m.files.height); i++ {
		if m.files.entries[m.files.view[i]].stat == nil {
			t.Fatalf("row %d on screen without its inode", i)
		}
	}
	// tab: files → preview → volumes → files.
	press(m, "\t")
	if m.focus != panePreview {
		t.Errorf("tab: focus %v", m.focus)
	}
	press(m, "\t")
	if m.focus != paneVolumes {
		t.Errorf("tab tab: focus %v", m.focus)
	}
	press(m, "\t")
	if m.focus != paneFiles {
		t.Errorf("tab x3: focus %v", m.focus)
	}
}

// --open enters a volume at start; J/K scroll the preview from the files
// pane, and with the preview focused the movement keys scroll it.
func TestOpenAndPreviewScroll(t *testing.T) {
	m := New(openTree(t, "dom0"), Options{Open: "VolGroup00/LogVol00"})
	_, cmd := m.Update(tea.WindowSizeMsg{Width: 200, Height: 30})
	drive(m, cmd)
	drive(m, m.Init())
	if v, d := m.Dir(); v != "VolGroup00/LogVol00" || d != "/" {
		t.Fatalf("--open: at %s:%s", v, d)
	}
	drive(m, m.files.chdir("/var/log", "messages"))
	if got := m.prev.vp.TotalLineCount(); got < 200 {
		t.Fatalf("preview of messages has %d lines; dom0.sh wrote 200", got)
	}
	press(m, "J")
	if m.prev.vp.YOffset() != 3 {
		t.Errorf("J: offset %d", m.prev.vp.YOffset())
	}
	press(m, "K")
	if m.prev.vp.YOffset() != 0 {
		t.Errorf("K: offset %d", m.prev.vp.YOffset())
	}
	press(m, "enter") // a file: the preview takes the keys
	if m.focus != panePreview {
		t.Fatalf("enter on a file: focus %v", m.focus)
	}
	press(m, "G")
	if !m.prev.vp.AtBottom() {
		t.Errorf("G in the preview: not at the bottom")
	}
	scr := ansi.Strip(m.render())
	if !strings.Contains(scr, "heartbeat 200") {
		t.Errorf("last line of messages not shown after G:\n%s", scr)
	}
	press(m, "h")
	if m.focus != paneFiles || m.Current() != "messages" {
		t.Errorf("h from the preview: focus %v on %q", m.focus, m.Current())
	}
}

// sortEntries orders like a plain string sort with directories first,
// including names that share long prefixes, are shorter than 8 bytes, or
// hold bytes above 0x7f.
func TestSortEntries(t *testing.T) {
	names := []string{"b", "a", "abcdefgh2", "abcdefgh1", "abcdefgh", "abcdefg", "\xff", "Z", "", "a\x00", "日本", "abcdefghi", "dir2", "dir1"}
	var ents []entry
	for _, n := range names {
		ft := uint8(vfs.DTReg)
		if strings.HasPrefix(n, "dir") {
			ft = vfs.DTDir
		}
		ents = append(ents, entry{name: n, ftype: ft})
	}
	ents = sortEntries(ents)
	var got []string
	for _, e := range ents {
		got = append(got, e.name)
	}
	want := []string{"dir1", "dir2"}
	var files []string
	for _, n := range names {
		if !strings.HasPrefix(n, "dir") {
			files = append(files, n)
		}
	}
	slices.Sort(files)
	want = append(want, files...)
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// --open VOL:/path starts in that directory, or in a file's directory with
// the cursor on the file; only the first entry into the volume does.
func TestOpenAtPath(t *testing.T) {
	for _, tc := range []struct{ open, dir, cur string }{
		{"/var/log", "/var/log", ""},
		{"/var/log/messages", "/var/log", "messages"},
		{"/no/such", "/no/such", ""},
	} {
		m := New(openTree(t, "dom0"), Options{Open: "VolGroup00/LogVol00", OpenDir: tc.open})
		_, cmd := m.Update(tea.WindowSizeMsg{Width: 200, Height: 30})
		drive(m, cmd)
		drive(m, m.Init())
		v, d := m.Dir()
		if v != "VolGroup00/LogVol00" || d != tc.dir {
			t.Errorf("--open %s: at %s:%s, want %s", tc.open, v, d, tc.dir)
		}
		if tc.cur != "" && m.Current() != tc.cur {
			t.Errorf("--open %s: cursor on %q", tc.open, m.Current())
		}
		if tc.dir == "/no/such" && m.files.err == nil {
			t.Errorf("--open %s: no error shown", tc.open)
		}
	}
}
