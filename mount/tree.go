package mount

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// treeMount is the whole-tree view.
type treeMount struct {
	o   *Options
	log *slog.Logger
	// ids numbers every volume in tree order: its directory is
	// synthBase+2*id, its .raw file synthBase+2*id+1, its filesystem's
	// inodes (id+1)<<48 | ino.
	ids   map[*Volume]uint64
	mu    sync.Mutex
	fss   map[*Volume]*fsOnce
	start time.Time
}

type fsOnce struct {
	once sync.Once
	m    *fsMount
	err  error
}

func (t *treeMount) number(v *Volume) {
	t.start = time.Now()
	var walk func(v *Volume)
	n := uint64(0)
	walk = func(v *Volume) {
		t.ids[v] = synthBase + 2*n
		n++
		for _, c := range v.Children {
			walk(c)
		}
	}
	walk(v)
}

// openFS opens v's filesystem once.
func (t *treeMount) openFS(v *Volume) (*fsMount, error) {
	t.mu.Lock()
	fo := t.fss[v]
	if fo == nil {
		fo = &fsOnce{}
		t.fss[v] = fo
	}
	t.mu.Unlock()
	fo.once.Do(func() {
		f, err := v.OpenFS()
		if err != nil {
			fo.err = err
			t.log.Error("opening filesystem failed", "volume", v.Address, "err", err)
			return
		}
		idx := (t.ids[v] - synthBase) / 2
		fo.m = &fsMount{fs: f, addr: v.Address, inoBase: (idx + 1) << fsShift, o: t.o, log: t.log}
	})
	return fo.m, fo.err
}

// dirEntry is one name in a volume directory.
type dirEntry struct {
	name string
	v    *Volume
	kind int
}

const (
	entFS    = iota // the volume's filesystem (or, without one, its children)
	entParts        // NAME.parts: the children of a volume that also holds a filesystem
	entRaw          // NAME.raw
)

// entries lists a volume directory: per child a directory and a .raw
// file, in tree order.
func (t *treeMount) entries(v *Volume) []dirEntry {
	var out []dirEntry
	seen := map[string]bool{}
	add := func(e dirEntry) {
		if seen[e.name] || e.name == "" {
			return
		}
		seen[e.name] = true
		out = append(out, e)
	}
	for _, c := range v.Children {
		if c.hasDir() {
			add(dirEntry{name: c.Name, v: c, kind: entFS})
		}
		if c.OpenFS != nil && len(c.Children) > 0 {
			add(dirEntry{name: c.Name + partsSuffix, v: c, kind: entParts})
		}
		if c.Raw != nil {
			add(dirEntry{name: c.Name + rawSuffix, v: c, kind: entRaw})
		}
	}
	return out
}

// volDir is a directory of volumes: the root, a disk, a VG, or the
// .parts directory of a volume with a filesystem.
type volDir struct {
	gofs.Inode
	t *treeMount
	v *Volume
}

var (
	_ gofs.NodeLookuper  = (*volDir)(nil)
	_ gofs.NodeReaddirer = (*volDir)(nil)
	_ gofs.NodeGetattrer = (*volDir)(nil)
)

func (t *treeMount) dirAttr(ino uint64, a *fuse.Attr) {
	a.Ino = ino
	a.Mode = syscall.S_IFDIR | 0o555
	a.Nlink = 2
	a.Owner = t.owner()
	a.SetTimes(&t.start, &t.start, &t.start)
}

func (t *treeMount) owner() fuse.Owner {
	o := fuse.Owner{Uid: uint32(syscall.Getuid()), Gid: uint32(syscall.Getgid())}
	if t.o.UID != nil {
		o.Uid = *t.o.UID
	}
	if t.o.GID != nil {
		o.Gid = *t.o.GID
	}
	return o
}

func (d *volDir) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.t.dirAttr(d.StableAttr().Ino, &out.Attr)
	out.SetTimeout(d.t.o.timeout())
	return 0
}

func (d *volDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	var out []fuse.DirEntry
	for _, e := range d.t.entries(d.v) {
		de := fuse.DirEntry{Name: e.name, Mode: syscall.S_IFDIR, Ino: d.t.ids[e.v]}
		switch e.kind {
		case entRaw:
			de.Mode, de.Ino = syscall.S_IFREG, d.t.ids[e.v]+1
		case entFS:
			if e.v.OpenFS != nil {
				// The filesystem's root: its inode number is known once
				// opened; do not open it for a listing.
				de.Ino = 0
			}
		}
		out = append(out, de)
	}
	return gofs.NewListDirStream(out), 0
}

func (d *volDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	to := d.t.o.timeout()
	out.SetEntryTimeout(to)
	out.SetAttrTimeout(to)
	for _, e := range d.t.entries(d.v) {
		if e.name != name {
			continue
		}
		c := e.v
		switch {
		case e.kind == entRaw:
			ino := d.t.ids[c] + 1
			r := &rawNode{t: d.t, v: c}
			r.attr(ino, &out.Attr)
			return d.NewInode(ctx, r, gofs.StableAttr{Mode: syscall.S_IFREG, Ino: ino}), 0
		case e.kind == entFS && c.OpenFS != nil:
			m, err := d.t.openFS(c)
			if err != nil {
				return nil, syscall.EIO
			}
			st, err := m.fs.Stat(m.fs.Root())
			if err != nil {
				return nil, m.errno("stat", m.fs.Root(), err)
			}
			return m.child(ctx, &d.Inode, st, out), 0
		default: // a directory of volumes
			ino := d.t.ids[c]
			d.t.dirAttr(ino, &out.Attr)
			return d.NewInode(ctx, &volDir{t: d.t, v: c}, gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: ino}), 0
		}
	}
	return nil, syscall.ENOENT
}

// rawNode is a volume's bytes as a read-only file.
type rawNode struct {
	gofs.Inode
	t *treeMount
	v *Volume
}

var (
	_ gofs.NodeGetattrer = (*rawNode)(nil)
	_ gofs.NodeOpener    = (*rawNode)(nil)
	_ gofs.NodeReader    = (*rawNode)(nil)
)

func (r *rawNode) attr(ino uint64, a *fuse.Attr) {
	a.Ino = ino
	a.Mode = syscall.S_IFREG | 0o444
	a.Nlink = 1
	a.Size = uint64(r.v.Raw.Size())
	a.Blocks = (a.Size + 511) / 512
	a.Blksize = 4096
	a.Owner = r.t.owner()
	a.SetTimes(&r.t.start, &r.t.start, &r.t.start)
}

func (r *rawNode) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	r.attr(r.StableAttr().Ino, &out.Attr)
	out.SetTimeout(r.t.o.timeout())
	return 0
}

func (r *rawNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	return nil, fuse.FOPEN_KEEP_CACHE, 0
}

func (r *rawNode) Read(ctx context.Context, f gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	size := r.v.Raw.Size()
	if off >= size {
		return fuse.ReadResultData(nil), 0
	}
	if rem := size - off; int64(len(dest)) > rem {
		dest = dest[:rem]
	}
	n, err := r.v.Raw.ReadAt(dest, off)
	if err != nil && !(errors.Is(err, io.EOF) && off+int64(n) >= size) {
		r.t.log.Error("read failed", "volume", r.v.Address, "offset", off, "len", len(dest), "err", err)
		return nil, syscall.EIO
	}
	return fuse.ReadResultData(dest[:n]), 0
}
