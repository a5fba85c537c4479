package tui

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/image"
	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/salvage"
	"github.com/imgtool/imgtool/vfs"
	"github.com/imgtool/imgtool/xfs"
	"github.com/ulikunitz/xz"
)

// S on XFS (issue 14 point 7): the TUI's salvage takes the same
// filesystem-neutral path as `imgtool extract --salvage` (SalvageFS,
// salvage.RunVFS). The damaged images are copies of xfs-1k built as
// salvage/xfs_test.go and cmd/imgtool's TestExtractSalvageXFS build them:
// /files (a shortform directory naming 9 inodes) zeroed, and for the
// unrecognised case the primary superblock too. Oracles: the kernel's
// manifest of the undamaged image (fixtures/golden/xfs-1k.manifest.xz)
// and the inodes xfs_repair moves into lost+found on a copy.

// xfsRow is one line of an XFS fixture's kernel manifest: path, type,
// size, inode, and a file's sha256 or a symlink's target.
type xfsRow struct {
	path, typ string
	size      int64
	ino       uint64
	sum       string
}

func xfsManifest(t *testing.T, name string) []xfsRow {
	t.Helper()
	f, err := os.Open(filepath.Join(fixturetest.Dir(), "golden", name+".manifest.xz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := xz.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var rows []xfsRow
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		if len(c) != 12 || strings.HasPrefix(c[0], "#") {
			continue
		}
		size, _ := strconv.ParseInt(c[5], 10, 64)
		ino, _ := strconv.ParseUint(c[9], 10, 64)
		rows = append(rows, xfsRow{c[0], c[1], size, ino, c[10]})
	}
	if len(rows) < 100 {
		t.Fatalf("%s: only %d rows", name, len(rows))
	}
	return rows
}

// checkXFSRows compares dest with rows: every entry present with its
// type, files with their size and sha256, symlinks with their target.
// at maps a row to its path under dest. It returns the number of files
// (non-directories) checked.
func checkXFSRows(t *testing.T, dest string, rows []xfsRow, at func(xfsRow) string) int {
	t.Helper()
	files := 0
	for _, r := range rows {
		if (r.typ == "char" || r.typ == "block") && os.Geteuid() != 0 {
			continue
		}
		p := filepath.Join(dest, at(r))
		st, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%s: missing: %v", r.path, err)
			continue
		}
		switch r.typ {
		case "dir":
			if !st.IsDir() {
				t.Errorf("%s: not a directory", r.path)
			}
			continue
		case "symlink":
			if got, _ := os.Readlink(p); got != r.sum {
				t.Errorf("%s: target %q, want %q", r.path, got, r.sum)
			}
		case "file":
			if st.Size() != r.size || fixturetest.SHA256File(t, p) != r.sum {
				t.Errorf("%s (%s): %d bytes, content differs from the kernel's (want %d bytes, %s)", r.path, at(r), st.Size(), r.size, r.sum)
			}
		}
		files++
	}
	return files
}

// xfsDamaged copies xfs-1k, zeroes the inode of /files and, with
// wipePrimary, the primary superblock. It returns the image, the
// directory's inode and byte offset, and the manifest split into the rows
// under /files (the future orphans, by inode) and the rest.
func xfsDamaged(t *testing.T, wipePrimary bool) (img string, dirIno uint64, dirOff int64, orphans map[uint64]xfsRow, rest []xfsRow) {
	t.Helper()
	img = fixturetest.Copy(t, "xfs-1k")
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	f, err := xfs.Open(xfsFile{fh, st.Size()}, "xfs-1k", vfs.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ino, err := f.Lookup("/files")
	if err != nil {
		t.Fatal(err)
	}
	in, err := f.Inode(uint64(ino))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt(make([]byte, f.Superblock().InodeSize), in.Off); err != nil {
		t.Fatal(err)
	}
	if wipePrimary {
		if _, err := fh.WriteAt(make([]byte, 512), 0); err != nil {
			t.Fatal(err)
		}
	}
	orphans = map[uint64]xfsRow{}
	for _, r := range xfsManifest(t, "xfs-1k") {
		switch {
		case strings.HasPrefix(r.path, "files/"):
			orphans[r.ino] = r
		case r.path != "files":
			rest = append(rest, r)
		}
	}
	if len(orphans) != 9 {
		t.Fatalf("fixture: %d inodes under /files, want 9", len(orphans))
	}
	return img, uint64(ino), in.Off, orphans, rest
}

type xfsFile struct {
	*os.File
	size int64
}

func (v xfsFile) Size() int64 { return v.size }

// inspectCopy inspects img as the source name.
func inspectCopy(t *testing.T, img, name string) *inspect.Tree {
	t.Helper()
	im, err := image.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { im.Close() })
	tree, err := inspect.Inspect([]inspect.Source{{Name: name, R: im, Size: im.Size()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// xfsRepairLostFound runs xfs_repair on a copy of img and returns the
// inodes it moved into lost+found, as xfs_db lists them.
func xfsRepairLostFound(t *testing.T, img string) map[uint64]bool {
	t.Helper()
	for _, tool := range []string{"xfs_repair", "xfs_db"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Logf("%s not installed: the xfs_repair comparison is left out (the manifest's is done)", tool)
			return nil
		}
	}
	cp := filepath.Join(t.TempDir(), "repair.img")
	if err := fixturetest.CopySparse(img, cp); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("xfs_repair", cp).CombinedOutput(); err != nil {
		t.Fatalf("xfs_repair: %v\n%s", err, out)
	}
	out, err := exec.Command("xfs_db", "-r", "-c", "path /lost+found", "-c", "ls", cp).CombinedOutput()
	if err != nil {
		t.Fatalf("xfs_db: %v\n%s", err, out)
	}
	got := map[uint64]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || f[len(f)-2] == "." || f[len(f)-2] == ".." {
			continue
		}
		if n, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			got[n] = true
		}
	}
	if len(got) == 0 {
		t.Fatalf("xfs_repair moved nothing to lost+found:\n%s", out)
	}
	return got
}

func readReport(t *testing.T, dest string) *salvage.Report {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dest, salvage.ReportName))
	if err != nil {
		t.Fatal(err)
	}
	var rep salvage.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dest, salvage.SummaryName)); err != nil {
		t.Error(err)
	}
	return &rep
}

