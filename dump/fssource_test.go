package dump

import (
	"bytes"
	"context"
	"os"
	"slices"
	"testing"
	"time"

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

// noScan hides a Source's InodeScanner.
type noScan struct{ Source }

// TestScanSameStream: pass I from the inode scan writes the same stream,
// byte for byte, as pass I by Stat, at level 0 and at a level 1 whose
// base date falls among the fixture's inode times.
func TestScanSameStream(t *testing.T) {
	f, err := os.Open(fixturetest.Image(t, "ext-ext4"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	fsys, err := ext.Open(f, st.Size(), nil)
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewFSSource(context.Background(), ext.NewVFS(fsys))
	if err != nil {
		t.Fatal(err)
	}
	// A base date in the middle of the inodes' change times (the later
	// of ctime and mtime, as the writer's test).
	var times []int64
	for ino := uint32(1); ino <= src.MaxIno(); ino++ {
		if in, err := src.Stat(ino); err == nil && knownType(in.Mode) {
			if t := max(in.Mtime.Unix(), in.Ctime.Unix()); t < 1<<31 { // dates on tape are 32-bit
				times = append(times, t)
			}
		}
	}
	slices.Sort(times)
	mid, last := time.Unix(times[len(times)/2], 0), time.Unix(times[len(times)-1], 0)
	date := last.Add(24 * time.Hour)
	split := false
	for _, base := range []time.Time{{}, mid, last} {
		level := 1
		if base.IsZero() {
			level = 0
		}
		opts := WriteOptions{Level: level, Date: date, BaseDate: base, HonorNodump: level >= 1}
		var a, b bytes.Buffer
		sa, err := Write(&a, src, opts)
		if err != nil {
			t.Fatal(err)
		}
		sb, err := Write(&b, noScan{src}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("level %d: scan and Stat streams differ (%d and %d bytes)", level, a.Len(), b.Len())
		}
		split = split || level == 1 && sa.Dumped > 1 && sa.Dumped < sa.Inodes
		t.Logf("level %d (base %v): %d of %d inodes dumped (by Stat: %d)", level, base, sa.Dumped, sa.Inodes, sb.Dumped)
	}
	if !split {
		t.Error("no base date split the inodes into dumped and not")
	}
}
