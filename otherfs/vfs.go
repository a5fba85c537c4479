package otherfs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sync"

	"github.com/imgtool/imgtool/vfs"
)

// Driver opens FAT12/16/32, squashfs and ISO 9660 filesystems for the
// registration table of package inspect. OpenOptions do not apply (none
// of the formats has a journal).
var Driver = vfs.Driver{
	Name:  "otherfs",
	Types: []string{"vfat", "squashfs", "iso9660"},
	Open: func(vol vfs.Volume, name string, _ vfs.OpenOptions) (vfs.FS, error) {
		fsys, err := Open(vol, vol.Size(), name)
		if err != nil {
			return nil, err
		}
		return NewVFS(fsys), nil
	},
}

// VFS is a FAT, squashfs or ISO 9660 filesystem as a vfs.FS.
//
// Inode numbers: squashfs's own (names of one inode are hard links and
// share it). FAT and ISO 9660 have none, so an entry's Ino is derived
// from its position: the parent directory's on-disk location (FAT: first
// cluster + 1, ISO: extent) shifted left by 20 bits, plus the entry's
// index in the directory + 1. It is stable across opens while the entry
// does not move; the root is 1. Such Inos are sparse (Info.MaxIno is 0):
// size tables by WalkInodes, not by MaxIno.
//
// Defaults where the format stores nothing (Caps say which): owner 0:0,
// mode 0755 for directories and 0644 for files, atime and ctime equal to
// mtime, link count 1 (2 plus subdirectories for a directory; a squashfs
// file: the number of names found for its inode, by one walk of the tree). Device nodes carry no
// device numbers (go-diskfs does not expose them; Caps.Devices is false).
type VFS struct {
	fs *FS

	mu     sync.Mutex
	nodes  map[vfs.Ino]*vnode
	byPath map[string]vfs.Ino

	linksOnce sync.Once
	links     map[vfs.Ino]uint32 // squashfs: names per inode
}

type vnode struct {
	path string // clean io/fs path ("." for the root)
	st   *Stat
}

// NewVFS wraps fsys.
func NewVFS(fsys *FS) *VFS {
	v := &VFS{fs: fsys, nodes: map[vfs.Ino]*vnode{}, byPath: map[string]vfs.Ino{}}
	root := fsys.rootStat()
	rino := v.rootIno(root)
	v.nodes[rino] = &vnode{path: ".", st: root}
	v.byPath["."] = rino
	return v
}

// syntheticRoot is the squashfs root's Ino when go-diskfs does not give
// its inode number (squashfs numbers are 32-bit).
const syntheticRoot = 1 << 32

func (v *VFS) rootIno(root *Stat) vfs.Ino {
	if v.fs.kind == Squashfs {
		if root.Ino != 0 {
			return vfs.Ino(root.Ino)
		}
		return syntheticRoot
	}
	return 1
}

// FS returns the filesystem behind the view.
func (v *VFS) FS() *FS { return v.fs }

var _ vfs.FS = (*VFS)(nil)

// Info implements vfs.FS.
func (v *VFS) Info() vfs.Info {
	k := v.fs.kind
	in := vfs.Info{Type: string(k), Label: v.fs.Label(), BlockSize: v.blockSize()}
	switch {
	case k.IsFAT():
		in.Type = "vfat"
	case k == Squashfs:
		in.MaxIno = 1<<32 - 1
		in.Caps = vfs.Caps{HardLinks: true, Owners: true, Perms: true, Inodes: true}
	case k == ISO9660:
		// Rock Ridge, when present (as on the root), stores owners,
		// modes and symlinks.
		root := v.fs.rootStat()
		in.Caps = vfs.Caps{Owners: root.HasOwner, Perms: root.HasPerm}
	}
	return in
}

// blockSize reads the allocation unit from the volume's header.
func (v *VFS) blockSize() int64 {
	var b [512]byte
	if _, err := v.fs.raw.ReadAt(b[:], 0); err != nil {
		return 0
	}
	switch {
	case v.fs.kind.IsFAT():
		return int64(binary.LittleEndian.Uint16(b[11:])) * int64(b[13])
	case v.fs.kind == Squashfs:
		return int64(binary.LittleEndian.Uint32(b[12:]))
	}
	return isoSectorSize
}

// Root implements vfs.FS.
func (v *VFS) Root() vfs.Ino { return v.byPath["."] }

func (v *VFS) node(ino vfs.Ino) (*vnode, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := v.nodes[ino]
	if n == nil {
		return nil, fmt.Errorf("%s: no inode %d (not met by a lookup or listing yet)", volName(v.fs.volume), ino)
	}
	return n, nil
}

// childIno is the Ino of the entry at index i of directory dir.
func (v *VFS) childIno(dir *vnode, dino vfs.Ino, i int, st *Stat) vfs.Ino {
	if v.fs.kind == Squashfs && st.Ino != 0 {
		return vfs.Ino(st.Ino)
	}
	key := dir.st.dirID
	if key == 0 {
		key = uint64(dino)
	}
	return vfs.Ino(key<<20 | uint64(i+1))
}

