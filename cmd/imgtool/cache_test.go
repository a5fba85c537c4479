package main

import (
	"bufio"
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// TestCacheLVsCLI: dd of the dm-cache (writethrough, writeback with dirty
// blocks) and dm-writecache LVs equals the kernel's sha256, and extract
// equals the kernel mount's file listing.
func TestCacheLVsCLI(t *testing.T) {
	want := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(fixturetest.Golden(t, "lvm-cache.sha256")))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 {
			want[f[1]] = f[2]
		}
	}
	img := fixturetest.Image(t, "lvm-cache")
	for _, lv := range []string{"wt", "wb", "wc", "cv"} {
		out := filepath.Join(t.TempDir(), "dd")
		if _, errs, code := imgtool(t, "dd", img, "vgc/"+lv, "-o", out); code != 0 {
			t.Fatalf("dd vgc/%s: exit %d: %s", lv, code, errs)
		}
		if got := sha256File(t, out); got != want["/dev/vgc/"+lv] {
			t.Errorf("dd vgc/%s: sha256 %s, kernel %s", lv, got, want["/dev/vgc/"+lv])
		}
		dest := filepath.Join(t.TempDir(), "tree")
		if _, errs, code := imgtool(t, "extract", img, "vgc/"+lv+":/", dest); code != 0 {
			t.Fatalf("extract vgc/%s: exit %d: %s", lv, code, errs)
		}
		if n := fixturetest.CheckTree(t, dest, fixturetest.Manifest(t, "lvm-cache-"+lv+".manifest")); n < 10 {
			t.Errorf("vgc/%s: only %d files checked", lv, n)
		}
	}
}
