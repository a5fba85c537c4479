package dump

import (
	"bytes"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"
)

// memSource is an in-memory filesystem for tests: a tree of inodes with
// explicit inode numbers and timestamps, so incremental levels can be
// driven exactly.
type memSource struct {
	maxIno uint32
	nodes  map[uint32]*memNode
	next   uint32
	now    time.Time // ctime given to changes
}

type memNode struct {
	Inode
	ents   map[string]uint32 // directories
	data   []byte            // regular files (holes: see mapped)
	mapped []Extent          // regular files: data extents (nil = fully mapped)
	target string
	xattrs []Xattr
}

func newMemSource(now time.Time) *memSource {
	s := &memSource{maxIno: 4096, nodes: map[uint32]*memNode{}, next: 11, now: now}
	s.nodes[RootIno] = &memNode{Inode: s.meta(RootIno, ModeDir|0o755), ents: map[string]uint32{}}
	return s
}

func (s *memSource) meta(ino uint32, mode uint32) Inode {
	return Inode{Ino: ino, Mode: mode, Nlink: 1, Atime: s.now, Mtime: s.now, Ctime: s.now, Generation: ino * 7}
}

// lookup resolves a slash path to an inode.
func (s *memSource) lookup(p string) uint32 {
	ino := uint32(RootIno)
	for _, part := range strings.Split(strings.Trim(p, "/"), "/") {
		if part == "" {
			continue
		}
		n, ok := s.nodes[ino].ents[part]
		if !ok {
			panic("memSource: no " + p)
		}
		ino = n
	}
	return ino
}

func (s *memSource) touch(ino uint32) {
	n := s.nodes[ino]
	n.Mtime, n.Ctime = s.now, s.now
}

func (s *memSource) add(p string, n *memNode) uint32 {
	dir := s.lookup(path.Dir(p))
	ino := s.next
	s.next++
	n.Ino = ino
	s.nodes[ino] = n
	s.nodes[dir].ents[path.Base(p)] = ino
	s.touch(dir)
	if n.IsDir() {
		n.Nlink = 2
		s.nodes[dir].Nlink++
	}
	return ino
}

func (s *memSource) mkdir(p string, perm uint32) uint32 {
	return s.add(p, &memNode{Inode: s.meta(0, ModeDir|perm), ents: map[string]uint32{}})
}

func (s *memSource) file(p string, perm uint32, data []byte) uint32 {
	n := &memNode{Inode: s.meta(0, ModeReg|perm), data: data}
	n.Size = uint64(len(data))
	return s.add(p, n)
}

// sparse makes a file of size bytes with data only at the given offsets.
func (s *memSource) sparse(p string, size int64, chunks map[int64][]byte) uint32 {
	n := &memNode{Inode: s.meta(0, ModeReg|0o644), data: make([]byte, size), mapped: []Extent{}}
	n.Size = uint64(size)
	s.setChunks(n, chunks)
	return s.add(p, n)
}

func (s *memSource) setChunks(n *memNode, chunks map[int64][]byte) {
	offs := make([]int64, 0, len(chunks))
	for o := range chunks {
		offs = append(offs, o)
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	for _, o := range offs {
		copy(n.data[o:], chunks[o])
		n.mapped = append(n.mapped, Extent{Logical: o, Physical: o + 1<<20, Length: int64(len(chunks[o]))})
	}
}

func (s *memSource) symlink(p, target string) uint32 {
	n := &memNode{Inode: s.meta(0, ModeLink|0o777), target: target}
	n.Size = uint64(len(target))
	return s.add(p, n)
}

func (s *memSource) special(p string, mode, major, minor uint32) uint32 {
	n := &memNode{Inode: s.meta(0, mode)}
	n.RdevMajor, n.RdevMinor = major, minor
	return s.add(p, n)
}

func (s *memSource) link(existing, p string) {
	ino := s.lookup(existing)
	dir := s.lookup(path.Dir(p))
	s.nodes[dir].ents[path.Base(p)] = ino
	s.touch(dir)
	s.nodes[ino].Nlink++
	s.nodes[ino].Ctime = s.now
}

func (s *memSource) remove(p string) {
	dir := s.lookup(path.Dir(p))
	ino := s.lookup(p)
	delete(s.nodes[dir].ents, path.Base(p))
	s.touch(dir)
	n := s.nodes[ino]
	if n.IsDir() {
		s.nodes[dir].Nlink--
		n.Nlink = 0
	} else {
		n.Nlink--
		n.Ctime = s.now
	}
	if n.Nlink == 0 {
		delete(s.nodes, ino)
	}
}

func (s *memSource) rename(from, to string) {
	fd, td := s.lookup(path.Dir(from)), s.lookup(path.Dir(to))
	ino := s.lookup(from)
	delete(s.nodes[fd].ents, path.Base(from))
	s.nodes[td].ents[path.Base(to)] = ino
	s.touch(fd)
	s.touch(td)
	s.nodes[ino].Ctime = s.now
}

func (s *memSource) RootIno() uint32 { return RootIno }
func (s *memSource) MaxIno() uint32  { return s.maxIno }

func (s *memSource) node(ino uint32) (*memNode, error) {
	n, ok := s.nodes[ino]
	if !ok {
		return nil, fmt.Errorf("memSource: no inode %d", ino)
	}
	return n, nil
}

func (s *memSource) Stat(ino uint32) (Inode, error) {
	n, err := s.node(ino)
	if err != nil {
		return Inode{}, err
	}
	return n.Inode, nil
}

func (s *memSource) ReadDir(ino uint32) ([]DirEntry, error) {
	n, err := s.node(ino)
	if err != nil {
		return nil, err
	}
	var out []DirEntry
	for name, c := range n.ents {
		out = append(out, DirEntry{Name: name, Ino: c, Type: DTFromMode(s.nodes[c].Mode)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

type memFile struct{ n *memNode }

func (f memFile) ReadAt(p []byte, off int64) (int, error) {
	r := bytes.NewReader(f.n.data)
	return r.ReadAt(p, off)
}

func (f memFile) Extents() ([]Extent, error) {
	if f.n.mapped == nil {
		return []Extent{{Logical: 0, Physical: 4096, Length: int64(len(f.n.data))}}, nil
	}
	return f.n.mapped, nil
}

func (s *memSource) Open(ino uint32) (File, error) {
	n, err := s.node(ino)
	if err != nil {
		return nil, err
	}
	return memFile{n}, nil
}

func (s *memSource) Readlink(ino uint32) (string, error) {
	n, err := s.node(ino)
	if err != nil {
		return "", err
	}
	return n.target, nil
}

func (s *memSource) Xattrs(ino uint32) ([]Xattr, error) {
	n, err := s.node(ino)
	if err != nil {
		return nil, err
	}
	return n.xattrs, nil
}

// walk lists every path of the tree ("." for the root) with its inode,
// in the form restore -t prints.
func (s *memSource) walk() map[string]uint32 {
	out := map[string]uint32{".": RootIno}
	var rec func(dir uint32, prefix string)
	rec = func(dir uint32, prefix string) {
		for name, c := range s.nodes[dir].ents {
			p := prefix + "/" + name
			out[p] = c
			if s.nodes[c].IsDir() {
				rec(c, p)
			}
		}
	}
	rec(RootIno, ".")
	return out
}

var _ io.ReaderAt = memFile{}
