package mount

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/imgtool/imgtool/vfs"
	"golang.org/x/sys/unix"
)

// memFS is a test double of a reader: a few inodes in memory. The FUSE
// layer is tested with it against the real kernel; the fixture tests in
// cmd/imgtool mount the real readers.
type memFS struct {
	inodes map[vfs.Ino]*memInode
}

type memInode struct {
	st     vfs.Stat
	ents   []vfs.DirEntry
	data   []byte
	ranges []vfs.Range
	link   string
	xattrs []vfs.Xattr
	bad    bool // reads fail as on a damaged block map
}

func (m *memFS) Info() vfs.Info { return vfs.Info{Type: "mem", BlockSize: 4096} }
func (m *memFS) Root() vfs.Ino  { return 2 }
func (m *memFS) Lookup(p string) (vfs.Ino, error) {
	ino := m.Root()
	for _, c := range strings.Split(strings.Trim(p, "/"), "/") {
		if c == "" {
			continue
		}
		found := false
		for _, e := range m.inodes[ino].ents {
			if e.Name == c {
				ino, found = e.Ino, true
				break
			}
		}
		if !found {
			return 0, fs.ErrNotExist
		}
	}
	return ino, nil
}
func (m *memFS) LookupFollow(p string) (vfs.Ino, error) { return m.Lookup(p) }
func (m *memFS) get(ino vfs.Ino) (*memInode, error) {
	in := m.inodes[ino]
	if in == nil {
		return nil, fmt.Errorf("inode %d: %w", ino, fs.ErrNotExist)
	}
	return in, nil
}
func (m *memFS) Stat(ino vfs.Ino) (*vfs.Stat, error) {
	in, err := m.get(ino)
	if err != nil {
		return nil, err
	}
	st := in.st
	st.Ino = ino
	return &st, nil
}
func (m *memFS) ReadDir(ino vfs.Ino) ([]vfs.DirEntry, error) {
	in, err := m.get(ino)
	if err != nil {
		return nil, err
	}
	return in.ents, nil
}
func (m *memFS) Readlink(ino vfs.Ino) (string, error) {
	in, err := m.get(ino)
	if err != nil {
		return "", err
	}
	return in.link, nil
}
func (m *memFS) Xattrs(ino vfs.Ino) ([]vfs.Xattr, error) {
	in, err := m.get(ino)
	if err != nil {
		return nil, err
	}
	return in.xattrs, nil
}
func (m *memFS) Open(ino vfs.Ino) (vfs.File, error) {
	in, err := m.get(ino)
	if err != nil {
		return nil, err
	}
	return &memFile{in: in}, nil
}
func (m *memFS) WalkInodes(ctx context.Context, fn func(vfs.Ino, *vfs.Stat, error) error) error {
	return errors.ErrUnsupported
}
func (m *memFS) Notes() []vfs.Note { return nil }

type memFile struct{ in *memInode }

func (f *memFile) Size() int64 { return int64(len(f.in.data)) }
func (f *memFile) DataRanges() []vfs.Range {
	if f.in.ranges != nil {
		return f.in.ranges
	}
	return []vfs.Range{{Off: 0, Len: int64(len(f.in.data))}}
}
func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if f.in.bad && off+int64(len(p)) > 8192 {
		return 0, fmt.Errorf("extent tree block at byte offset 0x123000: bad magic")
	}
	return bytes.NewReader(f.in.data).ReadAt(p, off)
}

var t0 = time.Date(2009, 3, 14, 15, 9, 26, 123456789, time.UTC)

