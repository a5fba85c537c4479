package xfs

import (
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/vfs"
)

// InodesInUse (the TUI salvage bar's total) is the number of inodes
// WalkInodes visits on the clean fixtures, and still with the primary
// superblock zeroed (a secondary's counters are mkfs's: the AGIs are
// counted instead).
func TestInodesInUse(t *testing.T) {
	for _, name := range []string{"xfs-v5", "xfs-v4", "xfs-1k", "xfs-4ksect"} {
		t.Run(name, func(t *testing.T) {
			f := openImage(t, fixturetest.Image(t, name), vfs.OpenOptions{})
			set, err := walkSet(t, f)
			if err != nil {
				t.Fatal(err)
			}
			if len(set) < 10 {
				t.Fatalf("only %d inodes walked", len(set))
			}
			if got := f.InodesInUse(); got != int64(len(set)) {
				t.Errorf("InodesInUse %d, WalkInodes visits %d", got, len(set))
			}
		})
	}
	img := fixturetest.Copy(t, "xfs-1k")
	want := openImage(t, img, vfs.OpenOptions{}).InodesInUse()
	patchFile(t, img, 0, make([]byte, 512))
	f := openImage(t, img, vfs.OpenOptions{Salvage: true})
	if f.SBOffset == 0 {
		t.Fatal("primary superblock used")
	}
	if got := f.InodesInUse(); got != want {
		t.Errorf("through the secondary superblock: %d inodes in use, the primary's view %d", got, want)
	}
}
