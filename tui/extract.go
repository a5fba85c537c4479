package tui

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"charm.land/bubbles/v2/progress"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/vfs"
)

// Progress is a snapshot of a running extraction.
type Progress struct {
	Files, Bytes           int64 // done so far
	TotalFiles, TotalBytes int64 // 0 while unknown
	// Approx: the totals are estimates (a salvage's, from the
	// superblock's free-inode count), shown with a ~.
	Approx  bool
	Errors  int
	Elapsed time.Duration
	Current string
}

// Summary is what an extraction or a salvage did, shown when it ends.
type Summary struct {
	Dest string
	Line string // one-line account (counts, bytes, time)
	// Salvage: the run was a salvage of a whole volume (S), whose
	// report is in Info and Lost and in DEST/salvage-report.json.
	Salvage bool
	Info    []string // further lines of account (salvage: bytes, sources, report files)
	// Lost is "path: reason" for everything lost, refused or damaged
	// (salvage: "status path (inode, type): reasons; bytes").
	Lost    []string
	More    int // problems beyond Lost, counted only
	Partial bool
	Err     error // the run stopped (DEST unwritable, cancelled)

	// Cancelled is set when the run was cancelled (esc) before the
	// engine finished; Copied is the last progress it reported, so the
	// summary can say how much arrived and how much did not.
	Cancelled bool
	Copied    Progress
}

// engine extracts srcPaths of fsys into dest, calling progress now and
// then from another goroutine. The default is the extract package (see
// engine.go); tests may replace it.
type engine func(ctx context.Context, fsys vfs.FS, srcPaths []string, dest string, progress func(Progress)) *Summary

// salvageEngine salvages the whole volume v into dest (see
// defaultSalvage): what `imgtool extract --salvage` does.
type salvageEngine func(ctx context.Context, v *inspect.Volume, dest string, noJournal bool, progress func(Progress)) *Summary

type exState int

const (
	exIdle    exState = iota
	exAsk             // asking for the destination
	exRunning         // copying; the UI keeps working
	exDone            // showing the summary
)

// extractPane asks for a destination, runs the extraction (x) or the
// salvage (S) in a goroutine and shows its progress and summary. Both
// kinds of run share the prompt, the bar, esc and the summary box.
type extractPane struct {
	state exState
	input textinput.Model
	bar   progress.Model
	paths []string
	vol   string
	// salvage: the prompt or run is a salvage of target (S), not an
	// extraction of paths. dests remembers the destination typed for
	// each kind, so switching between x and S does not lose either.
	salvage   bool
	target    *inspect.Volume
	dests     [2]string
	noJournal bool
	prog      Progress
	ch        chan tea.Msg
	cancel    context.CancelFunc
	// cancelling: esc was pressed and the engine's context cancelled;
	// the engine has not returned yet.
	cancelling bool
	summary    *Summary
	run        engine
	salv       salvageEngine
}

type (
	extractProgressMsg Progress
	extractDoneMsg     struct{ s *Summary }
)

func newExtractPane(dest, salvageDest string, noJournal bool) extractPane {
	ti := newTextInput("extract to: ", "")
	ti.SetValue(dest)
	return extractPane{input: ti, bar: newProgressBar(), run: defaultEngine, salv: defaultSalvage,
		dests: [2]string{dest, salvageDest}, noJournal: noJournal}
}

