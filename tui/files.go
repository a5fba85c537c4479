package tui

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/vfs"
)

// entry is one directory entry of the files pane. Only name, inode number
// and type come from the directory itself; the inode (size, mode, owner,
// mtime) is read lazily for the rows on screen, so opening a directory of
// 100k entries costs one pass over its blocks and a sort, not 100k inode
// reads.
//
// entry is kept small (32 bytes) because sorting 100k of them moves them.
type entry struct {
	name    string
	ino     vfs.Ino
	ftype   uint8 // vfs.DT*
	pending bool  // a statCmd for it is in flight
	stat    *stat // nil until the inode was read
}

// stat is the result of reading an entry's inode.
type stat struct {
	in  *vfs.Stat
	err error // reading the inode failed: shown on the row
}

func (e *entry) inode() *vfs.Stat {
	if e.stat == nil {
		return nil
	}
	return e.stat.in
}

func (e *entry) isDir() bool { return e.ftype == vfs.DTDir }

// statMargin is how many rows above and below the window are read ahead,
// so paging does not show empty columns.
const statMargin = 64

// filesPane lists one directory of one filesystem.
type filesPane struct {
	vol  *inspect.Volume
	fsys vfs.FS

	dir     string // absolute path in the filesystem, e.g. "/home/alice"
	seq     int    // generation: results for older loads are dropped
	loading bool
	err     error    // reading the directory failed (entries may be partial)
	notes   []string // entries the reader skipped as damaged

	entries []entry
	view    []int // indices into entries shown (dotfile and filter rules)

	cursor, top int // index into view
	height      int // rows on screen, from the layout

	showDot   bool
	filter    string
	filtering bool // the filter input has the keyboard
	input     textinput.Model

	// marks are absolute paths of marked entries on this volume.
	marks map[string]bool
	// memo remembers the entry under the cursor when leaving a directory,
	// so coming back puts the cursor where it was.
	memo map[string]string
	// want is the name to put the cursor on when the pending load lands.
	want string
}

func newFilesPane() filesPane {
	return filesPane{showDot: true, marks: map[string]bool{}, memo: map[string]string{}, input: newTextInput("/", "filter")}
}

// Messages of the files pane. Each carries the generation it was asked
// for; Update drops stale ones.
type (
	fsOpenedMsg struct {
		vol  *inspect.Volume
		fsys vfs.FS
		err  error
	}
	dirLoadedMsg struct {
		seq     int
		dir     string
		entries []entry
		err     error
		notes   []string // damage the reader skipped over in this directory
	}
	statMsg struct {
		seq  int
		idx  []int
		ins  []*vfs.Stat
		errs []error
	}
)

// openFSCmd opens the ext filesystem of a volume (which may read backup
// superblocks, so it is not done in Update).
func openFSCmd(v *inspect.Volume, noJournal bool, open func(*inspect.Volume) (vfs.FS, error)) tea.Cmd {
	return func() tea.Msg {
		// The same opening as the CLI: a journal that needs recovery is
		// replayed in memory, so the files are those a mount would show
		// (unless --no-journal). Options.OpenFS may show another view
		// (the guest view of an OS root).
		var fsys vfs.FS
		var err error
		if open != nil {
			fsys, err = open(v)
		} else {
			fsys, err = v.OpenFS(vfs.OpenOptions{NoJournal: noJournal})
		}
		if err != nil {
			return fsOpenedMsg{vol: v, err: err}
		}
		return fsOpenedMsg{vol: v, fsys: fsys}
	}
}

// loadDirCmd reads and sorts a directory: directories first, then names in
// byte order (as ls with LC_ALL=C). The inodes of the first screen are read
// too, so the first frame is complete.
func loadDirCmd(fsys vfs.FS, seq int, dir string, firstRows int) tea.Cmd {
	return func() tea.Msg {
		msg := dirLoadedMsg{seq: seq, dir: dir}
		ino, err := fsys.LookupFollow(dir)
		if err != nil {
			msg.err = err
			return msg
		}
		des, err := fsys.ReadDir(ino)
		msg.err = err
		// Entries the reader skipped (an inode number out of range, a
		// bad record) are notes on the directory's inode: show them.
		seen := map[string]bool{}
		for _, n := range fsys.Notes() {
			s := n.Msg
			if n.Ino == ino && !seen[s] {
				seen[s] = true
				msg.notes = append(msg.notes, s)
			}
		}
		ents := make([]entry, 0, len(des))
		for _, d := range des {
			ft := d.Type
			if ft == vfs.DTUnknown {
				if st, err := fsys.Stat(d.Ino); err == nil {
					ft = vfs.DTOf(st.Mode)
				}
			}
			ents = append(ents, entry{name: d.Name, ino: d.Ino, ftype: ft})
		}
		ents = sortEntries(ents)
		// Read the inodes of the first screen here, off the UI goroutine.
		for i := 0; i < len(ents) && i < firstRows; i++ {
			e := &ents[i]
			in, err := statInode(fsys, e.ino)
			e.stat = &stat{in, err}
		}
		msg.entries = ents
		return msg
	}
}