func newMemFS() *memFS {
	sparse := make([]byte, 3<<20)
	copy(sparse[1<<20:], "middle")
	copy(sparse[3<<20-4:], "tail")
	bad := bytes.Repeat([]byte("x"), 16384)
	m := &memFS{inodes: map[vfs.Ino]*memInode{
		2: {st: vfs.Stat{Mode: vfs.ModeDir | 0o755, Nlink: 3, Mtime: t0}, ents: []vfs.DirEntry{
			{Name: "hello.txt", Ino: 12, Type: vfs.DTReg},
			{Name: "link", Ino: 13, Type: vfs.DTLink},
			{Name: "sub", Ino: 14, Type: vfs.DTDir},
			{Name: "sparse", Ino: 15, Type: vfs.DTUnknown},
			{Name: "null", Ino: 16, Type: vfs.DTChar},
			{Name: "damaged", Ino: 17, Type: vfs.DTReg},
		}},
		12: {st: vfs.Stat{Mode: vfs.ModeReg | 0o4751, Nlink: 2, UID: 1000, GID: 100, Size: 6, Blocks: 8, Mtime: t0, Atime: t0.Add(time.Hour), Ctime: t0.Add(2 * time.Hour)},
			data: []byte("hello\n"), xattrs: []vfs.Xattr{{Name: "user.comment", Value: []byte("a value")}, {Name: "trusted.x", Value: []byte{0, 1, 2}}}},
		13: {st: vfs.Stat{Mode: vfs.ModeLink | 0o777, Nlink: 1, Size: 9}, link: "hello.txt"},
		14: {st: vfs.Stat{Mode: vfs.ModeDir | 0o700, Nlink: 2}, ents: []vfs.DirEntry{{Name: "hardlink", Ino: 12, Type: vfs.DTReg}}},
		15: {st: vfs.Stat{Mode: vfs.ModeReg | 0o644, Nlink: 1, Size: int64(len(sparse)), Blocks: 16}, data: sparse,
			ranges: []vfs.Range{{Off: 1 << 20, Len: 4096}, {Off: 3<<20 - 4096, Len: 4096}}},
		16: {st: vfs.Stat{Mode: vfs.ModeChar | 0o666, Nlink: 1, RdevMajor: 1, RdevMinor: 3}},
		17: {st: vfs.Stat{Mode: vfs.ModeReg | 0o644, Nlink: 1, Size: int64(len(bad))}, data: bad, bad: true},
	}}
	return m
}

// mountT mounts with the real kernel FUSE and unmounts at the end.
func mountT(t *testing.T, mnt func(dir string) (*fuse.Server, error)) string {
	t.Helper()
	dir := t.TempDir()
	srv, err := mnt(dir)
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return dir
}

