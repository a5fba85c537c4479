package otherfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
	"github.com/diskfs/go-diskfs/filesystem/squashfs"
)

// FS is an open FAT, squashfs or ISO 9660 filesystem. It is safe for
// concurrent use: calls into go-diskfs (which keeps caches without
// locks) are serialised.
type FS struct {
	kind   Kind
	volume string
	size   int64

	raw *storage // the volume, for the few reads made here
	// rootID is the root directory's dirID (FAT: its first cluster + 1).
	rootID uint64
	root   *Stat // the root's Stat, once read

	mu sync.Mutex // guards d, the cache and every open file's reads
	d  filesystem.FileSystem
	// cache holds recent directory listings by clean path ("." for the
	// root), so that a walk stats each entry without listing its
	// directory again. It is bounded by maxCachedDirs.
	cache map[string]*dirCache
	order []string
}

var (
	_ fs.FS         = (*FS)(nil)
	_ fs.ReadDirFS  = (*FS)(nil)
	_ fs.StatFS     = (*FS)(nil)
	_ fs.ReadLinkFS = (*FS)(nil)
)

const (
	maxCachedDirs = 16
	// maxSymlinkHops bounds symlink resolution (the kernel's MAXSYMLINKS).
	maxSymlinkHops = 40
	// maxDirEntries bounds one directory listing: go-diskfs returns whole
	// listings, so a hostile directory could otherwise hold the memory of
	// its claimed size.
	maxDirEntries = 1 << 20
	// maxDepth bounds directory nesting (go-diskfs resolves every path
	// from the root, so deep paths cost the square of their depth).
	maxDepth = 256
)

// Stat is what the format stores about one entry; FileInfo.Sys()
// returns it. Fields a format does not store are zero and the Has*
// flags say so.
type Stat struct {
	Name string
	// Mode is the io/fs mode: type bits and permissions (setuid, setgid
	// and sticky where the format and go-diskfs keep them). Without
	// HasPerm the permissions are made up: 0755 for directories, 0644
	// for files.
	Mode     fs.FileMode
	HasPerm  bool
	UID, GID uint32
	HasOwner bool
	ModTime  time.Time
	Size     int64
	// Target is a symlink's target, verbatim.
	Target string
	// Ino is the squashfs inode number or the Rock Ridge file serial
	// number, 0 when the format has none. Squashfs names with the same
	// Ino are hard links of one file.
	Ino uint64
	// Nlink is the Rock Ridge link count, 0 when not stored.
	Nlink uint32
	// ShortName is the FAT 8.3 name.
	ShortName string

	dname   string // the name go-diskfs knows the entry by (may differ: see fixISONames)
	isoLoc  uint32 // ISO: first sector of the data
	isoSize int64  // ISO: data length (of a directory too)
	// dirID identifies a directory's content (FAT first cluster,
	// squashfs inode, ISO extent) to find loops; 0 when unknown.
	dirID uint64
}

// Kind returns the filesystem format.
func (fsys *FS) Kind() Kind { return fsys.kind }

// Volume returns the volume address given to Open.
func (fsys *FS) Volume() string { return fsys.volume }

// Label returns the volume label (trimmed), or "".
func (fsys *FS) Label() string {
	var l string
	_ = fsys.safe("label", func() error { l = fsys.d.Label(); return nil })
	return strings.TrimSpace(l)
}

func (fsys *FS) corrupt(op, detail string) error {
	return &CorruptError{Volume: fsys.volume, Kind: fsys.kind, Op: op, Detail: detail}
}

// safe runs f, turning a panic in go-diskfs into a CorruptError.
func (fsys *FS) safe(op string, f func() error) (err error) {
	if st := fsys.raw; st != nil {
		st.metered, st.budget = true, maxReadsPerOp
		defer func() { st.metered = false }()
	}
	defer func() {
		if r := recover(); r != nil {
			detail := fmt.Sprint(r)
			if frame := panicFrame(); frame != "" {
				detail += " (in " + frame + ")"
			}
			err = fsys.corrupt(op, detail)
		}
	}()
	return f()
}

