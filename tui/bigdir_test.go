package tui

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// drive runs cmd and every command that follows from it synchronously,
// feeding each message back into Update: the program loop without a
// terminal.
func drive(m *Model, cmd tea.Cmd) {
	queue := []tea.Cmd{cmd}
	for n := 0; len(queue) > 0 && n < 10000; n++ {
		c := queue[0]
		queue = queue[1:]
		if c == nil {
			continue
		}
		switch msg := c().(type) {
		case nil:
		case tea.BatchMsg:
			queue = append(queue, msg...)
		default:
			_, next := m.Update(msg)
			queue = append(queue, next)
		}
	}
}

func keyMsg(s string) tea.KeyPressMsg {
	switch s {
	case "enter":
		return kEnter
	case "backspace":
		return kBack
	case " ":
		return kSpace
	case "\t":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "esc":
		return kEsc
	}
	r := []rune(s)[0]
	return tea.KeyPressMsg{Code: r, Text: s}
}

// press sends keys one by one, running what each asks for.
func press(m *Model, keys ...string) {
	for _, k := range keys {
		_, cmd := m.Update(keyMsg(k))
		drive(m, cmd)
	}
}

// openBig builds a model on the bigdir fixture and opens /big.
func openBig(tb testing.TB, w, h int) *Model {
	tree := openTree(tb, "tui-bigdir")
	m := New(tree, Options{Title: "tui-bigdir.img"})
	_, cmd := m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	drive(m, cmd)
	drive(m, m.enterVolume())
	drive(m, m.files.chdir("/big", ""))
	return m
}

type bigGolden struct {
	count       int
	first, last []string
}

func readBigGolden(t *testing.T) bigGolden {
	var g bigGolden
	sc := bufio.NewScanner(bytes.NewReader(fixturetest.Golden(t, "tui-bigdir.txt")))
	var cur *[]string
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "count "):
			g.count, _ = strconv.Atoi(strings.TrimPrefix(l, "count "))
		case l == "first":
			cur = &g.first
		case l == "last":
			cur = &g.last
		case cur != nil:
			*cur = append(*cur, l)
		}
	}
	if g.count < 100000 || len(g.first) != 20 || len(g.last) != 20 {
		t.Fatalf("bad golden: %+v", g)
	}
	return g
}

func TestBigDir(t *testing.T) {
	g := readBigGolden(t)
	m := openBig(t, 100, 40)
	if m.files.err != nil {
		t.Fatal(m.files.err)
	}
	shown := m.Shown()
	if len(shown) != g.count {
		t.Fatalf("%d entries shown, debugfs lists %d", len(shown), g.count)
	}
	// debugfs order sorted bytewise; the UI lists directories first.
	var want []string
	for _, n := range g.first {
		if n == "sub" {
			continue
		}
		want = append(want, n)
	}
	if shown[0] != "sub" {
		t.Errorf("first row %q, want the directory sub", shown[0])
	}
	for i, n := range want {
		if shown[1+i] != n {
			t.Fatalf("row %d: %q, debugfs order says %q", 1+i, shown[1+i], n)
		}
	}
	var wantLast []string
	for _, n := range g.last {
		if n != "sub" {
			wantLast = append(wantLast, n)
		}
	}
	for i, n := range wantLast {
		if got := shown[len(shown)-len(wantLast)+i]; got != n {
			t.Fatalf("row %d from the end: %q, want %q", len(wantLast)-i, got, n)
		}
	}
	// Only the window (and its read-ahead margin) had its inodes read.
	stated := func() int {
		n := 0
		for i := range m.files.entries {
			if m.files.entries[i].stat != nil {
				n++
			}
		}
		return n
	}
	limit := m.files.height + 2*statMargin + 1
	if n := stated(); n > limit {
		t.Errorf("%d inodes read to show the first screen (limit %d)", n, limit)
	}
	scr := ansi.Strip(m.render())
	if !strings.Contains(scr, want[0]) || strings.Contains(scr, wantLast[len(wantLast)-1]) {
		t.Errorf("first screen wrong:\n%s", scr)
	}
	// Jump to the end: the last name is on screen, with its columns.
	press(m, "G")
	scr = ansi.Strip(m.render())
	if row := findLine(scr, wantLast[len(wantLast)-1]); row == "" || !strings.Contains(row, "-rw-r--r--") {
		t.Errorf("after G, %s not shown with its mode:\n%s", wantLast[len(wantLast)-1], scr)
	}
	if n := stated(); n > 2*limit {
		t.Errorf("%d inodes read after G (limit %d)", n, 2*limit)
	}
	// The filter narrows 100k entries to the ten f09999x.
	press(m, "/", "f", "0", "9", "9", "9", "9", "enter")
	if got := len(m.Shown()); got != 10 {
		t.Errorf("filter f09999: %d shown, want 10", got)
	}
}

// BenchmarkOpenBigDir measures what a person waits for when entering a
// directory of 100k entries: reading and sorting it, reading the inodes of
// the first screen, and rendering that screen.
//
// Each iteration starts at the filesystem root with the cursor on big/
// (its preview already loaded, as it would be after a moment there) and
// ends when the first screen of /big is rendered.
func BenchmarkOpenBigDir(b *testing.B) {
	tree := openTree(b, "tui-bigdir")
	m := New(tree, Options{Title: "tui-bigdir.img"})
	_, cmd := m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	drive(m, cmd)
	drive(m, m.enterVolume())
	for b.Loop() {
		b.StopTimer()
		drive(m, m.files.chdir("/", "big"))
		if m.Current() != "big" {
			b.Fatalf("cursor on %q", m.Current())
		}
		b.StartTimer()
		press(m, "enter")
		if len(m.files.entries) < 100000 {
			b.Fatalf("%d entries", len(m.files.entries))
		}
		_ = m.render()
	}
}

// BenchmarkScrollBigDir measures one page-down and its render in the 100k
// directory.
func BenchmarkScrollBigDir(b *testing.B) {
	m := openBig(b, 120, 40)
	for b.Loop() {
		_, cmd := m.Update(tea.KeyPressMsg{Code: tea.KeyPgDown})
		drive(m, cmd)
		_ = m.render()
	}
}
