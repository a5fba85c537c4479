package salvage

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imgtool/imgtool/ext"
)

var compare = flag.Bool("compare", false, "also rewrite testdata/compare-debugfs.tsv with this run's per-image counts")

// TestCompareDebugfs counts, per corpus image, the non-empty regular files
// recovered with correct content by our salvage and by debugfs's
// catastrophic mode (debugfs -c -R 'rdump / D'). Correct content is
// judged against e2fsck's repair: e2fsck -fy runs on a copy, whose regular
// files (lost+found included) are read; a recovered file counts when its
// content equals one of them, each repaired file matched at most once
// (content, not path: e2fsck puts orphans in lost+found/#ino, we in
// #orphans/ino). Images e2fsck cannot repair into a readable filesystem
// are left out. The goal: ours >= debugfs on every image.
func TestCompareDebugfs(t *testing.T) {
	for _, tool := range []string{"debugfs", "e2fsck"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatal(err)
		}
	}
	cases := corpusCases(t)
	tmp := t.TempDir()
	var b strings.Builder
	b.WriteString("# image\trepaired_files\tours\tdebugfs\n")
	var totOurs, totDbg, worse int
	for _, name := range cases {
		img := corpusImage(t, name, tmp)
		fixed := filepath.Join(tmp, name+".fixed")
		copyFile(t, img, fixed)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		exec.CommandContext(ctx, "e2fsck", "-fy", fixed).Run() // exit status is 1/2/4 by design
		cancel()
		want := repairedHashes(fixed)
		if len(want) == 0 {
			t.Logf("%s: e2fsck's copy has no readable regular files; left out", name)
			os.Remove(img)
			os.Remove(fixed)
			continue
		}
		// debugfs
		dd := filepath.Join(tmp, name+".debugfs")
		os.MkdirAll(dd, 0o755)
		ctx, cancel = context.WithTimeout(context.Background(), 2*time.Minute)
		exec.CommandContext(ctx, "debugfs", "-c", "-R", "rdump / "+dd, img).Run()
		cancel()
		dbg := matchCount(want, dirHashes(dd, nil))
		// ours
		od := filepath.Join(tmp, name+".ours")
		f, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		Run(context.Background(), f, st.Size(), od, Options{})
		f.Close()
		ours := matchCount(want, dirHashes(od, map[string]bool{ReportName: true, SummaryName: true}))
		n := 0
		for _, c := range want {
			n += c
		}
		fmt.Fprintf(&b, "%s\t%d\t%d\t%d\n", name, n, ours, dbg)
		totOurs += ours
		totDbg += dbg
		if ours < dbg {
			worse++
			t.Errorf("%s: salvage recovered %d correct files, debugfs %d (of %d)", name, ours, dbg, n)
		}
		for _, p := range []string{img, fixed, dd, od} {
			os.RemoveAll(p)
		}
	}
	fmt.Fprintf(&b, "# total\t-\t%d\t%d\n", totOurs, totDbg)
	t.Logf("correct regular files recovered: salvage %d, debugfs -c %d; %d images worse", totOurs, totDbg, worse)
	if *compare {
		if err := os.WriteFile(filepath.Join("testdata", "compare-debugfs.tsv"), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if totOurs <= totDbg {
		t.Errorf("salvage total %d is not above debugfs's %d", totOurs, totDbg)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// repairedHashes reads e2fsck's repaired image with our reader (after
// e2fsck it is consistent) and counts the contents of its non-empty
// regular files.
func repairedHashes(img string) map[[32]byte]int {
	out := map[[32]byte]int{}
	f, err := os.Open(img)
	if err != nil {
		return out
	}
	defer f.Close()
	st, _ := f.Stat()
	// Salvage mode only to read encrypted files raw, as debugfs does
	// (e2fsck's copy is consistent otherwise).
	fsys, err := ext.Open(f, st.Size(), &ext.Options{Salvage: true})
	if err != nil {
		return out
	}
	seen := map[uint32]bool{}
	var walk func(ino uint32, depth int)
	walk = func(ino uint32, depth int) {
		if seen[ino] || depth > 512 {
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
		case in.IsRegular() && in.Size > 0:
			fl, err := fsys.OpenInode(ino)
			if err != nil {
				return
			}
			h := sha256.New()
			if _, err := io.Copy(h, io.NewSectionReader(fl, 0, fl.Size())); err != nil {
				return
			}
			out[[32]byte(h.Sum(nil))]++
		}
	}
	walk(ext.RootIno, 0)
	return out
}

// dirHashes counts the contents of the non-empty regular files under dir
// (hard links once), skipping the top-level names in skip.
func dirHashes(dir string, skip map[string]bool) map[[32]byte]int {
	out := map[[32]byte]int{}
	type key struct{ dev, ino uint64 }
	seen := map[key]bool{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if rel, _ := filepath.Rel(dir, p); skip[rel] {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.Size() == 0 {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return nil
		}
		defer f.Close()
		var sk key
		if s, err := f.Stat(); err == nil {
			if sys, ok := s.Sys().(*syscall.Stat_t); ok {
				sk = key{uint64(sys.Dev), uint64(sys.Ino)}
				if seen[sk] {
					return nil
				}
				seen[sk] = true
			}
		}
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return nil
		}
		out[[32]byte(h.Sum(nil))]++
		return nil
	})
	return out
}

// matchCount is the size of the multiset intersection of want and got.
func matchCount(want, got map[[32]byte]int) int {
	n := 0
	for h, c := range got {
		n += min(c, want[h])
	}
	return n
}