// statCmd reads the inodes of the given entries.
func statCmd(fsys vfs.FS, seq int, idx []int, inos []vfs.Ino) tea.Cmd {
	return func() tea.Msg {
		m := statMsg{seq: seq, idx: idx, ins: make([]*vfs.Stat, len(idx)), errs: make([]error, len(idx))}
		for i, ino := range inos {
			m.ins[i], m.errs[i] = statInode(fsys, ino)
		}
		return m
	}
}

// sortEntries returns ents with directories first, then orders by name bytes (as ls
// does with LC_ALL=C).
//
// It sorts 16-byte keys rather than the entries: the first 8 bytes of the
// name, big-endian, decide most comparisons with one integer compare, and
// only ties look at the strings. For 100k names this is several times
// faster than comparing strings throughout.
func sortEntries(ents []entry) []entry {
	type sortKey struct {
		pre uint64 // first 8 name bytes, big-endian, zero-padded
		i   int32
		dir bool
	}
	keys := make([]sortKey, len(ents))
	for i := range ents {
		var pre uint64
		name := ents[i].name
		for j := 0; j < 8; j++ {
			pre <<= 8
			if j < len(name) {
				pre |= uint64(name[j])
			}
		}
		keys[i] = sortKey{pre, int32(i), ents[i].isDir()}
	}
	slices.SortFunc(keys, func(a, b sortKey) int {
		if a.dir != b.dir {
			if a.dir {
				return -1
			}
			return 1
		}
		if a.pre != b.pre {
			if a.pre < b.pre {
				return -1
			}
			return 1
		}
		return strings.Compare(ents[a.i].name, ents[b.i].name)
	})
	sorted := make([]entry, len(ents))
	for j, k := range keys {
		sorted[j] = ents[k.i]
	}
	return sorted
}

// containsFold reports whether s contains lower (already lower-cased),
// ignoring ASCII case, without allocating; non-ASCII falls back to
// strings.ToLower.
func containsFold(s string, lower []byte) bool {
	n := len(lower)
	if n == 0 {
		return true
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return strings.Contains(strings.ToLower(s), string(lower))
		}
	}
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for ; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lower[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}

// statInode reads an inode for its row and checks that its block map can
// be read (for a small file that is the extent root inside the inode, no
// extra I/O), so damage shows on the row before anyone opens the file.
// The inode is returned even when the map is damaged.
func statInode(fsys vfs.FS, ino vfs.Ino) (*vfs.Stat, error) {
	in, err := fsys.Stat(ino)
	if err != nil {
		return nil, err
	}
	if bm, ok := fsys.(vfs.BlockMapper); ok && (in.IsRegular() || in.IsDir()) {
		if _, _, err := bm.BlockMap(ino); err != nil {
			return in, err
		}
	}
	return in, nil
}

// chdir starts loading dir; the cursor lands on want when given.
func (p *filesPane) chdir(dir, want string) tea.Cmd {
	if p.fsys == nil {
		return nil
	}
	if p.dir != "" && len(p.view) > 0 {
		p.memo[p.dir] = p.entries[p.view[p.cursor]].name
	}
	dir = path.Clean("/" + dir)
	if want == "" {
		want = p.memo[dir]
	}
	p.seq++
	p.dir = dir
	p.want = want
	p.loading = true
	p.err = nil
	p.notes = nil
	p.filter = ""
	p.filtering = false
	p.input.SetValue("")
	p.input.Blur()
	return loadDirCmd(p.fsys, p.seq, dir, max(p.height, 1)+statMargin)
}

// loaded installs a directory listing.
func (p *filesPane) loaded(msg dirLoadedMsg) tea.Cmd {
	if msg.seq != p.seq {
		return nil
	}
	p.loading = false
	p.entries = msg.entries
	p.err = msg.err
	p.notes = msg.notes
	p.cursor, p.top = 0, 0
	p.refilter()
	if p.want != "" {
		for i, ix := range p.view {
			if p.entries[ix].name == p.want {
				p.cursor = i
				break
			}
		}
		p.want = ""
	}
	p.top = scrollTop(0, p.cursor, p.height, len(p.view))
	return p.statVisible()
}