// setMode switches the prompt between extraction and salvage, keeping
// what was typed for the other kind.
func (x *extractPane) setMode(salvage bool) {
	if x.salvage != salvage {
		x.dests[b2i(x.salvage)] = x.input.Value()
		x.input.SetValue(x.dests[b2i(salvage)])
	}
	x.salvage = salvage
	x.input.Prompt = "extract to: "
	if salvage {
		x.input.Prompt = "salvage to: "
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ask opens the destination prompt for the marked entries, or for the
// entry under the cursor when nothing is marked.
func (x *extractPane) ask(m *Model) tea.Cmd {
	if x.state == exRunning {
		m.setStatus(true, "an extraction is already running")
		return nil
	}
	paths := m.files.markedPaths()
	if len(paths) == 0 {
		e := m.files.current()
		if e == nil {
			m.setStatus(true, "nothing to extract: mark files with space or a")
			return nil
		}
		if why := badName(e.name); why != "" {
			m.setStatus(true, "cannot extract %q: %s (damaged directory)", e.name, why)
			return nil
		}
		paths = []string{m.files.pathOf(e)}
	}
	x.setMode(false)
	x.paths = paths
	x.vol = m.files.vol.DisplayAddress()
	x.state = exAsk
	x.input.CursorEnd()
	return x.input.Focus()
}

// askSalvage opens the destination prompt for a salvage of the whole
// volume v, or says why v cannot be salvaged.
func (x *extractPane) askSalvage(m *Model, v *inspect.Volume) tea.Cmd {
	if x.state == exRunning {
		m.setStatus(true, "an extraction is already running")
		return nil
	}
	if v == nil {
		m.setStatus(true, "no volume to salvage: select one in the volumes pane")
		return nil
	}
	if why := salvageable(v); why != "" {
		m.setStatus(true, "%s cannot be salvaged: %s", v.DisplayAddress(), why)
		return nil
	}
	x.setMode(true)
	x.target = v
	x.paths = nil
	x.vol = v.DisplayAddress()
	x.state = exAsk
	x.input.CursorEnd()
	return x.input.Focus()
}

// salvageable returns "" when S can run on v, or why not: ext2/3/4
// volumes (package salvage's own path), volumes whose driver declares
// vfs.Driver.Salvage (XFS, the filesystem-neutral path), and a volume
// with no recognised content: a filesystem whose primary superblock is
// gone is found through its backups (ext) or secondaries (XFS).
func salvageable(v *inspect.Volume) string {
	switch {
	case v.Kind == inspect.KindVG:
		return "a volume group: salvage one of its logical volumes"
	case v.LV != nil && !v.LV.Readable:
		return "not readable yet (" + v.LV.Segtype + " segments)"
	case v.Reader() == nil:
		return "its bytes cannot be read"
	case v.Salvageable():
		return ""
	case v.Table != nil:
		return "it holds a " + v.Table.Scheme + " partition table: salvage one of its partitions"
	case v.Content == nil:
		return ""
	case v.Partition != nil && v.Partition.Container:
		return "an extended partition: salvage one of its logical partitions"
	}
	kinds := []string{"ext2/3/4"}
	for _, d := range inspect.Drivers {
		if !d.Salvage {
			continue
		}
		if slices.Contains(d.Types, v.Content.Type) {
			return ""
		}
		kinds = append(kinds, d.Types...)
	}
	return v.Content.Type + " is not a filesystem salvage reads (" + strings.Join(kinds, ", ") + ")"
}

func (x *extractPane) key(m *Model, k tea.KeyPressMsg) tea.Cmd {
	if x.state == exDone {
		switch k.String() {
		case "enter", "esc", "q", "x", "space":
			x.state = exIdle
		}
		return nil
	}
	switch k.String() {
	case "esc":
		x.state = exIdle
		x.input.Blur()
		return nil
	case "enter":
		dest := strings.TrimSpace(x.input.Value())
		if dest == "" {
			return nil
		}
		x.input.Blur()
		return x.start(m, dest)
	}
	return editKey(&x.input, k)
}

// start runs the engine in a goroutine; progress and the end come back as
// messages through x.ch, read by waitCmd one at a time.
func (x *extractPane) start(m *Model, dest string) tea.Cmd {
	if abs, err := filepath.Abs(dest); err == nil {
		dest = abs
	}
	ctx, cancel := context.WithCancel(context.Background())
	x.cancel = cancel
	x.state = exRunning
	x.cancelling = false
	x.prog = Progress{}
	x.summary = nil
	ch := make(chan tea.Msg, 1)
	x.ch = ch
	var run func(ctx context.Context, progress func(Progress)) *Summary
	if x.salvage {
		v, salv, noJournal := x.target, x.salv, x.noJournal
		run = func(ctx context.Context, progress func(Progress)) *Summary {
			return salv(ctx, v, dest, noJournal, progress)
		}
		m.setStatus(false, "salvaging %s to %s", x.vol, dest)
	} else {
		fsys, paths, ex := m.files.fsys, x.paths, x.run
		run = func(ctx context.Context, progress func(Progress)) *Summary {
			return ex(ctx, fsys, paths, dest, progress)
		}
		m.setStatus(false, "extracting %d item(s) from %s to %s", len(paths), x.vol, dest)
	}
	salvage := x.salvage
	go func() {
		var mu sync.Mutex
		var last Progress
		s := run(ctx, func(p Progress) {
			mu.Lock()
			last = p
			mu.Unlock()
			// Keep only the newest snapshot: never block the engine.
			select {
			case ch <- extractProgressMsg(p):
			default:
				select {
				case <-ch:
				default:
				}
				select {
				case ch <- extractProgressMsg(p):
				default:
				}
			}
		})
		if s == nil {
			s = &Summary{}
		}
		s.Dest = dest
		s.Salvage = salvage
		// Until update receives this message, ctx is cancelled only by
		// esc (or by quitting, when nobody reads this any more).
		s.Cancelled = ctx.Err() != nil
		mu.Lock()
		if s.Copied == (Progress{}) {
			s.Copied = last
		}
		mu.Unlock()
		// The final message must arrive: drain a pending progress one.
		for {
			select {
			case ch <- extractDoneMsg{s}:
				return
			case <-ch:
			}
		}
	}()
	return waitCmd(ch)
}

func waitCmd(ch chan tea.Msg) tea.Cmd {
	return func() tea.Msg { return <-ch }
}

func (x *extractPane) update(m *Model, msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case extractProgressMsg:
		x.prog = Progress(msg)
		return waitCmd(x.ch)
	case extractDoneMsg:
		x.cancel()
		x.summary = msg.s
		x.state = exDone
		s := msg.s
		if s.Salvage {
			switch {
			case s.Cancelled:
				m.setStatus(true, "salvage of %s cancelled: %s", x.vol, copiedLine(s))
			case s.Err != nil:
				m.setStatus(true, "salvage of %s stopped: %v", x.vol, s.Err)
			case s.Partial:
				m.setStatus(true, "salvaged %s to %s with losses: %s", x.vol, s.Dest, s.Line)
			default:
				m.setStatus(false, "salvaged %s to %s: %s", x.vol, s.Dest, s.Line)
			}
			return nil
		}
		switch {
		case s.Cancelled:
			// Marks stay: the user may want to try again elsewhere.
			m.setStatus(true, "extraction to %s cancelled: %s", s.Dest, copiedLine(s))
		case s.Err != nil:
			m.setStatus(true, "extraction stopped: %v", s.Err)
		case s.Partial:
			m.setStatus(true, "extracted with losses to %s: %s", s.Dest, s.Line)
		default:
			m.setStatus(false, "extracted to %s: %s", s.Dest, s.Line)
			// Done with them: a second x should not silently redo it.
			if m.files.vol != nil && m.files.vol.DisplayAddress() == x.vol {
				m.files.marks = map[string]bool{}
			}
		}
	}
	return nil
}

func (x *extractPane) cancelRun() {
	if x.state == exRunning && x.cancel != nil {
		x.cancel()
	}
}

// userCancel is esc during a copy: the engine's context is cancelled and
// the UI keeps running. The engine stops at its next check (between
// entries), and its summary arrives as usual through extractDoneMsg.
func (x *extractPane) userCancel(m *Model) tea.Cmd {
	if x.state != exRunning || x.cancelling {
		return nil
	}
	x.cancelling = true
	x.cancelRun()
	what := "extraction from"
	if x.salvage {
		what = "salvage of"
	}
	m.setStatus(true, "cancelling the %s %s …", what, x.vol)
	return nil
}

// copiedLine says how much of a cancelled run arrived: entries and bytes
// done, against the totals when the counting walk had finished.
func copiedLine(s *Summary) string {
	p := s.Copied
	if p.Approx && p.TotalFiles > 0 {
		return fmt.Sprintf("%d entries (%s) copied of about %d in use, the rest not copied", p.Files, humanSize(p.Bytes), p.TotalFiles)
	}
	if p.TotalFiles > 0 {
		left := max(0, p.TotalFiles-p.Files)
		return fmt.Sprintf("%d of %d entries (%s of %s) copied, %d (%s) not copied",
			p.Files, p.TotalFiles, humanSize(p.Bytes), humanSize(p.TotalBytes), left, humanSize(max(0, p.TotalBytes-p.Bytes)))
	}
	return fmt.Sprintf("%d entries (%s) copied, the rest not copied", p.Files, humanSize(p.Bytes))
}

// viewExtract renders the extraction box (prompt, progress or summary) in w columns.
func (m *Model) viewExtract(w int) []string {
	x := &m.ex
	st := &m.st
	var lines []string
	switch x.state {
	case exAsk:
		// One cell each for the margin, the cursor and a spare.
		sizeInput(&x.input, w-3-lipgloss.Width(x.input.Prompt))
		what := fmt.Sprintf("%d marked item(s)", len(x.paths))
		if len(x.paths) == 1 {
			what = x.paths[0]
		}
		title := " Extract " + safeName(what) + " from " + x.vol
		hint := " enter: start   esc: cancel   (same engine and safety rules as imgtool extract)"
		if x.salvage {
			title = " Salvage all of " + x.vol + ": every readable file, unreachable inodes into #orphans"
			hint = " enter: start   esc: cancel   (as imgtool extract --salvage; the report goes in the destination)"
		}
		lines = append(lines,
			st.Title.Render(fit(title, w)),
			" "+fit(x.input.View(), w-1),
			st.Dim.Render(fit(hint, w)))
	case exRunning:
		x.bar.SetWidth(max(10, min(60, w-2)))
		p := x.prog
		pct := 0.0
		if p.TotalBytes > 0 {
			pct = min(1, float64(p.Bytes)/float64(p.TotalBytes))
		} else if p.TotalFiles > 0 {
			pct = min(1, float64(p.Files)/float64(p.TotalFiles))
		}
		rate := 0.0
		if p.Elapsed > 0 {
			rate = float64(p.Bytes) / p.Elapsed.Seconds()
		}
		files := fmt.Sprintf("%d", p.Files)
		if p.TotalFiles > 0 {
			approx := ""
			if p.Approx {
				approx = "~"
			}
			files += fmt.Sprintf("/%s%d", approx, p.TotalFiles)
		}
		bytes := humanSize(p.Bytes)
		if p.TotalBytes > 0 {
			bytes += "/" + humanSize(p.TotalBytes)
		}
		info := fmt.Sprintf(" %s files  %s bytes  %s/s", files, bytes, humanSize(int64(rate)))
		if p.Errors > 0 {
			info += fmt.Sprintf("  %d problems", p.Errors)
		}
		title, hint := " Extracting from "+x.vol, " esc: cancel (the UI stays)   ctrl+c: abort and quit"
		if x.salvage {
			title = " Salvaging " + x.vol
		}
		if x.cancelling {
			title, hint = " Cancelling the "+map[bool]string{false: "extraction from", true: "salvage of"}[x.salvage]+" "+x.vol+" …", " waiting for the engine to stop"
		}
		lines = append(lines,
			st.Title.Render(fit(title, w)),
			" "+x.bar.ViewAs(pct),
			fit(info, w),
			st.Dim.Render(fit(" "+safeName(p.Current), w)),
			st.Dim.Render(fit(hint, w)))
	case exDone:
		s := x.summary
		head := " Extracted to " + s.Dest
		if s.Salvage {
			head = " Salvaged " + x.vol + " to " + s.Dest
		}
		hs := st.OK
		if s.Partial || s.Err != nil {
			head += " — with losses"
			hs = st.Warn
		}
		if s.Cancelled {
			head = " Extraction to " + s.Dest + " cancelled"
			if s.Salvage {
				head = " Salvage of " + x.vol + " to " + s.Dest + " cancelled"
			}
			hs = st.Warn
		}
		lines = append(lines, hs.Render(fit(head, w)))
		if s.Cancelled {
			lines = append(lines, fit(" "+copiedLine(s), w),
				st.Dim.Render(fit(" what was copied stays in "+s.Dest+"; x on the same marks retries (existing names are refused, not overwritten)", w)))
		}
		if s.Line != "" {
			lines = append(lines, fit(" "+s.Line, w))
		}
		for _, l := range s.Info {
			lines = append(lines, fit(" "+safeName(l), w))
		}
		if s.Err != nil && !(s.Cancelled && errors.Is(s.Err, context.Canceled)) {
			lines = append(lines, st.Err.Render(fit(" stopped: "+s.Err.Error(), w)))
		}
		maxLost := max(1, m.height/3)
		for i, l := range s.Lost {
			if i == maxLost {
				lines = append(lines, st.Err.Render(fit(fmt.Sprintf(" … and %d more", len(s.Lost)-i+s.More), w)))
				break
			}
			prefix := " lost: "
			if s.Salvage {
				prefix = " " // each line starts with its status
			}
			lines = append(lines, st.Err.Render(fit(prefix+safeName(l), w)))
		}
		lines = append(lines, st.Dim.Render(fit(" enter: close", w)))
	}
	return lines
}
