package tui

import (
	"fmt"
	"path"
	"strings"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/undelete"
	"github.com/imgtool/imgtool/vfs"
)

// Options configure the program.
type Options struct {
	// Title names what is shown (the image path, or the demo).
	Title string
	// Dest is the default extraction destination offered by x
	// ("./imgtool-extract" when empty).
	Dest string
	// Open, when set, is a volume address to enter at start.
	Open string
	// OpenDir, with Open, is the directory shown when that volume is
	// first entered ("/" when empty); a path naming a file shows its
	// directory with the cursor on it.
	OpenDir string
	// SalvageDest is the default destination offered by S
	// ("./imgtool-salvage" when empty).
	SalvageDest string
	// NoJournal shows filesystems as they are on disk: a journal that
	// needs recovery is not replayed (browsing, x and S alike).
	NoJournal bool
	// OSLabels names the operating system found on a disk, by the disk's
	// address ("VolGroup00/domu1": "CentOS 5.8 (www1)"), shown on its row.
	OSLabels map[string]string
	// OpenFS, when set, opens a volume's files instead of
	// Volume.OpenFS: imgtool tui --open VOL:@ shows the guest view (the
	// OS with its fstab applied) when its root volume is entered.
	OpenFS func(v *inspect.Volume) (vfs.FS, error)
	// UTC shows times in UTC; by default they are local, with the zone's
	// offset shown, as ls -l prints them (imgtool tui --utc).
	UTC bool
}

// pane identifies who has the keyboard.
type pane int

const (
	paneVolumes pane = iota
	paneFiles
	panePreview
)

// Model is the whole program state. Each pane is its own model; Update
// routes keys to the focused one and async results by type.
type Model struct {
	tree *inspect.Tree
	opts Options
	keys keyMap
	st   styles
	help help.Model

	vols  volumesPane
	files filesPane
	prev  previewPane
	ex    extractPane

	focus     pane
	showHelp  bool
	status    string // one-line message (errors in red)
	statusErr bool

	width, height int
	quitting      bool
	confirmQuit   bool // q was pressed once during an extraction

	// deleted caches the undelete scan of each volume (the D key).
	deleted map[*inspect.Volume]*undelete.Result
}

// New builds the model over an inspected tree.
func New(t *inspect.Tree, opts Options) *Model {
	if opts.Dest == "" {
		opts.Dest = "./imgtool-extract"
	}
	if opts.SalvageDest == "" {
		opts.SalvageDest = "./imgtool-salvage"
	}
	m := &Model{
		tree:   t,
		opts:   opts,
		keys:   defaultKeys(),
		st:     defaultStyles(),
		help:   help.New(),
		vols:   newVolumesPane(t, opts.OSLabels),
		files:  newFilesPane(),
		prev:   newPreviewPane(),
		ex:     newExtractPane(opts.Dest, opts.SalvageDest, opts.NoJournal),
		width:  80,
		height: 24,
	}
	if opts.Open != "" {
		m.vols.find(opts.Open)
	}
	m.prev.utc = opts.UTC
	m.previewVolume()
	return m
}

// Init enters the start volume when one was asked for.
func (m *Model) Init() tea.Cmd {
	if m.opts.Open != "" {
		return m.enterVolume()
	}
	return nil
}

// Dir returns the open volume's address and directory ("" when none), for
// tests and callers.
func (m *Model) Dir() (volume, dir string) {
	if m.files.vol == nil {
		return "", ""
	}
	return m.files.vol.Address, m.files.dir
}

// Marked returns the marked paths, sorted.
func (m *Model) Marked() []string { return m.files.markedPaths() }

// Shown returns the names in the files pane, in display order.
func (m *Model) Shown() []string {
	out := make([]string, len(m.files.view))
	for i, ix := range m.files.view {
		out[i] = m.files.entries[ix].name
	}
	return out
}

// Current returns the name under the files cursor.
func (m *Model) Current() string {
	if e := m.files.current(); e != nil {
		return e.name
	}
	return ""
}

// Loading reports whether any asynchronous work is in flight (directory,
// preview or extraction).
func (m *Model) Loading() bool {
	return m.files.loading || m.prev.loading || m.ex.state == exRunning
}

// LastExtract returns the summary of the last extraction, nil before one
// finished.
func (m *Model) LastExtract() *Summary { return m.ex.summary }

// funcMsg runs a function on the model inside Update, on the event loop's
// goroutine: tests read state through it without racing the program.
type funcMsg func(*Model)

func (m *Model) setStatus(err bool, format string, a ...any) {
	m.status = fmt.Sprintf(format, a...)
	m.statusErr = err
}