// list lists directory dino and registers its entries.
func (v *VFS) list(dino vfs.Ino, n *vnode) ([]vfs.DirEntry, error) {
	sts, err := v.fs.ReadDirStat(n.path)
	if err != nil {
		return nil, err
	}
	out := make([]vfs.DirEntry, 0, len(sts))
	v.mu.Lock()
	defer v.mu.Unlock()
	for i, st := range sts {
		// The child's path is joined without cleaning: a hostile name
		// ("..", "a/b") is refused by consumers before anything uses it.
		p := st.Name
		if n.path != "." {
			p = n.path + "/" + st.Name
		}
		ino := v.childIno(n, dino, i, st)
		if _, ok := v.nodes[ino]; !ok {
			v.nodes[ino] = &vnode{path: p, st: st}
		}
		if _, ok := v.byPath[p]; !ok {
			v.byPath[p] = ino
		}
		mode, _ := unixMode(st.Mode)
		out = append(out, vfs.DirEntry{Name: st.Name, Ino: ino, Type: vfs.DTOf(mode)})
	}
	return out, nil
}

// ReadDir implements vfs.FS.
func (v *VFS) ReadDir(ino vfs.Ino) ([]vfs.DirEntry, error) {
	n, err := v.node(ino)
	if err != nil {
		return nil, err
	}
	if !n.st.Mode.IsDir() {
		return nil, fmt.Errorf("%s: %s: not a directory", volName(v.fs.volume), n.path)
	}
	return v.list(ino, n)
}

// inoOf returns the Ino of the clean io/fs path p, listing the
// directories on the way from the root as needed.
func (v *VFS) inoOf(p string) (vfs.Ino, error) {
	v.mu.Lock()
	ino, ok := v.byPath[p]
	v.mu.Unlock()
	if ok {
		return ino, nil
	}
	parent, name := path.Split(p)
	parent = path.Clean(parent)
	if parent == "" || parent == "/" {
		parent = "."
	}
	if parent == p {
		return 0, &fs.PathError{Op: "lookup", Path: p, Err: fs.ErrNotExist}
	}
	pino, err := v.inoOf(parent)
	if err != nil {
		return 0, err
	}
	pn, err := v.node(pino)
	if err != nil {
		return 0, err
	}
	ents, err := v.list(pino, pn)
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		if e.Name == name {
			return e.Ino, nil
		}
	}
	return 0, &fs.PathError{Op: "lookup", Path: p, Err: fs.ErrNotExist}
}

func fsName(p string) string {
	p = path.Clean("/" + p)
	if p == "/" {
		return "."
	}
	return p[1:]
}

// Lookup implements vfs.FS.
func (v *VFS) Lookup(p string) (vfs.Ino, error) { return v.lookup(p, false) }

// LookupFollow implements vfs.FS.
func (v *VFS) LookupFollow(p string) (vfs.Ino, error) { return v.lookup(p, true) }

func (v *VFS) lookup(p string, follow bool) (vfs.Ino, error) {
	name, _, err := v.fs.Resolve(fsName(p), follow)
	if err != nil {
		return 0, err
	}
	return v.inoOf(name)
}

// unixMode converts an io/fs mode to S_IFMT and permission bits.
func unixMode(m fs.FileMode) (uint32, error) {
	mode := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= vfs.ModeSetuid
	}
	if m&fs.ModeSetgid != 0 {
		mode |= vfs.ModeSetgid
	}
	if m&fs.ModeSticky != 0 {
		mode |= vfs.ModeSticky
	}
	switch {
	case m.IsDir():
		mode |= vfs.ModeDir
	case m.IsRegular():
		mode |= vfs.ModeReg
	case m&fs.ModeSymlink != 0:
		mode |= vfs.ModeLink
	case m&fs.ModeNamedPipe != 0:
		mode |= vfs.ModeFIFO
	case m&fs.ModeSocket != 0:
		mode |= vfs.ModeSocket
	case m&fs.ModeCharDevice != 0:
		mode |= vfs.ModeChar
	case m&fs.ModeDevice != 0:
		mode |= vfs.ModeBlock
	default:
		return mode, fmt.Errorf("unknown file type %v", m.Type())
	}
	return mode, nil
}

// Stat implements vfs.FS.
func (v *VFS) Stat(ino vfs.Ino) (*vfs.Stat, error) {
	n, err := v.node(ino)
	if err != nil {
		return nil, err
	}
	mode, err := unixMode(n.st.Mode)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", volName(v.fs.volume), n.path, err)
	}
	st := &vfs.Stat{Ino: ino, Mode: mode, Nlink: 1, Size: n.st.Size,
		Atime: n.st.ModTime, Mtime: n.st.ModTime, Ctime: n.st.ModTime}
	if n.st.HasOwner {
		st.UID, st.GID = n.st.UID, n.st.GID
	}
	switch {
	case mode&vfs.ModeType == vfs.ModeDir:
		// As the kernel counts for FAT: 2 plus the subdirectories
		// (go-diskfs gives 1 for Rock Ridge directories).
		ents, _ := v.list(ino, n)
		st.Nlink = 2
		for _, e := range ents {
			if e.Type == vfs.DTDir {
				st.Nlink++
			}
		}
	case n.st.Nlink != 0:
		st.Nlink = n.st.Nlink
	case v.fs.kind == Squashfs:
		if c := v.linkCounts()[ino]; c > 0 {
			st.Nlink = c
		}
	}
	if bs := int64(512); st.Size > 0 {
		st.Blocks = (st.Size + bs - 1) / bs
	}
	return st, nil
}

