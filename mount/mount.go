// Package mount serves filesystems read through package vfs to the kernel
// over FUSE (github.com/hanwen/go-fuse/v2), read-only: one filesystem
// (MountFS), or a whole inspected image (MountTree) where every volume is
// a directory holding its filesystem and its raw bytes are a NAME.raw file
// beside it.
//
// Lookups are lazy: a directory is read when the kernel first looks into
// it, and a volume's filesystem is opened when its directory is first
// entered. The image never changes while it is mounted, so the kernel
// caches entries, attributes and file pages for as long as it likes
// (Options.CacheTimeout).
//
// Inode numbers are the filesystem's own (vfs.Ino) when one filesystem
// is mounted. In the whole-tree view every filesystem gets its own range
// (index<<48 | ino), so tar and find never see two different files with
// one st_ino; the volume directories and .raw files have numbers from
// 1<<62 up, fixed by their position in the tree.
//
// A file that cannot be read gives EIO to the reader, and the error is
// logged with the volume's address, the inode and the file offset (the
// reader's own error names the on-disk byte offset of the damage).
package mount

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/imgtool/imgtool/vfs"
	"golang.org/x/sys/unix"
)

// Options tune a mount.
type Options struct {
	// FsName is the "device" the mount table shows (the image path).
	FsName string
	// AllowOther lets other users see the mount (-o allow_other; needs
	// user_allow_other in /etc/fuse.conf for a normal user). The guest's
	// permission bits are then enforced by the kernel (default_permissions).
	AllowOther bool
	// UID and GID, when set, replace every file's owner (-o uid=,gid=).
	UID, GID *uint32
	// Options are further mount options passed to the kernel/fusermount3
	// as they are (-o fsname=... is set from FsName).
	Options []string
	// CacheTimeout is how long the kernel keeps entries and attributes;
	// 0 means one hour (the image is immutable while mounted).
	CacheTimeout time.Duration
	// Logger receives read errors; nil uses slog.Default().
	Logger *slog.Logger
	// Debug logs every FUSE request.
	Debug bool
}

