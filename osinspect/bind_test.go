package osinspect

import (
	"context"
	"errors"
	"io/fs"
	"path"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/vfs"
)

// treeFS is a test double: directories only, from a list of paths.
type treeFS struct {
	ino   map[string]vfs.Ino
	names []string
	dirs  map[vfs.Ino][]vfs.DirEntry
}

func newTreeFS(paths ...string) *treeFS {
	t := &treeFS{ino: map[string]vfs.Ino{"/": 1}, names: []string{"", "/"}, dirs: map[vfs.Ino][]vfs.DirEntry{}}
	for _, p := range paths {
		parent := t.ino[path.Dir(p)]
		n := vfs.Ino(len(t.names))
		t.names = append(t.names, p)
		t.ino[p] = n
		t.dirs[parent] = append(t.dirs[parent], vfs.DirEntry{Name: path.Base(p), Ino: n, Type: vfs.DTDir})
	}
	return t
}

func (t *treeFS) Info() vfs.Info { return vfs.Info{Type: "test"} }
func (t *treeFS) Root() vfs.Ino  { return 1 }
func (t *treeFS) Lookup(p string) (vfs.Ino, error) {
	if i, ok := t.ino[path.Clean(p)]; ok {
		return i, nil
	}
	return 0, fs.ErrNotExist
}
func (t *treeFS) LookupFollow(p string) (vfs.Ino, error) { return t.Lookup(p) }
func (t *treeFS) Stat(i vfs.Ino) (*vfs.Stat, error) {
	if int(i) >= len(t.names) || i == 0 {
		return nil, fs.ErrNotExist
	}
	return &vfs.Stat{Ino: i, Mode: vfs.ModeDir | 0o755, Nlink: 2}, nil
}
func (t *treeFS) ReadDir(i vfs.Ino) ([]vfs.DirEntry, error) { return t.dirs[i], nil }
func (t *treeFS) Readlink(vfs.Ino) (string, error)          { return "", errors.ErrUnsupported }
func (t *treeFS) Xattrs(vfs.Ino) ([]vfs.Xattr, error)       { return nil, nil }
func (t *treeFS) Open(vfs.Ino) (vfs.File, error)            { return nil, errors.ErrUnsupported }
func (t *treeFS) WalkInodes(context.Context, func(vfs.Ino, *vfs.Stat, error) error) error {
	return nil
}
func (t *treeFS) Notes() []vfs.Note { return nil }

// Bind mounts cannot make an endless tree: / bound onto /mnt shows the
// root's own directories there, and its /mnt is the plain directory (as
// mount --bind, not --rbind); a bind of a bind is bounded the same way,
// and a bind of a missing source is a note.
func TestBindMountsAreBounded(t *testing.T) {
	root := newTreeFS("/mnt", "/srv", "/srv/www", "/srv/www/index", "/var", "/var/www")
	o := &OS{Root: "r", Mounts: []Mount{
		{Point: "/", Address: "r"},
		{Point: "/mnt", Bind: "/", Line: 1},
		{Point: "/var/www", Bind: "/srv/www", Line: 2},
		{Point: "/mnt/mnt", Bind: "/mnt", Line: 3},
		{Point: "/var", Bind: "/nowhere", Line: 4},
	}}
	g, err := o.Guest(func(*inspect.Volume) (vfs.FS, error) { return nil, errors.New("not used") }, root)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	var walk func(ino vfs.Ino, p string, depth int)
	walk = func(ino vfs.Ino, p string, depth int) {
		if depth > 20 {
			t.Fatalf("walk deeper than 20 at %s", p)
		}
		paths = append(paths, p)
		ents, err := g.ReadDir(ino)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			walk(e.Ino, p+"/"+e.Name, depth+1)
		}
	}
	walk(g.Root(), "", 0)
	got := strings.Join(paths, " ")
	want := " /mnt /mnt/mnt /mnt/mnt/mnt /mnt/mnt/srv /mnt/mnt/srv/www /mnt/mnt/srv/www/index /mnt/mnt/var /mnt/mnt/var/www" +
		" /mnt/srv /mnt/srv/www /mnt/srv/www/index /mnt/var /mnt/var/www /srv /srv/www /srv/www/index /var /var/www /var/www/index"
	if got != want {
		t.Errorf("walk:\n got %s\nwant %s", got, want)
	}
	if n := g.MountNotes(); len(n) != 1 || !strings.Contains(n[0], "bind source /nowhere") {
		t.Errorf("notes %q", n)
	}
}
