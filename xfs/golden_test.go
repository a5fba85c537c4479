package xfs

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/vfs"
	"github.com/ulikunitz/xz"
)

// manifestRow is one line of fixtures/golden/NAME.manifest.xz, written by
// xfs_manifest (fixtures/scripts/xfs-lib.sh) from the kernel's view.
type manifestRow struct {
	path, typ, mode, uid, gid, size, blocks, mtime, nlink, ino, sum, xattrs string
}

func readManifest(t testing.TB, name string) []manifestRow {
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
	var rows []manifestRow
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		c := strings.Split(l, "\t")
		if len(c) != 12 {
			t.Fatalf("%s: bad line %q", name, l)
		}
		rows = append(rows, manifestRow{c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], dropRawACL(c[11])})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) < 10 {
		t.Fatalf("%s: only %d rows", name, len(rows))
	}
	return rows
}

// dropRawACL removes trusted.SGI_ACL_FILE / SGI_ACL_DEFAULT from a
// manifest's xattrs: the kernel lists them to root next to the
// system.posix_acl_* they implement, but the reader gives only the
// portable system.* form (what extract writes on any filesystem).
func dropRawACL(x string) string {
	var keep []string
	for _, p := range strings.Split(x, ",") {
		if !strings.HasPrefix(p, "trusted.SGI_ACL_") {
			keep = append(keep, p)
		}
	}
	if len(keep) == 0 {
		return "-"
	}
	return strings.Join(keep, ",")
}

type fileVol struct {
	*os.File
	size int64
}

func (v fileVol) Size() int64 { return v.size }

func openImage(t testing.TB, path string, opts vfs.OpenOptions) *FS {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	st, _ := fh.Stat()
	fsys, err := Open(fileVol{fh, st.Size()}, filepath.Base(path), opts)
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

func typeName(mode uint32) string {
	switch mode & vfs.ModeType {
	case vfs.ModeDir:
		return "dir"
	case vfs.ModeReg:
		return "file"
	case vfs.ModeLink:
		return "symlink"
	case vfs.ModeFIFO:
		return "fifo"
	case vfs.ModeSocket:
		return "socket"
	case vfs.ModeChar:
		return "char"
	case vfs.ModeBlock:
		return "block"
	}
	return "?"
}

// entryRow renders what the reader sees of one path in the manifest's
// columns.
func entryRow(t testing.TB, f vfs.FS, path string, ino vfs.Ino, dtype uint8) (manifestRow, error) {
	st, err := f.Stat(ino)
	if err != nil {
		return manifestRow{}, err
	}
	if dtype != vfs.DTUnknown && dtype != vfs.DTOf(st.Mode) {
		return manifestRow{}, fmt.Errorf("dirent type %d, inode mode %o", dtype, st.Mode)
	}
	r := manifestRow{path: path, typ: typeName(st.Mode), mode: strconv.FormatUint(uint64(st.Mode&vfs.ModePerm), 8),
		uid: fmt.Sprint(st.UID), gid: fmt.Sprint(st.GID), size: fmt.Sprint(st.Size), blocks: fmt.Sprint(st.Blocks),
		mtime: fmt.Sprint(st.Mtime.UnixNano()), nlink: fmt.Sprint(st.Nlink), ino: fmt.Sprint(ino), sum: "-"}
	if st.IsDir() {
		r.size = "0"
	}
	switch {
	case st.IsRegular():
		fl, err := f.Open(ino)
		if err != nil {
			return r, err
		}
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(fl, 0, fl.Size())); err != nil {
			return r, err
		}
		r.sum = hex.EncodeToString(h.Sum(nil))
		// A sparse copy (DataRanges only) gives the same bytes, and
		// allocates no more than the filesystem does.
		var data int64
		sparse := make([]byte, 0)
		for _, dr := range fl.DataRanges() {
			data += dr.Len
			_ = sparse
		}
		if data > st.Blocks*512 {
			return r, fmt.Errorf("DataRanges cover %d bytes, st_blocks only %d", data, st.Blocks*512)
		}
		if h2, err := sparseSum(fl); err != nil || h2 != r.sum {
			return r, fmt.Errorf("sparse copy differs (%v)", err)
		}
	case st.IsSymlink():
		r.sum, err = f.Readlink(ino)
		if err != nil {
			return r, err
		}
	case st.IsDevice():
		r.sum = fmt.Sprintf("%d:%d", st.RdevMajor, st.RdevMinor)
	}
	xs, err := f.Xattrs(ino)
	if err != nil {
		return r, err
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i].Name < xs[j].Name })
	var parts []string
	for _, x := range xs {
		parts = append(parts, x.Name+"="+hex.EncodeToString(x.Value))
	}
	r.xattrs = strings.Join(parts, ",")
	if r.xattrs == "" {
		r.xattrs = "-"
	}
	return r, nil
}