// refilter recomputes the shown rows from the dotfile and filter rules,
// keeping the cursor on the same entry when it is still shown. O(entries).
func (p *filesPane) refilter() {
	cur := -1
	if p.cursor < len(p.view) {
		cur = p.view[p.cursor]
	}
	f := p.filter
	smart := strings.ToLower(f) != f // smartcase: any capital makes it exact
	lf := []byte(strings.ToLower(f))
	p.view = p.view[:0]
	for i := range p.entries {
		e := &p.entries[i]
		if !p.showDot && strings.HasPrefix(e.name, ".") {
			continue
		}
		if f != "" {
			if smart {
				if !strings.Contains(e.name, f) {
					continue
				}
			} else if !containsFold(e.name, lf) {
				continue
			}
		}
		p.view = append(p.view, i)
	}
	p.cursor = 0
	if cur >= 0 {
		if i, ok := slices.BinarySearch(p.view, cur); ok {
			p.cursor = i
		}
	}
	p.top = scrollTop(p.top, p.cursor, p.height, len(p.view))
}

// statVisible returns a command reading the inodes of the window (plus a
// margin) that are not read yet.
func (p *filesPane) statVisible() tea.Cmd {
	if p.fsys == nil || p.loading {
		return nil
	}
	lo := max(0, p.top-statMargin)
	hi := min(len(p.view), p.top+p.height+statMargin)
	var idx []int
	var inos []vfs.Ino
	for _, ix := range p.view[lo:hi] {
		e := &p.entries[ix]
		if e.stat != nil || e.pending {
			continue
		}
		e.pending = true
		idx = append(idx, ix)
		inos = append(inos, e.ino)
	}
	if len(idx) == 0 {
		return nil
	}
	return statCmd(p.fsys, p.seq, idx, inos)
}

func (p *filesPane) stated(msg statMsg) {
	if msg.seq != p.seq {
		return
	}
	for i, ix := range msg.idx {
		if ix >= len(p.entries) {
			continue
		}
		e := &p.entries[ix]
		e.stat, e.pending = &stat{msg.ins[i], msg.errs[i]}, false
	}
}

// current returns the entry under the cursor.
func (p *filesPane) current() *entry {
	if p.loading || p.cursor < 0 || p.cursor >= len(p.view) {
		return nil
	}
	return &p.entries[p.view[p.cursor]]
}

func (p *filesPane) pathOf(e *entry) string { return path.Join(p.dir, e.name) }

// move moves the cursor by d rows, or to an absolute row when abs >= 0.
func (p *filesPane) move(d int) tea.Cmd {
	if len(p.view) == 0 {
		return nil
	}
	p.cursor = clamp(p.cursor+d, 0, len(p.view)-1)
	p.top = scrollTop(p.top, p.cursor, p.height, len(p.view))
	return p.statVisible()
}

// badName says why an entry cannot be named by a path (a damaged or
// hostile directory can hold "a/b", a NUL byte or an empty name), or "".
// Such entries are shown but can be neither entered nor marked: a path
// would name something else. (The extract engine refuses them too.)
func badName(name string) string {
	switch {
	case name == "":
		return "an empty name"
	case name == "." || name == "..":
		return "a second " + name + " entry"
	case strings.ContainsRune(name, '/'):
		return "a name containing '/'"
	case strings.ContainsRune(name, 0):
		return "a name containing a NUL byte"
	}
	return ""
}

// toggleMark marks or unmarks the entry under the cursor; it returns why
// it could not.
func (p *filesPane) toggleMark() string {
	e := p.current()
	if e == nil {
		return ""
	}
	if why := badName(e.name); why != "" {
		return why
	}
	k := p.pathOf(e)
	if p.marks[k] {
		delete(p.marks, k)
	} else {
		p.marks[k] = true
	}
	return ""
}

// markAll marks every shown entry, or unmarks them when all are marked.
// It returns how many could not be marked (badName).
func (p *filesPane) markAll() (skipped int) {
	all := true
	for _, ix := range p.view {
		if badName(p.entries[ix].name) == "" && !p.marks[path.Join(p.dir, p.entries[ix].name)] {
			all = false
			break
		}
	}
	for _, ix := range p.view {
		if badName(p.entries[ix].name) != "" {
			skipped++
			continue
		}
		k := path.Join(p.dir, p.entries[ix].name)
		if all {
			delete(p.marks, k)
		} else {
			p.marks[k] = true
		}
	}
	return skipped
}

