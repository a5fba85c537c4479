package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/lvm"
)

// lvm2Report reads a `pvs`/`lvs --reportformat json --units b` golden.
func lvm2Report(t *testing.T, name, kind string) []map[string]string {
	var rep struct {
		Report []map[string][]map[string]string `json:"report"`
	}
	if err := json.Unmarshal(fixturetest.Golden(t, name), &rep); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return rep.Report[0][kind]
}

func bytesField(t *testing.T, s string) int64 {
	n, err := strconv.ParseInt(strings.TrimSuffix(s, "B"), 10, 64)
	if err != nil {
		t.Fatalf("size %q: %v", s, err)
	}
	return n
}

// `lvm list --json` agrees with lvm2's own pvs/lvs on the dom0 fixture,
// for the host VG and for the nested guest VG of the same name.
func TestLVMListMatchesLVM2(t *testing.T) {
	out, errs, code := imgtool(t, "lvm", "list", fixturetest.Image(t, "dom0"), "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var l lvmListing
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ pvs, lvs, vgAddr string }{
		{"dom0-pvs.json", "dom0-lvs.json", "VolGroup00"},
		{"dom0-guest-pvs.json", "dom0-guest-lvs.json", "VolGroup00/domu1/VolGroup00"},
	} {
		for _, want := range lvm2Report(t, c.pvs, "pv") {
			found := false
			for _, got := range l.PVs {
				if got.UUID == want["pv_uuid"] {
					found = true
					if got.VGUUID != want["vg_uuid"] || got.VGName != want["vg_name"] ||
						got.Size != bytesField(t, want["pv_size"]) || got.PEStart != bytesField(t, want["pe_start"]) {
						t.Errorf("PV %s: got %+v, lvm2 says %v", want["pv_uuid"], got, want)
					}
				}
			}
			if !found {
				t.Errorf("PV %s missing", want["pv_uuid"])
			}
		}
		for _, want := range lvm2Report(t, c.lvs, "lv") {
			addr := c.vgAddr + "/" + want["lv_name"]
			found := false
			for _, got := range l.LVs {
				if got.Address == addr {
					found = true
					if got.UUID != want["lv_uuid"] || got.Size != bytesField(t, want["lv_size"]) || got.Segtype != want["segtype"] {
						t.Errorf("LV %s: got %+v, lvm2 says %v", addr, got.LVReport, want)
					}
				}
			}
			if !found {
				t.Errorf("LV %s missing", addr)
			}
		}
	}
	clashes := 0
	for _, v := range l.VGs {
		if v.Clash {
			clashes++
		}
	}
	if len(l.VGs) != 2 || clashes != 2 {
		t.Errorf("VGs %d, flagged clashes %d; want 2 and 2", len(l.VGs), clashes)
	}
}

func TestLVMMetadata(t *testing.T) {
	out, errs, code := imgtool(t, "lvm", "metadata", fixturetest.Image(t, "dom0"), "VolGroup00/domu1/VolGroup00")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"VolGroup00 {", "LogVol00 {", "LogVol01 {", "seqno = "} {
		if !strings.Contains(out, want) {
			t.Errorf("metadata lacks %q", want)
		}
	}
	if _, _, code := imgtool(t, "lvm", "metadata", fixturetest.Image(t, "dom0"), "p1"); code != exitError {
		t.Errorf("metadata of a partition: exit %d", code)
	}
}

// lvm check finds exactly the ranges the fixture script made differ.
func TestLVMCheckFindsDifferingLegs(t *testing.T) {
	img := fixturetest.Image(t, "lvm-raid1")
	for _, line := range strings.Split(strings.TrimSpace(string(fixturetest.Golden(t, "lvm-raid1.differ"))), "\n") {
		var lv string
		var off, n int64
		if _, err := fmt.Sscanf(line, "%s %d %d", &lv, &off, &n); err != nil {
			t.Fatal(err)
		}
		out, _, code := imgtool(t, "lvm", "check", img, lv, "--json")
		if code != exitError {
			t.Errorf("%s: exit %d, want 1 for differing legs", lv, code)
		}
		var diffs []lvm.MirrorDiff
		if err := json.Unmarshal(jsonKey(t, out, "segments"), &diffs); err != nil {
			t.Fatal(err)
		}
		var got []lvm.Range
		for _, d := range diffs {
			got = append(got, d.Differ...)
		}
		if len(got) != 1 || got[0].Off > off || got[0].Off+got[0].Len < off+n {
			t.Errorf("%s: differing ranges %v, script changed %d+%d", lv, got, off, n)
		}
	}
	if _, _, code := imgtool(t, "lvm", "check", fixturetest.Image(t, "dom0"), "VolGroup00/LogVol00"); code != exitError {
		t.Errorf("check of a linear LV: exit %d, want an error", code)
	}
}

// With every on-disk metadata copy gone, --lvm-backup takes vgcfgbackup's
// text, and the LVs read back with the contents the script wrote.
func TestLVMBackupFile(t *testing.T) {
	img := fixturetest.Copy(t, "lvm-linear")
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(make([]byte, 512), 4096) // the first metadata area's header
	f.Close()
	out, _, _ := imgtool(t, "lvm", "list", img, "--json")
	if strings.Contains(out, `"vglin"`) {
		t.Fatal("VG still assembled with its metadata area header wiped; the test proves nothing")
	}
	backup := filepath.Join(fixturetest.Dir(), "golden", "lvm-linear-vglin.vg")
	for _, line := range strings.Split(strings.TrimSpace(string(fixturetest.Golden(t, "lvm-linear.sha256"))), "\n") {
		lv, sum, _ := strings.Cut(line, " ")
		dst := filepath.Join(t.TempDir(), "lv")
		if _, errs, code := imgtool(t, "dd", img, lv, "--lvm-backup", backup, "-o", dst); code != 0 {
			t.Fatalf("dd %s: exit %d: %s", lv, code, errs)
		}
		if got := fixturetest.SHA256File(t, dst); got != sum {
			t.Errorf("%s: sha256 %s, script wrote %s", lv, got, sum)
		}
	}
}
