package salvage

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/journal"
	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite testdata/corpus-golden.tsv from this run")

// corpusDir is e2fsprogs' test images (fixturetest.CorpusDir).
func corpusDir() string { return fixturetest.CorpusDir() }

// corpusCases lists the corpus's test cases (directories with an image).
func corpusCases(tb testing.TB) []string {
	tb.Helper()
	dir := corpusDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatalf("the e2fsprogs corpus must be at %s (the CI clones shared/ beside the repository): %v", dir, err)
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		for _, f := range []string{"image.gz", "image.bz2", "image"} {
			if _, err := os.Stat(filepath.Join(dir, e.Name(), f)); err == nil {
				out = append(out, e.Name())
				break
			}
		}
	}
	sort.Strings(out)
	if len(out) < 100 {
		tb.Fatalf("only %d images in %s: corpus incomplete", len(out), dir)
	}
	return out
}

// corpusImage decompresses case name's image into dir and returns its path.
func corpusImage(tb testing.TB, name, dir string) string {
	tb.Helper()
	return fixturetest.CorpusImage(tb, name, dir)
}

// corpusRow is one line of the golden table.
type corpusRow struct {
	name                                   string
	opened                                 bool
	recovered, lost, partial, suspect, orp int
	journal                                bool
}

func (r corpusRow) String() string {
	yn := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	if !r.opened {
		return r.name + "\tnot-ext\t-\t-\t-\t-\t-"
	}
	return fmt.Sprintf("%s\tok\t%d\t%d\t%d\t%d\t%d\t%s", r.name, r.recovered, r.lost, r.partial, r.suspect, r.orp, yn(r.journal))
}

const goldenHeader = "# image\topened\tfiles_recovered\tfiles_lost\tfiles_partial\tfiles_suspect\torphans\tjournal_replayed"

// peakHeap samples the live heap every few milliseconds until stop.
func peakHeap() (stop func() uint64) {
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak }
}

// walkAndCat reads every directory and every regular file reachable from
// the root, ignoring errors (they are data): what a user's ls -R and cat
// would do. It returns the number of files read.
func walkAndCat(ctx context.Context, fsys *ext.FS) int {
	seen := map[uint32]bool{}
	n := 0
	var walk func(ino uint32, depth int)
	walk = func(ino uint32, depth int) {
		if seen[ino] || depth > 512 || ctx.Err() != nil {
			return
		}
		seen[ino] = true
		in, err := fsys.Inode(ino)
		if err != nil {
			return
		}
		switch {
		case in.IsDir():
			ents, _ := fsys.ReadDirInode(ino)
			for _, e := range ents {
				if e.Name != "." && e.Name != ".." {
					walk(e.Ino, depth+1)
				}
			}
		case in.IsRegular():
			if f, err := fsys.OpenInode(ino); err == nil {
				io.Copy(io.Discard, io.NewSectionReader(f, 0, f.Size()))
				n++
			}
		case in.IsSymlink():
			fsys.Readlink(ino)
		}
		fsys.Xattrs(ino)
	}
	walk(ext.RootIno, 0)
	return n
}

// TestCorpus runs inspect, a full walk with a cat of every file, and a
// salvage on every image of e2fsprogs' test suite: no panic, no hang
// (a generous per-image guard), bounded memory, and per-image results
// equal to testdata/corpus-golden.tsv (regenerate with -update).
func TestCorpus(t *testing.T) {
	cases := corpusCases(t)
	tmp := t.TempDir()
	var rows []corpusRow
	var worstT time.Duration
	var worstTName, worstMName string
	var worstM uint64
	for _, name := range cases {
		row, dt, mem := runCorpusCase(t, name, tmp)
		rows = append(rows, row)
		if dt > worstT {
			worstT, worstTName = dt, name
		}
		if mem > worstM {
			worstM, worstMName = mem, name
		}
	}
	t.Logf("%d images; most CPU %s (%v user+sys), largest live heap %s (%d MiB)", len(rows), worstTName, worstT.Round(time.Millisecond), worstMName, worstM>>20)
	var tot corpusRow
	for _, r := range rows {
		tot.recovered += r.recovered
		tot.lost += r.lost
		tot.partial += r.partial
		tot.suspect += r.suspect
		tot.orp += r.orp
	}
	t.Logf("totals: %d files recovered (%d partial, %d suspect), %d lost, %d orphans", tot.recovered, tot.partial, tot.suspect, tot.lost, tot.orp)

	var b strings.Builder
	b.WriteString(goldenHeader + "\n")
	for _, r := range rows {
		b.WriteString(r.String() + "\n")
	}
	golden := filepath.Join("testdata", "corpus-golden.tsv")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	wantRows := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(want)))
	for sc.Scan() {
		if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
			wantRows[strings.SplitN(l, "\t", 2)[0]] = l
		}
	}
	for _, r := range rows {
		w, ok := wantRows[r.name]
		if !ok {
			t.Errorf("%s: not in the golden table (run with -update): %s", r.name, r)
			continue
		}
		if w != r.String() {
			t.Errorf("%s: result changed\n got  %s\n want %s", r.name, r, w)
		}
		delete(wantRows, r.name)
	}
	for n := range wantRows {
		t.Errorf("%s: in the golden table but not in the corpus", n)
	}
}

