package dump

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/vfs"
)

// changeTimes lists the distinct change times (the later of ctime and
// mtime, in seconds) of src's inodes, sorted.
func changeTimes(t *testing.T, src Source) []int64 {
	t.Helper()
	var times []int64
	for ino := uint32(1); ino <= src.MaxIno(); ino++ {
		if in, err := src.Stat(ino); err == nil && knownType(in.Mode) {
			if t := max(in.Mtime.Unix(), in.Ctime.Unix()); t < 1<<31 {
				times = append(times, t)
			}
		}
	}
	slices.Sort(times)
	return slices.Compact(times)
}

// compareShortcut writes an incremental dump of src for every base date
// with and without the shortcut and fails when the streams differ. It
// returns how many dumps took the shortcut and read fewer directories.
func compareShortcut(t *testing.T, name string, src Source, bases []int64, date time.Time) (fewer int) {
	t.Helper()
	for _, b := range bases {
		opts := WriteOptions{Level: 1, Date: date, BaseDate: time.Unix(b, 0), HonorNodump: true}
		var fast, full bytes.Buffer
		sf, err := Write(&fast, src, opts)
		if err != nil {
			t.Fatalf("%s base %d: %v", name, b, err)
		}
		opts.fullWalk = true
		sw, err := Write(&full, src, opts)
		if err != nil {
			t.Fatalf("%s base %d: %v", name, b, err)
		}
		if !bytes.Equal(fast.Bytes(), full.Bytes()) {
			t.Errorf("%s base %d: streams differ: shortcut %d bytes (%d of %d inodes dumped), full walk %d bytes (%d of %d)",
				name, b, fast.Len(), sf.Dumped, sf.Inodes, full.Len(), sw.Dumped, sw.Inodes)
		}
		if sf.DirsRead < sw.DirsRead {
			fewer++
		}
		t.Logf("%s base %d: %d of %d inodes dumped; directories read %d (full walk %d)",
			name, b, sf.Dumped, sf.Inodes, sf.DirsRead, sw.DirsRead)
	}
	return fewer
}

// TestIncrementalShortcutFixtures: on every ext fixture, at base dates
// spread over its inodes' change times, an incremental dump that reads
// only the directories it needs writes the stream of the full walk, byte
// for byte.
func TestIncrementalShortcutFixtures(t *testing.T) {
	fewer := 0
	for _, name := range []string{"ext-ext2-1k", "ext-ext3", "ext-ext4", "ext-ext4-1k-inline",
		"ext-ext4-64k", "ext-ext4-64meta", "ext-ext4-bigalloc", "ext-ext4-nocsum", "ext-tiny-ext4",
		"ext-tiny-inline", "ext-tiny-nofiletype"} {
		src := extSource(t, fixturetest.Image(t, name))
		if !src.Consistent() {
			t.Errorf("%s: not taken as consistent", name)
			continue
		}
		times := changeTimes(t, src)
		var bases []int64
		for k := 1; k <= 6; k++ {
			bases = append(bases, times[(len(times)-1)*k/6])
		}
		bases = append(bases, times[len(times)-1]+1) // nothing changed
		fewer += compareShortcut(t, name, src, slices.Compact(bases), time.Unix(times[len(times)-1]+86400, 0))
	}
	if fewer == 0 {
		t.Error("no dump took the shortcut")
	}
}

