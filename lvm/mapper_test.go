package lvm

import (
	"bytes"
	"testing"

	"github.com/imgtool/imgtool/image"
)

// For linear, striped and raid0 LVs, MapOffset (through image.Resolve) must
// point at the image bytes the reader returns, and stay within the run it
// reports.
func TestMapOffsetMatchesReads(t *testing.T) {
	a, b := openPV(t, "lvm-striped-a"), openPV(t, "lvm-striped-b")
	vg := findVG(t, assemble(t, a, b), "vgstripe")
	for _, name := range []string{"stripe", "lone", "rz"} {
		r, err := vg.LV(name).Open()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := r.(image.Mapper); !ok {
			t.Fatalf("%s reader is not an image.Mapper", name)
		}
		for off := int64(0); off < r.Size(); off += 61 * 1024 {
			under, uoff, run, err := image.Resolve(r, off)
			if err != nil {
				t.Fatalf("%s: Resolve(%d): %v", name, off, err)
			}
			if under != a.R && under != b.R {
				t.Fatalf("%s: Resolve(%d) landed in %T, not an image file", name, off, under)
			}
			n := min(run, 4096, r.Size()-off)
			want := make([]byte, n)
			got := make([]byte, n)
			r.ReadAt(want, off)
			under.ReadAt(got, uoff)
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: byte %d maps to image byte %d, which holds other data", name, off, uoff)
			}
		}
	}
	s, _ := vg.LV("stripe").Open()
	// A stripe chunk boundary ends a run.
	_, _, run, _ := image.Resolve(s, 1000)
	if ss := vg.LV("stripe").Segments[0].StripeSize; run != ss-1000 {
		t.Errorf("run at byte 1000 is %d, want %d (to the end of the stripe chunk)", run, ss-1000)
	}
}
