package tui

import (
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/undelete"
)

// The D key lists, in the preview pane, the deleted files found under the
// current directory (ext3/ext4: the undelete scan of the journal's
// history, as `imgtool ls --deleted` and `imgtool undelete --list`):
// confidence, transaction, size and path. Nothing is written; recovering
// them is `imgtool undelete`. The scan runs once per volume.

// deletedMsg carries the scan of a volume.
type deletedMsg struct {
	vol *inspect.Volume
	dir string
	res *undelete.Result
	err error
}

func deletedCmd(v *inspect.Volume, dir string) tea.Cmd {
	return func() tea.Msg {
		r := v.Reader()
		if r == nil {
			return deletedMsg{vol: v, dir: dir, err: fmt.Errorf("no bytes to read")}
		}
		res, err := undelete.Scan(r, r.Size())
		return deletedMsg{vol: v, dir: dir, res: res, err: err}
	}
}

// showDeleted asks for the deleted files under the current directory.
func (m *Model) showDeleted() tea.Cmd {
	p := &m.files
	if p.vol == nil {
		return nil
	}
	if res, ok := m.deleted[p.vol]; ok {
		m.deletedLines(p.vol, p.dir, res, nil)
		return nil
	}
	m.setStatus(false, "looking for deleted files on %s ...", p.vol.DisplayAddress())
	return deletedCmd(p.vol, p.dir)
}

func (m *Model) deletedLoaded(msg deletedMsg) {
	if m.deleted == nil {
		m.deleted = map[*inspect.Volume]*undelete.Result{}
	}
	if msg.err == nil {
		m.deleted[msg.vol] = msg.res
	}
	m.deletedLines(msg.vol, msg.dir, msg.res, msg.err)
}

func (m *Model) deletedLines(v *inspect.Volume, dir string, res *undelete.Result, err error) {
	title := "deleted under " + dir
	key := "deleted:" + v.DisplayAddress() + ":" + dir
	if err != nil {
		m.prev.setLines(key, title, []string{"no deleted files can be looked for here: " + err.Error()})
		m.setStatus(true, "%s: %v", v.DisplayAddress(), err)
		return
	}
	prefix := strings.TrimSuffix(dir, "/") + "/"
	var lines []string
	n, partial := 0, 0
	for _, c := range res.Candidates {
		if !strings.HasPrefix(c.Path, prefix) && dir != "/" {
			continue
		}
		n++
		note := ""
		if !c.Intact {
			partial++
			note = "  " + strings.Join(c.Problems, "; ")
		}
		lines = append(lines, fmt.Sprintf("%-6s tx %-6d %10d  %s%s", c.Confidence, c.TID, c.Size, safeName(c.Path), note))
	}
	head := fmt.Sprintf("%d deleted files under %s (%d partial); nothing is written here: imgtool undelete recovers them", n, dir, partial)
	if !res.Journal {
		head += " (no journal: only inodes on disk were looked at)"
	}
	m.prev.setLines(key, title, append([]string{head, ""}, lines...))
	m.setStatus(false, "%d deleted files under %s", n, dir)
	if m.previewShown() {
		m.focus = panePreview
	}
}