func (o *Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

func (o *Options) timeout() time.Duration {
	if o.CacheTimeout > 0 {
		return o.CacheTimeout
	}
	return time.Hour
}

// Volume is one node of the whole-tree view: a directory named Name
// holding the volume's filesystem (OpenFS) or its child volumes, and a
// file Name.raw with its bytes (Raw).
type Volume struct {
	Name    string
	Address string // for messages, e.g. "VolGroup00/domu1/p1"
	// Raw is the volume's bytes, nil for a VG (it has none of its own).
	Raw vfs.Volume
	// OpenFS opens the volume's filesystem; nil when there is none that
	// imgtool reads. It is called at most once, when the directory is
	// first entered.
	OpenFS   func() (vfs.FS, error)
	Children []*Volume
}

// hasDir reports whether the volume shows as a directory.
func (v *Volume) hasDir() bool { return v.OpenFS != nil || len(v.Children) > 0 }

// partsSuffix names the directory of child volumes of a volume that also
// holds a filesystem (an ISO 9660 image with a partition table): the
// filesystem keeps NAME, the volumes go to NAME.parts.
const partsSuffix = ".parts"

// rawSuffix names the file with a volume's raw bytes.
const rawSuffix = ".raw"

const (
	synthBase = uint64(1) << 62
	fsShift   = 48
)

// mountOpts builds the go-fuse options.
func mountOpts(o *Options) *gofs.Options {
	to := o.timeout()
	neg := to
	mo := fuse.MountOptions{
		FsName:                   o.FsName,
		Name:                     "imgtool",
		AllowOther:               o.AllowOther,
		Options:                  append([]string{"ro"}, o.Options...),
		MaxReadAhead:             1 << 20,
		DirectMount:              true,
		Debug:                    o.Debug,
		EnableSymlinkCaching:     true,
		ExplicitDataCacheControl: false,
	}
	if o.AllowOther {
		mo.Options = append(mo.Options, "default_permissions")
	}
	return &gofs.Options{
		MountOptions:    mo,
		EntryTimeout:    &to,
		AttrTimeout:     &to,
		NegativeTimeout: &neg,
		NullPermissions: true,
		UID:             uint32(os.Getuid()),
		GID:             uint32(os.Getgid()),
	}
}

// MountFS mounts one filesystem at dir. addr names it in messages. The
// returned server is running; Wait for it, Unmount it.
func MountFS(dir string, f vfs.FS, addr string, o Options) (*fuse.Server, error) {
	m := &fsMount{fs: f, addr: addr, o: &o, log: o.logger()}
	root := &fsNode{m: m, ino: f.Root()}
	opts := mountOpts(&o)
	opts.RootStableAttr = &gofs.StableAttr{Ino: uint64(f.Root())}
	srv, err := gofs.Mount(dir, root, opts)
	if err != nil {
		return nil, fmt.Errorf("mount %s on %s: %w", addr, dir, err)
	}
	return srv, nil
}

// MountTree mounts the whole-tree view of vols at dir: each is a
// directory (and a .raw file) in the mount's root.
func MountTree(dir string, vols []*Volume, o Options) (*fuse.Server, error) {
	t := &treeMount{o: &o, log: o.logger(), ids: map[*Volume]uint64{}, fss: map[*Volume]*fsOnce{}}
	top := &Volume{Name: "", Children: vols}
	t.number(top)
	root := &volDir{t: t, v: top}
	opts := mountOpts(&o)
	opts.RootStableAttr = &gofs.StableAttr{Ino: t.ids[top]}
	srv, err := gofs.Mount(dir, root, opts)
	if err != nil {
		return nil, fmt.Errorf("mount on %s: %w", dir, err)
	}
	return srv, nil
}

// Unmount unmounts a FUSE mount: fusermount3 -u as a normal user, or
// umount(2) as root.
func Unmount(dir string) error {
	if os.Geteuid() == 0 {
		if err := unix.Unmount(dir, 0); err == nil {
			return nil
		}
	}
	for _, prog := range []string{"fusermount3", "fusermount"} {
		p, err := exec.LookPath(prog)
		if err != nil {
			continue
		}
		out, err := exec.Command(p, "-u", dir).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s -u %s: %s", prog, dir, strings.TrimSpace(string(out)))
		}
		return nil
	}
	return fmt.Errorf("unmount %s: not root and no fusermount3 in PATH", dir)
}

// fsMount is one mounted filesystem.
type fsMount struct {
	fs      vfs.FS
	addr    string
	inoBase uint64
	o       *Options
	log     *slog.Logger
	// bigOnce warns once about inode numbers that do not fit the
	// whole-tree encoding.
	bigOnce sync.Once
}

func (m *fsMount) mapIno(ino vfs.Ino) uint64 {
	if m.inoBase != 0 && uint64(ino) >= 1<<fsShift {
		m.bigOnce.Do(func() {
			m.log.Warn("inode numbers above 2^48 share st_ino with another volume in the whole-tree view; mount the volume alone", "volume", m.addr)
		})
	}
	return m.inoBase | uint64(ino)
}

// errno turns a reader's error into what the caller of the syscall sees,
// logging anything that is not a plain "no such file".
func (m *fsMount) errno(op string, ino vfs.Ino, err error, args ...any) syscall.Errno {
	if errors.Is(err, fs.ErrNotExist) {
		return syscall.ENOENT
	}
	m.log.Error(op+" failed", append([]any{"volume", m.addr, "inode", uint64(ino), "err", err}, args...)...)
	return syscall.EIO
}

func unixTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0)
	}
	return t
}

// fillAttr converts a vfs.Stat into a FUSE attribute.
func (m *fsMount) fillAttr(st *vfs.Stat, a *fuse.Attr) {
	a.Ino = m.mapIno(st.Ino)
	a.Mode = st.Mode
	a.Nlink = max(st.Nlink, 1)
	a.Owner = fuse.Owner{Uid: st.UID, Gid: st.GID}
	if m.o.UID != nil {
		a.Owner.Uid = *m.o.UID
	}
	if m.o.GID != nil {
		a.Owner.Gid = *m.o.GID
	}
	a.Size = uint64(max(st.Size, 0))
	a.Blocks = uint64(max(st.Blocks, 0))
	a.Blksize = 4096
	if st.IsDevice() {
		a.Rdev = uint32(unix.Mkdev(st.RdevMajor, st.RdevMinor))
	}
	at, mt, ct := unixTime(st.Atime), unixTime(st.Mtime), unixTime(st.Ctime)
	a.SetTimes(&at, &mt, &ct)
}

