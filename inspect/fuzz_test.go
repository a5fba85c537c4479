package inspect

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// FuzzInspect feeds arbitrary bytes to every probe, the partition-table
// reader and LVM assembly through Inspect. Damage must be an error or a
// note, never a panic or a hang.
func FuzzInspect(f *testing.F) {
	for _, name := range []string{"dom0", "sigs"} {
		data, err := os.ReadFile(imageOf(f, name))
		if err != nil {
			f.Fatal(err)
		}
		// Seeds: the start of the disk, and windows at each golden
		// volume offset (its superblocks and labels).
		f.Add(data[:min(len(data), 1<<20)])
		for _, g := range readBlkidGoldenTB(f, name+"-blkid.txt") {
			end := min(int64(len(data)), g.off+256<<10)
			f.Add(data[g.off:end])
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		defer fixturetest.Watchdog(5 * time.Second)()
		tree, err := Inspect([]Source{{Name: "fuzz", R: bytes.NewReader(b), Size: int64(len(b))}}, &Options{HostVGNames: func(string) bool { return false }})
		if err != nil {
			return
		}
		for _, v := range tree.Volumes() {
			if v.Size < 0 {
				t.Fatalf("%s: negative size %d", v.Address, v.Size)
			}
			if r := v.Reader(); r != nil && v.Size > 0 {
				buf := make([]byte, 512)
				r.ReadAt(buf, 0)
			}
		}
		tree.Resolve("")
	})
}
