package tui

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"
	"github.com/imgtool/imgtool/extract"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/image"
	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/salvage"
)

func startSalvageModel(t *testing.T, fixture string) *teatest.TestModel {
	t.Helper()
	m := New(openTree(t, fixture), Options{Title: fixture})
	return teatest.NewTestModel(t, m, teatest.WithInitialTermSize(120, 40),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.Ascii)))
}

// S on a filesystem whose every group descriptor copy is zeroed (browsing
// it complains of descriptor checksums): the salvage action computes the
// descriptors from the geometry, gets every file of the source tree back,
// byte for byte, and the box shows the report's totals.
func TestSalvageZeroedGDT(t *testing.T) {
	want := fixturetest.Manifest(t, "salvage-zerogdt.manifest")
	tm := startSalvageModel(t, "salvage-zerogdt-ext4")
	dest := filepath.Join(t.TempDir(), "rescued")
	waitModel(t, tm, "volumes listed", func(m *Model) bool { return m.vols.selected() != nil })
	tm.Type("S")
	waitModel(t, tm, "salvage prompt", func(m *Model) bool {
		return m.ex.state == exAsk && m.ex.salvage && m.ex.input.Value() == "./imgtool-salvage"
	})
	if scr := screen(t, tm); !strings.Contains(scr, "Salvage all of") || !strings.Contains(scr, "salvage to:") {
		t.Errorf("prompt not shown:\n%s", scr)
	}
	tm.Send(kCtrlU)
	tm.Type(dest)
	tm.Send(kEnter)
	waitModel(t, tm, "salvage summary", func(m *Model) bool { return m.ex.state == exDone })
	scr := screen(t, tm)
	tm.Send(kEnter)
	tm.Type("q")
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*Model)
	s := fm.LastExtract()
	if s == nil || !s.Salvage || s.Err != nil || s.Partial || s.Cancelled {
		t.Fatalf("summary %+v: want a whole salvage", s)
	}
	files := fixturetest.CheckTree(t, dest, want)
	var rep salvage.Report
	b, err := os.ReadFile(filepath.Join(dest, salvage.ReportName))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.FilesRecovered != files || rep.FilesLost != 0 || rep.DescGuessed == 0 || rep.DescPrimary != 0 {
		t.Errorf("report: %d recovered, %d lost, descriptors %d primary %d computed; want %d recovered, all computed",
			rep.FilesRecovered, rep.FilesLost, rep.DescPrimary, rep.DescGuessed, files)
	}
	for _, w := range []string{
		"Salvaged salvage-zerogdt-ext4.img to " + dest,
		strconv.Itoa(files) + " files recovered (0 partial, 0 suspect), 0 lost",
		strconv.Itoa(rep.DescGuessed) + " computed",
		"report: " + filepath.Join(dest, salvage.SummaryName),
	} {
		if !strings.Contains(scr, w) {
			t.Errorf("summary box lacks %q:\n%s", w, scr)
		}
	}
}