// Update is the event loop's single entry point. It never blocks: disk
// reads happen in tea.Cmds whose results come back as messages.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	m.sizePreview()
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.layout()
		return m, m.files.statVisible()

	case tea.KeyPressMsg:
		return m, m.key(msg)

	case tea.PasteMsg:
		// Pasted text goes to whichever input is open.
		switch {
		case m.ex.state == exAsk:
			m.ex.input, _ = m.ex.input.Update(msg)
		case m.files.filtering:
			m.files.input, _ = m.files.input.Update(msg)
			m.files.filter = m.files.input.Value()
			m.files.refilter()
			return m, tea.Batch(m.files.statVisible(), m.previewCurrent())
		}
		return m, nil

	case fsOpenedMsg:
		if m.files.vol != msg.vol {
			return m, nil
		}
		if msg.err != nil {
			m.files.vol = nil
			m.focus = paneVolumes
			m.setStatus(true, "%v", msg.err)
			return m, nil
		}
		m.files.fsys = msg.fsys
		// A stale view (journal or fast commits not replayed) is said
		// first: what is shown is older than the disk.
		if notes := msg.fsys.Notes(); len(notes) > 0 {
			n := notes[0]
			for _, x := range notes {
				if x.Stale {
					n = x
					break
				}
			}
			prefix := ""
			if n.Stale {
				prefix = "stale view, older than the disk: "
			}
			m.setStatus(true, "%s: %s%s", msg.vol.DisplayAddress(), prefix, n.String())
		}
		dir, want := "/", ""
		if m.opts.OpenDir != "" && msg.vol.Address == m.opts.Open {
			dir, want = startDir(msg.fsys, m.opts.OpenDir)
			m.opts.OpenDir = "" // only the first time
		}
		return m, m.files.chdir(dir, want)

	case dirLoadedMsg:
		if msg.seq != m.files.seq {
			return m, nil
		}
		cmd := m.files.loaded(msg)
		if msg.err != nil {
			m.setStatus(true, "%s: %v", msg.dir, msg.err)
		}
		return m, tea.Batch(cmd, m.previewCurrent())

	case statMsg:
		m.files.stated(msg)
		return m, nil

	case linkMsg:
		if msg.seq != m.files.seq {
			return m, nil
		}
		if msg.isDir {
			return m, m.files.chdir(msg.path, "")
		}
		if m.previewShown() {
			m.focus = panePreview
		}
		return m, m.previewCurrent()

	case previewMsg:
		m.sizePreview()
		m.prev.loaded(msg)
		return m, nil

	case deletedMsg:
		m.sizePreview()
		m.deletedLoaded(msg)
		return m, nil

	case funcMsg:
		msg(m)
		return m, nil

	case extractProgressMsg, extractDoneMsg:
		return m, m.ex.update(m, msg)
	}
	// Cursor blink and other bubble-internal messages.
	var cmd tea.Cmd
	if m.files.filtering {
		m.files.input, cmd = m.files.input.Update(msg)
	} else if m.ex.state == exAsk {
		m.ex.input, cmd = m.ex.input.Update(msg)
	}
	return m, cmd
}

func (m *Model) key(k tea.KeyPressMsg) tea.Cmd {
	km := &m.keys
	if k.String() == "ctrl+c" {
		m.ex.cancelRun()
		m.quitting = true
		return tea.Quit
	}
	if m.showHelp {
		// Any key closes help; q still quits.
		m.showHelp = false
		if k.String() == "q" {
			m.quitting = true
			return tea.Quit
		}
		return nil
	}
	if m.ex.state == exAsk || m.ex.state == exDone {
		return m.ex.key(m, k)
	}
	if m.files.filtering {
		return m.filterKey(k)
	}
	switch {
	case key.Matches(k, km.Cancel) && m.ex.state == exRunning:
		return m.ex.userCancel(m)
	case key.Matches(k, km.Quit):
		// Quitting mid-copy leaves a partial extraction: ask once.
		if m.ex.state == exRunning && !m.confirmQuit {
			m.confirmQuit = true
			m.setStatus(true, "an extraction is running: q again aborts it and quits")
			return nil
		}
		m.ex.cancelRun()
		m.quitting = true
		return tea.Quit
	case key.Matches(k, km.Help):
		m.showHelp = true
		return nil
	case key.Matches(k, km.Tab):
		return m.cycleFocus(k.String() == "shift+tab")
	case key.Matches(k, km.PreviewDown):
		m.prev.vp.ScrollDown(3)
		return nil
	case key.Matches(k, km.PreviewUp):
		m.prev.vp.ScrollUp(3)
		return nil
	case key.Matches(k, km.Extract) && m.files.fsys != nil:
		return m.ex.ask(m)
	case key.Matches(k, km.Salvage):
		return m.ex.askSalvage(m, m.salvageTarget())
	}
	m.status = ""
	m.confirmQuit = false
	switch m.focus {
	case paneVolumes:
		return m.volumesKey(k)
	case paneFiles:
		return m.filesKey(k)
	default:
		return m.previewKey(k)
	}
}