// badDescRE matches what e2fsck prints about group descriptors it cannot
// use.
var badDescRE = regexp.MustCompile(`Group descriptors look bad|ext2fs_check_desc|(bitmap|Inode table) for group \d+ is not in group`)

// hangGuard is far above any image's real time (the slowest takes well
// under a second); it only turns a hang into a failure.
const hangGuard = 60 * time.Second

// cpuTime is the process's user+system CPU time so far. On a loaded
// machine wall time says little; CPU time is what the work costs.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func runCorpusCase(t *testing.T, name, tmp string) (row corpusRow, dt time.Duration, mem uint64) {
	row.name = name
	img := corpusImage(t, name, tmp)
	defer os.Remove(img)
	dest := filepath.Join(tmp, name+".out")
	defer os.RemoveAll(dest)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	size := st.Size()

	runtime.GC()
	stop := peakHeap()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	start, cpu0 := time.Now(), cpuTime()
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("%s: panic: %v\n%s", name, p, debug.Stack())
			}
		}()
		if _, err := inspect.Inspect([]inspect.Source{{Name: name, R: f, Size: size, Format: "raw"}}, nil); err != nil {
			t.Logf("%s: inspect: %v", name, err)
		}
		if v, err := journal.Open(f, size, &ext.Options{Salvage: true}, nil); err == nil {
			walkAndCat(ctx, v.FS)
		}
		// The descriptor checks agree with e2fsck's: descriptors are
		// replaced exactly where e2fsck (expect.1) found them bad.
		if fsys, err := ext.Open(f, size, nil); err == nil {
			exp, _ := os.ReadFile(filepath.Join(corpusDir(), name, "expect.1"))
			e2bad := badDescRE.Match(exp)
			if fsys.DescRepaired() != e2bad {
				t.Errorf("%s: group descriptors replaced: %v; e2fsck found them bad: %v (notes %v)", name, fsys.DescRepaired(), e2bad, fsys.Notes())
			}
		}
		rep, err := Run(ctx, f, size, dest, Options{})
		if err != nil || rep == nil {
			t.Logf("%s: salvage: %v", name, err)
			return
		}
		row.opened = true
		row.recovered, row.lost = rep.FilesRecovered, rep.FilesLost
		row.partial, row.suspect, row.orp = rep.FilesPartial, rep.FilesSuspect, rep.Orphans
		row.journal = rep.JournalReplayed
		if _, err := os.Stat(filepath.Join(dest, ReportName)); err != nil {
			t.Errorf("%s: no report file: %v", name, err)
		}
	}()
	wall := time.Since(start)
	dt = cpuTime() - cpu0
	mem = stop()
	t.Logf("%s: %v CPU, %v wall, live heap peak %d MiB", name, dt.Round(time.Millisecond), wall.Round(time.Millisecond), mem>>20)
	if ctx.Err() != nil {
		t.Errorf("%s: not done after %v (hang?)", name, hangGuard)
	}
	if mem > 512<<20 {
		t.Errorf("%s: live heap reached %d MiB (bound 512)", name, mem>>20)
	}
	return row, dt, mem
}