// checkXFSSalvage checks a salvage of an xfsDamaged image in dest: the
// tree outside /files equal to the kernel's manifest, the 9 inodes /files
// named under #orphans with the kernel's content and equal to the set
// xfs_repair moves into lost+found, the report saying as much and naming
// /files's inode and offset. It returns the report and the files
// recovered.
func checkXFSSalvage(t *testing.T, img, dest string, dirIno uint64, dirOff int64, orphans map[uint64]xfsRow, rest []xfsRow) (*salvage.Report, int) {
	t.Helper()
	files := checkXFSRows(t, dest, rest, func(r xfsRow) string { return r.path })
	var orows []xfsRow
	for _, r := range orphans {
		orows = append(orows, r)
	}
	files += checkXFSRows(t, dest, orows, func(r xfsRow) string {
		return filepath.Join(salvage.OrphansDir, strconv.FormatUint(r.ino, 10))
	})
	ents, _ := os.ReadDir(filepath.Join(dest, salvage.OrphansDir))
	if len(ents) != len(orphans) {
		t.Errorf("%d entries in #orphans, want %d", len(ents), len(orphans))
	}
	if repaired := xfsRepairLostFound(t, img); repaired != nil {
		for ino := range orphans {
			if !repaired[ino] {
				t.Errorf("xfs_repair: inode %d (%s) not moved to lost+found", ino, orphans[ino].path)
			}
		}
		if len(repaired) != len(orphans) {
			t.Errorf("xfs_repair moved %d inodes to lost+found, the manifest names %d under /files", len(repaired), len(orphans))
		}
	}
	rep := readReport(t, dest)
	// One thing is lost, /files, counted as a file: its zeroed inode no
	// longer says it was a directory (type "unknown" in the report).
	if rep.FilesRecovered != files || rep.FilesLost+rep.DirsLost != 1 || rep.Orphans != len(orphans) {
		t.Errorf("report: %d files recovered, %d lost, %d directories lost, %d orphans; want %d, 1 in all (/files), %d",
			rep.FilesRecovered, rep.FilesLost, rep.DirsLost, rep.Orphans, files, len(orphans))
	}
	var dir *salvage.Entry
	for i, e := range rep.Entries {
		if e.Path == "/files" {
			dir = &rep.Entries[i]
		}
	}
	if dir == nil || dir.Status != salvage.StatusLost || dir.Inode() != dirIno || !strings.Contains(dir.Detail, fmt.Sprint(dirOff)) {
		t.Errorf("/files entry %+v; want lost, inode %d, naming offset %d", dir, dirIno, dirOff)
	}
	return rep, files
}

