package tui

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/image"
	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/vfs"
	"golang.org/x/sys/unix"
)

const guestRoot = "VolGroup00/domu1/VolGroup00/LogVol00"

// openTree inspects a fixture image.
func openTree(tb testing.TB, name string) *inspect.Tree {
	tb.Helper()
	p := fixturetest.Image(tb, name)
	im, err := image.Open(p)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { im.Close() })
	t, err := inspect.Inspect([]inspect.Source{{Name: name + ".img", R: im, Size: im.Size()}}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// Keys as a terminal sends them.
var (
	kEnter = tea.KeyPressMsg{Code: tea.KeyEnter}
	kBack  = tea.KeyPressMsg{Code: tea.KeyBackspace}
	kEsc   = tea.KeyPressMsg{Code: tea.KeyEscape}
	kSpace = tea.KeyPressMsg{Code: tea.KeySpace, Text: " "}
	kCtrlU = tea.KeyPressMsg{Code: 'u', Mod: tea.ModCtrl}
)

func start(t *testing.T, tree *inspect.Tree, w, h int) *teatest.TestModel {
	t.Helper()
	m := New(tree, Options{Title: "dom0.img"})
	return teatest.NewTestModel(t, m, teatest.WithInitialTermSize(w, h),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.Ascii)))
}