// panicFrame names the go-diskfs function that panicked, for the error.
func panicFrame() string {
	for _, line := range strings.Split(string(debug.Stack()), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "github.com/diskfs/go-diskfs/") {
			if i := strings.LastIndexByte(line, '('); i > 0 {
				line = line[:i]
			}
			return strings.TrimPrefix(line, "github.com/diskfs/go-diskfs/")
		}
	}
	return ""
}

// clean turns an io/fs name or an absolute path into the clean io/fs
// form ("." for the root).
func clean(name string) string {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if name == "" {
		return "."
	}
	return name
}

type dirCache struct {
	ents   []*Stat
	byName map[string]*Stat
}

// list returns the entries of the directory whose go-diskfs path is dpath
// (and whose own Stat is dst, for ISO name repair), cached by key (our
// clean path). Callers hold fsys.mu.
func (fsys *FS) list(key, dpath string, dst *Stat) (*dirCache, error) {
	if c := fsys.cache[key]; c != nil {
		return c, nil
	}
	var des []fs.DirEntry
	err := fsys.safe("read directory "+key, func() error {
		var err error
		des, err = fsys.d.ReadDir(dpath)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(des) > maxDirEntries {
		return nil, fsys.corrupt("read directory "+key, fmt.Sprintf("%d entries", len(des)))
	}
	c := &dirCache{ents: make([]*Stat, 0, len(des)), byName: make(map[string]*Stat, len(des))}
	for _, de := range des {
		var st *Stat
		err := fsys.safe("read directory "+key, func() error {
			var err error
			st, err = fsys.statOf(de)
			return err
		})
		if err != nil {
			return nil, err
		}
		c.ents = append(c.ents, st)
	}
	if fsys.kind == ISO9660 {
		if err := fsys.fixISONames(key, dst, c.ents); err != nil {
			return nil, err
		}
	}
	for _, st := range c.ents {
		if _, dup := c.byName[st.Name]; !dup {
			c.byName[st.Name] = st
		}
	}
	if len(fsys.order) >= maxCachedDirs {
		delete(fsys.cache, fsys.order[0])
		fsys.order = fsys.order[1:]
	}
	fsys.cache[key] = c
	fsys.order = append(fsys.order, key)
	return c, nil
}

// statOf converts a go-diskfs directory entry.
func (fsys *FS) statOf(de fs.DirEntry) (*Stat, error) {
	fi, err := de.Info()
	if err != nil {
		return nil, err
	}
	st := &Stat{Name: fi.Name(), dname: fi.Name(), ModTime: fi.ModTime().UTC(), Size: fi.Size()}
	m := fi.Mode()
	switch sys := fi.Sys().(type) {
	case *squashfs.StatT:
		st.Mode, st.HasPerm = m, true
		st.UID, st.GID, st.HasOwner = sys.UID, sys.GID, true
		st.Ino = uint64(sys.Inode)
		st.Target = sys.LinkTarget
	case *iso9660.StatT:
		st.isoLoc, st.isoSize = sys.Location, fi.Size()
		if sys.RockRidge {
			st.Mode, st.HasPerm = m, true
			st.UID, st.GID, st.HasOwner = sys.UID, sys.GID, true
			st.Ino, st.Nlink = uint64(sys.Inode), sys.NLink
			st.Target = sys.LinkTarget
		}
	}
	if sn, ok := fi.(interface{ ShortName() string }); ok {
		st.ShortName = sn.ShortName()
	}
	switch {
	case fsys.kind.IsFAT():
		st.dirID = fatCluster(de)
	case fsys.kind == Squashfs:
		st.dirID = st.Ino
	case fsys.kind == ISO9660:
		st.dirID = uint64(st.isoLoc)
	}
	if !st.HasPerm {
		switch {
		case fi.IsDir():
			st.Mode = fs.ModeDir | 0o755
		case m&fs.ModeSymlink != 0:
			st.Mode = fs.ModeSymlink | 0o777
		default:
			st.Mode = 0o644
		}
	}
	if fi.IsDir() {
		st.Mode |= fs.ModeDir
		st.Size = 0
	}
	if st.Mode&fs.ModeSymlink != 0 {
		st.Size = int64(len(st.Target))
	}
	if st.Size < 0 || st.Size > fsys.maxFileSize() {
		return nil, fmt.Errorf("%s: size %d", st.Name, st.Size)
	}
	return st, nil
}

// maxFileSize bounds a file's claimed size. Squashfs compresses (and
// stores sparse blocks as nothing), so its files may be far larger than
// the volume; FAT and ISO files lie in the volume.
func (fsys *FS) maxFileSize() int64 {
	if fsys.kind == Squashfs {
		return 1 << 50
	}
	return fsys.size
}

// rootStat describes the root directory.
func (fsys *FS) rootStat() *Stat {
	if fsys.root != nil {
		return fsys.root
	}
	if fsys.kind == ISO9660 {
		if st := fsys.isoRootStat(); st != nil {
			return st
		}
	}
	st := &Stat{Name: ".", dname: ".", Mode: fs.ModeDir | 0o755}
	_ = fsys.safe("stat root", func() error {
		fi, err := fsys.d.Stat(".")
		if err != nil || fi == nil {
			return err
		}
		if s, err := fsys.statOf(fs.FileInfoToDirEntry(fi)); err == nil {
			s.Name, s.dname = ".", "."
			s.Mode |= fs.ModeDir
			st = s
		}
		return nil
	})
	if fsys.rootID != 0 {
		st.dirID = fsys.rootID
	}
	fsys.root = st
	return st
}

// resolved is a path looked up: our clean path, the go-diskfs path, and
// the entry.
type resolved struct {
	path, dpath string
	st          *Stat
}

// lookup resolves name. Symlinks in the middle of the path are followed
// inside the filesystem (absolute targets restart at its root); a final
// symlink only when follow is set. Callers hold fsys.mu.
func (fsys *FS) lookup(op, name string, follow bool) (resolved, error) {
	if !fs.ValidPath(name) {
		return resolved{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	hops := 0
	r, err := fsys.walk(resolved{".", ".", nil}, name, follow, &hops, 0)
	if err != nil {
		return resolved{}, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return r, nil
}

// walk resolves p from cur. A directory met twice on the way down is a
// loop (a damaged or hostile filesystem whose directory points at one of
// its ancestors) and an error, as is nesting deeper than maxDepth.
func (fsys *FS) walk(cur resolved, p string, follow bool, hops *int, depth int) (resolved, error) {
	if depth > 2*maxSymlinkHops {
		return resolved{}, errors.New("symbolic links nested too deep")
	}
	if strings.HasPrefix(p, "/") {
		cur = resolved{".", ".", nil}
	}
	var parts []string
	for _, s := range strings.Split(p, "/") {
		if s != "" && s != "." {
			parts = append(parts, s)
		}
	}
	if strings.Count(cur.path, "/")+len(parts) > maxDepth {
		return resolved{}, fmt.Errorf("path nested deeper than %d directories (a directory loop?)", maxDepth)
	}
	var seen []uint64 // directory ids on the way down from cur
	if cur.path == "." {
		if cur.st == nil {
			cur.st = fsys.rootStat()
		}
	}
	for i, name := range parts {
		if name == ".." {
			cur = resolved{path.Dir(cur.path), path.Dir(cur.dpath), nil}
			if cur.path == "." {
				cur.st = fsys.rootStat()
				seen = seen[:0]
			} else {
				r, err := fsys.walk(resolved{".", ".", nil}, cur.path, false, hops, depth+1)
				if err != nil {
					return resolved{}, err
				}
				cur = r
			}
			continue
		}
		if cur.st != nil && !cur.st.Mode.IsDir() {
			return resolved{}, fmt.Errorf("%s: not a directory", cur.path)
		}
		c, err := fsys.list(cur.path, cur.dpath, cur.st)
		if err != nil {
			return resolved{}, err
		}
		st := c.byName[name]
		if st == nil {
			return resolved{}, fs.ErrNotExist
		}
		next := resolved{path.Join(cur.path, name), path.Join(cur.dpath, st.dname), st}
		if st.Mode.IsDir() && st.dirID != 0 {
			if slices.Contains(seen, st.dirID) || (cur.st != nil && cur.st.dirID == st.dirID) {
				return resolved{}, fsys.corrupt("lookup "+next.path, "directory loop: the directory contains itself")
			}
			seen = append(seen, st.dirID)
		}
		if st.Mode&fs.ModeSymlink != 0 && (i < len(parts)-1 || follow) {
			*hops++
			if *hops > maxSymlinkHops {
				return resolved{}, errors.New("too many levels of symbolic links")
			}
			next, err = fsys.walk(cur, st.Target, true, hops, depth+1)
			if err != nil {
				return resolved{}, err
			}
		}
		cur = next
	}
	if cur.st == nil {
		cur.st = fsys.rootStat()
	}
	return cur, nil
}

// Entry returns the metadata of name without following a final symlink.
func (fsys *FS) Entry(name string) (*Stat, error) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	r, err := fsys.lookup("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return r.st, nil
}

// Lstat implements fs.ReadLinkFS: a final symlink is not followed.
func (fsys *FS) Lstat(name string) (fs.FileInfo, error) {
	st, err := fsys.Entry(name)
	if err != nil {
		return nil, err
	}
	return FileInfo{st}, nil
}

// Stat implements fs.StatFS (follows symlinks).
func (fsys *FS) Stat(name string) (fs.FileInfo, error) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	r, err := fsys.lookup("stat", name, true)
	if err != nil {
		return nil, err
	}
	return FileInfo{r.st}, nil
}

// ReadLink implements fs.ReadLinkFS.
func (fsys *FS) ReadLink(name string) (string, error) {
	st, err := fsys.Entry(name)
	if err != nil {
		return "", err
	}
	if st.Mode&fs.ModeSymlink == 0 {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return st.Target, nil
}

// ReadDirStat lists a directory (following symlinks to it), in the
// order the filesystem stores it. The Stats are shared with the cache:
// do not modify them.
func (fsys *FS) ReadDirStat(name string) ([]*Stat, error) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	r, err := fsys.lookup("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if !r.st.Mode.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	c, err := fsys.list(r.path, r.dpath, r.st)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	return c.ents, nil
}

// ReadDir implements fs.ReadDirFS: entries sorted by name.
func (fsys *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	sts, err := fsys.ReadDirStat(name)
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, len(sts))
	for i, st := range sts {
		out[i] = FileInfo{st}
	}
	sortDirEntries(out)
	return out, nil
}

// Open implements fs.FS. Regular files are *File (io.ReaderAt too);
// directories implement fs.ReadDirFile.
func (fsys *FS) Open(name string) (fs.File, error) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	r, err := fsys.lookup("open", name, true)
	if err != nil {
		return nil, err
	}
	if r.st.Mode.IsDir() {
		return &dir{fsys: fsys, name: name, st: r.st}, nil
	}
	if !r.st.Mode.IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("not a regular file")}
	}
	var f fs.File
	err = fsys.safe("open "+r.path, func() error {
		var err error
		f, err = fsys.d.Open(r.dpath)
		return err
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("go-diskfs file cannot seek")}
	}
	return &File{fsys: fsys, path: r.path, st: r.st, f: f, rs: rs}, nil
}

// File is an open regular file.
type File struct {
	fsys *FS
	path string
	st   *Stat
	f    fs.File
	rs   io.ReadSeeker
	off  int64 // for Read
}

// Stat implements fs.File.
func (f *File) Stat() (fs.FileInfo, error) { return FileInfo{f.st}, nil }

// Size is the content length.
func (f *File) Size() int64 { return f.st.Size }

// Close implements fs.File.
func (f *File) Close() error {
	f.fsys.mu.Lock()
	defer f.fsys.mu.Unlock()
	return f.fsys.safe("close "+f.path, f.f.Close)
}

// ReadAt implements io.ReaderAt. Bytes past the size the directory entry
// claims are never returned, and a short read from go-diskfs is an error
// (a truncated or damaged file), not silence.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("otherfs: negative offset")
	}
	if off >= f.st.Size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > f.st.Size-off {
		p = p[:f.st.Size-off]
	}
	f.fsys.mu.Lock()
	defer f.fsys.mu.Unlock()
	var n int
	err := f.fsys.safe("read "+f.path, func() error {
		if _, err := f.rs.Seek(off, io.SeekStart); err != nil {
			return err
		}
		var err error
		n, err = io.ReadFull(f.rs, p)
		if err == io.ErrUnexpectedEOF || (err == io.EOF && len(p) > 0) {
			err = fmt.Errorf("content ends at %d of %d bytes", off+int64(n), f.st.Size)
		}
		return err
	})
	if err == nil && n < want {
		err = io.EOF
	}
	return n, err
}

