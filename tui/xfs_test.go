package tui

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"
)

// TestXFSNestedBrowseAndExtract (issue 14 point 7): the XFS root of the
// CentOS guest inside a host LV (both VGs named "centos") opens in the
// TUI, lists what the kernel mount listed, previews a file and extracts it
// with its content, mode and ns mtime.
func TestXFSNestedBrowseAndExtract(t *testing.T) {
	tree := openTree(t, "xfs-nested")
	const vol = "centos/guest/centos/root"
	tm := start(t, tree, 140, 30)
	for range 30 {
		done := make(chan bool, 1)
		tm.Send(funcMsg(func(m *Model) {
			v := m.vols.selected()
			done <- v != nil && v.Address == vol
		}))
		if <-done {
			break
		}
		tm.Send(tea.KeyPressMsg{Code: 'j', Text: "j"})
	}
	tm.Send(kEnter)
	waitModel(t, tm, "XFS root listing", func(m *Model) bool {
		v, d := m.Dir()
		return v == vol && d == "/" && idle(m) && len(m.Shown()) > 0
	})
	ch := make(chan []string, 1)
	tm.Send(funcMsg(func(m *Model) { ch <- slices.Clone(m.Shown()) }))
	got := <-ch
	slices.Sort(got)
	if want := []string{"etc", "home", "var"}; !slices.Equal(got, want) {
		t.Errorf("root lists %q, the kernel mount %q", got, want)
	}
	for _, dir := range []string{"/home", "/home/alice"} {
		name := filepath.Base(dir)
		tm.Type("/" + name)
		tm.Send(kEnter)
		waitModel(t, tm, "cursor on "+name, func(m *Model) bool { return m.Current() == name })
		tm.Send(kEnter)
		waitModel(t, tm, dir+" open", func(m *Model) bool {
			_, d := m.Dir()
			return d == dir && idle(m)
		})
	}
	waitModel(t, tm, "/home/alice listing", func(m *Model) bool {
		_, d := m.Dir()
		return d == "/home/alice" && idle(m) && len(m.Shown()) == 4
	})
	tm.Type("/notes.txt")
	tm.Send(kEnter)
	waitModel(t, tm, "notes.txt preview", func(m *Model) bool {
		return m.Current() == "notes.txt" && idle(m) && strings.Contains(m.prev.vp.GetContent(), "the only copy of the quarterly numbers")
	})
	tm.Send(kSpace)
	tm.Send(kEsc)
	dest := filepath.Join(t.TempDir(), "out")
	tm.Type("x")
	waitModel(t, tm, "destination prompt", func(m *Model) bool { return m.ex.state == exAsk })
	tm.Send(kCtrlU)
	tm.Type(dest)
	tm.Send(kEnter)
	waitModel(t, tm, "extraction summary", func(m *Model) bool { return m.LastExtract() != nil })
	tm.Send(kEnter)
	tm.Type("q")
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*Model)
	if s := fm.LastExtract(); s.Err != nil || s.Partial {
		t.Fatalf("extraction: err %v, lost %q", s.Err, s.Lost)
	}
	p := filepath.Join(dest, "notes.txt")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "the only copy of the quarterly numbers\n" {
		t.Errorf("content %q", b)
	}
	fi, _ := os.Stat(p)
	// touch -d '2009-03-14 15:09:26.5' in the fixture script (local time UTC there).
	if want := time.Date(2009, 3, 14, 15, 9, 26, 500000000, time.UTC); !fi.ModTime().Equal(want) {
		t.Errorf("mtime %v, want %v", fi.ModTime().UTC(), want)
	}
}