// TestIncrementalShortcut: a tree made to defeat the shortcut's guess
// (files whose nearest lower directory is not theirs, hard links across
// directories, a changed directory, a changed file deep down, a changed
// inline-data directory), built with mke2fs -d and dated with debugfs,
// gives the full walk's stream at every split of its inodes, and reads
// fewer directories than the full walk when few inodes changed.
func TestIncrementalShortcut(t *testing.T) {
	for _, tool := range []string{"mke2fs", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (e2fsprogs): %v", tool, err)
		}
	}
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		must(os.MkdirAll(filepath.Dir(filepath.Join(tree, p)), 0o755))
		must(os.WriteFile(filepath.Join(tree, p), []byte(s), 0o644))
	}
	// Directories first, files after, so most files' nearest lower
	// directory is some other one.
	for a := range 6 {
		for b := range 6 {
			must(os.MkdirAll(filepath.Join(tree, fmt.Sprintf("d%d/e%d/f", a, b)), 0o755))
		}
	}
	for a := range 6 {
		for b := range 6 {
			for c := range 5 {
				write(fmt.Sprintf("d%d/e%d/x%d", a, b, c), strings.Repeat(fmt.Sprint(a, b, c), 50*c))
				write(fmt.Sprintf("d%d/e%d/f/y%d", a, b, c), fmt.Sprint(c))
			}
		}
	}
	must(os.Link(filepath.Join(tree, "d0/e0/x1"), filepath.Join(tree, "d5/e5/link")))
	must(os.Link(filepath.Join(tree, "d0/e0/x1"), filepath.Join(tree, "d3/e1/f/link")))
	must(os.Symlink("../d1/e1/x2", filepath.Join(tree, "d2/sym")))
	img := filepath.Join(dir, "fs.img")
	out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-O", "inline_data", "-I", "256", "-b", "1024",
		"-d", tree, img, "8M").CombinedOutput()
	if err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	// Every inode at 2020, then some later, one a second apart each.
	src := extSource(t, img)
	var script strings.Builder
	for ino := uint32(RootIno); ino <= src.MaxIno(); ino++ {
		if in, err := src.Stat(ino); err == nil && knownType(in.Mode) {
			for _, f := range []string{"ctime", "mtime"} {
				fmt.Fprintf(&script, "sif <%d> %s 20200101000000\n", ino, f)
			}
		}
	}
	later := []string{"/d0/e0/x1", "/d4/e3/f/y4", "/d2/sym", "/d1/e2", "/d5/e0/f/y0", "/d3/e3/x4", "/d1/e1/x2"}
	for k, p := range later {
		for _, f := range []string{"ctime", "mtime"} {
			fmt.Fprintf(&script, "sif %s %s 2021010100%02d%02d\n", p, f, k/60, k%60)
		}
	}
	sf := filepath.Join(dir, "dates")
	must(os.WriteFile(sf, []byte(script.String()), 0o644))
	if out, err := exec.Command("debugfs", "-w", "-f", sf, img).CombinedOutput(); err != nil {
		t.Fatalf("debugfs: %v\n%s", err, out)
	}
	src = extSource(t, img)
	times := changeTimes(t, src)
	if len(times) != len(later)+1 {
		t.Fatalf("change times %v: want 2020 and %d later ones", times, len(later))
	}
	date := time.Unix(times[len(times)-1]+86400, 0)
	if compareShortcut(t, "tree", src, times, date) == 0 {
		t.Error("no dump took the shortcut")
	}
	// A view that is not known to be consistent (here a journal that
	// could not be replayed) reads every directory, as dump does.
	src.FS().(*ext.VFS).AddNote(vfs.Note{Offset: -1, Stale: true, Msg: "journal not replayed"})
	opts := WriteOptions{Level: 1, Date: date, BaseDate: time.Unix(times[len(times)-1], 0)}
	st, err := Write(io.Discard, src, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.fullWalk = true
	full, err := Write(io.Discard, src, opts)
	if err != nil {
		t.Fatal(err)
	}
	if st.DirsRead != full.DirsRead {
		t.Errorf("stale view: %d directories read, the full walk %d", st.DirsRead, full.DirsRead)
	}
}

// scanMem is a memSource that also scans its inodes and names parents, as
// FSSource over a consistent ext does.
type scanMem struct{ *memSource }

func (s scanMem) ScanInodes(fn func(in *Inode)) error {
	inos := make([]uint32, 0, len(s.nodes))
	for ino := range s.nodes {
		inos = append(inos, ino)
	}
	slices.Sort(inos)
	for _, ino := range inos {
		in := s.nodes[ino].Inode
		fn(&in)
	}
	return nil
}

func (s scanMem) Parent(dir uint32) (uint32, error) {
	if dir == RootIno {
		return RootIno, nil
	}
	for ino, n := range s.nodes {
		for _, c := range n.ents {
			if c == dir {
				return ino, nil
			}
		}
	}
	return 0, fmt.Errorf("no parent of %d", dir)
}

func (s scanMem) Consistent() bool { return true }