// waitModel polls the model (inside its own Update, so without races)
// until cond holds.
func waitModel(t *testing.T, tm *teatest.TestModel, what string, cond func(m *Model) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ch := make(chan bool, 1)
		tm.Send(funcMsg(func(m *Model) { ch <- cond(m) }))
		select {
		case ok := <-ch:
			if ok {
				return
			}
		case <-time.After(2 * time.Second):
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// screen returns the current screen as plain text, rendered by the model
// on its own goroutine.
func screen(t *testing.T, tm *teatest.TestModel) string {
	t.Helper()
	ch := make(chan string, 1)
	tm.Send(funcMsg(func(m *Model) { ch <- ansi.Strip(m.render()) }))
	select {
	case s := <-ch:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no screen")
	}
	return ""
}

func idle(m *Model) bool { return !m.Loading() }

// goldenLs parses debugfs "ls -l" output: name → (mode octal, uid, gid, size).
type lsEntry struct {
	mode     uint64
	uid, gid uint32
	size     uint64
	name     string
}

func parseDebugfsLs(t *testing.T, b []byte) []lsEntry {
	t.Helper()
	var out []lsEntry
	re := regexp.MustCompile(`^\s*(\d+)\s+(\d+)\s+\((\d+)\)\s+(\d+)\s+(\d+)\s+(\d+)\s+\S+\s+\S+\s+(.+)$`)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := re.FindStringSubmatch(sc.Text())
		if f == nil {
			continue
		}
		if f[7] == "." || f[7] == ".." {
			continue
		}
		mode, _ := strconv.ParseUint(f[2], 8, 32)
		uid, _ := strconv.ParseUint(f[4], 10, 32)
		gid, _ := strconv.ParseUint(f[5], 10, 32)
		size, _ := strconv.ParseUint(f[6], 10, 64)
		out = append(out, lsEntry{mode, uint32(uid), uint32(gid), size, f[7]})
	}
	if len(out) == 0 {
		t.Fatal("golden listing has no entries")
	}
	return out
}

// enterGuestHome drives the UI from the start into the guest root's
// /home/alice, the way a person would: select the volume, enter, walk.
func enterGuestHome(t *testing.T, tm *teatest.TestModel) {
	t.Helper()
	// The volumes pane starts on the first browsable volume; walk down
	// to the guest root (rows are in tree order).
	for range 30 {
		done := make(chan bool, 1)
		tm.Send(funcMsg(func(m *Model) {
			v := m.vols.selected()
			done <- v != nil && v.Address == guestRoot
		}))
		if <-done {
			break
		}
		tm.Send(tea.KeyPressMsg{Code: 'j', Text: "j"})
	}
	tm.Send(kEnter)
	waitModel(t, tm, "guest root listing", func(m *Model) bool {
		v, d := m.Dir()
		return v == guestRoot && d == "/" && idle(m) && len(m.Shown()) > 0
	})
	for _, dir := range []string{"home", "alice"} {
		tm.Type("/" + dir)
		tm.Send(kEnter) // leave the filter
		tm.Send(kEnter) // enter the directory
		waitModel(t, tm, "directory "+dir, func(m *Model) bool {
			_, d := m.Dir()
			return strings.HasSuffix(d, "/"+dir) && idle(m)
		})
	}
}

func TestGuestRootListing(t *testing.T) {
	tree := openTree(t, "dom0")
	tm := start(t, tree, 120, 30)
	enterGuestHome(t, tm)

	// The rendered output reached the terminal.
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		return bytes.Contains(b, []byte("notes.txt"))
	}, teatest.WithDuration(5*time.Second))

	scr := screen(t, tm)
	tm.Type("q")
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*Model)

	vol, dir := fm.Dir()
	if vol != guestRoot || dir != "/home/alice" {
		t.Fatalf("at %s:%s, want %s:/home/alice", vol, dir, guestRoot)
	}
	want := parseDebugfsLs(t, fixturetest.Golden(t, "dom0-guestroot-ls.txt"))
	// debugfs lists in directory order; the UI sorts directories first,
	// then names in byte order.
	slices.SortFunc(want, func(a, b lsEntry) int {
		ad, bd := a.mode&0o170000 == 0o040000, b.mode&0o170000 == 0o040000
		if ad != bd {
			if ad {
				return -1
			}
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	var names []string
	for _, e := range want {
		names = append(names, e.name)
	}
	if got := fm.Shown(); !slices.Equal(got, names) {
		t.Fatalf("shown %q, debugfs lists %q", got, names)
	}
	// Every row's mode, owner and size match debugfs, on the model and on
	// the screen.
	for i, w := range want {
		e := &fm.files.entries[fm.files.view[i]]
		in := e.inode()
		if in == nil {
			t.Fatalf("%s: inode not read", w.name)
		}
		if uint64(in.Mode) != w.mode || in.UID != w.uid || in.GID != w.gid || uint64(in.Size) != w.size {
			t.Errorf("%s: mode %o uid %d gid %d size %d, debugfs %o %d %d %d", w.name, in.Mode, in.UID, in.GID, in.Size, w.mode, w.uid, w.gid, w.size)
		}
		row := findLine(scr, w.name)
		if row == "" {
			t.Errorf("%s not on screen:\n%s", w.name, scr)
			continue
		}
		if !strings.Contains(row, modeString(in.FileMode())) || !strings.Contains(row, fmt.Sprintf("%d:%d", w.uid, w.gid)) {
			t.Errorf("row for %s lacks mode/owner: %q", w.name, row)
		}
		if w.mode&0o170000 == 0o100000 && !strings.Contains(row, " "+strconv.FormatUint(w.size, 10)+" ") {
			t.Errorf("row for %s lacks size %d: %q", w.name, w.size, row)
		}
	}
	if !strings.Contains(scr, guestRoot+":/home/alice") {
		t.Errorf("header lacks the VOLUME:/path:\n%s", scr)
	}
	// notes.txt's mtime was set by the script with touch -d (in UTC),
	// shown in the local zone with its offset (TestTimesLocalWithZone).
	if row, want := findLine(scr, "notes.txt"), time.Date(2009, 3, 14, 15, 9, 26, 0, time.UTC).Local().Format("2006-01-02 15:04 -0700"); !strings.Contains(row, want) {
		t.Errorf("notes.txt row lacks the mtime the script set, %s: %q", want, row)
	}
}

// findLine returns the first screen line holding name as a whole word in
// the files pane.
func findLine(scr, name string) string {
	for _, l := range strings.Split(scr, "\n") {
		if strings.Contains(l, " "+name+" ") || strings.Contains(l, "*"+name+" ") || strings.Contains(l, " "+name+"/") || strings.Contains(l, " "+name+"@") {
			return l
		}
	}
	return ""
}

func TestDotfilesFilterAndPreview(t *testing.T) {
	tree := openTree(t, "dom0")
	tm := start(t, tree, 120, 30)
	enterGuestHome(t, tm)

	// Dotfiles are shown by default; "." hides them and shows them again.
	waitModel(t, tm, ".bashrc shown", func(m *Model) bool { return slices.Contains(m.Shown(), ".bashrc") })
	tm.Type(".")
	waitModel(t, tm, "dotfiles hidden", func(m *Model) bool {
		return !slices.ContainsFunc(m.Shown(), func(s string) bool { return strings.HasPrefix(s, ".") }) && len(m.Shown()) == 3
	})
	tm.Type(".")
	// Find a dotfile with the incremental filter: each key narrows.
	tm.Type("/")
	tm.Type(".pro")
	waitModel(t, tm, "filter .pro", func(m *Model) bool {
		return slices.Equal(m.Shown(), []string{".profile"}) && m.Current() == ".profile"
	})
	// The preview shows its text (the bytes the fixture script wrote).
	waitModel(t, tm, "preview of .profile", func(m *Model) bool {
		return idle(m) && strings.Contains(m.prev.vp.GetContent(), "export EDITOR=vi")
	})
	// Backspace in the filter widens it again.
	tm.Send(kBack)
	tm.Send(kBack)
	tm.Send(kBack)
	waitModel(t, tm, "filter .", func(m *Model) bool {
		return m.files.filter == "." && len(m.Shown()) == 4 // .ssh .bashrc .profile notes.txt
	})
	tm.Send(kEsc)
	waitModel(t, tm, "filter cleared", func(m *Model) bool { return m.files.filter == "" && len(m.Shown()) == 6 })

	// The symlink's preview shows its target.
	tm.Type("/link")
	tm.Send(kEnter)
	waitModel(t, tm, "symlink preview", func(m *Model) bool {
		return idle(m) && strings.Contains(m.prev.vp.GetContent(), "symbolic link → notes.txt")
	})
	// A binary-looking file: none here, so check a directory preview and
	// the big text file instead.
	tm.Send(kEsc)
	tm.Type("/projects")
	tm.Send(kEnter)
	tm.Send(kEnter)
	waitModel(t, tm, "projects", func(m *Model) bool { _, d := m.Dir(); return d == "/home/alice/projects" && idle(m) })
	waitModel(t, tm, "big.txt preview", func(m *Model) bool {
		c := m.prev.vp.GetContent()
		return idle(m) && strings.Contains(c, "xxxxxxxx") && strings.Contains(c, "first 256K of 293K shown")
	})
	// Backspace returns to the parent with the cursor on the directory we
	// came from; ~ goes to the root.
	tm.Send(kBack)
	waitModel(t, tm, "back to alice", func(m *Model) bool {
		_, d := m.Dir()
		return d == "/home/alice" && idle(m) && m.Current() == "projects"
	})
	tm.Type("~")
	waitModel(t, tm, "root", func(m *Model) bool { _, d := m.Dir(); return d == "/" && idle(m) })
	tm.Type("G")
	waitModel(t, tm, "G", func(m *Model) bool { return m.Current() == "var" })
	tm.Type("g")
	waitModel(t, tm, "g", func(m *Model) bool { return m.Current() == "etc" })

	// Help lists every binding.
	tm.Type("?")
	scr := screen(t, tm)
	for _, b := range defaultKeys().FullHelp() {
		for _, k := range b {
			if !strings.Contains(scr, k.Help().Desc) {
				t.Errorf("help lacks %q:\n%s", k.Help().Desc, scr)
			}
		}
	}
	tm.Type("?")
	tm.Type("q")
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}

// scriptFiles reads the literal contents fixtures/scripts/dom0.sh printf's
// into the guest's /home/alice: the oracle for extracted bytes.
func scriptFiles(t *testing.T) map[string][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixturetest.Dir(), "scripts", "dom0.sh"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^printf '([^']*)' > "\$G/home/alice/([^"]+)"$`)
	out := map[string][]byte{}
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		s := strings.NewReplacer(`\n`, "\n", `\t`, "\t", `\\`, `\`).Replace(m[1])
		out[m[2]] = []byte(s)
	}
	if len(out) < 3 {
		t.Fatalf("found only %d printf'd files in dom0.sh", len(out))
	}
	return out
}

func TestMarkAndExtract(t *testing.T) {
	want := scriptFiles(t)
	tree := openTree(t, "dom0")
	tm := start(t, tree, 100, 30)
	enterGuestHome(t, tm)

	// Mark .profile and notes.txt: find each with the filter, space marks
	// it (and moves down), esc drops the filter.
	for _, name := range []string{".profile", "notes.txt"} {
		tm.Type("/" + name)
		tm.Send(kEnter)
		waitModel(t, tm, "cursor on "+name, func(m *Model) bool { return m.Current() == name })
		tm.Send(kSpace)
		tm.Send(kEsc)
	}
	waitModel(t, tm, "two marks", func(m *Model) bool {
		return slices.Equal(m.Marked(), []string{"/home/alice/.profile", "/home/alice/notes.txt"})
	})
	scr := screen(t, tm)
	if !strings.Contains(findLine(scr, "notes.txt"), "*notes.txt") || !strings.Contains(scr, "2 marked") {
		t.Errorf("marks not shown:\n%s", scr)
	}

	dest := filepath.Join(t.TempDir(), "out")
	tm.Type("x")
	waitModel(t, tm, "destination prompt", func(m *Model) bool {
		return m.ex.state == exAsk && m.ex.input.Value() == "./imgtool-extract"
	})
	tm.Send(kCtrlU)
	tm.Type(dest)
	tm.Send(kEnter)
	waitModel(t, tm, "extraction summary", func(m *Model) bool { return m.LastExtract() != nil })
	scr = screen(t, tm)
	tm.Send(kEnter) // close the summary
	tm.Type("q")
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*Model)

	s := fm.LastExtract()
	if s.Err != nil || s.Partial {
		t.Fatalf("extraction: err %v, lost %q", s.Err, s.Lost)
	}
	if s.Dest != dest {
		t.Errorf("dest %q, want %q", s.Dest, dest)
	}
	ents, err := os.ReadDir(dest)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, []string{".profile", "notes.txt"}) {
		t.Fatalf("extracted %q", got)
	}
	for _, name := range got {
		b, err := os.ReadFile(filepath.Join(dest, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want[name]) {
			t.Errorf("%s: extracted %q, dom0.sh wrote %q", name, b, want[name])
		}
	}
	// The script set notes.txt's mtime with touch -d; the copy keeps it.
	fi, err := os.Stat(filepath.Join(dest, "notes.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.ModTime().UTC().Format("2006-01-02 15:04:05"); got != "2009-03-14 15:09:26" {
		t.Errorf("notes.txt mtime %s, script set 2009-03-14 15:09:26", got)
	}
	if !strings.Contains(scr, "Extracted to "+dest) || !strings.Contains(scr, "2 files") {
		t.Errorf("summary not shown:\n%s", scr)
	}
}

// The engine refuses to overwrite: extracting the same file twice into the
// same place reports the loss in the summary instead of clobbering.
func TestExtractReportsLosses(t *testing.T) {
	tree := openTree(t, "dom0")
	m := New(tree, Options{})
	_, cmd := m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	drive(m, cmd)
	m.vols.find(guestRoot)
	drive(m, m.enterVolume())
	drive(m, m.files.chdir("/home/alice", "notes.txt"))
	if m.Current() != "notes.txt" {
		t.Fatalf("cursor on %q", m.Current())
	}
	dest := filepath.Join(t.TempDir(), "out")
	if err := os.MkdirAll(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dest, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Nothing marked: x takes the entry under the cursor.
	press(m, "x")
	m.ex.input.SetValue(dest)
	_, cmd = m.Update(kEnter)
	drive(m, cmd)
	s := m.LastExtract()
	if s == nil || !s.Partial || len(s.Lost) != 1 || !strings.Contains(s.Lost[0], "notes.txt") {
		t.Fatalf("summary %+v, want one loss for notes.txt", s)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "notes.txt")); string(b) != "mine" {
		t.Errorf("existing file overwritten: %q", b)
	}
	scr := ansi.Strip(m.render())
	if !strings.Contains(scr, "with losses") || !strings.Contains(scr, "lost: ") {
		t.Errorf("losses not shown:\n%s", scr)
	}
}

// During a copy the UI keeps working: keys move the cursor while the
// engine runs, progress arrives as messages and is drawn with bytes,
// files and rate.
func TestExtractProgressKeepsUIResponsive(t *testing.T) {
	tree := openTree(t, "dom0")
	m := New(tree, Options{Dest: t.TempDir()})
	release := make(chan struct{})
	reported := make(chan struct{})
	m.ex.run = func(ctx context.Context, fsys vfs.FS, src []string, dest string, progress func(Progress)) *Summary {
		progress(Progress{Files: 3, TotalFiles: 10, Bytes: 3 << 20, TotalBytes: 10 << 20, Elapsed: time.Second, Current: "/home/alice/projects/big.txt"})
		close(reported)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return &Summary{Line: "fake: 10 files"}
	}
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 30),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.Ascii)))
	enterGuestHome(t, tm)
	tm.Type("x")
	tm.Send(kEnter)
	<-reported
	waitModel(t, tm, "progress shown", func(m *Model) bool {
		scr := ansi.Strip(m.render())
		return m.ex.state == exRunning && strings.Contains(scr, "3/10 files") &&
			strings.Contains(scr, "3M/10M bytes") && strings.Contains(scr, "3M/s") && strings.Contains(scr, "30%") &&
			strings.Contains(scr, "big.txt")
	})
	// Navigation while the engine is blocked.
	tm.Type("G")
	waitModel(t, tm, "cursor moved during the copy", func(m *Model) bool {
		return m.ex.state == exRunning && m.Current() == "notes.txt"
	})
	// q during a copy asks first; another key cancels the question.
	tm.Type("q")
	waitModel(t, tm, "quit confirmation", func(m *Model) bool {
		return m.confirmQuit && strings.Contains(m.status, "q again") && !m.quitting
	})
	tm.Type("k")
	waitModel(t, tm, "confirmation dropped", func(m *Model) bool { return !m.confirmQuit })
	close(release)
	waitModel(t, tm, "done", func(m *Model) bool { return m.ex.state == exDone })
	tm.Send(kEnter)
	tm.Type("q")
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}

// esc during a copy cancels it through the engine's context without
// quitting: the engine sees ctx done, the summary says the run was
// cancelled and how much was copied, and the UI goes on taking keys
// (including a new x).
func TestExtractCancel(t *testing.T) {
	tree := openTree(t, "dom0")
	m := New(tree, Options{Dest: t.TempDir()})
	reported := make(chan struct{})
	sawCancel := make(chan struct{})
	never := make(chan struct{}) // the engine only ends through ctx
	m.ex.run = func(ctx context.Context, fsys vfs.FS, src []string, dest string, progress func(Progress)) *Summary {
		progress(Progress{Files: 3, TotalFiles: 10, Bytes: 3 << 20, TotalBytes: 10 << 20, Elapsed: time.Second, Current: "/home/alice/notes.txt"})
		close(reported)
		select {
		case <-never:
			return &Summary{Line: "finished"}
		case <-ctx.Done():
		}
		close(sawCancel)
		return &Summary{Line: "fake: 3 files", Err: ctx.Err()}
	}
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.Ascii)))
	enterGuestHome(t, tm)
	tm.Type("x")
	tm.Send(kEnter)
	<-reported
	waitModel(t, tm, "progress with the cancel hint", func(m *Model) bool {
		scr := ansi.Strip(m.render())
		return m.ex.state == exRunning && strings.Contains(scr, "3/10 files") && strings.Contains(scr, "esc: cancel")
	})
	tm.Send(kEsc)
	select {
	case <-sawCancel:
	case <-time.After(10 * time.Second):
		t.Fatal("esc did not cancel the engine's context")
	}
	waitModel(t, tm, "cancelled summary", func(m *Model) bool {
		s := m.LastExtract()
		return m.ex.state == exDone && s != nil && s.Cancelled && !m.quitting
	})
	scr := screen(t, tm)
	for _, want := range []string{"cancelled", "3 of 10 entries (3M of 10M) copied, 7 (7M) not copied", "fake: 3 files"} {
		if !strings.Contains(scr, want) {
			t.Errorf("summary lacks %q:\n%s", want, scr)
		}
	}
	if strings.Contains(scr, "context canceled") {
		t.Errorf("summary shows the raw context error:\n%s", scr)
	}
	// The UI is still there: close the summary, move, extract again.
	tm.Send(kEnter)
	tm.Type("G")
	waitModel(t, tm, "cursor moved after the cancel", func(m *Model) bool {
		return m.ex.state == exIdle && m.Current() == "notes.txt"
	})
	tm.Type("x")
	waitModel(t, tm, "a new destination prompt", func(m *Model) bool { return m.ex.state == exAsk })
	tm.Send(kEsc)
	waitModel(t, tm, "prompt closed", func(m *Model) bool { return m.ex.state == exIdle })
	tm.Type("q")
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}

// NO_COLOR is honoured on a real terminal: the program writes to a pty
// (so colour detection sees a TTY, as in use); with TERM=xterm-256color
// the output has colour codes, with NO_COLOR=1 added it has none, while
// the cursor row stays visible in reverse video. The screen includes the
// extraction box with its progress bar (bubbles/progress, which colours
// its cells itself).
func TestNoColor(t *testing.T) {
	tree := openTree(t, "dom0")
	colorRE := regexp.MustCompile(`\x1b\[[0-9;]*(3[0-7]|9[0-7]|38;[25];[0-9;]+)m`)
	for _, tc := range []struct {
		env   []string
		color bool
	}{
		{[]string{"TERM=xterm-256color"}, true},
		{[]string{"TERM=xterm-256color", "NO_COLOR=1"}, false},
	} {
		master, slave := openPTY(t)
		var mu sync.Mutex
		var out []byte
		go func() {
			buf := make([]byte, 4096)
			for {
				n, err := master.Read(buf)
				mu.Lock()
				out = append(out, buf[:n]...)
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
		m := New(tree, Options{Open: guestRoot, Dest: t.TempDir()})
		release := make(chan struct{})
		m.ex.run = func(ctx context.Context, fsys vfs.FS, src []string, dest string, progress func(Progress)) *Summary {
			progress(Progress{Files: 3, TotalFiles: 10, Bytes: 3 << 20, TotalBytes: 10 << 20, Elapsed: time.Second})
			select {
			case <-release:
			case <-ctx.Done():
			}
			return &Summary{}
		}
		p := tea.NewProgram(m, tea.WithInput(bytes.NewReader(nil)), tea.WithOutput(slave),
			tea.WithEnvironment(tc.env), tea.WithWindowSize(100, 30), tea.WithoutSignals())
		done := make(chan error, 1)
		go func() { _, err := p.Run(); done <- err }()
		waitOut := func(what, s string) {
			deadline := time.Now().Add(10 * time.Second)
			for {
				mu.Lock()
				ok := bytes.Contains(out, []byte(s))
				mu.Unlock()
				if ok {
					return
				}
				if time.Now().After(deadline) {
					mu.Lock()
					t.Fatalf("env %q: %s never reached the terminal: %q", tc.env, what, out)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		waitOut("the listing", "lost+found")
		// x on the entry under the cursor, enter accepts the destination:
		// the fake engine reports 30% and waits.
		p.Send(tea.KeyPressMsg{Code: 'x', Text: "x"})
		p.Send(kEnter)
		// The renderer sends only what changed, so look for pieces.
		waitOut("the progress line", "3/10 files")
		waitOut("the bar's filled cells", "█████")
		waitOut("the bar's empty cells", "░░░░░")
		p.Quit()
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		slave.Close()
		mu.Lock()
		got := append([]byte(nil), out...)
		mu.Unlock()
		if c := colorRE.Find(got); (c != nil) != tc.color {
			t.Errorf("env %q: colour code %q, want colour %v", tc.env, c, tc.color)
		}
		if !regexp.MustCompile(`\x1b\[[0-9;]*7m`).Match(got) {
			t.Errorf("env %q: no reverse video for the cursor", tc.env)
		}
	}
}

// openPTY opens a pseudo-terminal pair (/dev/ptmx and its /dev/pts peer).
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("ptmx: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("pts: %v", err)
	}
	t.Cleanup(func() { slave.Close() })
	// A new pty is 0x0; the program asks the terminal for its size.
	if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 30, Col: 100}); err != nil {
		t.Fatalf("set window size: %v", err)
	}
	return master, slave
}
