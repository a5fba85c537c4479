package dump

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/imgtool/imgtool/internal/zero"
	"github.com/imgtool/imgtool/vfs"
)

// FSSource presents any vfs.FS (ext with its journal, XFS, FAT, squashfs,
// ISO 9660) as a Source, numbering its inodes the way dump and restore
// need them: 32-bit numbers, the root as inode 2, and, for a level chain,
// the same number for the same file in every dump.
//
// Numbering, chosen by NewFSSource:
//
//   - Stable (the format has on-disk inode numbers, Caps.Inodes, all
//     below 2^29): a file keeps its own number. When the root is not 2
//     (XFS: 128 or 64; squashfs: the highest), the root and inode 2 trade
//     numbers, and inode 1 (which restore -r ignores: it is ext's bad
//     blocks inode) becomes MaxIno+1: a bijection that is the same in
//     every dump while MaxIno is. Incremental levels work.
//   - Dense (no on-disk numbers: FAT and ISO 9660 derive them from entry
//     positions; or numbers too large for dump's 32-bit maps): every inode
//     of a WalkInodes pass gets the next number from 3 in Ino order.
//     Numbers can change between dumps, so only level 0 is meaningful:
//     Stable() is false and backup dumps such volumes at level 0 only.
type FSSource struct {
	fs     vfs.FS
	root   vfs.Ino
	maxIno uint32
	stable bool
	one    uint32 // stable mode: the number of inode 1, 0 when it keeps 1
	// zeroHoles: the format gives no real hole map (no vfs.BlockMapper),
	// so all-zero blocks of its data ranges go on tape as holes.
	zeroHoles bool

	mu       sync.Mutex
	toDump   map[vfs.Ino]uint32 // dense mode: every inode; stable mode: nil
	fromDump []vfs.Ino          // dense mode, indexed by dump number
	next     uint32
}