// S on an XFS image whose primary superblock is wiped (the volume shows
// no content, enter cannot open it) and whose /files inode is zeroed:
// the salvage finds a secondary superblock, extracts every other file
// byte-equal to the kernel's manifest, puts the 9 inodes /files named
// into #orphans (xfs_repair's lost+found set) and writes the report; the
// box shows the totals, the secondary's offset and /files lost.
func TestSalvageXFSWipedPrimary(t *testing.T) {
	img, dirIno, dirOff, orphans, rest := xfsDamaged(t, true)
	tree := inspectCopy(t, img, "wiped.img")
	if c := tree.Roots[0].Content; c != nil {
		t.Fatalf("wiped superblock still recognised as %s", c.Type)
	}
	m := New(tree, Options{Title: "wiped.img"})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(140, 45),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.Ascii)))
	waitModel(t, tm, "volumes listed", func(m *Model) bool { return m.vols.selected() != nil })
	tm.Type("S")
	waitModel(t, tm, "salvage prompt", func(m *Model) bool { return m.ex.state == exAsk && m.ex.salvage })
	dest := filepath.Join(t.TempDir(), "rescued")
	tm.Send(kCtrlU)
	tm.Type(dest)
	tm.Send(kEnter)
	waitModel(t, tm, "salvage summary", func(m *Model) bool { return m.ex.state == exDone })
	scr := screen(t, tm)
	tm.Send(kEnter)
	tm.Type("q")
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*Model)
	s := fm.LastExtract()
	if s == nil || !s.Salvage || s.Err != nil || !s.Partial || s.Cancelled {
		t.Fatalf("summary %+v: want a salvage with losses", s)
	}
	rep, files := checkXFSSalvage(t, img, dest, dirIno, dirOff, orphans, rest)
	t.Logf("%d files checked against the manifest, %d recovered by the report, %d orphans; superblock at %#x", files, rep.FilesRecovered, rep.Orphans, rep.Superblock)
	const agBytes = 16 << 20 // xfs-1k: 4 AGs of 16 MiB
	if rep.Superblock <= 0 || rep.Superblock%agBytes != 0 {
		t.Errorf("superblock at %#x, want a secondary's at an AG boundary", rep.Superblock)
	}
	if !slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.Contains(n, "secondary") }) {
		t.Errorf("no note about the secondary superblock: %q", rep.Notes)
	}
	for _, w := range []string{
		"Salvaged wiped.img to " + dest + " — with losses",
		fmt.Sprintf("%d files recovered (0 partial, 0 suspect), %d lost; %d directories recovered, %d lost; %d unreachable inodes under #orphans",
			rep.FilesRecovered, rep.FilesLost, rep.DirsRecovered, rep.DirsLost, len(orphans)),
		fmt.Sprintf("superblock at %#x", rep.Superblock),
		"report: " + filepath.Join(dest, salvage.SummaryName),
		fmt.Sprintf("lost: /files (inode %d, unknown): bad-inode", dirIno),
	} {
		if !strings.Contains(scr, w) {
			t.Errorf("summary box lacks %q:\n%s", w, scr)
		}
	}
}

