package tui

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// TestDeletedToggle (issue 18.3): in the files pane of the kernel-made
// undelete fixture, D lists in the preview pane the deleted files under the
// current directory — every one the fixture script deleted, by path, none
// other — and writes nothing.
func TestDeletedToggle(t *testing.T) {
	var want []string
	sc := bufio.NewScanner(bytes.NewReader(fixturetest.Golden(t, "undel-ext4.deleted")))
	for sc.Scan() {
		if f := strings.Split(sc.Text(), "\t"); len(f) == 3 && !strings.HasPrefix(f[0], "#") {
			want = append(want, "/"+f[0])
		}
	}
	tree := openTree(t, "undel-ext4")
	tm := start(t, tree, 160, 40)
	tm.Send(kEnter)
	waitModel(t, tm, "root listing", func(m *Model) bool {
		_, d := m.Dir()
		return d == "/" && idle(m) && len(m.Shown()) > 0
	})
	tm.Send(tea.KeyPressMsg{Code: 'D', Text: "D"})
	var content string
	waitModel(t, tm, "deleted listing", func(m *Model) bool {
		content = m.prev.vp.GetContent()
		return strings.Contains(content, "deleted files under /")
	})
	for _, p := range want {
		if !strings.Contains(content, p+"\n") && !strings.HasSuffix(content, p) {
			t.Errorf("%s not listed", p)
		}
	}
	if n := strings.Count(content, "tx "); n != len(want) {
		t.Errorf("%d rows, %d files were deleted", n, len(want))
	}
	if t.Failed() {
		t.Logf("preview:\n%s", content)
	}
}

// TestStaleViewSaid (issue 18.2): opening a filesystem whose fast commits
// could not all be replayed says so in the status line.
func TestStaleViewSaid(t *testing.T) {
	tree := openTree(t, "fc-badcrc")
	tm := start(t, tree, 160, 40)
	tm.Send(kEnter)
	waitModel(t, tm, "stale status", func(m *Model) bool {
		return strings.Contains(m.status, "stale view") && strings.Contains(m.status, "fast-commit replay stopped")
	})
}
