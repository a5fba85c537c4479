package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// raidArgs returns IMAGE -a IMAGE... for the lvm-raid fixture PVs.
func raidArgs(t *testing.T, names ...string) []string {
	var args []string
	for i, n := range names {
		img := fixturetest.Image(t, n)
		keepImage(t, img)
		if i > 0 {
			args = append(args, "--add")
		}
		args = append(args, img)
	}
	return args
}

func raidGolden(t *testing.T, name string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(fixturetest.Golden(t, name)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 {
			out[f[0]] = f[1]
		}
	}
	if len(out) == 0 {
		t.Fatalf("golden %s is empty", name)
	}
	return out
}

// imgtool dd of every raid LV equals the kernel's sha256, with all PVs,
// with one PV missing, with two missing (raid6) and with a stale member.
func TestRaidLVsDD(t *testing.T) {
	all := []string{"lvm-raid-pv0", "lvm-raid-pv1", "lvm-raid-pv2", "lvm-raid-pv3", "lvm-raid-pv4"}
	cases := []struct {
		golden string
		pvs    []string
	}{
		{"lvm-raid.sha256", all},
		{"lvm-raid-degraded1.sha256", []string{"lvm-raid-pv0", "lvm-raid-pv2", "lvm-raid-pv3", "lvm-raid-pv4"}},
		{"lvm-raid-degraded2.sha256", []string{"lvm-raid-pv0", "lvm-raid-pv2", "lvm-raid-pv4"}},
		{"lvm-raid-stale.sha256", []string{"lvm-raid-stale-pv0", "lvm-raid-pv1", "lvm-raid-stale-pv2", "lvm-raid-stale-pv3", "lvm-raid-stale-pv4"}},
	}
	for _, c := range cases {
		args := raidArgs(t, c.pvs...)
		for lv, want := range raidGolden(t, c.golden) {
			out, errs, code := imgtool(t, append([]string{"dd", args[0], lv}, args[1:]...)...)
			sum := sha256.Sum256([]byte(out))
			if code != 0 || hex.EncodeToString(sum[:]) != want {
				t.Errorf("%s: dd %s: exit %d, sha256 %x, the kernel read %s: %s", c.golden, lv, code, sum, want, errs)
			}
		}
	}
}

// Files extracted from the ext4 on raid5 and raid6 LVs equal the kernel's
// listing, with the PV that holds member 2 of both (lvm-raid-pv2) missing:
// their chunks come from parity.
func TestRaidLVsExtract(t *testing.T) {
	args := raidArgs(t, "lvm-raid-pv0", "lvm-raid-pv1", "lvm-raid-pv3", "lvm-raid-pv4")
	out, _, code := imgtool(t, append([]string{"inspect", args[0]}, args[1:]...)...)
	if code != 0 || !strings.Contains(out, "raid5 degraded: member 2 (r5ls_rimage_2)") || !strings.Contains(out, "raid6 degraded: member 2 (r6zr_rimage_2)") {
		t.Errorf("inspect does not show r5ls and r6zr degraded: exit %d\n%s", code, out)
	}
	for _, lv := range []string{"r5ls", "r6zr"} {
		dest := filepath.Join(t.TempDir(), lv)
		_, errs, code := imgtool(t, append([]string{"extract", args[0], "vgraid/" + lv + ":/", dest}, args[1:]...)...)
		if code != 0 {
			t.Fatalf("extract %s: exit %d: %s", lv, code, errs)
		}
		if n := fixturetest.CheckTree(t, dest, fixturetest.Manifest(t, "lvm-raid-"+lv+".manifest")); n < 10 {
			t.Errorf("%s: only %d files checked", lv, n)
		}
	}
}

func TestRaidLVCheck(t *testing.T) {
	args := raidArgs(t, "lvm-raid-pv0", "lvm-raid-pv1", "lvm-raid-pv2", "lvm-raid-pv3", "lvm-raid-pv4")
	out, errs, code := imgtool(t, append([]string{"lvm", "check", args[0], "vgraid/r6nc"}, args[1:]...)...)
	if code != 0 || !strings.Contains(out, "parity agrees") || !strings.Contains(out, "raid6_nc") {
		t.Errorf("check r6nc: exit %d\n%s%s", code, out, errs)
	}
	out, _, code = imgtool(t, append([]string{"lvm", "check", args[0], "vgraid/r5ra", "--json"}, args[1:]...)...)
	var pcs []struct {
		Stripes  int64 `json:"stripes"`
		Checked  int64 `json:"checked"`
		BadCount int64 `json:"bad_count"`
	}
	if err := json.Unmarshal(jsonKey(t, out, "segments"), &pcs); code != 0 || err != nil || len(pcs) != 1 ||
		pcs[0].Stripes == 0 || pcs[0].Checked != pcs[0].Stripes || pcs[0].BadCount != 0 {
		t.Errorf("check --json: exit %d, %v: %s", code, err, out)
	}
	// raid5 with a member missing: no stripe can be verified, exit 1.
	deg := raidArgs(t, "lvm-raid-pv0", "lvm-raid-pv2", "lvm-raid-pv3", "lvm-raid-pv4")
	out, errs, code = imgtool(t, append([]string{"lvm", "check", deg[0], "vgraid/r5rs"}, deg[1:]...)...)
	if code != exitError || !strings.Contains(out, "missing PV") || !strings.Contains(errs, "could not be verified") {
		t.Errorf("check of a degraded raid5: exit %d\n%s%s", code, out, errs)
	}
}
