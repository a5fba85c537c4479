package ext

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// maxSymlinkHops bounds symlink resolution (the kernel's MAXSYMLINKS).
const maxSymlinkHops = 40

var (
	_ fs.FS         = (*FS)(nil)
	_ fs.ReadDirFS  = (*FS)(nil)
	_ fs.StatFS     = (*FS)(nil)
	_ fs.ReadLinkFS = (*FS)(nil)
)

// Lookup resolves path (absolute or relative to the root, '/'-separated) to
// an inode number. Symlinks in the middle of the path are followed inside
// the filesystem (absolute targets start again at its root); a final
// symlink is not (lstat semantics). Missing names give an error matching
// fs.ErrNotExist.
func (fsys *FS) Lookup(p string) (uint32, error) {
	hops := 0
	return fsys.resolve(RootIno, p, false, &hops)
}

// LookupFollow is Lookup, but follows a final symlink too (stat semantics).
func (fsys *FS) LookupFollow(p string) (uint32, error) {
	hops := 0
	return fsys.resolve(RootIno, p, true, &hops)
}

func (fsys *FS) resolve(dir uint32, p string, follow bool, hops *int) (uint32, error) {
	if strings.HasPrefix(p, "/") {
		dir = RootIno
	}
	parts := strings.Split(p, "/")
	// drop empty and "." components
	parts = slices.DeleteFunc(parts, func(s string) bool { return s == "" || s == "." })
	cur := dir
	for i, name := range parts {
		din, err := fsys.Inode(cur)
		if err != nil {
			return 0, err
		}
		next, err := fsys.lookupName(din, name)
		if next == 0 && err != nil {
			return 0, err
		}
		if next == 0 {
			return 0, fmt.Errorf("ext: %s: %w", path.Join(parts[:i+1]...), fs.ErrNotExist)
		}
		last := i == len(parts)-1
		if !last || follow {
			in, err := fsys.Inode(next)
			if err != nil {
				return 0, err
			}
			if in.IsSymlink() {
				*hops++
				if *hops > maxSymlinkHops {
					return 0, fmt.Errorf("ext: %s: too many levels of symbolic links", p)
				}
				target, err := fsys.readlink(in)
				if err != nil {
					return 0, err
				}
				next, err = fsys.resolve(cur, target, true, hops)
				if err != nil {
					return 0, err
				}
			}
		}
		cur = next
	}
	return cur, nil
}

// fsPath converts an io/fs name to a path for resolve.
func fsPath(op, name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return name, nil
}

// Open implements fs.FS. Symlinks are followed inside the filesystem.
// Directories implement fs.ReadDirFile; other files are read through *File
// (io.ReaderAt and io.Seeker too).
func (fsys *FS) Open(name string) (fs.File, error) {
	p, err := fsPath("open", name)
	if err != nil {
		return nil, err
	}
	hops := 0
	ino, err := fsys.resolve(RootIno, p, true, &hops)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	in, err := fsys.Inode(ino)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	fi := &fileInfo{name: path.Base(name), in: in}
	if in.IsDir() {
		return &openDir{fsys: fsys, fi: fi}, nil
	}
	f, err := fsys.openInode(in)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &openFile{File: f, fi: fi}, nil
}

// Stat implements fs.StatFS. Like os.Stat it follows symlinks, but only
// inside this filesystem: absolute targets are resolved from the
// filesystem's root, never from the host's. Use Lstat (fs.ReadLinkFS) to
// describe a symlink itself.
func (fsys *FS) Stat(name string) (fs.FileInfo, error) {
	return fsys.stat("stat", name, true)
}

// Lstat implements fs.ReadLinkFS: a final symlink is described, not
// followed.
func (fsys *FS) Lstat(name string) (fs.FileInfo, error) {
	return fsys.stat("lstat", name, false)
}

