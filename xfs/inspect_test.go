package xfs_test

import (
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/image"
	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/vfs"
	"github.com/imgtool/imgtool/xfs"
)

func inspectImage(t *testing.T, name string) *inspect.Tree {
	t.Helper()
	path := fixturetest.Image(t, name)
	im, err := image.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { im.Close() })
	tree, err := inspect.Inspect([]inspect.Source{{Name: path, R: im, Size: im.Size()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// TestNestedCentOSGuest: a host VG "centos" whose LV is a guest disk with
// its own VG "centos" and an XFS root. inspect finds the XFS with blkid's
// type, label and UUID; the registration table opens it through OpenFS;
// the tree equals the kernel mount's manifest.
func TestNestedCentOSGuest(t *testing.T) {
	tree := inspectImage(t, "xfs-nested")
	var fsv []*inspect.Volume
	for _, v := range tree.Filesystems() {
		if v.Content != nil && v.Content.Type == "xfs" {
			fsv = append(fsv, v)
		}
	}
	if len(fsv) != 1 {
		t.Fatalf("%d XFS volumes found; want 1", len(fsv))
	}
	v := fsv[0]
	if v.Content.Label != "guestroot" || v.Content.UUID != "11111111-2222-4333-8444-555555555555" {
		t.Errorf("label %q uuid %q", v.Content.Label, v.Content.UUID)
	}
	addr := v.DisplayAddress()
	if !strings.Contains(addr, "centos") || strings.Count(addr, "/") < 3 {
		t.Errorf("address %q is not the nested guest root", addr)
	}
	// The address resolves back to the same volume.
	if r, err := tree.Resolve(v.Address); err != nil || r != v {
		t.Errorf("Resolve(%q) = %v, %v", v.Address, r, err)
	}
	f, err := v.OpenFS(vfs.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if f.Info().Type != "xfs" || f.Info().Label != "guestroot" {
		t.Errorf("info %+v", f.Info())
	}
	xfs.CompareTree(t, xfs.WalkTree(t, f), xfs.ReadManifest(t, "xfs-nested"), xfs.AllCols)
	// The clash of the two "centos" VGs is flagged.
	var notes []string
	tree.Walk(func(v *inspect.Volume) bool { notes = append(notes, v.Notes...); return true })
	if !strings.Contains(strings.Join(notes, "\n"), "clash") {
		t.Errorf("no VG name clash noted: %q", notes)
	}
}
