package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imgtool/imgtool/dump"
	"github.com/imgtool/imgtool/ext"
)

// The oracle tests build an ext4 image with mke2fs -d, change it with
// debugfs -w between dumps, and check that Debian's restore(8) rebuilds the
// final filesystem from our level 0, 1 and 2 dumps. The final filesystem
// is read back with debugfs (rdump for content, modes, owners and times;
// ls -p for inode numbers; stat for block counts), never with our ext
// reader.

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required: %v", tool, err)
		}
	}
	if os.Geteuid() != 0 {
		t.Fatalf("these tests need root (restore chowns and mknods)")
	}
}

func sh(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TERM=dumb", "TMPDIR="+t.TempDir())
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// debugfsW runs a debugfs -w script and fails on any error message in its
// output (debugfs itself exits 0 whatever happens).
func debugfsW(t *testing.T, img string, script string) {
	t.Helper()
	cmd := exec.Command("debugfs", "-w", img, "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "debugfs:") || strings.HasPrefix(l, "debugfs ") || strings.TrimSpace(l) == "" ||
			strings.HasPrefix(l, "Allocated inode") || strings.HasPrefix(l, "Setting current time") {
			continue
		}
		t.Fatalf("debugfs complained: %q\nscript:\n%s\noutput:\n%s", l, script, out)
	}
}

// buildFixtureFS makes the level-0 filesystem from a source tree.
func buildFixtureFS(t *testing.T, dir string) string {
	t.Helper()
	src := filepath.Join(dir, "src")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "dir/sub"), 0o755))
	must(os.MkdirAll(filepath.Join(src, "gone/deeper"), 0o755))
	must(os.WriteFile(filepath.Join(src, "small.txt"), []byte("hello, level 0\n"), 0o644))
	must(os.WriteFile(filepath.Join(src, "dir/change-me"), patterned("v0", 20000), 0o644))
	must(os.WriteFile(filepath.Join(src, "dir/sub/deep"), []byte("deep"), 0o600))
	must(os.WriteFile(filepath.Join(src, "delete-me"), []byte("bye"), 0o644))
	must(os.WriteFile(filepath.Join(src, "gone/deeper/x"), []byte("x"), 0o644))
	must(os.WriteFile(filepath.Join(src, "rename-me"), []byte("renamed later"), 0o644))
	must(os.WriteFile(filepath.Join(src, "chmod-me"), []byte("mode"), 0o644))
	must(os.WriteFile(filepath.Join(src, "big.bin"), patterned("big", 700*1024+77), 0o644))
	must(os.WriteFile(filepath.Join(src, "owned"), []byte("uid 1000"), 0o640))
	must(os.Lchown(filepath.Join(src, "owned"), 1000, 100))
	must(os.Symlink("small.txt", filepath.Join(src, "link")))
	must(os.Symlink(strings.Repeat("long/", 30)+"target", filepath.Join(src, "dir/longlink")))
	must(os.Link(filepath.Join(src, "small.txt"), filepath.Join(src, "dir/hardlink")))
	must(syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644))
	f, err := os.Create(filepath.Join(src, "sparse"))
	must(err)
	_, err = f.WriteAt([]byte("sparse head"), 0)
	must(err)
	_, err = f.WriteAt([]byte("sparse middle"), 1<<20)
	must(err)
	must(f.Truncate(3 << 20))
	must(f.Close())
	must(os.Chmod(filepath.Join(src, "dir/sub"), 0o700))
	img := filepath.Join(dir, "fs.img")
	sh(t, dir, "mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-d", src, img, "32M")
	return img
}

func patterned(tag string, n int) []byte {
	b := make([]byte, 0, n+64)
	for i := 0; len(b) < n; i++ {
		b = fmt.Appendf(b, "%s line %d\n", tag, i)
	}
	return b[:n]
}