func (fsys *FS) stat(op, name string, follow bool) (fs.FileInfo, error) {
	p, err := fsPath(op, name)
	if err != nil {
		return nil, err
	}
	hops := 0
	ino, err := fsys.resolve(RootIno, p, follow, &hops)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	in, err := fsys.Inode(ino)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return &fileInfo{name: path.Base(name), in: in}, nil
}

// ReadLink implements fs.ReadLinkFS: the target of the named symlink, as
// stored (it may be absolute, and then names a path on the guest, not on
// the host).
func (fsys *FS) ReadLink(name string) (string, error) {
	p, err := fsPath("readlink", name)
	if err != nil {
		return "", err
	}
	ino, err := fsys.Lookup(p)
	if err == nil {
		var target string
		if target, err = fsys.Readlink(ino); err == nil {
			return target, nil
		}
	}
	return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
}

// ReadDir implements fs.ReadDirFS: the entries sorted by name, without "."
// and "..". Entries of a partly damaged directory are returned with the
// error.
func (fsys *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	p, err := fsPath("readdir", name)
	if err != nil {
		return nil, err
	}
	ino, err := fsys.LookupFollow(p)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	out, err := fsys.dirEntries(ino)
	if err != nil {
		err = &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	return out, err
}

func (fsys *FS) dirEntries(ino uint32) ([]fs.DirEntry, error) {
	ents, err := fsys.ReadDirInode(ino)
	out := make([]fs.DirEntry, 0, len(ents))
	for _, e := range ents {
		if e.Name == "." || e.Name == ".." {
			continue
		}
		out = append(out, &dirEntry{fsys: fsys, e: e})
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, err
}

// fileInfo implements fs.FileInfo; Sys returns the *Inode.
type fileInfo struct {
	name string
	in   *Inode
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return int64(min(fi.in.Size, 1<<63-1)) }
func (fi *fileInfo) Mode() fs.FileMode  { return fi.in.FileMode() }
func (fi *fileInfo) ModTime() time.Time { return fi.in.Mtime }
func (fi *fileInfo) IsDir() bool        { return fi.in.IsDir() }
func (fi *fileInfo) Sys() any           { return fi.in }

// dirEntry implements fs.DirEntry.
type dirEntry struct {
	fsys *FS
	e    DirEntry
}

func (d *dirEntry) Name() string      { return d.e.Name }
func (d *dirEntry) IsDir() bool       { return d.e.FileType == FTDir }
func (d *dirEntry) Type() fs.FileMode { return d.e.Mode() }
func (d *dirEntry) Info() (fs.FileInfo, error) {
	in, err := d.fsys.Inode(d.e.Ino)
	if err != nil {
		return nil, err
	}
	return &fileInfo{name: d.e.Name, in: in}, nil
}

// Ino returns the entry's inode number (use a type assertion to
// interface{ Ino() uint32 } on an fs.DirEntry from ReadDir).
func (d *dirEntry) Ino() uint32 { return d.e.Ino }

type openFile struct {
	*File
	fi *fileInfo
}

func (f *openFile) Stat() (fs.FileInfo, error) { return f.fi, nil }
func (f *openFile) Close() error               { return nil }

type openDir struct {
	fsys *FS
	fi   *fileInfo
	ents []fs.DirEntry
	read bool
	pos  int
}

func (d *openDir) Stat() (fs.FileInfo, error) { return d.fi, nil }
func (d *openDir) Close() error               { return nil }
func (d *openDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.fi.name, Err: errors.New("is a directory")}
}

func (d *openDir) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.read {
		ents, err := d.fsys.dirEntries(d.fi.in.Ino)
		if err != nil && ents == nil {
			return nil, err
		}
		d.ents, d.read = ents, true
	}
	rest := d.ents[d.pos:]
	if n <= 0 {
		d.pos = len(d.ents)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	if n > len(rest) {
		n = len(rest)
	}
	d.pos += n
	return rest[:n], nil
}
