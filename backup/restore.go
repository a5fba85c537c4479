package backup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/imgtool/imgtool/dump"
	"golang.org/x/sys/unix"
)

// A Restorer applies a level 0 dump and then incrementals, in order, the
// way `restore -r` does, and builds the resulting tree in an empty
// directory. It keeps the filesystem's namespace in memory (each
// directory's entries by inode number) and the content of each regular
// file in a staging directory inside the destination, one file per inode:
//
//   - an inode missing from a dump's in-use map (TS_CLRI) was deleted;
//   - an inode on the tape replaces what we had (content, metadata, a
//     directory's entries: renames and deletions show up there);
//   - an inode in use but not on the tape is unchanged.
//
// Finish then creates the tree from the root: directories, regular files
// (renamed out of staging; further names are hard links), symlinks,
// FIFOs, devices and sockets, with owners, modes, xattrs and times.
type Restorer struct {
	dest    string
	staging string
	nodes   map[uint32]*rnode
	last    time.Time // date of the last dump applied
	applied int
}

type rnode struct {
	in     dump.Inode
	target string
	xattrs []dump.Xattr
	ents   []dump.DirEntry
	staged bool
}

// NewRestorer prepares dest, which must be empty or not exist.
func NewRestorer(dest string) (*Restorer, error) {
	if err := os.MkdirAll(dest, 0o700); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dest)
	if err != nil {
		return nil, err
	}
	if len(ents) > 0 {
		return nil, fmt.Errorf("restore: %s is not empty", dest)
	}
	staging := filepath.Join(dest, ".imgtool-restore")
	if err := os.Mkdir(staging, 0o700); err != nil {
		return nil, err
	}
	return &Restorer{dest: dest, staging: staging, nodes: map[uint32]*rnode{}}, nil
}

func (r *Restorer) stagePath(ino uint32) string {
	return filepath.Join(r.staging, strconv.FormatUint(uint64(ino), 10))
}

// Apply reads one dump stream and applies it.
func (r *Restorer) Apply(stream io.Reader) error {
	rd, err := dump.NewReader(stream)
	if err != nil {
		return err
	}
	vol := rd.Volume()
	if r.applied == 0 && vol.Level != 0 {
		return fmt.Errorf("restore: first dump is level %d; start with a level 0", vol.Level)
	}
	if r.applied > 0 {
		if vol.Level == 0 {
			return errors.New("restore: a second level 0 in the chain")
		}
		if !rd.BaseDate().Equal(r.last) {
			return fmt.Errorf("restore: incremental is based on the dump of %s, but the last dump applied is of %s",
				rd.BaseDate().Format(time.RFC3339), r.last.Format(time.RFC3339))
		}
	}
	// Deletions.
	for ino, n := range r.nodes {
		if !rd.InUse(ino) {
			if n.staged {
				os.Remove(r.stagePath(ino))
			}
			delete(r.nodes, ino)
		}
	}
	for {
		e, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		old := r.nodes[e.Ino]
		n := &rnode{in: e.Inode, target: e.Target}
		for _, de := range e.Dirents {
			if de.Name != "." && de.Name != ".." {
				n.ents = append(n.ents, de)
			}
		}
		if e.IsRegular() {
			if e.MetaOnly && old != nil {
				n.staged = old.staged
			} else if err := r.stage(rd, e); err != nil {
				return err
			} else {
				n.staged = true
			}
		} else if old != nil && old.staged {
			os.Remove(r.stagePath(e.Ino))
		}
		if n.xattrs, err = rd.Xattrs(); err != nil {
			return err
		}
		r.nodes[e.Ino] = n
	}
	if _, ok := r.nodes[dump.RootIno]; !ok {
		return errors.New("restore: the dump has no root directory")
	}
	r.last = rd.Date()
	r.applied++
	return nil
}