// fsNode is an inode of a mounted filesystem.
type fsNode struct {
	gofs.Inode
	m   *fsMount
	ino vfs.Ino

	dirOnce sync.Once
	dir     map[string]vfs.DirEntry
	list    []vfs.DirEntry
	dirErr  error
}

var (
	_ gofs.NodeLookuper    = (*fsNode)(nil)
	_ gofs.NodeReaddirer   = (*fsNode)(nil)
	_ gofs.NodeGetattrer   = (*fsNode)(nil)
	_ gofs.NodeReadlinker  = (*fsNode)(nil)
	_ gofs.NodeOpener      = (*fsNode)(nil)
	_ gofs.NodeGetxattrer  = (*fsNode)(nil)
	_ gofs.NodeListxattrer = (*fsNode)(nil)
	_ gofs.NodeStatfser    = (*fsNode)(nil)
)

// entries reads the directory once; a damaged directory keeps what
// could be read (the error is logged once).
func (n *fsNode) entries() (map[string]vfs.DirEntry, []vfs.DirEntry, error) {
	n.dirOnce.Do(func() {
		list, err := n.m.fs.ReadDir(n.ino)
		n.list = list
		n.dir = make(map[string]vfs.DirEntry, len(list))
		for _, e := range list {
			if _, dup := n.dir[e.Name]; !dup {
				n.dir[e.Name] = e
			}
		}
		if err != nil {
			n.m.log.Error("reading directory failed", "volume", n.m.addr, "inode", uint64(n.ino), "entries_read", len(list), "err", err)
			if len(list) == 0 {
				n.dirErr = err
			}
		}
	})
	return n.dir, n.list, n.dirErr
}

func (n *fsNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	dir, _, err := n.entries()
	if err != nil {
		return nil, syscall.EIO
	}
	e, ok := dir[name]
	if !ok {
		return nil, syscall.ENOENT
	}
	st, err := n.m.fs.Stat(e.Ino)
	if err != nil {
		return nil, n.m.errno("stat", e.Ino, err, "name", name)
	}
	return n.m.child(ctx, &n.Inode, st, out), 0
}

// child makes (or finds, for a hard link) the inode of st under parent.
func (m *fsMount) child(ctx context.Context, parent *gofs.Inode, st *vfs.Stat, out *fuse.EntryOut) *gofs.Inode {
	m.fillAttr(st, &out.Attr)
	to := m.o.timeout()
	out.SetEntryTimeout(to)
	out.SetAttrTimeout(to)
	return parent.NewInode(ctx, &fsNode{m: m, ino: st.Ino}, gofs.StableAttr{Mode: st.Mode & vfs.ModeType, Ino: m.mapIno(st.Ino)})
}

func (n *fsNode) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	_, list, err := n.entries()
	if err != nil {
		return nil, syscall.EIO
	}
	out := make([]fuse.DirEntry, 0, len(list))
	for _, e := range list {
		mode := uint32(e.Type) << 12
		if e.Type == vfs.DTUnknown {
			if st, err := n.m.fs.Stat(e.Ino); err == nil {
				mode = st.Mode & vfs.ModeType
			}
		}
		out = append(out, fuse.DirEntry{Name: e.Name, Ino: n.m.mapIno(e.Ino), Mode: mode})
	}
	return gofs.NewListDirStream(out), 0
}

func (n *fsNode) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	st, err := n.m.fs.Stat(n.ino)
	if err != nil {
		return n.m.errno("stat", n.ino, err)
	}
	n.m.fillAttr(st, &out.Attr)
	out.SetTimeout(n.m.o.timeout())
	return 0
}