// dumpImage dumps the ext filesystem in img with our writer.
func dumpImage(t *testing.T, img, out string, level int, date, base time.Time) dump.Stats {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	fsys, err := ext.Open(f, st.Size(), nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	src, err := dump.NewFSSource(context.Background(), ext.NewVFS(fsys))
	if err != nil {
		t.Fatal(err)
	}
	stats, err := dump.Write(w, src, dump.WriteOptions{Level: level, Date: date, BaseDate: base, Device: "test"})
	if err != nil {
		t.Fatalf("dump level %d: %v", level, err)
	}
	return stats
}

// entry is what we compare of one path.
type entry struct {
	typ    fs.FileMode
	perm   fs.FileMode
	uid    uint32
	gid    uint32
	mtime  int64
	size   int64
	sha    string
	target string
	ino    uint64
	blocks int64
}

func (e entry) String() string {
	return fmt.Sprintf("%v %o %d:%d mtime=%d size=%d sha=%.12s target=%q", e.typ, e.perm, e.uid, e.gid, e.mtime, e.size, e.sha, e.target)
}

// scanTree lists a directory tree; skip names are left out at the top.
func scanTree(t *testing.T, root string, skip ...string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		for _, s := range skip {
			if rel == s {
				return nil
			}
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		fi, _ := d.Info()
		e := entry{typ: fi.Mode().Type(), perm: fi.Mode().Perm() | fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky),
			uid: st.Uid, gid: st.Gid, mtime: st.Mtim.Sec, ino: st.Ino, blocks: st.Blocks}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(b)
			e.sha, e.size = hex.EncodeToString(s[:]), int64(len(b))
		case fi.Mode()&fs.ModeSymlink != 0:
			e.target, _ = os.Readlink(p)
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// compareTrees checks that got has the same paths, types, permissions,
// owners, content and symlink targets as want; mtimes of regular files
// are compared too when withTimes is set.
func compareTrees(t *testing.T, what string, want, got map[string]entry, withTimes bool) {
	t.Helper()
	for _, p := range sortedKeys(want) {
		w := want[p]
		g, ok := got[p]
		if !ok {
			t.Errorf("%s: %s missing", what, p)
			continue
		}
		if w.typ != g.typ || w.perm != g.perm || w.uid != g.uid || w.gid != g.gid || w.sha != g.sha || w.size != g.size || w.target != g.target {
			t.Errorf("%s: %s:\n want %v\n got  %v", what, p, w, g)
		}
		if withTimes && w.typ.IsRegular() && w.mtime != g.mtime {
			t.Errorf("%s: %s: mtime %d, want %d", what, p, g.mtime, w.mtime)
		}
	}
	for _, p := range sortedKeys(got) {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: unexpected %s (%v)", what, p, got[p])
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// linkGroups groups paths by inode number: the hard links.
func linkGroups(m map[string]uint64) []string {
	by := map[uint64][]string{}
	for p, ino := range m {
		by[ino] = append(by[ino], p)
	}
	var out []string
	for _, ps := range by {
		if len(ps) > 1 {
			sort.Strings(ps)
			out = append(out, strings.Join(ps, " = "))
		}
	}
	sort.Strings(out)
	return out
}

// lsEntry is one line of debugfs "ls -p".
type lsEntry struct {
	ino      uint64
	mode     uint64
	uid, gid uint32
}

// debugfsInodes walks the image with debugfs "ls -p": path -> inode
// number, mode and owner, for every non-directory.
func debugfsInodes(t *testing.T, img string) map[string]lsEntry {
	t.Helper()
	out := map[string]lsEntry{}
	var walk func(dir string)
	walk = func(dir string) {
		o := sh(t, "", "debugfs", "-R", "ls -p "+dir, img)
		for _, l := range strings.Split(o, "\n") {
			// /ino/mode/uid/gid/name/size/
			f := strings.Split(l, "/")
			if len(f) < 7 || f[0] != "" {
				continue
			}
			name := strings.Join(f[5:len(f)-2], "/")
			if name == "." || name == ".." || name == "" {
				continue
			}
			ino, _ := strconv.ParseUint(f[1], 10, 32)
			mode, _ := strconv.ParseUint(f[2], 8, 32)
			p := strings.TrimPrefix(dir+"/"+name, "/")
			if mode&0o170000 == 0o040000 {
				walk("/" + p)
				continue
			}
			uid, _ := strconv.ParseUint(f[3], 10, 32)
			gid, _ := strconv.ParseUint(f[4], 10, 32)
			out[p] = lsEntry{ino, mode, uint32(uid), uint32(gid)}
		}
	}
	walk("")
	return out
}

// debugfsPaths lists every path of the image (directories included).
func debugfsPaths(t *testing.T, img string) []string {
	t.Helper()
	var out []string
	var walk func(dir string)
	walk = func(dir string) {
		o := sh(t, "", "debugfs", "-R", "ls -p "+dir, img)
		for _, l := range strings.Split(o, "\n") {
			f := strings.Split(l, "/")
			if len(f) < 7 || f[0] != "" {
				continue
			}
			name := strings.Join(f[5:len(f)-2], "/")
			if name == "." || name == ".." || name == "" {
				continue
			}
			mode, _ := strconv.ParseUint(f[2], 8, 32)
			p := strings.TrimPrefix(dir+"/"+name, "/")
			out = append(out, p)
			if mode&0o170000 == 0o040000 {
				walk("/" + p)
			}
		}
	}
	walk("")
	sort.Strings(out)
	return out
}

// blockcount returns debugfs stat's Blockcount (512-byte units) of a path.
func blockcount(t *testing.T, img, p string) int64 {
	t.Helper()
	o := sh(t, "", "debugfs", "-R", "stat /"+p, img)
	i := strings.Index(o, "Blockcount: ")
	if i < 0 {
		t.Fatalf("no Blockcount in debugfs stat %s:\n%s", p, o)
	}
	f := strings.Fields(o[i+len("Blockcount: "):])
	n, _ := strconv.ParseInt(f[0], 10, 64)
	return n
}

// rdump extracts the image with debugfs rdump: the reference content.
func rdump(t *testing.T, img string) string {
	t.Helper()
	d := t.TempDir()
	sh(t, "", "debugfs", "-R", "rdump / "+d, img)
	return d
}

func restoreTOC(t *testing.T, dumpFile string) []string {
	t.Helper()
	o := sh(t, t.TempDir(), "restore", "-t", "-f", dumpFile)
	var out []string
	for _, l := range strings.Split(o, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		if _, err := strconv.Atoi(f[0]); err != nil {
			continue
		}
		p := strings.TrimPrefix(strings.TrimSpace(l[strings.Index(l, f[0])+len(f[0]):]), "./")
		if p == "." {
			continue
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// chainTimes are the dates of the three dumps and of the two rounds of
// changes: every change is stamped between the dumps around it.
type chainTimes struct{ d0, c1, d1, c2, d2 time.Time }

func newChainTimes() chainTimes {
	now := time.Now().Truncate(time.Second)
	return chainTimes{d0: now.Add(1 * time.Hour), c1: now.Add(2 * time.Hour), d1: now.Add(3 * time.Hour),
		c2: now.Add(4 * time.Hour), d2: now.Add(5 * time.Hour)}
}

// changes1 and changes2 are the debugfs scripts between the dumps. Every
// changed inode, directories included, gets its ctime (and mtime where the
// kernel would set it) stamped, as the kernel does.
func changes1(img string, c time.Time) string {
	s := fmt.Sprintf("@%d", c.Unix())
	return strings.Join([]string{
		"set_current_time " + s,
		// create
		"write " + img + ".new1 new-file",
		"mkdir newdir",
		"write " + img + ".new1 newdir/inner",
		// delete a file and a whole directory tree
		"rm delete-me",
		"rm gone/deeper/x", "rmdir gone/deeper", "rmdir gone",
		// rename: link under the new name, unlink the old one
		"link rename-me dir/renamed", "unlink rename-me",
		"sif dir/renamed ctime " + s,
		// chmod and chown
		"sif chmod-me mode 0100600", "sif chmod-me ctime " + s,
		"sif owned uid 2000", "sif owned ctime " + s,
		// a new hard link
		"link big.bin dir/big-link", "sif big.bin links_count 2", "sif big.bin ctime " + s,
		// grow the sparse file with a hole at the end
		"sif sparse size 8388608", "sif sparse mtime " + s, "sif sparse ctime " + s,
		// a new symlink
		"symlink newlink dir/renamed",
		// the directories whose entries changed
		"sif / mtime " + s, "sif / ctime " + s,
		"sif dir mtime " + s, "sif dir ctime " + s,
		"sif newdir mtime " + s, "sif newdir ctime " + s,
		"",
	}, "\n")
}

func changes2(img string, c time.Time) string {
	s := fmt.Sprintf("@%d", c.Unix())
	return strings.Join([]string{
		"set_current_time " + s,
		"rm new-file",
		"link newdir/inner dir/sub/inner-moved", "unlink newdir/inner", "sif dir/sub/inner-moved ctime " + s,
		"rmdir newdir",
		"write " + img + ".new2 dir/sub/second",
		"rm link", "symlink link dir/renamed",
		"unlink dir/big-link", "sif big.bin links_count 1", "sif big.bin ctime " + s,
		"sif dir/sub/deep mode 0100444", "sif dir/sub/deep ctime " + s,
		"sif / mtime " + s, "sif / ctime " + s,
		"sif dir mtime " + s, "sif dir ctime " + s,
		"sif dir/sub mtime " + s, "sif dir/sub ctime " + s,
		"",
	}, "\n")
}

// changeInPlace overwrites the first block of path in the image (the same
// inode keeps new content) and stamps its times.
func changeInPlace(t *testing.T, img, p string, content []byte, c time.Time) {
	t.Helper()
	o := sh(t, "", "debugfs", "-R", "bmap /"+p+" 0", img)
	lines := strings.Fields(strings.TrimSpace(o))
	blk, err := strconv.ParseInt(lines[len(lines)-1], 10, 64)
	if err != nil || blk == 0 {
		t.Fatalf("bmap %s: %q", p, o)
	}
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(content, blk*4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s := fmt.Sprintf("@%d", c.Unix())
	debugfsW(t, img, "sif "+p+" mtime "+s+"\nsif "+p+" ctime "+s+"\n")
}

// levelChain builds the image, dumps it at levels 0, 1 and 2 with the
// changes in between, and returns the image (in its final state) and the
// three dump files.
func levelChain(t *testing.T) (img string, dumps [3]string, tm chainTimes, l0paths []string) {
	dir := t.TempDir()
	img = buildFixtureFS(t, dir)
	tm = newChainTimes()
	for i, d := range []string{img + ".new1", img + ".new2"} {
		if err := os.WriteFile(d, patterned(fmt.Sprintf("new%d", i+1), 5000+i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l0paths = debugfsPaths(t, img)
	for i := range dumps {
		dumps[i] = filepath.Join(dir, fmt.Sprintf("l%d.dump", i))
	}
	dumpImage(t, img, dumps[0], 0, tm.d0, time.Time{})
	debugfsW(t, img, changes1(img, tm.c1))
	changeInPlace(t, img, "dir/change-me", []byte("CHANGED AT LEVEL 1"), tm.c1)
	st1 := dumpImage(t, img, dumps[1], 1, tm.d1, tm.d0)
	debugfsW(t, img, changes2(img, tm.c2))
	changeInPlace(t, img, "small.txt", []byte("HELLO"), tm.c2)
	st2 := dumpImage(t, img, dumps[2], 2, tm.d2, tm.d1)
	sh(t, "", "e2fsck", "-fn", img)
	// The incrementals must really be incremental.
	if st1.Dumped >= st1.Inodes/2+5 || st2.Dumped >= st2.Inodes/2+5 {
		t.Fatalf("incrementals dump too much: L1 %d of %d inodes, L2 %d of %d", st1.Dumped, st1.Inodes, st2.Dumped, st2.Inodes)
	}
	return img, dumps, tm, l0paths
}

func TestStockRestoreAppliesLevelChain(t *testing.T) {
	need(t, "mke2fs", "debugfs", "restore", "e2fsck")
	img, dumps, _, l0paths := levelChain(t)

	// restore -t of the level 0 lists exactly the level-0 filesystem.
	if got := restoreTOC(t, dumps[0]); strings.Join(got, "\n") != strings.Join(l0paths, "\n") {
		t.Errorf("restore -t of level 0:\n%s\nwant (debugfs):\n%s", strings.Join(got, "\n"), strings.Join(l0paths, "\n"))
	}

	scratch := t.TempDir()
	for _, d := range dumps {
		sh(t, scratch, "restore", "-r", "-f", d)
	}
	got := scanTree(t, scratch, "restoresymtable")
	want := scanTree(t, rdump(t, img))
	// rdump skips FIFOs: take them from debugfs ls -p.
	inos := debugfsInodes(t, img)
	for p, e := range inos {
		if e.mode&0o170000 == 0o010000 {
			want[p] = entry{typ: fs.ModeNamedPipe, perm: fs.FileMode(e.mode & 0o777), uid: e.uid, gid: e.gid}
		}
	}
	compareTrees(t, "stock restore -r", want, got, true)

	// Hard links: the same groups as the inode numbers in the image.
	gotIno := map[string]uint64{}
	for p, e := range got {
		if !e.typ.IsDir() {
			gotIno[p] = e.ino
		}
	}
	imgIno := map[string]uint64{}
	for p, e := range inos {
		imgIno[p] = e.ino
	}
	wl, gl := linkGroups(imgIno), linkGroups(gotIno)
	if strings.Join(wl, ";") != strings.Join(gl, ";") || len(wl) == 0 {
		t.Errorf("hard links: got %q, want %q", gl, wl)
	}
	// Sparseness: no restored file allocates more than the image does.
	for p, e := range got {
		if e.typ.IsRegular() {
			if fsb := blockcount(t, img, p); e.blocks > fsb+8 {
				t.Errorf("%s: restored file allocates %d sectors, the image %d", p, e.blocks, fsb)
			}
		}
	}
	if got["sparse"].size != 8<<20 {
		t.Errorf("sparse: size %d, want %d", got["sparse"].size, 8<<20)
	}
	// Sanity: the changes happened.
	for _, p := range []string{"dir/renamed", "dir/sub/inner-moved", "dir/sub/second", "newlink"} {
		if _, ok := got[p]; !ok {
			t.Errorf("%s missing after the chain", p)
		}
	}
	for _, p := range []string{"delete-me", "gone", "rename-me", "new-file", "newdir", "dir/big-link"} {
		if _, ok := got[p]; ok {
			t.Errorf("%s still present after the chain", p)
		}
	}
	_ = io.EOF

	// Our restore of the same chain gives the same tree, times and links.
	ours := filepath.Join(t.TempDir(), "ours")
	warns, err := RestoreFiles(ours, dumps[:], []string{"none", "none", "none"})
	if err != nil {
		t.Fatalf("our restore: %v", err)
	}
	for _, w := range warns {
		t.Errorf("our restore warns: %s", w)
	}
	oursTree := scanTree(t, ours)
	compareTrees(t, "imgtool restore", got, oursTree, true)
	for p, e := range got {
		if o := oursTree[p]; (e.typ.IsDir() || e.typ&fs.ModeSymlink != 0) && o.mtime != e.mtime {
			t.Errorf("imgtool restore: %s: mtime %d, stock restore %d", p, o.mtime, e.mtime)
		}
		if o := oursTree[p]; e.typ.IsRegular() && o.blocks > e.blocks+8 {
			t.Errorf("imgtool restore: %s: %d sectors allocated, stock restore %d", p, o.blocks, e.blocks)
		}
	}
	oursIno := map[string]uint64{}
	for p, e := range oursTree {
		if !e.typ.IsDir() {
			oursIno[p] = e.ino
		}
	}
	if ol := linkGroups(oursIno); strings.Join(ol, ";") != strings.Join(wl, ";") {
		t.Errorf("imgtool restore hard links: %q, want %q", ol, wl)
	}
	// And restoring only up to level 1 is not the final tree (the test can
	// tell the difference).
	partial := filepath.Join(t.TempDir(), "partial")
	if _, err := RestoreFiles(partial, dumps[:2], []string{"none", "none"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := scanTree(t, partial)["dir/sub/second"]; ok {
		t.Error("level 0+1 restore already has a level-2 file")
	}
	// Out of order is refused.
	if _, err := RestoreFiles(filepath.Join(t.TempDir(), "bad"), []string{dumps[0], dumps[2]}, []string{"none", "none"}); err == nil {
		t.Error("applying level 2 right after level 0 was accepted")
	}
}