// stage writes a regular file's content to the staging directory, holes
// left as holes.
func (r *Restorer) stage(rd *dump.Reader, e *dump.Entry) error {
	f, err := os.OpenFile(r.stagePath(e.Ino), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = rd.Segments(func(off int64, data []byte) error {
		_, err := f.WriteAt(data, off)
		return err
	})
	if err == nil {
		err = f.Truncate(int64(e.Size))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Finish builds the tree in dest and removes the staging directory. It
// returns warnings (things that could not be recreated exactly).
func (r *Restorer) Finish() ([]string, error) {
	var warns []string
	first := map[uint32]string{}
	type dirTime struct {
		path string
		n    *rnode
	}
	var dirs []dirTime
	var walk func(ino uint32, path string, depth int) error
	walk = func(ino uint32, path string, depth int) error {
		if depth > 4096 {
			return fmt.Errorf("restore: directory nesting over 4096 at %s", path)
		}
		dn := r.nodes[ino]
		ents := append([]dump.DirEntry(nil), dn.ents...)
		sort.Slice(ents, func(i, j int) bool { return ents[i].Name < ents[j].Name })
		for _, de := range ents {
			if de.Name == "" || de.Name == "." || de.Name == ".." || containsSlash(de.Name) {
				warns = append(warns, fmt.Sprintf("%s: entry %q refused", path, de.Name))
				continue
			}
			p := filepath.Join(path, de.Name)
			n, ok := r.nodes[de.Ino]
			if !ok {
				warns = append(warns, fmt.Sprintf("%s: inode %d not on any tape", p, de.Ino))
				continue
			}
			if prev, ok := first[de.Ino]; ok {
				if n.in.IsDir() {
					warns = append(warns, fmt.Sprintf("%s: second link to directory %s skipped", p, prev))
					continue
				}
				if err := os.Link(prev, p); err != nil {
					return err
				}
				continue
			}
			first[de.Ino] = p
			mode := n.in.Mode
			var err error
			switch mode & dump.ModeFmt {
			case dump.ModeDir:
				if err = os.Mkdir(p, 0o700); err == nil {
					err = walk(de.Ino, p, depth+1)
					dirs = append(dirs, dirTime{p, n})
				}
			case dump.ModeReg:
				if n.staged {
					err = os.Rename(r.stagePath(de.Ino), p)
				} else {
					var f *os.File
					if f, err = os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
						err = f.Close()
					}
				}
			case dump.ModeLink:
				err = os.Symlink(n.target, p)
			case dump.ModeFifo, dump.ModeSock:
				err = unix.Mknod(p, mode&(dump.ModeFmt|0o7777), 0)
			case dump.ModeChr, dump.ModeBlk:
				err = unix.Mknod(p, mode&(dump.ModeFmt|0o7777), int(unix.Mkdev(n.in.RdevMajor, n.in.RdevMinor)))
			default:
				warns = append(warns, fmt.Sprintf("%s: unknown type %#o", p, mode&dump.ModeFmt))
				continue
			}
			if err != nil {
				return err
			}
			if !n.in.IsDir() {
				warns = append(warns, setMeta(p, n)...)
			}
		}
		return nil
	}
	if err := walk(dump.RootIno, r.dest, 0); err != nil {
		return warns, err
	}
	// Directories last, deepest first, so adding entries does not change
	// their times again.
	for i := len(dirs) - 1; i >= 0; i-- {
		warns = append(warns, setMeta(dirs[i].path, dirs[i].n)...)
	}
	os.RemoveAll(r.staging)
	warns = append(warns, setMeta(r.dest, r.nodes[dump.RootIno])...)
	return warns, nil
}

func containsSlash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' || s[i] == 0 {
			return true
		}
	}
	return false
}

// setMeta applies owner, mode, xattrs and times, never following a symlink.
func setMeta(p string, n *rnode) []string {
	var warns []string
	if err := os.Lchown(p, int(n.in.UID), int(n.in.GID)); err != nil {
		warns = append(warns, fmt.Sprintf("%s: chown: %v", p, err))
	}
	if !n.in.IsSymlink() {
		if err := unix.Fchmodat(unix.AT_FDCWD, p, n.in.Mode&0o7777, 0); err != nil {
			warns = append(warns, fmt.Sprintf("%s: chmod: %v", p, err))
		}
	}
	for _, x := range n.xattrs {
		if err := unix.Lsetxattr(p, x.Name, x.Value, 0); err != nil {
			warns = append(warns, fmt.Sprintf("%s: xattr %s: %v", p, x.Name, err))
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(n.in.Atime.UnixNano()), unix.NsecToTimespec(n.in.Mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		warns = append(warns, fmt.Sprintf("%s: times: %v", p, err))
	}
	return warns
}

// RestoreFiles applies dump files (compressed as their names say) in order
// into dest.
func RestoreFiles(dest string, paths []string, compress []string) ([]string, error) {
	r, err := NewRestorer(dest)
	if err != nil {
		return nil, err
	}
	for i, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		zr, err := NewDecompressor(compress[i], bufio.NewReaderSize(f, 1<<20))
		if err == nil {
			err = r.Apply(bufio.NewReaderSize(zr, 1<<20))
			zr.Close()
		}
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	return r.Finish()
}

// Restore restores volume (a manifest's Volume, or SOURCE#VOLUME) from the
// backups in dir as of date (the newest backup at or before it; the zero
// time means the newest) into dest.
func Restore(dest, dir, volume string, date time.Time) ([]*Manifest, []string, error) {
	return RestoreFrom(context.Background(), dest, &DirStore{Dir: dir}, volume, date)
}

// RestoreFrom is Restore from any store: the chain's objects are streamed,
// never downloaded whole.
func RestoreFrom(ctx context.Context, dest string, st Store, volume string, date time.Time) ([]*Manifest, []string, error) {
	ms, _, err := ReadManifestsFrom(ctx, st)
	if err != nil {
		return nil, nil, err
	}
	var target *Manifest
	var vols []string
	seen := map[string]bool{}
	for _, m := range ms {
		key := m.Source + "#" + m.Volume
		if !seen[key] {
			seen[key] = true
			vols = append(vols, key)
		}
		if (m.Volume == volume || key == volume) && (date.IsZero() || !m.Date.After(date)) {
			target = m
		}
	}
	if target == nil {
		return nil, nil, fmt.Errorf("no backup of volume %q in %s at or before that date; volumes: %v", volume, st.Location(), vols)
	}
	chain, err := Chain(ms, target)
	if err != nil {
		return nil, nil, err
	}
	r, err := NewRestorer(dest)
	if err != nil {
		return nil, nil, err
	}
	for _, m := range chain {
		if err := applyObject(ctx, r, st, m); err != nil {
			return chain, nil, err
		}
	}
	warns, err := r.Finish()
	return chain, warns, err
}

func applyObject(ctx context.Context, r *Restorer, st Store, m *Manifest) error {
	f, err := st.Open(ctx, m.File)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := NewDecompressor(m.Compress, bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return storeErr(st, m.File, err)
	}
	defer zr.Close()
	return storeErr(st, m.File, r.Apply(bufio.NewReaderSize(zr, 1<<20)))
}