// salvageTarget is the volume S salvages: the one under the cursor in the
// volumes pane, else the open filesystem's.
func (m *Model) salvageTarget() *inspect.Volume {
	if m.focus == paneVolumes || m.files.vol == nil {
		return m.vols.selected()
	}
	return m.files.vol
}

func (m *Model) cycleFocus(back bool) tea.Cmd {
	order := []pane{paneVolumes}
	if m.files.fsys != nil {
		order = append(order, paneFiles)
	}
	if m.previewShown() {
		order = append(order, panePreview)
	}
	i := 0
	for j, p := range order {
		if p == m.focus {
			i = j
		}
	}
	if back {
		i = (i + len(order) - 1) % len(order)
	} else {
		i = (i + 1) % len(order)
	}
	m.focus = order[i]
	if m.focus == paneVolumes {
		m.previewVolume()
		return nil
	}
	if m.focus == paneFiles {
		return m.previewCurrent()
	}
	return nil
}

func (m *Model) volumesKey(k tea.KeyPressMsg) tea.Cmd {
	km := &m.keys
	h := m.bodyHeight()
	switch {
	case key.Matches(k, km.Up):
		m.vols.move(-1, h)
	case key.Matches(k, km.Down):
		m.vols.move(1, h)
	case key.Matches(k, km.PageUp):
		m.vols.move(-h, h)
	case key.Matches(k, km.PageDown):
		m.vols.move(h, h)
	case key.Matches(k, km.Top):
		m.vols.move(-len(m.vols.rows), h)
	case key.Matches(k, km.Bottom):
		m.vols.move(len(m.vols.rows), h)
	case key.Matches(k, km.Enter):
		return m.enterVolume()
	case key.Matches(k, km.Back):
		// Back to the files of the open filesystem, if any.
		if m.files.fsys != nil {
			m.focus = paneFiles
			return m.previewCurrent()
		}
	}
	m.previewVolume()
	return nil
}

// enterVolume opens the selected volume in the files pane (or says why it
// cannot be browsed).
func (m *Model) enterVolume() tea.Cmd {
	v := m.vols.selected()
	if v == nil {
		return nil
	}
	if why := enterable(v); why != "" {
		m.setStatus(true, "%s: %s", v.DisplayAddress(), why)
		return nil
	}
	m.focus = paneFiles
	if m.files.vol == v && m.files.fsys != nil {
		return m.previewCurrent()
	}
	if len(m.files.marks) > 0 {
		m.setStatus(false, "%d marks on %s cleared", len(m.files.marks), m.files.vol.DisplayAddress())
	}
	height := m.files.height
	m.files = newFilesPane()
	m.files.height = height
	m.files.vol = v
	m.files.loading = true
	m.files.dir = "/"
	m.prev.clear()
	return openFSCmd(v, m.opts.NoJournal, m.opts.OpenFS)
}

func (m *Model) filesKey(k tea.KeyPressMsg) tea.Cmd {
	km := &m.keys
	p := &m.files
	page := max(1, p.height-1)
	var cmd tea.Cmd
	switch {
	case key.Matches(k, km.Up):
		cmd = p.move(-1)
	case key.Matches(k, km.Down):
		cmd = p.move(1)
	case key.Matches(k, km.PageUp):
		cmd = p.move(-page)
	case key.Matches(k, km.PageDown):
		cmd = p.move(page)
	case key.Matches(k, km.Top):
		cmd = p.move(-len(p.view))
	case key.Matches(k, km.Bottom):
		cmd = p.move(len(p.view))
	case key.Matches(k, km.Enter):
		e := p.current()
		if e == nil {
			return nil
		}
		if why := badName(e.name); why != "" && (e.isDir() || e.ftype == vfs.DTLink) {
			m.setStatus(true, "%q cannot be entered: %s (damaged directory)", e.name, why)
			return nil
		}
		if e.isDir() {
			return p.chdir(p.pathOf(e), "")
		}
		if e.ftype == vfs.DTLink {
			return linkCmd(p.fsys, p.seq, p.pathOf(e))
		}
		if m.previewShown() {
			m.focus = panePreview
		}
		return m.previewCurrent()
	case key.Matches(k, km.Back):
		if p.dir == "/" || p.loading {
			m.focus = paneVolumes
			m.previewVolume()
			return nil
		}
		parent, base := splitPath(p.dir)
		return p.chdir(parent, base)
	case key.Matches(k, km.Root):
		return p.chdir("/", "")
	case key.Matches(k, km.Filter):
		if p.loading {
			return nil
		}
		p.filtering = true
		return p.input.Focus()
	case key.Matches(k, km.Dotfiles):
		p.showDot = !p.showDot
		p.refilter()
		if p.showDot {
			m.setStatus(false, "dotfiles shown")
		} else {
			m.setStatus(false, "dotfiles hidden")
		}
		cmd = p.statVisible()
	case key.Matches(k, km.Mark):
		if why := p.toggleMark(); why != "" {
			m.setStatus(true, "cannot mark %q: %s (damaged directory)", p.current().name, why)
		}
		cmd = p.move(1)
	case key.Matches(k, km.MarkAll):
		if n := p.markAll(); n > 0 {
			m.setStatus(true, "%d marked; %d entries with impossible names (damage) left out", len(p.marks), n)
		} else {
			m.setStatus(false, "%d marked", len(p.marks))
		}
	case key.Matches(k, km.Unmark):
		p.marks = map[string]bool{}
		m.setStatus(false, "marks cleared")
	case key.Matches(k, km.Deleted):
		return m.showDeleted()
	case k.String() == "esc" && p.filter != "":
		p.filter = ""
		p.input.SetValue("")
		p.refilter()
		cmd = p.statVisible()
	default:
		return nil
	}
	return tea.Batch(cmd, m.previewCurrent())
}

