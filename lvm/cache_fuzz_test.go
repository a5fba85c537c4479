package lvm

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// subLV returns the first n bytes of sub-LV name of the lvm-cache fixture.
func subLV(f *testing.F, name string, n int64) []byte {
	vg := cacheVG(f)
	lv := vg.LV(name)
	if lv == nil {
		f.Fatalf("no LV %s", name)
	}
	r, err := lv.Open()
	if err != nil {
		f.Fatal(err)
	}
	b := make([]byte, min(n, r.Size()))
	if _, err := r.ReadAt(b, 0); err != nil && err != io.EOF {
		f.Fatal(err)
	}
	return b
}

// FuzzCacheMetadata feeds arbitrary bytes as a dm-cache metadata device:
// superblock, mapping array, dirty bitset. Errors, never panics or hangs.
func FuzzCacheMetadata(f *testing.F) {
	f.Add(subLV(f, "wbpool_cpool_cmeta", 256<<10))
	f.Add(subLV(f, "wtpool_cpool_cmeta", 256<<10))
	f.Fuzz(func(t *testing.T, b []byte) {
		defer fixturetest.Watchdog(5 * time.Second)()
		md, err := ReadCacheMetadata(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		maps, err := md.Mappings()
		if err != nil {
			return
		}
		if uint64(len(maps)) > uint64(md.Super.CacheBlocks) {
			t.Fatalf("%d mappings for %d cache blocks", len(maps), md.Super.CacheBlocks)
		}
	})
}

// FuzzWritecache feeds arbitrary bytes as a dm-writecache device.
func FuzzWritecache(f *testing.F) {
	f.Add(subLV(f, "wcfast_cvol", 64<<10))
	f.Fuzz(func(t *testing.T, b []byte) {
		defer fixturetest.Watchdog(5 * time.Second)()
		w, err := ReadWritecache(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		for _, e := range w.Entries {
			if e.Index >= w.NBlocks || e.Seq >= w.Seq {
				t.Fatalf("accepted entry %+v of %d blocks, seq %d", e, w.NBlocks, w.Seq)
			}
		}
	})
}