// linkCounts walks the whole tree once: for a squashfs inode the number
// of names it has (go-diskfs does not return the stored link count).
func (v *VFS) linkCounts() map[vfs.Ino]uint32 {
	v.linksOnce.Do(func() {
		links := map[vfs.Ino]uint32{}
		_ = v.walk(context.Background(), func(dir vfs.Ino, e vfs.DirEntry, st *Stat) {
			if !st.Mode.IsDir() {
				links[e.Ino]++
			}
		})
		v.links = links
	})
	return v.links
}

// walk visits every entry below the root, each directory once.
func (v *VFS) walk(ctx context.Context, fn func(dir vfs.Ino, e vfs.DirEntry, st *Stat)) error {
	type item struct {
		ino   vfs.Ino
		depth int
	}
	seen := map[vfs.Ino]bool{v.Root(): true}
	stack := []item{{v.Root(), 0}}
	var first error
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		ents, err := v.ReadDir(it.ino)
		if err != nil && first == nil {
			first = err
		}
		for _, e := range ents {
			n, err := v.node(e.Ino)
			if err != nil {
				continue
			}
			fn(it.ino, e, n.st)
			if n.st.Mode.IsDir() && !seen[e.Ino] && it.depth < maxDepth {
				seen[e.Ino] = true
				stack = append(stack, item{e.Ino, it.depth + 1})
			}
		}
	}
	return first
}

// Readlink implements vfs.FS.
func (v *VFS) Readlink(ino vfs.Ino) (string, error) {
	n, err := v.node(ino)
	if err != nil {
		return "", err
	}
	if n.st.Mode&fs.ModeSymlink == 0 {
		return "", fmt.Errorf("%s: %s: not a symlink", volName(v.fs.volume), n.path)
	}
	return n.st.Target, nil
}

// Xattrs implements vfs.FS: none of the formats' attributes are read.
func (v *VFS) Xattrs(vfs.Ino) ([]vfs.Xattr, error) { return nil, nil }

// Open implements vfs.FS.
func (v *VFS) Open(ino vfs.Ino) (vfs.File, error) {
	n, err := v.node(ino)
	if err != nil {
		return nil, err
	}
	f, err := v.fs.Open(n.path)
	if err != nil {
		return nil, err
	}
	rf, ok := f.(*File)
	if !ok {
		f.Close()
		return nil, fmt.Errorf("%s: %s: not a regular file", volName(v.fs.volume), n.path)
	}
	return vfsFile{rf}, nil
}

// vfsFile: the formats have no holes the engine could see (squashfs
// sparse blocks read as zeros, and all-zero chunks are skipped by a
// sparse copy anyway), so the whole file is one range.
type vfsFile struct{ *File }

func (f vfsFile) DataRanges() []vfs.Range {
	if f.Size() == 0 {
		return nil
	}
	return []vfs.Range{{Off: 0, Len: f.Size()}}
}

// WalkInodes implements vfs.FS: the root and every entry reachable from
// it, each Ino once, in increasing Ino order.
func (v *VFS) WalkInodes(ctx context.Context, fn func(vfs.Ino, *vfs.Stat, error) error) error {
	inos := []vfs.Ino{v.Root()}
	seen := map[vfs.Ino]bool{v.Root(): true}
	werr := v.walk(ctx, func(_ vfs.Ino, e vfs.DirEntry, _ *Stat) {
		if !seen[e.Ino] {
			seen[e.Ino] = true
			inos = append(inos, e.Ino)
		}
	})
	if errors.Is(werr, context.Canceled) || errors.Is(werr, context.DeadlineExceeded) {
		return werr
	}
	slices.Sort(inos)
	for _, ino := range inos {
		st, err := v.Stat(ino)
		if err := fn(ino, st, err); err != nil {
			return err
		}
	}
	return werr
}

// Notes implements vfs.FS: the formats report damage as errors only.
func (v *VFS) Notes() []vfs.Note { return nil }

var _ vfs.Detailer = (*VFS)(nil)

// Details implements vfs.Detailer: the exact format and FAT's 8.3 name.
func (v *VFS) Details(ino vfs.Ino) (vfs.Details, error) {
	n, err := v.node(ino)
	if err != nil {
		return vfs.Details{Offset: -1}, err
	}
	return vfs.Details{Format: string(v.fs.kind), Offset: -1, ShortName: n.st.ShortName}, nil
}
