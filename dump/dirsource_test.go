package dump

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// makeDiskTree builds a real directory tree with the same kinds of inodes
// as buildSource.
func makeDiskTree(t *testing.T, root string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(rel string, data []byte, perm os.FileMode) {
		must(os.WriteFile(filepath.Join(root, rel), data, 0o600))
		must(os.Chmod(filepath.Join(root, rel), perm))
	}
	must(os.MkdirAll(filepath.Join(root, "dir/sub/deep"), 0o755))
	write("empty", nil, 0o644)
	write("small.txt", []byte("hello from disk\n"), 0o644)
	write("big.bin", randBytes(7, 600*1024+7), 0o644)
	write(".hidden", []byte("dot"), 0o600)
	write("dir/sub/deep/file", []byte("deep"), 0o644)
	write("ünïcødé 日本語", []byte("unicode"), 0o644)
	// Sparse: 4 MiB with data at 1 MiB and at the end.
	f, err := os.Create(filepath.Join(root, "sparse"))
	must(err)
	_, err = f.WriteAt(randBytes(8, 5000), 1<<20)
	must(err)
	_, err = f.WriteAt([]byte("tail"), 4<<20-4)
	must(err)
	must(f.Close())
	must(os.Symlink("small.txt", filepath.Join(root, "short-link")))
	must(os.Symlink(strings.Repeat("x/", 100)+"end", filepath.Join(root, "dir/long-link")))
	must(os.Link(filepath.Join(root, "small.txt"), filepath.Join(root, "dir/hard")))
	must(unix.Mkfifo(filepath.Join(root, "fifo"), 0o640))
	must(unix.Mknod(filepath.Join(root, "tty-dev"), unix.S_IFCHR|0o620, int(unix.Mkdev(5, 0))))
	write("setuid", []byte("x"), 0o4755)
	must(os.Mkdir(filepath.Join(root, "sticky"), 0o755))
	must(os.Chmod(filepath.Join(root, "sticky"), 0o1777))
	write("noperm", []byte("none"), 0)
	write("owned", []byte("owned"), 0o644)
	must(os.Lchown(filepath.Join(root, "owned"), 1000, 1000))
	must(unix.Lsetxattr(filepath.Join(root, "small.txt"), "user.note", []byte("on disk"), 0))
	old := time.Date(2001, 9, 9, 1, 46, 40, 0, time.UTC)
	write("old", []byte("old"), 0o644)
	must(os.Chtimes(filepath.Join(root, "old"), old, old))
}

// compareDisk compares an extracted tree with the source tree on disk.
func compareDisk(t *testing.T, src, dst string) {
	t.Helper()
	srcIno := map[uint64]uint64{}
	seen := map[string]bool{}
	err := filepath.Walk(src, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		seen[rel] = true
		var a, b syscall.Stat_t
		if err := syscall.Lstat(p, &a); err != nil {
			return err
		}
		q := filepath.Join(dst, rel)
		if err := syscall.Lstat(q, &b); err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		if a.Mode != b.Mode && rel != "." {
			t.Errorf("%s: mode %#o, want %#o", rel, b.Mode, a.Mode)
		}
		if a.Uid != b.Uid || a.Gid != b.Gid {
			t.Errorf("%s: owner %d:%d, want %d:%d", rel, b.Uid, b.Gid, a.Uid, a.Gid)
		}
		isLink := a.Mode&ModeFmt == ModeLink
		if !isLink && rel != "." && a.Mtim.Sec != b.Mtim.Sec {
			t.Errorf("%s: mtime %d, want %d", rel, b.Mtim.Sec, a.Mtim.Sec)
		}
		if a.Mode&ModeFmt != ModeDir {
			if prev, ok := srcIno[a.Ino]; ok && prev != b.Ino {
				t.Errorf("%s: hard link group broken", rel)
			}
			srcIno[a.Ino] = b.Ino
			if a.Size != b.Size {
				t.Errorf("%s: size %d, want %d", rel, b.Size, a.Size)
			}
		}
		switch a.Mode & ModeFmt {
		case ModeReg:
			x, _ := os.ReadFile(p)
			y, _ := os.ReadFile(q)
			if !bytes.Equal(x, y) {
				t.Errorf("%s: content differs", rel)
			}
			if b.Blocks > a.Blocks+16 {
				t.Errorf("%s: %d blocks allocated, source has %d: holes lost", rel, b.Blocks, a.Blocks)
			}
		case ModeLink:
			x, _ := os.Readlink(p)
			y, _ := os.Readlink(q)
			if x != y {
				t.Errorf("%s: target %q, want %q", rel, y, x)
			}
		case ModeChr, ModeBlk:
			if a.Rdev != b.Rdev {
				t.Errorf("%s: rdev %#x, want %#x", rel, b.Rdev, a.Rdev)
			}
		}
		if !isLink {
			buf := make([]byte, 256)
			n, _ := unix.Lgetxattr(p, "user.note", buf)
			m, _ := unix.Lgetxattr(q, "user.note", buf[128:])
			if n != m || (n > 0 && !bytes.Equal(buf[:n], buf[128:128+m])) {
				t.Errorf("%s: user.note differs", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	filepath.Walk(dst, func(p string, _ os.FileInfo, err error) error {
		rel, _ := filepath.Rel(dst, p)
		if err == nil && !seen[rel] && rel != "restoresymtable" {
			t.Errorf("extra %s", rel)
		}
		return nil
	})
}

func TestDirSourceLevels(t *testing.T) {
	needRestore(t)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	makeDiskTree(t, src)
	m := NewInodeMap(1 << 16)
	now := func() time.Time { return time.Now().Truncate(time.Second) }

	time.Sleep(1100 * time.Millisecond) // level 0 strictly after the tree's ctimes
	ds, err := NewDirSource(src, m)
	if err != nil {
		t.Fatal(err)
	}
	d0 := now()
	f0, st0 := writeDump(t, ds, WriteOptions{Level: 0, Date: d0})
	if len(st0.Warnings) != 0 {
		t.Errorf("warnings: %v", st0.Warnings)
	}
	x := t.TempDir()
	runRestore(t, x, "-x", "-a", "-o", "-y", "-f", f0)
	compareDisk(t, src, x)

	// Level 1 after real changes.
	time.Sleep(1100 * time.Millisecond)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(src, "dir/new"), []byte("new file"), 0o644))
	must(os.Remove(filepath.Join(src, "empty")))
	must(os.Rename(filepath.Join(src, "dir/sub/deep/file"), filepath.Join(src, "moved")))
	must(os.Chmod(filepath.Join(src, "big.bin"), 0o600))
	must(os.Link(filepath.Join(src, "owned"), filepath.Join(src, "dir/sub/owned-too")))
	ds1, err := NewDirSource(src, m)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	f1, st1 := writeDump(t, ds1, WriteOptions{Level: 1, Date: now(), BaseDate: d0})
	if st1.Dumped >= st0.Dumped {
		t.Errorf("level 1 dumped %d inodes, level 0 %d", st1.Dumped, st0.Dumped)
	}
	r := t.TempDir()
	runRestore(t, r, "-r", "-y", "-f", f0)
	runRestore(t, r, "-r", "-y", "-f", f1)
	compareDisk(t, src, r)
}