func (n *fsNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	s, err := n.m.fs.Readlink(n.ino)
	if err != nil {
		return nil, n.m.errno("readlink", n.ino, err)
	}
	return []byte(s), 0
}

func (n *fsNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	f, err := n.m.fs.Open(n.ino)
	if err != nil {
		return nil, 0, n.m.errno("open", n.ino, err)
	}
	return &fileHandle{m: n.m, ino: n.ino, f: f}, fuse.FOPEN_KEEP_CACHE, 0
}

func (n *fsNode) xattrs() ([]vfs.Xattr, syscall.Errno) {
	xs, err := n.m.fs.Xattrs(n.ino)
	if err != nil {
		return nil, n.m.errno("xattrs", n.ino, err)
	}
	return xs, 0
}

func (n *fsNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	xs, errno := n.xattrs()
	if errno != 0 {
		return 0, errno
	}
	for _, x := range xs {
		if x.Name == attr {
			if len(dest) < len(x.Value) {
				return uint32(len(x.Value)), syscall.ERANGE
			}
			return uint32(copy(dest, x.Value)), 0
		}
	}
	return 0, syscall.ENODATA
}

func (n *fsNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	xs, errno := n.xattrs()
	if errno != 0 {
		return 0, errno
	}
	var b []byte
	for _, x := range xs {
		b = append(append(b, x.Name...), 0)
	}
	if len(dest) < len(b) {
		return uint32(len(b)), syscall.ERANGE
	}
	return uint32(copy(dest, b)), 0
}

func (n *fsNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	info := n.m.fs.Info()
	bs := uint32(max(info.BlockSize, 512))
	out.Bsize = bs
	out.Frsize = bs
	out.NameLen = 255
	return 0
}

// fileHandle is an open regular file.
type fileHandle struct {
	m   *fsMount
	ino vfs.Ino
	f   vfs.File
}

var (
	_ gofs.FileReader  = (*fileHandle)(nil)
	_ gofs.FileLseeker = (*fileHandle)(nil)
)

func (h *fileHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	size := h.f.Size()
	if off >= size {
		return fuse.ReadResultData(nil), 0
	}
	if rem := size - off; int64(len(dest)) > rem {
		dest = dest[:rem]
	}
	n, err := h.f.ReadAt(dest, off)
	if err != nil && !(errors.Is(err, io.EOF) && off+int64(n) >= size) {
		h.m.log.Error("read failed", "volume", h.m.addr, "inode", uint64(h.ino), "file_offset", off, "len", len(dest), "err", err)
		return nil, syscall.EIO
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// Lseek answers SEEK_DATA and SEEK_HOLE from the file's data ranges, so
// cp --sparse, tar -S and rsync -S keep its holes.
func (h *fileHandle) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return seekData(h.f.DataRanges(), h.f.Size(), int64(off), whence)
}

// seekData implements SEEK_DATA/SEEK_HOLE over sorted data ranges.
func seekData(rs []vfs.Range, size, off int64, whence uint32) (uint64, syscall.Errno) {
	if off < 0 || off >= size {
		return 0, syscall.ENXIO
	}
	switch whence {
	case unix.SEEK_DATA:
		for _, r := range rs {
			if r.Off+r.Len > off && r.Len > 0 {
				return uint64(max(r.Off, off)), 0
			}
		}
		return 0, syscall.ENXIO
	case unix.SEEK_HOLE:
		for _, r := range rs {
			if r.Len <= 0 || r.Off+r.Len <= off {
				continue
			}
			if r.Off > off {
				return uint64(off), 0
			}
			off = r.Off + r.Len // inside this range: the hole starts at its end, or later
		}
		return uint64(min(off, size)), 0
	}
	return 0, syscall.EINVAL
}

// UnmountLazy detaches a busy mount (fusermount3 -u -z, umount -l); the
// kernel finishes when its last user leaves.
func UnmountLazy(dir string) error {
	if os.Geteuid() == 0 {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err == nil {
			return nil
		}
	}
	out, err := exec.Command("fusermount3", "-u", "-z", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("fusermount3 -u -z %s: %s", dir, strings.TrimSpace(string(out)))
	}
	return nil
}
