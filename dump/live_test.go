package dump

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/journal"
)

// TestIncrementalShortcutLiveSnapshot is the shortcut end to end, with the
// kernel as the oracle: an ext4 written through a loop mount, a level 0,
// then changes made by the kernel (a file appended to and one rewritten in
// unchanged directories, a file created, one removed, one moved between
// directories, a hard link added elsewhere, a directory made, one removed
// with its files, one moved, a chmod) and a copy of the image taken while
// still mounted, as a snapshot of a running guest is (needs_recovery, the
// journal replayed in memory). The level 1 of that snapshot takes the
// shortcut, equals the full walk's stream, and stock restore -r of levels
// 0 and 1 gives the tree the kernel mounts from the snapshot.
func TestIncrementalShortcutLiveSnapshot(t *testing.T) {
	needRestore(t)
	for _, tool := range []string{"mkfs.ext4", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed: %v", tool, err)
		}
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "mnt")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	must(os.Mkdir(mnt, 0o755))
	must(os.WriteFile(img, nil, 0o644))
	must(os.Truncate(img, 64<<20))
	run("mkfs.ext4", "-q", "-N", "4096", img)
	mounted := false
	mount := func(image string) {
		run("mount", "-o", "loop", image, mnt)
		mounted = true
	}
	umount := func() {
		run("umount", mnt)
		mounted = false
	}
	t.Cleanup(func() {
		if mounted {
			exec.Command("umount", mnt).Run()
		}
	})
	mount(img)
	for a := range 8 {
		for b := range 8 {
			d := filepath.Join(mnt, fmt.Sprintf("d%d/e%d", a, b))
			must(os.MkdirAll(d, 0o755))
			for c := range 12 {
				must(os.WriteFile(filepath.Join(d, fmt.Sprintf("f%02d", c)),
					bytes.Repeat(fmt.Appendf(nil, "file %d %d %d\n", a, b, c), c+1), 0o644))
			}
		}
	}
	umount()

	// Dates in whole seconds, as on tape: every inode so far changed
	// before t0, every change below at or after it.
	t0 := time.Now().Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(t0))
	var l0 bytes.Buffer
	if _, err := Write(&l0, liveSource(t, img), WriteOptions{Level: 0, Date: t0}); err != nil {
		t.Fatal(err)
	}

	mount(img)
	p := func(s string) string { return filepath.Join(mnt, s) }
	f, err := os.OpenFile(p("d3/e4/f05"), os.O_APPEND|os.O_WRONLY, 0)
	must(err)
	_, err = f.WriteString("appended\n")
	must(err)
	must(f.Close())
	must(os.WriteFile(p("d2/e3/f04"), []byte("rewritten"), 0o644))
	must(os.WriteFile(p("d7/e1/newfile"), []byte("new\n"), 0o644))
	must(os.Remove(p("d2/e2/f10")))
	must(os.Rename(p("d5/e5/f01"), p("d0/e7/moved")))
	must(os.Link(p("d1/e1/f01"), p("d6/e6/hardlink")))
	must(os.Mkdir(p("d4/newdir"), 0o750))
	must(os.WriteFile(p("d4/newdir/x"), []byte("x\n"), 0o600))
	must(os.RemoveAll(p("d7/e7")))
	must(os.Rename(p("d6/e5"), p("d0/e0/e5moved")))
	must(os.Chmod(p("d1/e2/f03"), 0o600))
	run("sync")
	snap := filepath.Join(dir, "snap.img")
	run("cp", "--sparse=always", img, snap) // while mounted
	umount()

	src := liveSource(t, snap)
	if !src.FS().(interface{ Consistent() bool }).Consistent() {
		t.Fatalf("the snapshot is not taken as consistent: %v", src.FS().Notes())
	}
	opts := WriteOptions{Level: 1, Date: t0.Add(time.Hour), BaseDate: t0, HonorNodump: true}
	var l1, full bytes.Buffer
	st, err := Write(&l1, src, opts)
	must(err)
	opts.fullWalk = true
	stFull, err := Write(&full, src, opts)
	must(err)
	if !bytes.Equal(l1.Bytes(), full.Bytes()) {
		t.Fatalf("level 1: shortcut and full walk streams differ (%d and %d bytes)", l1.Len(), full.Len())
	}
	if st.DirsRead >= stFull.DirsRead/2 {
		t.Errorf("level 1 read %d directories, the full walk %d: the shortcut was not taken", st.DirsRead, stFull.DirsRead)
	}
	t.Logf("level 1: %d of %d inodes dumped, %d directories read (full walk %d); notes %v",
		st.Dumped, st.Inodes, st.DirsRead, stFull.DirsRead, src.FS().Notes())

	out := filepath.Join(dir, "out")
	must(os.Mkdir(out, 0o755))
	for i, b := range [][]byte{l0.Bytes(), l1.Bytes()} {
		f := filepath.Join(dir, fmt.Sprintf("l%d.dump", i))
		must(os.WriteFile(f, b, 0o644))
		runRestore(t, out, "-r", "-y", "-f", f)
	}
	must(os.Remove(filepath.Join(out, "restoresymtable")))
	mount(snap) // the kernel replays the journal
	want, got := liveTree(t, mnt), liveTree(t, out)
	umount()
	if len(want) < 700 {
		t.Fatalf("the mounted tree has %d entries", len(want))
	}
	for path, w := range want {
		if g, ok := got[path]; !ok {
			t.Errorf("%s: missing after restore", path)
		} else if g != w {
			t.Errorf("%s: restored %s, mounted %s", path, g, w)
		}
	}
	for path := range got {
		if _, ok := want[path]; !ok {
			t.Errorf("%s: restored but not in the snapshot", path)
		}
	}
}

// liveSource opens an ext image as the backup does: its journal replayed
// into memory when it needs recovery.
func liveSource(t *testing.T, path string) *FSSource {
	t.Helper()
	f, size := fixturetest.Open(t, path)
	view, err := journal.Open(f, size, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return newSource(t, view.VFS())
}

// liveTree describes every entry under root but lost+found: type, mode,
// link count, owner, and size and content for files (directory sizes
// differ between filesystems).
func liveTree(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "lost+found" {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		sys := info.Sys().(*syscall.Stat_t)
		s := fmt.Sprintf("%v nlink=%d uid=%d gid=%d", info.Mode(), sys.Nlink, sys.Uid, sys.Gid)
		if info.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s += fmt.Sprintf(" size=%d %q", len(b), strings.TrimSpace(string(b[:min(len(b), 24)])))
			s += " sha=" + sha(b)
		}
		m[rel] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
