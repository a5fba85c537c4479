package salvage

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// manifestRow is one line of fixtures/golden/salvage-zerogdt.manifest,
// captured by the fixture script from the source tree mke2fs -d copied.
type manifestRow struct {
	path, typ string
	size      int64
	sum       string // sha256 of a file, target of a symlink
}

func readManifest(t *testing.T, name string) []manifestRow {
	t.Helper()
	var out []manifestRow
	sc := bufio.NewScanner(strings.NewReader(string(fixturetest.Golden(t, name))))
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Split(l, "\t")
		if len(f) != 4 {
			t.Fatalf("%s: bad line %q", name, l)
		}
		n, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, manifestRow{f[0], f[1], n, f[3]})
	}
	if len(out) < 10 {
		t.Fatalf("%s: only %d entries", name, len(out))
	}
	return out
}

// checkTree compares the tree under dest with the manifest: every entry
// present with its type, size and content (or symlink target).
func checkTree(t *testing.T, dest string, want []manifestRow) {
	t.Helper()
	for _, w := range want {
		p := filepath.Join(dest, w.path)
		st, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%s: missing: %v", w.path, err)
			continue
		}
		switch w.typ {
		case "dir":
			if !st.IsDir() {
				t.Errorf("%s: not a directory (%v)", w.path, st.Mode())
			}
		case "symlink":
			got, err := os.Readlink(p)
			if err != nil || got != w.sum {
				t.Errorf("%s: symlink target %q (%v), want %q", w.path, got, err, w.sum)
			}
		case "file":
			if !st.Mode().IsRegular() || st.Size() != w.size {
				t.Errorf("%s: %v of %d bytes, want a file of %d", w.path, st.Mode(), st.Size(), w.size)
				continue
			}
			f, err := os.Open(p)
			if err != nil {
				t.Error(err)
				continue
			}
			h := sha256.New()
			io.Copy(h, f)
			f.Close()
			if got := hex.EncodeToString(h.Sum(nil)); got != w.sum {
				t.Errorf("%s: content sha256 %s, want %s", w.path, got, w.sum)
			}
		}
	}
}

// TestZeroedGDTFixtures salvages the images whose every group descriptor
// table copy was zeroed: plain ext.Open of them must not find the files
// through the descriptors, and the salvage must give back every file of
// the source tree, byte for byte.
func TestZeroedGDTFixtures(t *testing.T) {
	want := readManifest(t, "salvage-zerogdt.manifest")
	for _, name := range []string{"salvage-zerogdt-ext4", "salvage-zerogdt-ext2"} {
		t.Run(name, func(t *testing.T) {
			img := fixturetest.Image(t, name)
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			dest := filepath.Join(t.TempDir(), "out")
			rep, err := Run(context.Background(), f, st.Size(), dest, Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Log(rep.Summary(20))
			fsys, err := ext.Open(f, st.Size(), nil)
			if err != nil {
				t.Fatal(err)
			}
			groups := len(fsys.Groups())
			if groups < 8 || rep.DescGuessed != groups || rep.DescPrimary != 0 || rep.DescBackup != 0 {
				t.Errorf("descriptors: %d primary, %d backup, %d computed of %d groups; want all computed", rep.DescPrimary, rep.DescBackup, rep.DescGuessed, groups)
			}
			checkTree(t, dest, want)
			files := 0
			for _, w := range want {
				if w.typ != "dir" {
					files++
				}
			}
			if rep.FilesLost != 0 || rep.FilesPartial != 0 || rep.FilesRecovered != files || rep.Orphans != 0 {
				t.Errorf("report: %d recovered (%d partial), %d lost, %d orphans; want %d recovered, nothing lost", rep.FilesRecovered, rep.FilesPartial, rep.FilesLost, rep.Orphans, files)
			}
			if _, err := os.Stat(filepath.Join(dest, ReportName)); err != nil {
				t.Error(err)
			}
		})
	}
}
