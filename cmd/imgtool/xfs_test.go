package main

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"
)

// xfsRow is one line of an XFS fixture manifest (fixtures/scripts/xfs-lib.sh,
// taken from the kernel mount): path, type, mode, uid, gid, size, blocks,
// mtime ns, nlink, ino, sha256|target|rdev, xattrs.
type xfsRow struct {
	path, typ, mode, uid, gid, size, blocks, mtime, nlink, ino, sum, xattrs string
}

func xfsManifest(t *testing.T, name string) []xfsRow {
	t.Helper()
	fh, err := os.Open(filepath.Join(fixturetest.Dir(), "golden", name+".manifest.xz"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	zr, err := xz.NewReader(fh)
	if err != nil {
		t.Fatal(err)
	}
	var rows []xfsRow
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
			c := strings.Split(l, "\t")
			if len(c) != 12 {
				t.Fatalf("bad manifest line %q", l)
			}
			var keep []string
			for _, x := range strings.Split(c[11], ",") {
				if !strings.HasPrefix(x, "trusted.SGI_ACL_") { // the kernel's raw form of the ACLs (see package xfs)
					keep = append(keep, x)
				}
			}
			if len(keep) == 0 {
				keep = []string{"-"}
			}
			rows = append(rows, xfsRow{c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], strings.Join(keep, ",")})
		}
	}
	if len(rows) < 10 {
		t.Fatalf("%s: %d rows", name, len(rows))
	}
	return rows
}

// treeRow describes an extracted entry in the manifest's terms; ino is
// the extracted file's inode (hard-link groups are compared by it).
func treeRow(t *testing.T, root, rel string) (xfsRow, error) {
	p := filepath.Join(root, rel)
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return xfsRow{}, err
	}
	r := xfsRow{path: rel, mode: fmt.Sprintf("%o", st.Mode&0o7777), uid: fmt.Sprint(st.Uid), gid: fmt.Sprint(st.Gid),
		size: fmt.Sprint(st.Size), blocks: fmt.Sprint(st.Blocks), mtime: fmt.Sprint(st.Mtim.Nano()), nlink: fmt.Sprint(st.Nlink),
		ino: fmt.Sprint(st.Ino), sum: "-"}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		r.typ, r.size = "dir", "0"
	case unix.S_IFLNK:
		r.typ = "symlink"
		r.sum, _ = os.Readlink(p)
	case unix.S_IFREG:
		r.typ = "file"
		r.sum = sha256File(t, p)
	case unix.S_IFIFO:
		r.typ = "fifo"
	case unix.S_IFSOCK:
		r.typ = "socket"
	case unix.S_IFCHR, unix.S_IFBLK:
		r.typ = map[bool]string{true: "char", false: "block"}[st.Mode&unix.S_IFMT == unix.S_IFCHR]
		r.sum = fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	var names []string
	buf := make([]byte, 64<<10)
	if n, err := unix.Llistxattr(p, buf); err == nil {
		for _, x := range strings.Split(string(buf[:n]), "\x00") {
			if x != "" {
				names = append(names, x)
			}
		}
	}
	sort.Strings(names)
	var xs []string
	for _, x := range names {
		n, err := unix.Lgetxattr(p, x, buf)
		if err != nil {
			return r, err
		}
		xs = append(xs, x+"="+hex.EncodeToString(buf[:n]))
	}
	r.xattrs = strings.Join(xs, ",")
	if r.xattrs == "" {
		r.xattrs = "-"
	}
	return r, nil
}

// checkExtracted compares an extracted tree with the manifest: content,
// type, mode, owner, ns mtime (not for symlinks' own times and dirs'
// is checked too), target, rdev, xattrs, hard-link groups, and
// sparseness (st_blocks no larger than the kernel's). Sockets are not
// extracted (extract reports them). Returns how many entries it checked.
func checkExtracted(t *testing.T, dest string, rows []xfsRow, xattrs bool, report string) int {
	t.Helper()
	groups := map[string]string{} // manifest ino -> extracted ino
	n := 0
	for _, w := range rows {
		if w.typ == "socket" || w.typ == "error" {
			continue
		}
		g, err := treeRow(t, dest, w.path)
		if err != nil {
			t.Errorf("%s: %v", w.path, err)
			continue
		}
		want := w
		want.blocks, want.ino, want.nlink = g.blocks, g.ino, g.nlink
		if !xattrs {
			want.xattrs = g.xattrs
		}
		if g.xattrs != want.xattrs && strings.Contains(report, w.path) {
			// The destination filesystem could not hold them (ext4: one
			// block of xattrs per inode) and extract said so.
			want.xattrs = g.xattrs
		}
		if g != want {
			t.Errorf("%s:\n got  %+v\n want %+v", w.path, g, want)
		}
		var gb, wb int64
		fmt.Sscan(g.blocks, &gb)
		fmt.Sscan(w.blocks, &wb)
		// Each block the filesystem allocated is at least 512 bytes and
		// becomes at most one 4 KiB block of the destination.
		if w.typ == "file" && gb > wb*8 {
			t.Errorf("%s: %d sectors extracted, the filesystem has %d (sparseness lost)", w.path, gb, wb)
		}
		if w.typ == "file" && w.nlink != "1" {
			if prev, ok := groups[w.ino]; ok && prev != g.ino {
				t.Errorf("%s: hard link group broken (inode %s, another name is %s)", w.path, g.ino, prev)
			}
			groups[w.ino] = g.ino
		}
		n++
	}
	return n
}

func mustRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: owners, device nodes and trusted.* xattrs are part of the comparison")
	}
}

// TestXFSExtractMatchesKernel: `imgtool extract --xattrs` of whole XFS
// fixtures equals what the kernel mount showed.
func TestXFSExtractMatchesKernel(t *testing.T) {
	mustRoot(t)
	for _, name := range []string{"xfs-1k", "xfs-4ksect"} {
		t.Run(name, func(t *testing.T) {
			img := fixturetest.Image(t, name)
			keepImage(t, img)
			dest := filepath.Join(t.TempDir(), "out")
			_, errs, code := imgtool(t, "extract", img, "/", dest, "--xattrs", "--numeric-owner")
			// Sockets are reported as not extracted: exit 3.
			if code != 0 && code != 3 {
				t.Fatalf("extract: %d %s", code, errs)
			}
			t.Logf("extract exit %d:\n%s", code, errs)
			if n := checkExtracted(t, dest, xfsManifest(t, name), true, errs); n < 2000 {
				t.Errorf("only %d entries checked", n)
			}
		})
	}
}

// TestXFSDirtyLogCLI: extract shows the replayed view by default and the
// disk as it is with --no-journal, as the kernel does with and without
// recovery.
func TestXFSDirtyLogCLI(t *testing.T) {
	mustRoot(t)
	img := fixturetest.Image(t, "xfs-dirty-a")
	keepImage(t, img)
	dest := filepath.Join(t.TempDir(), "replayed")
	_, errs, code := imgtool(t, "extract", img, "/", dest, "--xattrs", "--numeric-owner")
	if code != 0 {
		t.Fatalf("extract: %d %s", code, errs)
	}
	checkExtracted(t, dest, xfsManifest(t, "xfs-dirty-a.replayed"), true, errs)
	raw := filepath.Join(t.TempDir(), "raw")
	_, errs, code = imgtool(t, "extract", img, "/", raw, "--xattrs", "--numeric-owner", "--no-journal")
	if code != 0 && code != 3 {
		t.Fatalf("extract --no-journal: %d %s", code, errs)
	}
	checkExtracted(t, raw, xfsManifest(t, "xfs-dirty-a.norecovery"), true, errs)
}

// TestXFSNestedLsCatStatTar: the CentOS guest root inside a host LV, by
// address: ls -l --json, cat, stat --json and extract --tar agree with
// the kernel mount's manifest.
func TestXFSNestedLsCatStatTar(t *testing.T) {
	img := fixturetest.Image(t, "xfs-nested")
	keepImage(t, img)
	rows := xfsManifest(t, "xfs-nested")
	byPath := map[string]xfsRow{}
	for _, r := range rows {
		byPath[r.path] = r
	}
	vol := "centos/guest/centos/root"
	out, errs, code := imgtool(t, "ls", img, vol+":/home/alice", "-l", "--json")
	if code != 0 {
		t.Fatalf("ls: %d %s", code, errs)
	}
	var ls []map[string]any
	if err := json.Unmarshal(jsonKey(t, out, "entries"), &ls); err != nil {
		t.Fatalf("ls --json: %v\n%s", err, out)
	}
	seen := 0
	for _, e := range ls {
		name, _ := e["name"].(string)
		w, ok := byPath["home/alice/"+name]
		if !ok {
			t.Errorf("ls lists %q, not in the manifest", name)
			continue
		}
		if fmt.Sprint(e["inode"]) != w.ino {
			t.Errorf("%s: inode %v, kernel %s", name, e["inode"], w.ino)
		}
		seen++
	}
	if seen != 4 {
		t.Errorf("ls listed %d of the 4 entries of /home/alice: %s", seen, out)
	}
	out, errs, code = imgtool(t, "cat", img, vol+":/home/alice/data.bin")
	if code != 0 {
		t.Fatalf("cat: %d %s", code, errs)
	}
	if sum := sha256.Sum256([]byte(out)); hex.EncodeToString(sum[:]) != byPath["home/alice/data.bin"].sum {
		t.Error("cat data.bin differs from the kernel's")
	}
	out, errs, code = imgtool(t, "stat", img, vol+":/home/alice/notes.txt", "--json")
	if code != 0 {
		t.Fatalf("stat: %d %s", code, errs)
	}
	w := byPath["home/alice/notes.txt"]
	for _, want := range []string{w.ino, `"uid": ` + w.uid, "2009-03-14"} {
		if !strings.Contains(out, want) {
			t.Errorf("stat --json lacks %q:\n%s", want, out)
		}
	}
	tarPath := filepath.Join(t.TempDir(), "root.tar")
	if _, errs, code := imgtool(t, "extract", img, vol+":/", "--tar", tarPath); code != 0 {
		t.Fatalf("extract --tar: %d %s", code, errs)
	}
	fh, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	tr := tar.NewReader(fh)
	got := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		w, ok := byPath[name]
		if !ok {
			continue
		}
		got++
		if fmt.Sprint(h.ModTime.UnixNano()) != w.mtime {
			t.Errorf("%s: tar mtime %d, kernel %s", name, h.ModTime.UnixNano(), w.mtime)
		}
		if h.Typeflag == tar.TypeReg {
			s := sha256.New()
			io.Copy(s, tr)
			if hex.EncodeToString(s.Sum(nil)) != w.sum {
				t.Errorf("%s: tar content differs", name)
			}
		}
	}
	if got != len(rows) {
		t.Errorf("tar holds %d of the %d manifest entries", got, len(rows))
	}
	_ = syscall.Getpid
}
