package drbd_test

import (
	"io/fs"
	"sort"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/drbd"
	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/image"
	"github.com/imgtool/imgtool/inspect"
)

// (An external test package: inspect imports drbd.)

// TestFilesystemInside: the data area holds the ext4 that mke2fs made
// (blkid and debugfs goldens), readable past the meta data.
func TestFilesystemInside(t *testing.T) {
	im, err := image.Open(fixturetest.Image(t, "drbd-fs"))
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	m, err := drbd.Read(im, im.Size())
	if err != nil {
		t.Fatal(err)
	}
	data := m.Data(im)
	tree, err := inspect.Inspect([]inspect.Source{{Name: "data", R: data, Size: data.Size()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	blk := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(fixturetest.Golden(t, "drbd-fs.blkid"))), "\n") {
		k, v, _ := strings.Cut(l, "=")
		blk[k] = v
	}
	root := tree.Roots[0]
	if root.Content == nil || root.Content.Type != blk["TYPE"] || root.Content.UUID != blk["UUID"] || root.Content.Label != blk["LABEL"] {
		t.Fatalf("data area content %+v, blkid says %v", root.Content, blk)
	}
	fsys, err := ext.Open(data, data.Size(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ents, err := fs.ReadDir(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	var want []string
	for _, l := range strings.Split(strings.TrimSpace(string(fixturetest.Golden(t, "drbd-fs.ls"))), "\n") {
		// debugfs ls -p: /INO/MODE/UID/GID/NAME/SIZE/
		f := strings.Split(l, "/")
		if len(f) > 5 && f[5] != "." && f[5] != ".." {
			want = append(want, f[5])
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("root dir %v, debugfs %v", got, want)
	}
	b, err := fs.ReadFile(fsys, "etc/hostname")
	if err != nil || string(b) != "drbd node a\n" {
		t.Errorf("etc/hostname = %q, %v", b, err)
	}
}