// S from inside a damaged filesystem salvages the open volume: the TUI
// runs exactly `imgtool extract --salvage` (the same report as
// salvage.Run, entry for entry), and the box lists each damage e2fsck -fn
// reports, on the right inode.
func TestSalvageDamaged(t *testing.T) {
	inos := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(fixturetest.Golden(t, "salvage-damaged.inodes"))), "\n") {
		f := strings.Split(l, "\t")
		inos[f[0]] = f[1]
	}
	e2fsck := string(fixturetest.Golden(t, "salvage-damaged.e2fsck"))
	tree := openTree(t, "salvage-damaged")
	m := New(tree, Options{})
	_, cmd := m.Update(tea.WindowSizeMsg{Width: 160, Height: 50})
	drive(m, cmd)
	drive(m, m.enterVolume())
	if m.files.fsys == nil || m.focus != paneFiles {
		t.Fatalf("the damaged filesystem did not open for browsing (status %q)", m.status)
	}
	dest := filepath.Join(t.TempDir(), "tui")
	press(m, "S")
	if m.ex.state != exAsk || m.ex.target != m.files.vol {
		t.Fatalf("S in the files pane: state %v, target %v; want the prompt for the open volume", m.ex.state, m.ex.target)
	}
	m.ex.input.SetValue(dest)
	press(m, "enter") // runs to the end: drive waits for every message
	s := m.LastExtract()
	if s == nil || !s.Salvage || s.Err != nil || !s.Partial {
		t.Fatalf("summary %+v: want a salvage with losses", s)
	}

	// The CLI's salvage of the same volume, for comparison.
	r := m.files.vol.Reader()
	cli, err := salvage.Run(context.Background(), r, r.Size(), filepath.Join(t.TempDir(), "cli"), salvage.Options{
		Extract: s2opts(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var tuiRep salvage.Report
	b, err := os.ReadFile(filepath.Join(dest, salvage.ReportName))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &tuiRep); err != nil {
		t.Fatal(err)
	}
	tuiRep.Elapsed, cli.Elapsed = 0, 0
	cli.Extract = nil
	if !reflect.DeepEqual(&tuiRep, cli) {
		t.Errorf("TUI report differs from salvage.Run's:\nTUI %+v\nCLI %+v", tuiRep, *cli)
	}
	if len(s.Lost) != len(cli.Entries) {
		t.Errorf("box lists %d entries, the report %d", len(s.Lost), len(cli.Entries))
	}

	scr := ansi.Strip(m.render())
	for _, c := range []struct{ path, status, reason, e2 string }{
		{"/f3", "suspect", "checksum", "Inode 18 passes checks, but checksum does not match inode"},
		{"/sparse.bin", "partial", "truncated", "Inode 20 has an invalid extent"},
		{"/x2", "suspect", "cross-linked", "multiply-claimed blocks"},
		{"#orphans/" + inos["/orphan.txt"], "recovered", "unreachable", ""},
	} {
		if c.e2 != "" && !strings.Contains(e2fsck, c.e2) {
			t.Errorf("oracle: e2fsck -fn does not say %q", c.e2)
		}
		line := c.status + ": " + c.path + " (inode " + inos[strings.TrimPrefix(c.path, "#orphans/")]
		if strings.HasPrefix(c.path, "#") {
			line = c.status + ": " + c.path + " (inode " + inos["/orphan.txt"]
		}
		if !slices.ContainsFunc(s.Lost, func(l string) bool { return strings.HasPrefix(l, line) && strings.Contains(l, c.reason) }) {
			t.Errorf("summary lacks %q … %s; has %q", line, c.reason, s.Lost)
		}
	}
	for _, w := range []string{"Salvaged salvage-damaged.img to " + dest + " — with losses", "1 unreachable inodes under #orphans", "suspect: /f3"} {
		if !strings.Contains(scr, w) {
			t.Errorf("box lacks %q:\n%s", w, scr)
		}
	}
	// The orphan's content is the source file's.
	for _, w := range fixturetest.Manifest(t, "salvage-damaged.manifest") {
		if w.Path == "orphan.txt" {
			w.Path = "#orphans/" + inos["/orphan.txt"]
			if fixturetest.CheckTree(t, dest, []fixturetest.ManifestRow{w}) != 1 {
				t.Error("the orphan was not checked")
			}
		}
	}
	// Enter closes the box and the UI goes on.
	press(m, "enter")
	if m.ex.state != exIdle || m.files.fsys == nil {
		t.Errorf("after closing: state %v", m.ex.state)
	}
}

// s2opts are the extraction options the TUI's salvage uses.
func s2opts() extract.Options {
	root := os.Geteuid() == 0
	return extract.Options{Owner: root, Devices: root}
}

// S refuses what it cannot salvage, with the reason, and opens nothing.
func TestSalvageRefused(t *testing.T) {
	tree := openTree(t, "dom0")
	m := New(tree, Options{})
	drive(m, nil)
	seen := map[string]bool{}
	for _, r := range m.vols.rows {
		v := r.v
		var want string
		switch {
		case v.Kind == inspect.KindVG:
			want = "a volume group"
		case v.Content != nil && v.Content.Type == "swap":
			want = "swap is not a filesystem salvage reads (ext2/3/4, xfs)"
		case v.Table != nil:
			want = "partition table"
		case v.Content != nil && v.Content.Type == "LVM2_member":
			want = "LVM2_member is not a filesystem salvage reads"
		default:
			continue
		}
		if !m.vols.find(v.Address) {
			t.Fatalf("row %s not found", v.Address)
		}
		press(m, "S")
		if m.ex.state != exIdle || !m.statusErr || !strings.Contains(m.status, "cannot be salvaged") || !strings.Contains(m.status, want) {
			t.Errorf("S on %s: state %v, status %q; want a refusal saying %q", v.DisplayAddress(), m.ex.state, m.status, want)
		}
		seen[want] = true
	}
	if len(seen) != 4 {
		t.Errorf("dom0 lacks a kind of volume the test needs: saw %v", seen)
	}
}

// esc during a salvage cancels it (the real engine stops at its next
// check; here a fake one waits for ctx) and the box says so.
func TestSalvageCancel(t *testing.T) {
	tree := openTree(t, "dom0")
	m := New(tree, Options{})
	reported := make(chan struct{})
	var target *inspect.Volume
	m.ex.salv = func(ctx context.Context, v *inspect.Volume, dest string, noJournal bool, progress func(Progress)) *Summary {
		target = v
		progress(Progress{Files: 4, TotalFiles: 40, Approx: true, Bytes: 1 << 20, Elapsed: time.Second, Current: "/etc/passwd"})
		close(reported)
		<-ctx.Done()
		return &Summary{Salvage: true, Err: ctx.Err()}
	}
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 30),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.Ascii)))
	tm.Send(funcMsg(func(m *Model) { m.vols.find(guestRoot) }))
	tm.Type("S")
	waitModel(t, tm, "prompt", func(m *Model) bool { return m.ex.state == exAsk })
	tm.Send(kCtrlU)
	tm.Type(t.TempDir())
	tm.Send(kEnter)
	<-reported
	waitModel(t, tm, "progress", func(m *Model) bool {
		scr := ansi.Strip(m.render())
		return strings.Contains(scr, "Salvaging "+guestRoot) && strings.Contains(scr, "4/~40 files")
	})
	tm.Send(kEsc)
	waitModel(t, tm, "cancelled", func(m *Model) bool {
		s := m.LastExtract()
		return m.ex.state == exDone && s != nil && s.Cancelled && s.Salvage
	})
	scr := screen(t, tm)
	for _, w := range []string{"Salvage of " + guestRoot, "cancelled", "4 entries (1M) copied of about 40 in use"} {
		if !strings.Contains(scr, w) {
			t.Errorf("box lacks %q:\n%s", w, scr)
		}
	}
	if target == nil || target.Address != guestRoot {
		t.Errorf("salvaged %v, want %s", target, guestRoot)
	}
	// x afterwards offers the extraction destination again, not the
	// salvage one.
	tm.Send(kEnter)
	tm.Send(funcMsg(func(m *Model) { m.vols.find(guestRoot) }))
	tm.Send(kEnter)
	waitModel(t, tm, "files", func(m *Model) bool { return m.files.fsys != nil && idle(m) })
	tm.Type("x")
	waitModel(t, tm, "extract prompt", func(m *Model) bool {
		return m.ex.state == exAsk && !m.ex.salvage && m.ex.input.Value() == "./imgtool-extract"
	})
	tm.Send(kEsc)
	tm.Type("q")
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}

