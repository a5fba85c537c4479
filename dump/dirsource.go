package dump

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DirSource is a Source over a directory tree on a mounted filesystem,
// read with lstat(2), readdir, SEEK_DATA/SEEK_HOLE and l*xattr(2). It is
// the second source the writer is tested with, and dumps a tree that is not
// an ext image (a mounted snapshot, a test tree).
//
// Host inode numbers are not used on tape: they can be large and belong to
// another filesystem. An InodeMap numbers (device, inode) pairs from 3 up,
// with the tree's root as 2. Keep the same InodeMap for all the levels of
// a chain, so an unchanged file keeps its number, as restore -r requires.
// Inode flags (chattr) are not read.
type DirSource struct {
	root  string
	m     *InodeMap
	paths map[uint32]string     // dump inode -> a path relative to root
	dirs  map[uint32][]DirEntry // directory listings
}

// InodeMap assigns dump inode numbers to host (device, inode) pairs.
type InodeMap struct {
	max  uint32
	next uint32
	ids  map[[2]uint64]uint32
	root [2]uint64
}

// NewInodeMap returns a map that hands out numbers up to max (the MaxIno
// of the sources that use it).
func NewInodeMap(max uint32) *InodeMap {
	return &InodeMap{max: max, next: RootIno + 1, ids: map[[2]uint64]uint32{}}
}

func (m *InodeMap) get(key [2]uint64, root bool) (uint32, error) {
	if root {
		if m.root != key {
			if m.root != ([2]uint64{}) {
				delete(m.ids, m.root)
			}
			m.root = key
			m.ids[key] = RootIno
		}
		return RootIno, nil
	}
	if n, ok := m.ids[key]; ok {
		return n, nil
	}
	if m.next > m.max {
		return 0, fmt.Errorf("dump: more than %d inodes in the tree", m.max)
	}
	n := m.next
	m.next++
	m.ids[key] = n
	return n, nil
}

// NewDirSource walks the tree under root (without crossing into other
// filesystems) and returns a Source for it.
func NewDirSource(root string, m *InodeMap) (*DirSource, error) {
	s := &DirSource{root: root, m: m, paths: map[uint32]string{}, dirs: map[uint32][]DirEntry{}}
	var rst syscall.Stat_t
	if err := syscall.Lstat(root, &rst); err != nil {
		return nil, fmt.Errorf("dump: %s: %w", root, err)
	}
	if rst.Mode&ModeFmt != ModeDir {
		return nil, fmt.Errorf("dump: %s is not a directory", root)
	}
	if _, err := m.get([2]uint64{rst.Dev, rst.Ino}, true); err != nil {
		return nil, err
	}
	s.paths[RootIno] = "."
	type item struct {
		ino uint32
		rel string
	}
	queue := []item{{RootIno, "."}}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		des, err := os.ReadDir(filepath.Join(root, it.rel))
		if err != nil {
			return nil, fmt.Errorf("dump: %w", err)
		}
		var ents []DirEntry
		for _, de := range des {
			rel := filepath.Join(it.rel, de.Name())
			var st syscall.Stat_t
			if err := syscall.Lstat(filepath.Join(root, rel), &st); err != nil {
				return nil, fmt.Errorf("dump: %w", err)
			}
			if st.Dev != rst.Dev {
				continue // a mount point: dump stays on one filesystem
			}
			ino, err := m.get([2]uint64{st.Dev, st.Ino}, false)
			if err != nil {
				return nil, err
			}
			if _, ok := s.paths[ino]; !ok {
				s.paths[ino] = rel
				if st.Mode&ModeFmt == ModeDir {
					queue = append(queue, item{ino, rel})
				}
			}
			ents = append(ents, DirEntry{Name: de.Name(), Ino: ino, Type: DTFromMode(st.Mode)})
		}
		s.dirs[it.ino] = ents
	}
	return s, nil
}

func (s *DirSource) RootIno() uint32 { return RootIno }
func (s *DirSource) MaxIno() uint32  { return s.m.max }

func (s *DirSource) path(ino uint32) (string, error) {
	p, ok := s.paths[ino]
	if !ok {
		return "", fmt.Errorf("dump: no inode %d in %s", ino, s.root)
	}
	return filepath.Join(s.root, p), nil
}

func (s *DirSource) Stat(ino uint32) (Inode, error) {
	p, err := s.path(ino)
	if err != nil {
		return Inode{}, err
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return Inode{}, err
	}
	in := Inode{
		Ino: ino, Mode: st.Mode, Nlink: uint32(st.Nlink), UID: st.Uid, GID: st.Gid,
		Size:   uint64(st.Size),
		Atime:  time.Unix(st.Atim.Sec, st.Atim.Nsec),
		Mtime:  time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
		Ctime:  time.Unix(st.Ctim.Sec, st.Ctim.Nsec),
		Blocks: uint64(st.Blocks),
	}
	if st.Mode&ModeFmt == ModeChr || st.Mode&ModeFmt == ModeBlk {
		in.RdevMajor, in.RdevMinor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	}
	return in, nil
}

func (s *DirSource) ReadDir(ino uint32) ([]DirEntry, error) {
	ents, ok := s.dirs[ino]
	if !ok {
		return nil, fmt.Errorf("dump: inode %d is not a directory of %s", ino, s.root)
	}
	return ents, nil
}

type osFile struct{ f *os.File }

func (f osFile) ReadAt(p []byte, off int64) (int, error) { return f.f.ReadAt(p, off) }

// Extents lists the data regions with SEEK_DATA/SEEK_HOLE. The physical
// address is unknown; the logical offset stands in for it.
func (f osFile) Extents() ([]Extent, error) {
	fi, err := f.f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	fd := int(f.f.Fd())
	var out []Extent
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, syscall.ENXIO) {
			break
		}
		if err != nil {
			return nil, err
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil, err
		}
		if hole > size {
			hole = size
		}
		if hole <= data {
			break
		}
		out = append(out, Extent{Logical: data, Physical: data, Length: hole - data})
		off = hole
	}
	return out, nil
}

func (f osFile) Close() error { return f.f.Close() }

// Open returns the file's content; Write closes it when done.
func (s *DirSource) Open(ino uint32) (File, error) {
	p, err := s.path(ino)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (s *DirSource) Readlink(ino uint32) (string, error) {
	p, err := s.path(ino)
	if err != nil {
		return "", err
	}
	return os.Readlink(p)
}

func (s *DirSource) Xattrs(ino uint32) ([]Xattr, error) {
	p, err := s.path(ino)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, err
	}
	var names []string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name != "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var out []Xattr
	val := make([]byte, 64<<10)
	for _, name := range names {
		k, err := unix.Lgetxattr(p, name, val)
		if err != nil {
			return nil, fmt.Errorf("dump: %s: getxattr %s: %w", p, name, err)
		}
		out = append(out, Xattr{Name: name, Value: append([]byte(nil), val[:k]...)})
	}
	return out, nil
}