// Read implements io.Reader.
func (f *File) Read(p []byte) (int, error) {
	n, err := f.ReadAt(p, f.off)
	f.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// dir is an open directory.
type dir struct {
	fsys *FS
	name string
	st   *Stat
	ents []fs.DirEntry
	read bool
}

func (d *dir) Stat() (fs.FileInfo, error) { return FileInfo{d.st}, nil }
func (d *dir) Close() error               { return nil }
func (d *dir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: errors.New("is a directory")}
}

// ReadDir implements fs.ReadDirFile.
func (d *dir) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.read {
		ents, err := d.fsys.ReadDir(d.name)
		if err != nil {
			return nil, err
		}
		d.ents, d.read = ents, true
	}
	if n <= 0 {
		out := d.ents
		d.ents = nil
		return out, nil
	}
	if len(d.ents) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.ents))
	out := d.ents[:n]
	d.ents = d.ents[n:]
	return out, nil
}

// FileInfo is a Stat as fs.FileInfo and fs.DirEntry.
type FileInfo struct{ S *Stat }

func (fi FileInfo) Name() string               { return fi.S.Name }
func (fi FileInfo) Size() int64                { return fi.S.Size }
func (fi FileInfo) Mode() fs.FileMode          { return fi.S.Mode }
func (fi FileInfo) ModTime() time.Time         { return fi.S.ModTime }
func (fi FileInfo) IsDir() bool                { return fi.S.Mode.IsDir() }
func (fi FileInfo) Sys() any                   { return fi.S }
func (fi FileInfo) Type() fs.FileMode          { return fi.S.Mode.Type() }
func (fi FileInfo) Info() (fs.FileInfo, error) { return fi, nil }

// fatCluster is the first cluster of a go-diskfs FAT directory entry.
// go-diskfs keeps it unexported; reflection reads it (read-only) so that
// directory loops can be found. 0 when the field is not there.
func fatCluster(de fs.DirEntry) uint64 {
	v := reflect.ValueOf(de)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return 0
	}
	f := v.Elem().FieldByName("clusterLocation")
	if !f.IsValid() || !f.CanUint() {
		return 0
	}
	return f.Uint() + 1 // FAT12/16's fixed root is cluster 0
}

// Resolve returns the path name leads to (clean io/fs form, "." for the
// root) and its entry, following a final symlink when follow is set.
func (fsys *FS) Resolve(name string, follow bool) (string, *Stat, error) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	r, err := fsys.lookup("lstat", name, follow)
	if err != nil {
		return "", nil, err
	}
	return r.path, r.st, nil
}