// markedPaths returns the marked paths in order.
func (p *filesPane) markedPaths() []string {
	out := make([]string, 0, len(p.marks))
	for k := range p.marks {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Column widths of the files pane.
const (
	colSize  = 6
	colMode  = 10
	colOwner = 9
	colMtime = 22 // "2024-03-01 14:02 +0100"
)

func (m *Model) viewFiles(w, h int, focused bool) []string {
	p := &m.files
	st := &m.st
	lines := make([]string, 0, h)
	if p.fsys == nil {
		return append(lines, st.Dim.Render(fit(" no filesystem open: choose one on the left", w)))
	}
	// The first line is the filter (when used) or a column header.
	if p.filtering || p.filter != "" {
		// The prompt and the cursor take a cell each; textinput pads the
		// value to its width, trimmed so the count follows the text.
		sizeInput(&p.input, w-14)
		in := strings.TrimRight(p.input.View(), " ")
		lines = append(lines, fit(in+st.Dim.Render(fmt.Sprintf("  %d match", len(p.view))), w))
	} else {
		lines = append(lines, st.Dim.Render(fit(m.fileCols(" Name", "Size", "Mode", "Owner", "Modified", w), w)))
	}
	if p.loading {
		return append(lines, st.Dim.Render(fit(" loading "+p.dir+" …", w)))
	}
	if p.err != nil {
		lines = append(lines, st.Err.Render(fit(" ! "+p.err.Error(), w)))
	}
	for i, n := range p.notes {
		if i == 3 {
			lines = append(lines, st.Warn.Render(fit(fmt.Sprintf(" ! … %d more damaged entries", len(p.notes)-i), w)))
			break
		}
		// Wrapped: a note names the entry and the damage, both matter.
		for j, l := range strings.Split(ansi.Wrap(safeName(n), max(8, w-3), " "), "\n") {
			if j == 2 {
				break
			}
			pre := " ! "
			if j > 0 {
				pre = "   "
			}
			lines = append(lines, st.Warn.Render(fit(pre+l, w)))
		}
	}
	rows := h - len(lines)
	p.height = max(1, rows)
	p.top = scrollTop(p.top, p.cursor, rows, len(p.view))
	if len(p.view) == 0 {
		msg := " (empty directory)"
		if len(p.entries) > 0 {
			msg = " (nothing matches)"
		}
		return append(lines, st.Dim.Render(fit(msg, w)))
	}
	for i := p.top; i < len(p.view) && len(lines) < h; i++ {
		e := &p.entries[p.view[i]]
		marked := p.marks[path.Join(p.dir, e.name)]
		lines = append(lines, m.fileRow(e, w, marked, i == p.cursor, focused))
	}
	return lines
}

// fileCols lays out one row: name then the columns that fit in w.
func (m *Model) fileCols(name, size, mode, owner, mtime string, w int) string {
	rest := ""
	used := 0
	add := func(s string, cw int, right bool) {
		if right {
			rest += " " + fitLeft(s, cw)
		} else {
			rest += " " + fit(s, cw)
		}
		used += cw + 1
	}
	if w >= 20 {
		add(size, colSize, true)
	}
	if w >= 38 {
		add(mode, colMode, false)
	}
	if w >= 48 {
		add(owner, colOwner, false)
	}
	if w >= 68 {
		add(mtime, colMtime, false)
	}
	return fit(name, w-used) + rest
}

func (m *Model) fileRow(e *entry, w int, marked, cursor, focused bool) string {
	st := &m.st
	mark := " "
	if marked {
		mark = "*"
	}
	name := safeName(e.name)
	var size, mode, owner, mtime string
	sty := st.Plain
	var serr error
	if e.stat != nil {
		serr = e.stat.err
	}
	switch {
	case serr != nil:
		sty = st.Err
	}
	switch {
	case e.inode() != nil:
		in := e.inode()
		fm := in.FileMode()
		mode = modeString(fm)
		owner = fmt.Sprintf("%d:%d", in.UID, in.GID)
		mtime = mtimeString(in.Mtime, m.opts.UTC)
		switch {
		case in.IsDir():
			size = "-"
		case fm&(fs.ModeDevice|fs.ModeCharDevice) != 0:
			size = fmt.Sprintf("%d,%d", in.RdevMajor, in.RdevMinor)
		default:
			size = humanSize(min(in.Size, 1<<62))
		}
	}
	switch {
	case serr != nil:
	case e.isDir():
		name += "/"
		sty = st.Dir
	case e.ftype == vfs.DTLink:
		name += "@"
		sty = st.Link
	case e.ftype != vfs.DTReg:
		sty = st.Special
	case e.inode() != nil && e.inode().Mode&0o111 != 0:
		sty = st.Exec
	}
	if marked {
		sty = st.Marked
	}
	var line string
	if serr != nil {
		// A damaged inode: say so on its row and keep going.
		line = fit(mark+name, min(w/2, max(12, len(name)+2))) + " ! " + safeName(serr.Error())
		line = fit(line, w)
	} else {
		line = m.fileCols(mark+name, size, mode, owner, mtime, w)
	}
	switch {
	case cursor && focused:
		return st.Cursor.Render(line)
	case cursor:
		return st.CursorBlur.Render(line)
	}
	return sty.Render(line)
}