// TestIncrementalShortcutRandom: random trees (nested directories, files,
// symlinks, hard links across directories, nodump files), changed at
// random (files rewritten, created, removed, renamed within and across
// directories, linked; directories made, renamed, emptied and removed),
// give the same level-1 stream with the shortcut as with the full walk.
func TestIncrementalShortcutRandom(t *testing.T) {
	t0 := time.Unix(1_600_000_000, 0)
	t1 := t0.Add(time.Hour)
	shortcut := 0
	for seed := range int64(300) {
		r := rand.New(rand.NewSource(seed))
		s := newMemSource(t0)
		dirs := []string{""}
		var files []string
		for i := range 10 + r.Intn(120) {
			parent := dirs[r.Intn(len(dirs))]
			p := fmt.Sprintf("%s/n%d", parent, i)
			switch k := r.Intn(10); {
			case k < 3:
				s.mkdir(p, 0o755)
				dirs = append(dirs, p)
			case k < 8:
				s.file(p, 0o644, []byte(p))
				files = append(files, p)
				if r.Intn(20) == 0 {
					s.nodes[s.lookup(p)].Flags |= NodumpFlag
				}
			case k < 9 && len(files) > 0:
				s.link(files[r.Intn(len(files))], p)
			default:
				s.symlink(p, "target")
			}
		}
		s.now = t1
		alive := func(p string) bool {
			defer func() { recover() }()
			s.lookup(p)
			return true
		}
		for i := range r.Intn(12) {
			switch k := r.Intn(7); {
			case k == 0 && len(files) > 0:
				if f := files[r.Intn(len(files))]; alive(f) {
					s.touch(s.lookup(f)) // rewritten in place
				}
			case k == 1:
				p := fmt.Sprintf("%s/new%d", dirs[r.Intn(len(dirs))], i)
				if alive(path.Dir(p)) {
					s.file(p, 0o600, []byte("new"))
				}
			case k == 2 && len(files) > 0:
				if f := files[r.Intn(len(files))]; alive(f) {
					s.remove(f)
				}
			case k == 3 && len(files) > 0:
				f, d := files[r.Intn(len(files))], dirs[r.Intn(len(dirs))]
				if to := fmt.Sprintf("%s/moved%d", d, i); alive(f) && alive(d) {
					s.rename(f, to)
					files = append(files, to)
				}
			case k == 4 && len(files) > 0:
				f, d := files[r.Intn(len(files))], dirs[r.Intn(len(dirs))]
				if to := fmt.Sprintf("%s/link%d", d, i); alive(f) && alive(d) {
					s.link(f, to)
					files = append(files, to)
				}
			case k == 5 && len(dirs) > 1:
				// A directory moved under the root (never into itself).
				d := dirs[1+r.Intn(len(dirs)-1)]
				if to := fmt.Sprintf("/dmoved%d", i); alive(d) {
					s.rename(d, to)
					dirs = append(dirs, to)
				}
			case k == 6:
				p := fmt.Sprintf("%s/newdir%d", dirs[r.Intn(len(dirs))], i)
				if alive(path.Dir(p)) {
					s.mkdir(p, 0o700)
					s.file(p+"/inside", 0o644, []byte("inside"))
					dirs = append(dirs, p)
				}
			}
		}
		for _, nodump := range []bool{false, true} {
			opts := WriteOptions{Level: 1, Date: t1.Add(time.Hour), BaseDate: t1, HonorNodump: nodump}
			var fast, full bytes.Buffer
			sf, err := Write(&fast, scanMem{s}, opts)
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			opts.fullWalk = true
			sw, err := Write(&full, scanMem{s}, opts)
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			if !bytes.Equal(fast.Bytes(), full.Bytes()) {
				t.Errorf("seed %d nodump %v: streams differ: shortcut %d of %d inodes dumped, full walk %d of %d",
					seed, nodump, sf.Dumped, sf.Inodes, sw.Dumped, sw.Inodes)
			}
			if sf.DirsRead < sw.DirsRead {
				shortcut++
			}
		}
	}
	if shortcut < 100 {
		t.Errorf("the shortcut read fewer directories in only %d of 600 dumps", shortcut)
	}
}