// filterKey edits the incremental filter: every keystroke re-filters the
// directory (O(entries), no disk access). enter keeps the filter, esc
// drops it.
func (m *Model) filterKey(k tea.KeyPressMsg) tea.Cmd {
	p := &m.files
	switch k.String() {
	case "enter", "down", "up", "tab":
		p.filtering = false
		p.input.Blur()
		if k.String() != "enter" && k.String() != "tab" {
			return m.filesKey(k)
		}
		return m.previewCurrent()
	case "esc":
		p.filtering = false
		p.input.Blur()
		p.input.SetValue("")
		p.filter = ""
		p.refilter()
		return tea.Batch(p.statVisible(), m.previewCurrent())
	}
	cmd := editKey(&p.input, k)
	if v := p.input.Value(); v != p.filter {
		p.filter = v
		p.refilter()
		return tea.Batch(cmd, p.statVisible(), m.previewCurrent())
	}
	return cmd
}

func (m *Model) previewKey(k tea.KeyPressMsg) tea.Cmd {
	km := &m.keys
	vp := &m.prev.vp
	switch {
	case key.Matches(k, km.Up):
		vp.ScrollUp(1)
	case key.Matches(k, km.Down):
		vp.ScrollDown(1)
	case key.Matches(k, km.PageUp):
		vp.PageUp()
	case key.Matches(k, km.PageDown):
		vp.PageDown()
	case key.Matches(k, km.Top):
		vp.GotoTop()
	case key.Matches(k, km.Bottom):
		vp.GotoBottom()
	case k.String() == "right" || k.String() == "l":
		vp.ScrollRight(8)
	case k.String() == "left":
		vp.ScrollLeft(8)
	case key.Matches(k, km.Back):
		m.focus = paneFiles
		if m.files.fsys == nil {
			m.focus = paneVolumes
		}
	}
	return nil
}

// previewCurrent asks for the preview of the entry under the cursor.
func (m *Model) previewCurrent() tea.Cmd {
	e := m.files.current()
	if e == nil || m.files.fsys == nil {
		return nil
	}
	return m.prev.load(m.files.fsys, m.files.dir, e)
}

func (m *Model) previewVolume() {
	if v := m.vols.selected(); v != nil {
		m.prev.setLines("vol:"+v.Address+":"+v.Image, v.DisplayAddress(), volumeDetails(v))
	}
}

// linkMsg says whether a symlink the user entered leads to a directory.
type linkMsg struct {
	seq   int
	path  string
	isDir bool
}

// linkCmd resolves a symlink inside the filesystem (at most the symlink hop
// limit of inode reads) off the UI goroutine.
func linkCmd(fsys vfs.FS, seq int, p string) tea.Cmd {
	return func() tea.Msg {
		ino, err := fsys.LookupFollow(p)
		if err != nil {
			return linkMsg{seq: seq, path: p}
		}
		in, err := fsys.Stat(ino)
		return linkMsg{seq: seq, path: p, isDir: err == nil && in.IsDir()}
	}
}

func splitPath(p string) (dir, base string) {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/", p[i+1:]
	}
	return p[:i], p[i+1:]
}

// startDir is where --open VOL:/path starts: the directory itself, or a
// file's directory with the cursor on the file. A path that does not
// resolve is still tried, so that the files pane says what is wrong.
func startDir(fsys vfs.FS, p string) (dir, want string) {
	p = path.Clean("/" + p)
	ino, err := fsys.LookupFollow(p)
	if err != nil {
		return p, ""
	}
	if st, err := fsys.Stat(ino); err == nil && !st.IsDir() && p != "/" {
		return path.Dir(p), path.Base(p)
	}
	return p, ""
}
