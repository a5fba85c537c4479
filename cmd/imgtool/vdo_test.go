package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// TestVDOAndIntegrityNotReadable (issue 15 point 2): LVs whose segments
// are VDO (vdo-pool, vdo) or dm-integrity are listed with the segment type
// lvm2 reports for them and refused with a clear error naming the volume,
// while the linear LV next to them reads byte-exact. The fixture's metadata
// was written and validated by lvm2 itself (fixtures/scripts/lvm-vdo-integrity.sh).
func TestVDOAndIntegrityNotReadable(t *testing.T) {
	img := fixturetest.Image(t, "lvm-vdo-integrity")
	var lvs struct {
		Report []struct {
			LV []struct {
				Name    string `json:"lv_name"`
				Segtype string `json:"segtype"`
			} `json:"lv"`
		} `json:"report"`
	}
	if err := json.Unmarshal(fixturetest.Golden(t, "lvm-vdo-integrity-lvs.json"), &lvs); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{} // visible LV -> lvm2's segtype
	for _, lv := range lvs.Report[0].LV {
		if !strings.HasPrefix(lv.Name, "[") {
			want["vgv/"+lv.Name] = lv.Segtype
		}
	}
	if len(want) != 4 {
		t.Fatalf("golden lists %d visible LVs, want 4: %v", len(want), want)
	}

	out, errs, code := imgtool(t, "inspect", "--json", img)
	if code != exitOK {
		t.Fatalf("inspect: exit %d: %s", code, errs)
	}
	var doc any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]any{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if a, ok := v["address"].(string); ok && v["kind"] == "lv" {
				got[a] = v
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(doc)
	if len(got) != len(want) {
		t.Errorf("inspect lists LVs %v, lvm2 lists %v", vdoTestAddrs(got), want)
	}
	for addr, segtype := range want {
		n := got[addr]
		if n == nil {
			t.Errorf("%s: not in inspect's tree", addr)
			continue
		}
		lv, _ := n["lv"].(map[string]any)
		readable, _ := lv["readable"].(bool)
		if segtype == "linear" {
			if !readable {
				t.Errorf("%s: linear but not readable", addr)
			}
			continue
		}
		if lv["segtype"] != segtype || readable {
			t.Errorf("%s: segtype %v readable %v, lvm2 says %s (not readable)", addr, lv["segtype"], readable, segtype)
		}
		notes, _ := json.Marshal(n["notes"])
		if !strings.Contains(string(notes), segtype+": not readable") {
			t.Errorf("%s: notes %s do not say %q", addr, notes, segtype+": not readable")
		}
		_, errs, code := imgtool(t, "dd", img, addr, "-o", os.DevNull)
		if code != exitError || !strings.Contains(errs, "volume "+addr+":") || !strings.Contains(errs, segtype+": not readable") {
			t.Errorf("dd %s: exit %d, %q", addr, code, errs)
		}
	}

	out, errs, code = imgtool(t, "dd", img, "vgv/plain")
	sum := sha256.Sum256([]byte(out))
	wantSum := strings.Fields(string(fixturetest.Golden(t, "lvm-vdo-integrity.sha256")))[1]
	if code != exitOK || hex.EncodeToString(sum[:]) != wantSum {
		t.Errorf("dd vgv/plain: exit %d %s, sha256 %x, want %s", code, errs, sum, wantSum)
	}
}

func vdoTestAddrs(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