func TestMountFS(t *testing.T) {
	var logs syncBuf
	dir := mountT(t, func(d string) (*fuse.Server, error) {
		return MountFS(d, newMemFS(), "test:mem", Options{FsName: "mem.img", Logger: newLogger(&logs)})
	})

	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(dir, "hello.txt"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Ino != 12 || st.Mode != syscall.S_IFREG|0o4751 || st.Nlink != 2 || st.Uid != 1000 || st.Gid != 100 || st.Size != 6 || st.Blocks != 8 {
		t.Errorf("stat hello.txt = ino %d mode %o nlink %d uid %d gid %d size %d blocks %d", st.Ino, st.Mode, st.Nlink, st.Uid, st.Gid, st.Size, st.Blocks)
	}
	if got := time.Unix(st.Mtim.Unix()); !got.Equal(t0) {
		t.Errorf("mtime %v, want %v", got, t0)
	}
	if got := time.Unix(st.Atim.Unix()); !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("atime %v", got)
	}
	var root syscall.Stat_t
	if err := syscall.Stat(dir, &root); err != nil || root.Ino != 2 {
		t.Errorf("root ino %d, %v; want 2", root.Ino, err)
	}
	// A hard link is one inode under two names.
	var hl syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(dir, "sub/hardlink"), &hl); err != nil || hl.Ino != 12 {
		t.Errorf("hardlink ino %d, %v", hl.Ino, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "sub/hardlink")); err != nil || string(b) != "hello\n" {
		t.Errorf("read hardlink: %q %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(dir, "link")); err != nil || l != "hello.txt" {
		t.Errorf("readlink %q %v", l, err)
	}
	var dev syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(dir, "null"), &dev); err != nil || dev.Mode != syscall.S_IFCHR|0o666 || unix.Major(dev.Rdev) != 1 || unix.Minor(dev.Rdev) != 3 {
		t.Errorf("device: mode %o rdev %d:%d %v", dev.Mode, unix.Major(dev.Rdev), unix.Minor(dev.Rdev), err)
	}
	// xattrs
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(filepath.Join(dir, "hello.txt"), "user.comment", buf)
	if err != nil || string(buf[:n]) != "a value" {
		t.Errorf("getxattr: %q %v", buf[:max(n, 0)], err)
	}
	n, err = unix.Llistxattr(filepath.Join(dir, "hello.txt"), buf)
	if err != nil || string(buf[:n]) != "user.comment\x00trusted.x\x00" {
		t.Errorf("listxattr: %q %v", buf[:max(n, 0)], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(dir, "hello.txt"), "user.none", buf); err != unix.ENODATA {
		t.Errorf("missing xattr: %v, want ENODATA", err)
	}
	// Directory listing, with the type of a DTUnknown entry found by stat.
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name()+":"+e.Type().String())
	}
	if got := strings.Join(names, " "); got != "damaged:---------- hello.txt:---------- link:L--------- null:Dc--------- sparse:---------- sub:d---------" {
		t.Errorf("readdir: %s", got)
	}
	// Sparse file: content and SEEK_DATA/SEEK_HOLE.
	sp := filepath.Join(dir, "sparse")
	b, err := os.ReadFile(sp)
	if err != nil || len(b) != 3<<20 || string(b[1<<20:1<<20+6]) != "middle" || string(b[len(b)-4:]) != "tail" {
		t.Errorf("sparse read: len %d %v", len(b), err)
	}
	f, err := os.Open(sp)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, c := range []struct {
		off    int64
		whence int
		want   int64
	}{{0, unix.SEEK_DATA, 1 << 20}, {0, unix.SEEK_HOLE, 0}, {1 << 20, unix.SEEK_HOLE, 1<<20 + 4096}, {1<<20 + 4096, unix.SEEK_DATA, 3<<20 - 4096}, {3<<20 - 4096, unix.SEEK_HOLE, 3 << 20}} {
		got, err := unix.Seek(int(f.Fd()), c.off, c.whence)
		if err != nil || got != c.want {
			t.Errorf("lseek(%d, %d) = %d, %v; want %d", c.off, c.whence, got, err, c.want)
		}
	}
	// Read-only: every write is refused with EROFS.
	for name, fn := range map[string]func() error{
		"create":   func() error { _, err := os.Create(filepath.Join(dir, "new")); return err },
		"write":    func() error { _, err := os.OpenFile(filepath.Join(dir, "hello.txt"), os.O_WRONLY, 0); return err },
		"mkdir":    func() error { return os.Mkdir(filepath.Join(dir, "d"), 0o755) },
		"remove":   func() error { return os.Remove(filepath.Join(dir, "hello.txt")) },
		"chmod":    func() error { return os.Chmod(filepath.Join(dir, "hello.txt"), 0o600) },
		"setxattr": func() error { return unix.Lsetxattr(filepath.Join(dir, "hello.txt"), "user.x", []byte("1"), 0) },
	} {
		if err := fn(); !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s: %v, want EROFS", name, err)
		}
	}
	// A damaged file: EIO where the damage is, logged with the address.
	df, err := os.Open(filepath.Join(dir, "damaged"))
	if err != nil {
		t.Fatal(err)
	}
	defer df.Close()
	if _, err := df.ReadAt(make([]byte, 4096), 0); err != nil {
		t.Errorf("damaged file's good part: %v", err)
	}
	if _, err := io.ReadAll(df); !errors.Is(err, syscall.EIO) {
		t.Errorf("damaged file: %v, want EIO", err)
	}
	if l := logs.String(); !strings.Contains(l, "test:mem") || !strings.Contains(l, "inode=17") || !strings.Contains(l, "0x123000") {
		t.Errorf("log does not name the volume, inode and offset: %s", l)
	}
	if _, err := os.Stat(filepath.Join(dir, "nonexistent")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing name: %v", err)
	}
}