// S from inside an open XFS volume (/files zeroed, the primary superblock
// intact) salvages it exactly as `imgtool extract --salvage` does: the
// report equals salvage.RunVFS's through inspect.Volume.SalvageFS, entry
// for entry, and the tree and orphans are the kernel's and xfs_repair's.
func TestSalvageXFSOpenVolume(t *testing.T) {
	img, dirIno, dirOff, orphans, rest := xfsDamaged(t, false)
	tree := inspectCopy(t, img, "damaged.img")
	if c := tree.Roots[0].Content; c == nil || c.Type != "xfs" {
		t.Fatalf("content %+v, want xfs", c)
	}
	m := New(tree, Options{})
	_, cmd := m.Update(tea.WindowSizeMsg{Width: 160, Height: 50})
	drive(m, cmd)
	drive(m, m.enterVolume())
	if m.files.fsys == nil || m.focus != paneFiles {
		t.Fatalf("the XFS volume did not open for browsing (status %q)", m.status)
	}
	dest := filepath.Join(t.TempDir(), "tui")
	press(m, "S")
	if m.ex.state != exAsk || m.ex.target != m.files.vol {
		t.Fatalf("S in the files pane: state %v, status %q; want the prompt for the open volume", m.ex.state, m.status)
	}
	m.ex.input.SetValue(dest)
	press(m, "enter") // runs to the end: drive waits for every message
	s := m.LastExtract()
	if s == nil || !s.Salvage || s.Err != nil || !s.Partial {
		t.Fatalf("summary %+v: want a salvage with losses", s)
	}
	rep, files := checkXFSSalvage(t, img, dest, dirIno, dirOff, orphans, rest)
	t.Logf("%d files checked against the manifest, %d recovered by the report, %d orphans", files, rep.FilesRecovered, rep.Orphans)
	if rep.Superblock != 0 {
		t.Errorf("superblock at %#x, want the primary", rep.Superblock)
	}

	// The CLI's path on the same volume.
	fsys, err := m.files.vol.SalvageFS(vfs.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := salvage.RunVFS(context.Background(), fsys, filepath.Join(t.TempDir(), "cli"), salvage.Options{Extract: s2opts()})
	if err != nil {
		t.Fatal(err)
	}
	// Compared as salvage-report.json holds them (an inode number that
	// fits in 32 bits is kept once).
	b, err := json.Marshal(cli)
	if err != nil {
		t.Fatal(err)
	}
	var back salvage.Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	rep.Elapsed, back.Elapsed = 0, 0
	if !reflect.DeepEqual(rep, &back) {
		t.Errorf("TUI report differs from salvage.RunVFS's:\nTUI %+v\nCLI %+v", *rep, back)
	}
	if len(s.Lost) != len(cli.Entries) {
		t.Errorf("box lists %d entries, the report %d", len(s.Lost), len(cli.Entries))
	}
	for ino := range orphans {
		line := fmt.Sprintf("recovered: #orphans/%d (inode %d", ino, ino)
		if !slices.ContainsFunc(s.Lost, func(l string) bool { return strings.HasPrefix(l, line) && strings.Contains(l, "unreachable") }) {
			t.Errorf("box lacks %q … unreachable; has %q", line, s.Lost)
		}
	}
	scr := ansi.Strip(m.render())
	if w := "Salvaged damaged.img to " + dest + " — with losses"; !strings.Contains(scr, w) {
		t.Errorf("box lacks %q:\n%s", w, scr)
	}
}

// stallFS blocks the walk in its nth ReadDir until ctx ends: a real
// XFS salvage stopped part way.
type stallFS struct {
	vfs.FS
	ctx     context.Context
	n       int32
	calls   atomic.Int32
	stalled chan struct{}
}

func (s *stallFS) ReadDir(ino vfs.Ino) ([]vfs.DirEntry, error) {
	if s.calls.Add(1) == s.n {
		close(s.stalled)
		<-s.ctx.Done()
	}
	return s.FS.ReadDir(ino)
}

// esc during an XFS salvage (the real engine, held in the middle of its
// walk) cancels it: the bar showed the entries copied against the AGIs'
// count of inodes in use, the box says what was copied, and no report is
// written as if the salvage were complete.
func TestSalvageXFSCancel(t *testing.T) {
	img, _, _, _, _ := xfsDamaged(t, true)
	tree := inspectCopy(t, img, "wiped.img")
	m := New(tree, Options{})
	stalled := make(chan struct{})
	m.ex.salv = func(ctx context.Context, v *inspect.Volume, dest string, noJournal bool, progress func(Progress)) *Summary {
		return salvageVolume(ctx, v, dest, noJournal, progress, func(f vfs.FS) vfs.FS {
			return &stallFS{FS: f, ctx: ctx, n: 4, stalled: stalled}
		})
	}
	// The total the bar shows: the inodes WalkInodes visits.
	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	xf, err := xfs.Open(xfsFile{fh, st.Size()}, "wiped.img", vfs.OpenOptions{Salvage: true})
	if err != nil {
		t.Fatal(err)
	}
	total := xf.InodesInUse()
	if total < 100 {
		t.Fatalf("%d inodes in use", total)
	}
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(120, 30),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.Ascii)))
	waitModel(t, tm, "volumes listed", func(m *Model) bool { return m.vols.selected() != nil })
	tm.Type("S")
	waitModel(t, tm, "prompt", func(m *Model) bool { return m.ex.state == exAsk })
	dest := filepath.Join(t.TempDir(), "out")
	tm.Send(kCtrlU)
	tm.Type(dest)
	tm.Send(kEnter)
	select {
	case <-stalled:
	case <-time.After(10 * time.Second):
		t.Fatal("the salvage never reached its fourth directory")
	}
	bar := fmt.Sprintf("/~%d files", total)
	waitModel(t, tm, "progress", func(m *Model) bool {
		scr := ansi.Strip(m.render())
		return strings.Contains(scr, "Salvaging wiped.img") && strings.Contains(scr, bar)
	})
	tm.Send(kEsc)
	waitModel(t, tm, "cancelled", func(m *Model) bool {
		s := m.LastExtract()
		return m.ex.state == exDone && s != nil && s.Cancelled && s.Salvage
	})
	scr := screen(t, tm)
	for _, w := range []string{"Salvage of wiped.img to " + dest + " cancelled", fmt.Sprintf("copied of about %d in use", total)} {
		if !strings.Contains(scr, w) {
			t.Errorf("box lacks %q:\n%s", w, scr)
		}
	}
	tm.Send(kEnter)
	tm.Type("q")
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*Model)
	if s := fm.LastExtract(); s.Copied.Files == 0 || s.Copied.Files >= total {
		t.Errorf("%d entries copied before the cancel, want some of %d", s.Copied.Files, total)
	}
	if _, err := os.Stat(filepath.Join(dest, salvage.ReportName)); err == nil {
		t.Error("a cancelled salvage wrote a report as if complete")
	}
}

// The real engine on XFS with a cancelled context stops without a report.
func TestSalvageXFSEngineCancelled(t *testing.T) {
	tree := openTree(t, "xfs-1k")
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