// NewFSSource prepares fsys for dumping. It walks every inode only when
// the format's numbers cannot be used as they are.
func NewFSSource(ctx context.Context, fsys vfs.FS) (*FSSource, error) {
	info := fsys.Info()
	s := &FSSource{fs: fsys, root: fsys.Root()}
	if s.root == 0 {
		return nil, fmt.Errorf("dump: filesystem has no root inode")
	}
	_, mapper := fsys.(vfs.BlockMapper)
	s.zeroHoles = !mapper
	if info.Caps.Inodes && info.MaxIno >= RootIno && info.MaxIno < maxInodes-1 && s.root <= info.MaxIno {
		s.setStable(uint32(info.MaxIno))
		return s, nil
	}
	var inos []vfs.Ino
	err := fsys.WalkInodes(ctx, func(ino vfs.Ino, _ *vfs.Stat, _ error) error {
		inos = append(inos, ino)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dump: listing inodes: %w", err)
	}
	if info.Caps.Inodes && len(inos) > 0 {
		top := max(inos[len(inos)-1], s.root)
		if top < maxInodes-1 {
			s.setStable(uint32(top))
			return s, nil
		}
	}
	sort.Slice(inos, func(i, j int) bool { return inos[i] < inos[j] })
	s.toDump = make(map[vfs.Ino]uint32, len(inos)+1)
	s.fromDump = make([]vfs.Ino, RootIno+1, len(inos)+RootIno+1)
	s.toDump[s.root], s.fromDump[RootIno] = RootIno, s.root
	s.next = RootIno + 1
	for _, ino := range inos {
		s.number(ino)
	}
	// Room for inodes met later (a directory entry the walk missed).
	s.maxIno = min(s.next+uint32(len(inos))/8+64, maxInodes)
	return s, nil
}

func (s *FSSource) setStable(top uint32) {
	s.stable, s.maxIno = true, top
	if s.root != RootIno {
		s.one = top + 1
		s.maxIno = top + 1
	}
}

// number returns ino's dense number, giving it the next one if new; 0
// when the maps are full.
func (s *FSSource) number(ino vfs.Ino) uint32 {
	if n, ok := s.toDump[ino]; ok {
		return n
	}
	if s.maxIno != 0 && s.next > s.maxIno {
		return 0
	}
	n := s.next
	s.next++
	s.toDump[ino] = n
	s.fromDump = append(s.fromDump, ino)
	return n
}

// Stable reports whether every file keeps its number from one dump to the
// next (incremental levels are meaningful).
func (s *FSSource) Stable() bool { return s.stable }

// FS returns the filesystem.
func (s *FSSource) FS() vfs.FS { return s.fs }

// ToDump maps a filesystem Ino to its number on tape (0: none).
func (s *FSSource) ToDump(ino vfs.Ino) uint32 {
	if s.stable {
		switch {
		case ino == s.root:
			return RootIno
		case ino == RootIno:
			return uint32(s.root)
		case ino == 1 && s.one != 0:
			return s.one
		case ino > vfs.Ino(s.maxIno) || s.one != 0 && ino == vfs.Ino(s.one):
			return 0
		}
		return uint32(ino)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.number(ino)
}

// FromDump maps a number on tape back to the filesystem's Ino (0: none).
func (s *FSSource) FromDump(n uint32) vfs.Ino {
	if s.stable {
		switch {
		case n == RootIno:
			return s.root
		case vfs.Ino(n) == s.root:
			return RootIno
		case s.one != 0 && n == s.one:
			return 1
		case s.one != 0 && n == 1:
			return 0
		}
		return vfs.Ino(n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if int(n) < len(s.fromDump) {
		return s.fromDump[n]
	}
	return 0
}

func (s *FSSource) ino(n uint32) (vfs.Ino, error) {
	if ino := s.FromDump(n); ino != 0 {
		return ino, nil
	}
	return 0, fmt.Errorf("dump: inode %d is not mapped", n)
}

// RootIno implements Source.
func (s *FSSource) RootIno() uint32 { return RootIno }

// MaxIno implements Source.
func (s *FSSource) MaxIno() uint32 { return s.maxIno }

// ScanInodes implements InodeScanner with the filesystem's WalkInodes,
// in stable numbering only (dense numbers are handed out in Stat order).
func (s *FSSource) ScanInodes(fn func(in *Inode)) error {
	if !s.stable {
		return ErrNoScan
	}
	var in Inode
	each := func(ino vfs.Ino, st *vfs.Stat) error {
		if n := s.ToDump(ino); n != 0 {
			in = inodeOf(n, st)
			fn(&in)
		}
		return nil
	}
	ctx := context.Background()
	if sc, ok := s.fs.(statScanner); ok {
		return sc.ScanInodes(ctx, each)
	}
	return s.fs.WalkInodes(ctx, func(ino vfs.Ino, st *vfs.Stat, err error) error {
		if err != nil || st == nil {
			return nil // Stat will say what is wrong, if the tree reaches it
		}
		return each(ino, st)
	})
}

// Parent implements ParentSource with the filesystem's ".." entry, when
// it has one to give (ext).
func (s *FSSource) Parent(n uint32) (uint32, error) {
	pf, ok := s.fs.(parentFinder)
	if !ok {
		return 0, fmt.Errorf("dump: %s has no parent lookup", s.fs.Info().Type)
	}
	ino, err := s.ino(n)
	if err != nil {
		return 0, err
	}
	p, err := pf.Parent(ino)
	if err != nil {
		return 0, err
	}
	pn := s.ToDump(p)
	if pn == 0 {
		return 0, fmt.Errorf("dump: directory inode %d: parent inode %d has no number", n, p)
	}
	return pn, nil
}

// Consistent implements ParentSource: stable numbering, a filesystem with
// parent lookups, and one that says it is consistent.
func (s *FSSource) Consistent() bool {
	_, ok := s.fs.(parentFinder)
	c, ok2 := s.fs.(interface{ Consistent() bool })
	return s.stable && ok && ok2 && c.Consistent()
}

// parentFinder is a vfs.FS that can read a directory's ".." (ext.VFS).
type parentFinder interface {
	Parent(vfs.Ino) (vfs.Ino, error)
}

// statScanner is a vfs.FS whose WalkInodes has a variant that reuses one
// Stat (ext.VFS).
type statScanner interface {
	ScanInodes(ctx context.Context, fn func(vfs.Ino, *vfs.Stat) error) error
}

func inodeOf(n uint32, st *vfs.Stat) Inode {
	in := Inode{Ino: n, Mode: st.Mode, Nlink: st.Nlink, UID: st.UID, GID: st.GID, Size: uint64(max(st.Size, 0)),
		Atime: st.Atime, Mtime: st.Mtime, Ctime: st.Ctime, Flags: st.Flags, Generation: st.Generation,
		Blocks: uint64(max(st.Blocks, 0))}
	if st.IsDevice() {
		in.RdevMajor, in.RdevMinor = st.RdevMajor, st.RdevMinor
	}
	return in
}

// Stat implements Source.
func (s *FSSource) Stat(n uint32) (Inode, error) {
	ino, err := s.ino(n)
	if err != nil {
		return Inode{}, err
	}
	st, err := s.fs.Stat(ino)
	if err != nil {
		return Inode{}, err
	}
	return inodeOf(n, st), nil
}

// ReadDir implements Source. An entry whose inode has no number (beyond
// the maps) gets 0, which the writer leaves out with a warning.
func (s *FSSource) ReadDir(n uint32) ([]DirEntry, error) {
	ino, err := s.ino(n)
	if err != nil {
		return nil, err
	}
	ents, err := s.fs.ReadDir(ino)
	out := make([]DirEntry, 0, len(ents))
	for _, e := range ents {
		out = append(out, DirEntry{Name: e.Name, Ino: s.ToDump(e.Ino), Type: e.Type})
	}
	return out, err
}

// fsFile adapts a vfs.File: its data ranges become extents; what lies
// between them (holes, unwritten extents) goes on tape as holes. With
// zeroHoles, all-zero blocks inside the ranges become holes too (formats
// whose readers cannot tell holes from data).
type fsFile struct {
	f         vfs.File
	zeroHoles bool
}

func (f fsFile) ReadAt(p []byte, off int64) (int, error) { return f.f.ReadAt(p, off) }

// zeroBlock is the granule of zeroHoles: restore writes holes by the 1 KiB
// record, a filesystem allocates by the 4 KiB block.
const zeroBlock = 4096

func (f fsFile) Extents() ([]Extent, error) {
	rs := f.f.DataRanges()
	out := make([]Extent, 0, len(rs))
	add := func(off, n int64) {
		if k := len(out) - 1; k >= 0 && out[k].Logical+out[k].Length == off {
			out[k].Length += n
			return
		}
		out = append(out, Extent{Logical: off, Physical: 0, Length: n})
	}
	var buf []byte
	for _, r := range rs {
		if r.Len <= 0 {
			continue
		}
		if !f.zeroHoles {
			add(r.Off, r.Len)
			continue
		}
		if buf == nil {
			buf = make([]byte, 64*zeroBlock)
		}
		for off := r.Off; off < r.Off+r.Len; {
			n := min(int64(len(buf)), r.Off+r.Len-off)
			m, err := f.f.ReadAt(buf[:n], off)
			if int64(m) < n {
				if err == nil {
					err = io.ErrUnexpectedEOF
				}
				return nil, fmt.Errorf("reading at %d: %w", off+int64(m), err)
			}
			for i := int64(0); i < n; i += zeroBlock {
				j := min(i+zeroBlock, n)
				if !zero.Is(buf[i:j]) {
					add(off+i, j-i)
				}
			}
			off += n
		}
	}
	return out, nil
}

// Open implements Source.
func (s *FSSource) Open(n uint32) (File, error) {
	ino, err := s.ino(n)
	if err != nil {
		return nil, err
	}
	f, err := s.fs.Open(ino)
	if err != nil {
		return nil, err
	}
	return fsFile{f: f, zeroHoles: s.zeroHoles}, nil
}

// Readlink implements Source.
func (s *FSSource) Readlink(n uint32) (string, error) {
	ino, err := s.ino(n)
	if err != nil {
		return "", err
	}
	return s.fs.Readlink(ino)
}

// Xattrs implements Source: vfs already gives getxattr(2) form, POSIX
// ACLs included.
func (s *FSSource) Xattrs(n uint32) ([]Xattr, error) {
	ino, err := s.ino(n)
	if err != nil {
		return nil, err
	}
	xs, err := s.fs.Xattrs(ino)
	if err != nil {
		return nil, err
	}
	var out []Xattr
	for _, x := range xs {
		out = append(out, Xattr{Name: x.Name, Value: x.Value})
	}
	return out, nil
}

var _ Source = (*FSSource)(nil)
