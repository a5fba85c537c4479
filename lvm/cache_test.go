package lvm

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// cacheGolden reads lvm-cache.sha256: NAME DEVICE SHA256 as the kernel in
// libguestfs's appliance read each device while the VG was active.
func cacheGolden(t testing.TB) map[string]string {
	t.Helper()
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(fixturetest.Golden(t, "lvm-cache.sha256")))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 {
			m[f[1]] = f[2]
		}
	}
	return m
}

func shaN(t testing.TB, r io.ReaderAt, n int64) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, n)); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func cacheVG(t testing.TB) *VG {
	t.Helper()
	return findVG(t, assemble(t, openPV(t, "lvm-cache")), "vgc")
}

// TestCacheLVsReadLikeTheKernel: the writethrough and writeback dm-cache
// LVs and the dm-writecache LV read as the kernel showed them; for
// writeback and writecache the origin alone (as the kernel showed it)
// differs, so the cache's dirty blocks are what make the difference.
func TestCacheLVsReadLikeTheKernel(t *testing.T) {
	want := cacheGolden(t)
	vg := cacheVG(t)
	for _, c := range []struct{ lv, origin string }{{"wt", "wt_corig"}, {"wb", "wb_corig"}, {"wc", "wc_wcorig"}, {"cv", "cv_corig"}} {
		lv := vg.LV(c.lv)
		if lv == nil {
			t.Fatalf("no LV %s", c.lv)
		}
		r, err := lv.Open()
		if err != nil {
			t.Fatalf("%s: %v", c.lv, err)
		}
		got := shaN(t, r, r.Size())
		if got != want["/dev/vgc/"+c.lv] {
			t.Errorf("%s: sha256 %s, kernel %s", c.lv, got, want["/dev/vgc/"+c.lv])
		}
		o := vg.LV(c.origin)
		if o == nil {
			t.Fatalf("no origin LV %s", c.origin)
		}
		or, err := o.Open()
		if err != nil {
			t.Fatal(err)
		}
		og := shaN(t, or, lv.Size)
		if kw := want["/dev/mapper/vgc-"+c.origin]; kw != "" && og != kw {
			t.Errorf("origin %s: sha256 %s, kernel %s", c.origin, og, kw)
		}
		if c.lv != "wt" && og == got {
			t.Errorf("%s: the origin alone reads the same as the cached LV: no dirty block was tested", c.lv)
		}
		if c.lv == "wt" && og != got {
			t.Errorf("writethrough: origin differs from the cached LV")
		}
	}
}

// dmStatusDirty returns the dirty block count of a dm-cache status line
// ("0 SECTORS cache <mbs> <meta> <cbs> <used/total> <rh> <rm> <wh> <wm>
// <demotions> <promotions> <dirty> ...").
func dmStatusDirty(t *testing.T, lv string) int {
	for _, l := range strings.Split(string(fixturetest.Golden(t, "lvm-cache.status")), "\n") {
		f := strings.Fields(l)
		if len(f) > 14 && f[0] == lv && f[3] == "cache" {
			n, err := strconv.Atoi(f[14])
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no dm-cache status for %s", lv)
	return 0
}

// TestCacheMetadataMatchesCacheDump compares the parsed mappings (cache
// block -> origin block) with cache_dump (thin-provisioning-tools) on the
// same metadata, and the dirty count with the kernel's dm status (the
// fixture's metadata is format 2, whose dirty bitset cache_dump 0.9 does
// not read).
func TestCacheMetadataMatchesCacheDump(t *testing.T) {
	if _, err := exec.LookPath("cache_dump"); err != nil {
		t.Fatalf("cache_dump is required (thin-provisioning-tools, scripts/setup.sh): %v", err)
	}
	vg := cacheVG(t)
	re := regexp.MustCompile(`<mapping cache_block="(\d+)" origin_block="(\d+)" dirty="(true|false)"`)
	for _, lv := range []string{"wt", "wb"} {
		meta := vg.LV(lv + "pool_cpool_cmeta")
		if meta == nil {
			t.Fatalf("no %spool_cpool_cmeta", lv)
		}
		r, err := meta.Open()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "cmeta")
		f, _ := os.Create(p)
		io.Copy(f, io.NewSectionReader(r, 0, r.Size()))
		f.Close()
		out, err := exec.Command("cache_dump", p).Output()
		if err != nil {
			t.Fatalf("cache_dump: %v", err)
		}
		md, err := ReadCacheMetadata(r, r.Size())
		if err != nil {
			t.Fatal(err)
		}
		maps, err := md.Mappings()
		if err != nil {
			t.Fatal(err)
		}
		var want []CacheMapping
		for _, m := range re.FindAllStringSubmatch(string(out), -1) {
			c, _ := strconv.ParseUint(m[1], 10, 64)
			o, _ := strconv.ParseUint(m[2], 10, 64)
			want = append(want, CacheMapping{CBlock: c, OBlock: o, Dirty: m[3] == "true"})
		}
		if len(want) == 0 {
			t.Fatalf("%s: cache_dump lists no mapping:\n%s", lv, out)
		}
		if len(maps) != len(want) {
			t.Fatalf("%s: %d mappings, cache_dump %d", lv, len(maps), len(want))
		}
		dirty := 0
		for i := range want {
			if md.Super.Version >= 2 {
				// cache_dump 0.9 reads dirty flags from the mappings
				// (format 1); format 2 keeps them in the dirty bitset,
				// checked against the kernel's count below.
				want[i].Dirty = maps[i].Dirty
			}
			if maps[i] != want[i] {
				t.Errorf("%s: mapping %d is %+v, cache_dump %+v", lv, i, maps[i], want[i])
			}
			if maps[i].Dirty {
				dirty++
			}
		}
		if k := dmStatusDirty(t, lv); dirty != k {
			t.Errorf("%s: %d dirty blocks, the kernel's status said %d", lv, dirty, k)
		}
		if lv == "wb" && dirty == 0 {
			t.Errorf("writeback fixture has no dirty block")
		}
	}
}

// TestWritecacheMetadata checks the parsed writecache against the LVM
// metadata and the kernel's status (blocks used = committed entries).
func TestWritecacheMetadata(t *testing.T) {
	vg := cacheVG(t)
	cv := vg.LV("wcfast_cvol")
	if cv == nil {
		t.Fatal("no wcfast_cvol")
	}
	r, err := cv.Open()
	if err != nil {
		t.Fatal(err)
	}
	w, err := ReadWritecache(r, r.Size())
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Entries) == 0 {
		t.Fatal("no committed writecache entry")
	}
	// dm-writecache status: "0 SECTORS writecache <error> <total blocks>
	// <free blocks> <blocks under writeback> ..."
	for _, l := range strings.Split(string(fixturetest.Golden(t, "lvm-cache.status")), "\n") {
		f := strings.Fields(l)
		if len(f) > 6 && f[0] == "wc" && f[3] == "writecache" {
			total, _ := strconv.ParseUint(f[5], 10, 64)
			free, _ := strconv.ParseUint(f[6], 10, 64)
			if total != w.NBlocks {
				t.Errorf("%d blocks, the kernel said %d", w.NBlocks, total)
			}
			if used := total - free; uint64(len(w.Entries)) > used {
				t.Errorf("%d committed entries, the kernel used %d blocks", len(w.Entries), used)
			}
			return
		}
	}
	t.Fatal("no writecache status line")
}
