package dump

import (
	"context"
	"os"
	"testing"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/otherfs"
	"github.com/imgtool/imgtool/vfs"
)

// FSSource's numbering on real filesystems: the root is 2, every inode
// maps to one number and back, no number is below 2 but the ones restore
// accepts, and the modes are as documented (identity for ext, a swap for
// squashfs, dense for FAT and ISO 9660).
func TestFSSourceNumbering(t *testing.T) {
	open := func(name string) vfs.FS {
		f, err := os.Open(fixturetest.Image(t, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		st, _ := f.Stat()
		if name == "ext-ext4" {
			fsys, err := ext.Open(f, st.Size(), nil)
			if err != nil {
				t.Fatal(err)
			}
			return ext.NewVFS(fsys)
		}
		fsys, err := otherfs.Open(f, st.Size(), name)
		if err != nil {
			t.Fatal(err)
		}
		return otherfs.NewVFS(fsys)
	}
	for _, c := range []struct {
		name     string
		stable   bool
		identity bool
	}{{"ext-ext4", true, true}, {"otherfs-squashfs", true, false}, {"otherfs-fat32", false, false}, {"otherfs-iso", false, false}} {
		t.Run(c.name, func(t *testing.T) {
			fsys := open(c.name)
			s, err := NewFSSource(context.Background(), fsys)
			if err != nil {
				t.Fatal(err)
			}
			if s.Stable() != c.stable {
				t.Errorf("stable %v, want %v", s.Stable(), c.stable)
			}
			if s.ToDump(fsys.Root()) != RootIno || s.FromDump(RootIno) != fsys.Root() {
				t.Errorf("root %d maps to %d", fsys.Root(), s.ToDump(fsys.Root()))
			}
			seen := map[uint32]vfs.Ino{}
			n := 0
			err = fsys.WalkInodes(context.Background(), func(ino vfs.Ino, _ *vfs.Stat, _ error) error {
				n++
				d := s.ToDump(ino)
				if d < RootIno || d > s.MaxIno() {
					t.Errorf("inode %d -> %d, outside 2..%d", ino, d, s.MaxIno())
				}
				if prev, ok := seen[d]; ok {
					t.Errorf("inodes %d and %d both -> %d", prev, ino, d)
				}
				seen[d] = ino
				if back := s.FromDump(d); back != ino {
					t.Errorf("inode %d -> %d -> %d", ino, d, back)
				}
				if c.identity && d != uint32(ino) {
					t.Errorf("ext inode %d renumbered to %d", ino, d)
				}
				return nil
			})
			if err != nil || n < 10 {
				t.Fatalf("walk: %d inodes, %v", n, err)
			}
		})
	}
}
