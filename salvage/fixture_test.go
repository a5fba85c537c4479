package salvage

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// TestZeroedGDTFixtures salvages the images whose every group descriptor
// table copy was zeroed: plain ext.Open of them must not find the files
// through the descriptors, and the salvage must give back every file of
// the source tree, byte for byte.
func TestZeroedGDTFixtures(t *testing.T) {
	want := fixturetest.Manifest(t, "salvage-zerogdt.manifest")
	for _, name := range []string{"salvage-zerogdt-ext4", "salvage-zerogdt-ext2"} {
		t.Run(name, func(t *testing.T) {
			img := fixturetest.Image(t, name)
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			dest := filepath.Join(t.TempDir(), "out")
			rep, err := Run(context.Background(), f, st.Size(), dest, Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Log(rep.Summary(20))
			fsys, err := ext.Open(f, st.Size(), nil)
			if err != nil {
				t.Fatal(err)
			}
			groups := len(fsys.Groups())
			if groups < 8 || rep.DescGuessed != groups || rep.DescPrimary != 0 || rep.DescBackup != 0 {
				t.Errorf("descriptors: %d primary, %d backup, %d computed of %d groups; want all computed", rep.DescPrimary, rep.DescBackup, rep.DescGuessed, groups)
			}
			fixturetest.CheckTree(t, dest, want)
			files := 0
			for _, w := range want {
				if w.Type != "dir" {
					files++
				}
			}
			if rep.FilesLost != 0 || rep.FilesPartial != 0 || rep.FilesRecovered != files || rep.Orphans != 0 {
				t.Errorf("report: %d recovered (%d partial), %d lost, %d orphans; want %d recovered, nothing lost", rep.FilesRecovered, rep.FilesPartial, rep.FilesLost, rep.Orphans, files)
			}
			if _, err := os.Stat(filepath.Join(dest, ReportName)); err != nil {
				t.Error(err)
			}
		})
	}
}