// The real engine with a cancelled context stops without a report.
func TestSalvageEngineCancelled(t *testing.T) {
	tree := openTree(t, "salvage-zerogdt-ext4")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dest := filepath.Join(t.TempDir(), "out")
	s := defaultSalvage(ctx, tree.Roots[0], dest, false, func(Progress) {})
	if s.Err == nil || !strings.Contains(s.Err.Error(), "context canceled") {
		t.Errorf("err %v, want the cancellation", s.Err)
	}
	if _, err := os.Stat(filepath.Join(dest, salvage.ReportName)); err == nil {
		t.Error("a cancelled salvage wrote a report as if complete")
	}
}

// --no-journal reaches the TUI: journal-ext4's journal holds /newdir
// (written with debugfs jw, never applied). Replayed (the default) the
// root lists it; with NoJournal the listing is debugfs's, which does not
// replay.
func TestNoJournalOption(t *testing.T) {
	img := fixturetest.Image(t, "journal-ext4")
	out, err := exec.Command("debugfs", "-R", "ls -p /", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	var raw []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Split(l, "/"); len(f) >= 6 && f[5] != "." && f[5] != ".." {
			raw = append(raw, f[5])
		}
	}
	slices.Sort(raw)
	if len(raw) < 3 || slices.Contains(raw, "newdir") {
		t.Fatalf("debugfs root listing %q: want the unreplayed root without newdir", raw)
	}
	list := func(noJournal bool) []string {
		m := New(openTree(t, "journal-ext4"), Options{NoJournal: noJournal})
		drive(m, m.enterVolume())
		var got []string
		for _, e := range m.files.entries {
			got = append(got, e.name)
		}
		slices.Sort(got)
		return got
	}
	if got := list(true); !slices.Equal(got, raw) {
		t.Errorf("NoJournal root %q, debugfs %q", got, raw)
	}
	if got := list(false); !slices.Contains(got, "newdir") {
		t.Errorf("replayed root %q lacks newdir", got)
	}
}

