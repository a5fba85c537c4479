package extract

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sync"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/otherfs"
)

// OtherSource is an otherfs filesystem (FAT, squashfs, ISO 9660) as a
// Source. Ids are handed out as entries are met (the formats have no
// inode numbers the engine could use, except squashfs's, which pair hard
// links: names with one squashfs inode get one id). What each format
// lacks is filled in so that extraction changes nothing it cannot know:
// without owners (FAT, plain ISO) the owner is the extracting user, so no
// chown happens; without modes, 0755 for directories and 0644 for files;
// atime is the mtime.
func OtherSource(fsys *otherfs.FS) Source {
	return &otherSource{fsys: fsys, byPath: map[string]uint32{}, byIno: map[uint64]uint32{},
		uid: uint32(os.Geteuid()), gid: uint32(os.Getegid())}
}

type otherSource struct {
	fsys     *otherfs.FS
	uid, gid uint32

	mu     sync.Mutex
	nodes  []otherNode // id-1
	byPath map[string]uint32
	byIno  map[uint64]uint32 // squashfs regular files, for hard links
}

type otherNode struct {
	path string // io/fs name in the filesystem
	st   *otherfs.Stat
}

// maxOtherIDs bounds the ids handed out (one per entry met).
const maxOtherIDs = 1 << 31

func (s *otherSource) SyntheticIDs() bool { return true }

// register returns the id of the entry p with metadata st.
func (s *otherSource) register(p string, st *otherfs.Stat) (uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.byPath[p]; ok {
		return id, nil
	}
	hardlinks := s.fsys.Kind() == otherfs.Squashfs && st.Mode.IsRegular() && st.Ino != 0
	if hardlinks {
		if id, ok := s.byIno[st.Ino]; ok {
			s.byPath[p] = id
			return id, nil
		}
	}
	if len(s.nodes) >= maxOtherIDs {
		return 0, errors.New("too many entries")
	}
	s.nodes = append(s.nodes, otherNode{p, st})
	id := uint32(len(s.nodes))
	s.byPath[p] = id
	if hardlinks {
		s.byIno[st.Ino] = id
	}
	return id, nil
}

func (s *otherSource) node(id uint32) (otherNode, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == 0 || int(id) > len(s.nodes) {
		return otherNode{}, fmt.Errorf("no entry %d", id)
	}
	return s.nodes[id-1], nil
}

func fsName(p string) string {
	p = path.Clean("/" + p)
	if p == "/" {
		return "."
	}
	return p[1:]
}

func (s *otherSource) Lookup(p string) (uint32, error) {
	name, st, err := s.fsys.Resolve(fsName(p), false)
	if err != nil {
		return 0, err
	}
	return s.register(name, st)
}

// Unix file type bits, as ext.Inode.Mode carries them.
func unixMode(m fs.FileMode) (uint16, error) {
	mode := uint16(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	switch {
	case m.IsDir():
		mode |= ext.ModeDir
	case m.IsRegular():
		mode |= ext.ModeReg
	case m&fs.ModeSymlink != 0:
		mode |= ext.ModeSymlink
	case m&fs.ModeNamedPipe != 0:
		mode |= ext.ModeFIFO
	case m&fs.ModeSocket != 0:
		mode |= ext.ModeSocket
	case m&fs.ModeDevice != 0:
		// go-diskfs does not return device numbers: a node made from
		// this would be a wrong device.
		return 0, errors.New("device node: go-diskfs does not expose its device numbers")
	default:
		return 0, fmt.Errorf("unknown file type %v", m.Type())
	}
	return mode, nil
}

func (s *otherSource) Inode(id uint32) (*ext.Inode, error) {
	n, err := s.node(id)
	if err != nil {
		return nil, err
	}
	mode, err := unixMode(n.st.Mode)
	if err != nil {
		return nil, err
	}
	in := &ext.Inode{Ino: id, Mode: mode, UID: s.uid, GID: s.gid, Size: uint64(n.st.Size), Links: 1,
		Atime: n.st.ModTime, Mtime: n.st.ModTime, Ctime: n.st.ModTime}
	if n.st.HasOwner {
		in.UID, in.GID = n.st.UID, n.st.GID
	}
	if s.fsys.Kind() == otherfs.Squashfs && n.st.Mode.IsRegular() && n.st.Ino != 0 {
		// The link count is not returned by go-diskfs: assume shared, so
		// that the engine pairs names of one inode.
		in.Links = 2
	}
	return in, nil
}

func (s *otherSource) ReadDirInode(id uint32) ([]ext.DirEntry, error) {
	n, err := s.node(id)
	if err != nil {
		return nil, err
	}
	sts, err := s.fsys.ReadDirStat(n.path)
	if err != nil {
		return nil, err
	}
	out := make([]ext.DirEntry, 0, len(sts))
	for _, st := range sts {
		// The child's path is joined without cleaning: a hostile name
		// ("..", "a/b") is refused by checkName before anything uses it.
		p := st.Name
		if n.path != "." {
			p = n.path + "/" + st.Name
		}
		cid, err := s.register(p, st)
		if err != nil {
			return out, err
		}
		out = append(out, ext.DirEntry{Name: st.Name, Ino: cid})
	}
	return out, nil
}

func (s *otherSource) Readlink(id uint32) (string, error) {
	n, err := s.node(id)
	if err != nil {
		return "", err
	}
	if n.st.Mode&fs.ModeSymlink == 0 {
		return "", errors.New("not a symlink")
	}
	return n.st.Target, nil
}

// Xattrs: none are read from these formats.
func (s *otherSource) Xattrs(uint32) ([]ext.Xattr, error) { return nil, nil }

func (s *otherSource) OpenContent(id uint32) (Content, error) {
	n, err := s.node(id)
	if err != nil {
		return nil, err
	}
	f, err := s.fsys.Open(n.path)
	if err != nil {
		return nil, err
	}
	rf, ok := f.(*otherfs.File)
	if !ok {
		f.Close()
		return nil, errors.New("not a regular file")
	}
	return otherContent{rf}, nil
}

// otherContent: the formats have no holes the engine could see (squashfs
// sparse blocks read as zeros, and all-zero chunks are skipped by the
// copy anyway), so the whole file is one range.
type otherContent struct{ *otherfs.File }

func (c otherContent) DataRanges() []ext.Range {
	if c.Size() == 0 {
		return nil
	}
	return []ext.Range{{Off: 0, Len: c.Size()}}
}

// LookupFollow is Lookup following a final symlink (inside the
// filesystem), as ext.FS.LookupFollow.
func (s *otherSource) LookupFollow(p string) (uint32, error) {
	name, st, err := s.fsys.Resolve(fsName(p), true)
	if err != nil {
		return 0, err
	}
	return s.register(name, st)
}

// Stat returns the otherfs entry behind an id (for listings that show
// what the format stores, such as the squashfs inode number).
func (s *otherSource) Stat(id uint32) (*otherfs.Stat, error) {
	n, err := s.node(id)
	if err != nil {
		return nil, err
	}
	return n.st, nil
}
