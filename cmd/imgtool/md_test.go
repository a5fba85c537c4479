package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// mdArgs is IMAGE -a IMAGE... for the members of a fixture array
// (fixtures/scripts/md-fixtures.sh); skip leaves members out.
func mdArgs(t *testing.T, array string, n int, skip ...int) []string {
	var args []string
	for i := 0; i < n; i++ {
		left := false
		for _, s := range skip {
			left = left || s == i
		}
		if left {
			continue
		}
		p := fixturetest.Image(t, fmt.Sprintf("md-%s-%d", array, i))
		if len(args) > 0 {
			args = append(args, "--add")
		}
		args = append(args, p)
	}
	return args
}

// mdGoldenSum is the kernel's sha256 of /dev/mdN (key "") or of a volume
// inside it (key "p1", "vgmd/data").
func mdGoldenSum(t *testing.T, array, key string) string {
	for _, l := range strings.Split(string(fixturetest.Golden(t, "md-"+array+".sha256")), "\n") {
		f := strings.Fields(l)
		if key == "" && len(f) == 2 {
			return f[0]
		}
		if key != "" && len(f) == 3 && f[0] == key {
			return f[1]
		}
	}
	t.Fatalf("md-%s.sha256 has no %q", array, key)
	return ""
}

// TestMDThroughCLI: dd of each array (and of what is nested in it) equals
// the kernel's bytes, and extract, ls and cat through the array give the
// files the kernel wrote (md-ARRAY.manifest).
func TestMDThroughCLI(t *testing.T) {
	cases := []struct {
		array      string
		n          int
		skip       []int
		arrayAddr  string
		fsAddr     string // the filesystem's address
		innerKey   string // golden line of the filesystem volume, "" when it is the array
		staleNoted string // a member the inspect output must call stale
	}{
		{array: "r1v12", n: 2, arrayAddr: "md-r1v12", fsAddr: "md-r1v12"},
		{array: "r1v090", n: 3, arrayAddr: "md0", fsAddr: "md0", staleNoted: "a2"},
		{array: "r5lvm", n: 3, arrayAddr: "md-r5lvm", fsAddr: "md-r5lvm/vgmd/data", innerKey: "vgmd/data"},
		{array: "r5deg", n: 3, arrayAddr: "md-r5deg", fsAddr: "md-r5deg", staleNoted: "a1"},
		{array: "r6", n: 5, skip: []int{1, 3}, arrayAddr: "md-r6", fsAddr: "md-r6"},
		{array: "r10f2", n: 4, skip: []int{2}, arrayAddr: "md-r10f2", fsAddr: "md-r10f2"},
		{array: "parts", n: 1, arrayAddr: "md-parts", fsAddr: "md-parts/p1", innerKey: "p1"},
		{array: "onlv", n: 1, arrayAddr: "vghost/md-onlv", fsAddr: "vghost/md-onlv"},
		// a VG on two arrays: only its LV has a golden
		{array: "vgspan", n: 4, arrayAddr: "md-vgspanB", fsAddr: "vgspan/data", innerKey: "vgspan/data"},
	}
	for _, c := range cases {
		t.Run(c.array, func(t *testing.T) {
			args := mdArgs(t, c.array, c.n, c.skip...)
			img, extra := args[0], args[1:]
			out, errs, code := imgtool(t, append([]string{"inspect", img}, extra...)...)
			if code != 0 || !strings.Contains(out, c.arrayAddr) {
				t.Fatalf("inspect: exit %d, no %s: %s%s", code, c.arrayAddr, out, errs)
			}
			if c.staleNoted != "" && !strings.Contains(out, c.staleNoted+" is stale") {
				t.Errorf("inspect does not call %s stale:\n%s", c.staleNoted, out)
			}
			if len(c.skip) > 0 && !strings.Contains(out, "degraded") {
				t.Errorf("inspect does not say degraded:\n%s", out)
			}
			dir := t.TempDir()
			dd := func(addr, key string) {
				dst := filepath.Join(dir, strings.ReplaceAll(addr, "/", "_")+".raw")
				if _, errs, code := imgtool(t, append([]string{"dd", img, addr, "-o", dst}, extra...)...); code != 0 {
					t.Fatalf("dd %s: exit %d: %s", addr, code, errs)
				}
				if got, want := fixturetest.SHA256File(t, dst), mdGoldenSum(t, c.array, key); got != want {
					t.Errorf("dd %s: sha256 %s, kernel %s", addr, got, want)
				}
			}
			if c.array != "vgspan" {
				dd(c.arrayAddr, "")
			}
			if c.innerKey != "" {
				dd(c.fsAddr, c.innerKey)
			}
			rows := fixturetest.Manifest(t, "md-"+c.array+".manifest")
			dest := filepath.Join(dir, "x")
			if _, errs, code := imgtool(t, append([]string{"extract", img, c.fsAddr + ":/", dest}, extra...)...); code != 0 {
				t.Fatalf("extract: exit %d: %s", code, errs)
			}
			if n := fixturetest.CheckTree(t, dest, rows); n < 10 {
				t.Errorf("only %d files checked", n)
			}
			out, errs, code = imgtool(t, append([]string{"ls", img, c.fsAddr + ":/dir"}, extra...)...)
			if code != 0 || !strings.Contains(out, "sub") || !strings.Contains(out, "link1") {
				t.Errorf("ls: exit %d: %s%s", code, out, errs)
			}
			for _, r := range rows {
				if r.Path != "r1/seq.txt" {
					continue
				}
				out, errs, code := imgtool(t, append([]string{"cat", img, c.fsAddr + ":/" + r.Path}, extra...)...)
				sum := sha256.Sum256([]byte(out))
				if code != 0 || hex.EncodeToString(sum[:]) != r.Sum {
					t.Errorf("cat %s: exit %d, sha256 %x, want %s: %s", r.Path, code, sum, r.Sum, errs)
				}
			}
		})
	}
}

// TestMDCheckCLI: md check passes on the kernel's raid5 and names the bad
// stripe after one byte of a member's data area is flipped.
func TestMDCheckCLI(t *testing.T) {
	args := mdArgs(t, "r5lvm", 3)
	out, errs, code := imgtool(t, append([]string{"md", "check", args[0], "md-r5lvm"}, args[1:]...)...)
	if code != 0 || !strings.Contains(out, "redundancy agrees") {
		t.Fatalf("clean: exit %d: %s%s", code, out, errs)
	}
	// Member 1's data starts at 1 MiB (mdadm --examine); chunk 64 KiB.
	b, err := os.ReadFile(args[2])
	if err != nil {
		t.Fatal(err)
	}
	b[1<<20+5*64<<10+1000] ^= 1
	bad := filepath.Join(t.TempDir(), "m1.img")
	if err := os.WriteFile(bad, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code = imgtool(t, "md", "check", args[0], "md-r5lvm", "--add", bad, args[3], args[4])
	if code != exitError || !strings.Contains(out, "stripe 5 ") || !strings.Contains(out, fmt.Sprintf("member data bytes %d+512", 5*64<<10+512)) {
		t.Errorf("one flipped byte: exit %d: %s%s", code, out, errs)
	}
	if _, errs, code := imgtool(t, append([]string{"md", "check", args[0], "a1"}, args[1:]...)...); code != exitError || !strings.Contains(errs, "not an MD array") {
		t.Errorf("check of a member: exit %d %s", code, errs)
	}
}