// A filesystem whose primary superblock is gone is not recognised (the
// volume shows no content), yet S salvages it through a backup
// superblock, as `imgtool extract --salvage` does. The fixture's group
// descriptors are zeroed too: every file of its source tree still comes
// back byte for byte.
func TestSalvageUnrecognised(t *testing.T) {
	want := fixturetest.Manifest(t, "salvage-zerogdt.manifest")
	img := fixturetest.Copy(t, "salvage-zerogdt-ext2")
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 1024), 1024); err != nil {
		t.Fatal(err)
	}
	f.Close()
	im, err := image.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	tree, err := inspect.Inspect([]inspect.Source{{Name: "wiped.img", R: im, Size: im.Size()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := tree.Roots[0].Content; c != nil {
		t.Fatalf("wiped superblock still recognised as %s", c.Type)
	}
	m := New(tree, Options{})
	press(m, "enter")
	if m.files.fsys != nil || !strings.Contains(m.status, "no filesystem signature") {
		t.Fatalf("enter on the unrecognised volume: status %q", m.status)
	}
	dest := filepath.Join(t.TempDir(), "out")
	press(m, "S")
	if m.ex.state != exAsk {
		t.Fatalf("S refused: %q", m.status)
	}
	m.ex.input.SetValue(dest)
	press(m, "enter")
	s := m.LastExtract()
	if s == nil || s.Err != nil {
		t.Fatalf("summary %+v", s)
	}
	files := fixturetest.CheckTree(t, dest, want)
	var rep salvage.Report
	b, err := os.ReadFile(filepath.Join(dest, salvage.ReportName))
	if err != nil || json.Unmarshal(b, &rep) != nil {
		t.Fatalf("report: %v", err)
	}
	if rep.Superblock == 1024 || rep.FilesRecovered != files || rep.FilesLost != 0 {
		t.Errorf("report: superblock at %#x, %d files recovered, %d lost; want a backup superblock and all %d files", rep.Superblock, rep.FilesRecovered, rep.FilesLost, files)
	}
}
