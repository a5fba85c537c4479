package vmdk

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

func fixtureBytes(tb testing.TB, file string, limit int) []byte {
	tb.Helper()
	p, err := fixturetest.Decompress(filepath.Join(fixturetest.ImagesDir(), file+".xz"))
	if err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	if limit > 0 && len(b) > limit {
		b = b[:limit]
	}
	return b
}

// exercise opens data as a VMDK (sparse extent or descriptor, no extent
// files) and reads a bounded sample of the disk.
func exercise(data []byte) {
	d, err := Open(bytes.NewReader(data), int64(len(data)), "", nil)
	if err != nil {
		return
	}
	defer d.Close()
	buf := make([]byte, 70000)
	size := d.Size()
	for i := int64(0); i < 16 && size > 0; i++ {
		off := (size / 16) * i
		if i == 15 {
			off = max(size-int64(len(buf))/2, 0)
		}
		if _, err := d.ReadAt(buf, off); err != nil && err != io.EOF {
			// damage is an error, not a crash
			continue
		}
	}
}

// FuzzOpen: sparse extents (monolithicSparse, streamOptimized, a
// twoGbMaxExtent extent) and descriptors from the qemu-img fixtures.
func FuzzOpen(f *testing.F) {
	f.Add(fixtureBytes(f, "fmt-vmdk-stream.vmdk", 0))
	f.Add(fixtureBytes(f, "fmt-vmdk-bigstream.vmdk", 0))
	f.Add(fixtureBytes(f, "fmt-vmdk-sparse.vmdk", 96<<10))
	f.Add(fixtureBytes(f, "fmt-vmdk-zeroed.vmdk", 96<<10))
	f.Add(fixtureBytes(f, "fmt-vmdk-big-s002.vmdk", 128<<10))
	f.Add(fixtureBytes(f, "fmt-vmdk-flat.vmdk", 0))
	f.Add(fixtureBytes(f, "fmt-vmdk-2gbsparse.vmdk", 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fixturetest.Watchdog(10 * time.Second)()
		exercise(data)
		if d, err := ParseDescriptor(string(data)); err == nil {
			_ = d.checkParent()
		}
	})
}

// TestFuzzSeeds runs the seeds (and testdata/fuzz crashers) as a test.
func TestDescriptorFixtures(t *testing.T) {
	for _, f := range []string{"fmt-vmdk-flat.vmdk", "fmt-vmdk-2gbsparse.vmdk", "fmt-vmdk-2gbflat.vmdk", "fmt-vmdk-big.vmdk"} {
		d, err := ParseDescriptor(string(bytes.TrimRight(fixtureBytes(t, f, 0), "\x00")))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(d.Extents) == 0 || d.CreateType == "" || d.ParentCID != "ffffffff" {
			t.Errorf("%s: %+v", f, d)
		}
	}
}
