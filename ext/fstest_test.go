package ext

import (
	"errors"
	"io/fs"
	"testing"
	"testing/fstest"
)

// TestFSConformance runs io/fs's own conformance checks (testing/fstest)
// over subtrees of the fixtures. The root is left out: fstest opens every
// entry, and the dangling symlink there cannot be opened by any FS.
func TestFSConformance(t *testing.T) {
	for _, name := range []string{"ext2-1k", "ext4-1k-inline"} {
		t.Run(name, func(t *testing.T) {
			fsys, _ := openFixture(t, name)
			for dir, want := range map[string]string{"sub": "hl-c", "dir with space": "inner file", ".config": "app/settings"} {
				sub, err := fs.Sub(fsys, dir)
				if err != nil {
					t.Fatal(err)
				}
				if err := fstest.TestFS(sub, want); err != nil {
					t.Errorf("%s: %v", dir, err)
				}
			}
			// symlinks at the root: Lstat describes them, Stat follows
			// inside the filesystem, ReadLink returns the stored target
			if fi, err := fsys.Lstat("sym-fast"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
				t.Errorf("Lstat(sym-fast) = %v, %v", fi, err)
			}
			if fi, err := fsys.Stat("sym-fast"); err != nil || !fi.Mode().IsRegular() || fi.Size() != 728895 {
				t.Errorf("Stat(sym-fast) = %v, %v", fi, err)
			}
			if _, err := fsys.Stat("sym-abs"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Stat(sym-abs -> /etc/passwd) = %v: must not reach outside the image", err)
			}
			if tg, err := fs.ReadLink(fsys, "sym-abs"); err != nil || tg != "/etc/passwd" {
				t.Errorf("ReadLink(sym-abs) = %q, %v", tg, err)
			}
			if _, err := fsys.Open("sym-dangling"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Open(sym-dangling) = %v", err)
			}
		})
	}
}