func TestSeekData(t *testing.T) {
	rs := []vfs.Range{{Off: 0, Len: 10}, {Off: 10, Len: 10}, {Off: 50, Len: 10}}
	for _, c := range []struct {
		off    int64
		whence uint32
		want   uint64
		errno  syscall.Errno
	}{
		{0, unix.SEEK_HOLE, 20, 0}, {5, unix.SEEK_DATA, 5, 0}, {20, unix.SEEK_DATA, 50, 0},
		{60, unix.SEEK_DATA, 0, syscall.ENXIO}, {60, unix.SEEK_HOLE, 60, 0}, {55, unix.SEEK_HOLE, 60, 0},
		{100, unix.SEEK_HOLE, 0, syscall.ENXIO}, {-1, unix.SEEK_DATA, 0, syscall.ENXIO},
	} {
		got, errno := seekData(rs, 100, c.off, c.whence)
		if got != c.want || errno != c.errno {
			t.Errorf("seekData(%d, %d) = %d, %v; want %d, %v", c.off, c.whence, got, errno, c.want, c.errno)
		}
	}
}

type rawVol struct{ *bytes.Reader }

func (r rawVol) Size() int64 { return r.Reader.Size() }

func TestMountTree(t *testing.T) {
	raw := bytes.Repeat([]byte{0xab}, 64<<10)
	var mu sync.Mutex
	opened := map[string]int{}
	open := func(name string) func() (vfs.FS, error) {
		return func() (vfs.FS, error) {
			mu.Lock()
			defer mu.Unlock()
			opened[name]++
			return newMemFS(), nil
		}
	}
	nOpened := func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		return opened[name]
	}
	vols := []*Volume{
		{Name: "p1", Address: "p1", Raw: rawVol{bytes.NewReader(raw)}, OpenFS: open("p1")},
		{Name: "p2", Address: "p2", Raw: rawVol{bytes.NewReader(raw[:4096])}},
		{Name: "vg", Address: "vg", Children: []*Volume{
			{Name: "lv", Address: "vg/lv", Raw: rawVol{bytes.NewReader(raw[:512])}, OpenFS: open("vg/lv")},
			{Name: "broken", Address: "vg/broken", Raw: rawVol{bytes.NewReader(raw[:512])}, OpenFS: func() (vfs.FS, error) { return nil, errors.New("bad superblock at byte offset 1024") }},
		}},
	}
	uid := uint32(4242)
	dir := mountT(t, func(d string) (*fuse.Server, error) {
		return MountTree(d, vols, Options{UID: &uid, Logger: newLogger(io.Discard)})
	})
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "p1 p1.raw p2.raw vg" {
		t.Errorf("root: %s", got)
	}
	// Listing the root may open p1 (readdirplus looks its entries up),
	// never a filesystem deeper down.
	if n := nOpened("vg/lv"); n != 0 {
		t.Errorf("listing the root opened vg/lv %d times; lookups must be lazy", n)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "p1.raw")); err != nil || !bytes.Equal(b, raw) {
		t.Errorf("p1.raw: %d bytes, %v", len(b), err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "vg/lv/sub/hardlink")); err != nil || string(b) != "hello\n" {
		t.Errorf("vg/lv/sub/hardlink: %q %v", b, err)
	}
	var a, b syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(dir, "p1/hello.txt"), &a); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Lstat(filepath.Join(dir, "vg/lv/hello.txt"), &b); err != nil {
		t.Fatal(err)
	}
	if a.Ino == b.Ino || a.Ino&(1<<fsShift-1) != 12 {
		t.Errorf("inode numbers of two filesystems: %#x %#x (must differ, low bits the fs's)", a.Ino, b.Ino)
	}
	if a.Uid != uid {
		t.Errorf("uid override: %d", a.Uid)
	}
	if _, err := os.ReadDir(filepath.Join(dir, "vg/broken")); !errors.Is(err, syscall.EIO) {
		t.Errorf("unreadable filesystem: %v, want EIO", err)
	}
	if nOpened("p1") != 1 || nOpened("vg/lv") != 1 {
		t.Errorf("filesystems opened %v times, want once each", opened)
	}
	if err := os.WriteFile(filepath.Join(dir, "p2.raw"), []byte("x"), 0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("writing a raw volume: %v, want EROFS", err)
	}
}

// syncBuf is a log sink safe for FUSE's serving goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