// sparseSum hashes a file read as a sparse copy would: DataRanges from
// the file, zeros elsewhere.
func sparseSum(fl vfs.File) (string, error) {
	h := sha256.New()
	var pos int64
	zero := make([]byte, 1<<16)
	pad := func(n int64) {
		for n > 0 {
			k := min(n, int64(len(zero)))
			h.Write(zero[:k])
			n -= k
		}
	}
	for _, dr := range fl.DataRanges() {
		pad(dr.Off - pos)
		if _, err := io.Copy(h, io.NewSectionReader(fl, dr.Off, dr.Len)); err != nil {
			return "", err
		}
		pos = dr.Off + dr.Len
	}
	pad(fl.Size() - pos)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// walkTree returns the reader's rows for every path under the root.
func walkTree(t testing.TB, f vfs.FS) map[string]manifestRow {
	t.Helper()
	out := map[string]manifestRow{}
	var walk func(dir vfs.Ino, prefix string, depth int)
	walk = func(dir vfs.Ino, prefix string, depth int) {
		if depth > 20 {
			t.Fatalf("%s: too deep", prefix)
		}
		ents, err := f.ReadDir(dir)
		if err != nil {
			t.Errorf("ReadDir %q: %v", prefix, err)
		}
		for _, e := range ents {
			p := e.Name
			if prefix != "" {
				p = prefix + "/" + e.Name
			}
			if _, dup := out[p]; dup {
				t.Errorf("%s listed twice", p)
			}
			r, err := entryRow(t, f, p, e.Ino, e.Type)
			if err != nil {
				t.Errorf("%s: %v", p, err)
				continue
			}
			out[p] = r
			if r.typ == "dir" {
				walk(e.Ino, p, depth+1)
			}
		}
	}
	walk(f.Root(), "", 0)
	return out
}

// walkTreeLenient is walkTree where an entry that cannot be read becomes
// a row of type "error" instead of a test failure.
func walkTreeLenient(t testing.TB, f vfs.FS) map[string]manifestRow {
	t.Helper()
	out := map[string]manifestRow{}
	var walk func(dir vfs.Ino, prefix string, depth int)
	walk = func(dir vfs.Ino, prefix string, depth int) {
		if depth > 20 {
			return
		}
		ents, _ := f.ReadDir(dir)
		for _, e := range ents {
			p := e.Name
			if prefix != "" {
				p = prefix + "/" + e.Name
			}
			r, err := entryRow(t, f, p, e.Ino, e.Type)
			if err != nil {
				out[p] = manifestRow{path: p, typ: "error", sum: err.Error()}
				continue
			}
			out[p] = r
			if r.typ == "dir" {
				walk(e.Ino, p, depth+1)
			}
		}
	}
	walk(f.Root(), "", 0)
	return out
}

// compareTree checks the reader's tree against the manifest: every row
// present with the same columns (cols selects which), and nothing extra.
func compareTree(t *testing.T, got map[string]manifestRow, want []manifestRow, cols func(manifestRow) manifestRow) {
	t.Helper()
	bad := 0
	for _, w := range want {
		g, ok := got[w.path]
		if !ok {
			t.Errorf("%s: missing", w.path)
			bad++
		} else if cols(g) != cols(w) {
			t.Errorf("%s:\n got  %+v\n want %+v", w.path, cols(g), cols(w))
			bad++
		}
		delete(got, w.path)
		if bad > 20 {
			t.Fatal("too many differences")
		}
	}
	for p := range got {
		t.Errorf("%s: not in the manifest", p)
	}
}

func allCols(r manifestRow) manifestRow { return r }

// protoCols are the columns a mkfs.xfs protofile carries.
func protoCols(r manifestRow) manifestRow {
	return manifestRow{path: r.path, typ: r.typ, mode: r.mode, uid: r.uid, gid: r.gid, size: r.size, sum: r.sum}
}

func TestGoldenTrees(t *testing.T) {
	for _, tc := range []struct {
		name string
		cols func(manifestRow) manifestRow
	}{
		{"xfs-v5", allCols},
		{"xfs-v4", protoCols},
		{"xfs-1k", allCols},
		{"xfs-4ksect", allCols},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := openImage(t, fixturetest.Image(t, tc.name), vfs.OpenOptions{})
			want := readManifest(t, tc.name)
			got := walkTree(t, f)
			compareTree(t, got, want, tc.cols)
			for _, n := range f.Notes() {
				t.Errorf("unexpected note: %v", n)
			}
		})
	}
}

var _ = bytes.Equal
