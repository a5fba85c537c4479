package lvm

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/image"
)

// openPV opens fixture image name read-only and reads its PV label.
func openPV(t testing.TB, name string) *PV {
	t.Helper()
	im, err := image.Open(fixturetest.Image(t, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { im.Close() })
	pv, err := ReadPV(im, im.Size())
	if err != nil {
		t.Fatalf("%s: ReadPV: %v", name, err)
	}
	pv.Name = name
	return pv
}

func assemble(t testing.TB, pvs ...*PV) []*VG {
	t.Helper()
	vgs, err := Assemble(pvs, nil)
	if err != nil {
		t.Fatalf("Assemble: %v", err)
	}
	return vgs
}

func findVG(t testing.TB, vgs []*VG, name string) *VG {
	t.Helper()
	for _, vg := range vgs {
		if vg.Name == name {
			return vg
		}
	}
	t.Fatalf("VG %s not assembled (have %d VGs)", name, len(vgs))
	return nil
}

// goldenRows returns the rows of an lvm2 --reportformat json golden.
func goldenRows(t testing.TB, file string) []map[string]string {
	t.Helper()
	var rep struct {
		Report []map[string][]map[string]string `json:"report"`
	}
	if err := json.Unmarshal(fixturetest.Golden(t, file), &rep); err != nil {
		t.Fatalf("golden %s: %v", file, err)
	}
	var rows []map[string]string
	for _, r := range rep.Report {
		for _, v := range r {
			rows = append(rows, v...)
		}
	}
	if len(rows) == 0 {
		t.Fatalf("golden %s has no rows", file)
	}
	return rows
}

// goldenSHA reads "VG/LV sha256" lines.
func goldenSHA(t testing.TB, file string) map[string]string {
	t.Helper()
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(fixturetest.Golden(t, file)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 {
			out[f[0]] = f[1]
		}
	}
	if len(out) == 0 {
		t.Fatalf("golden %s is empty", file)
	}
	return out
}

func shaOf(t testing.TB, r image.ReaderAtSize) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, r.Size())); err != nil {
		t.Fatalf("reading: %v", err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func atoi(t testing.TB, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("golden number %q: %v", s, err)
	}
	return n
}

// checkContents compares every LV listed in the sha256 golden with what
// Open reads.
func checkContents(t *testing.T, vgs []*VG, file string) {
	t.Helper()
	for name, want := range goldenSHA(t, file) {
		vgName, lvName, _ := strings.Cut(name, "/")
		vg := findVG(t, vgs, vgName)
		lv := vg.LV(lvName)
		if lv == nil {
			t.Errorf("%s: LV not found", name)
			continue
		}
		r, err := lv.Open()
		if err != nil {
			t.Errorf("%s: Open: %v", name, err)
			continue
		}
		if got := shaOf(t, r); got != want {
			t.Errorf("%s: sha256 %s, lvm2-built content has %s", name, got, want)
		}
	}
}

// checkFacts compares PV/VG/LV/segment facts with the pvs/vgs/lvs goldens
// captured by the fixture script (prefix-{pvs,vgs,lvs,segs}.json).
func checkFacts(t *testing.T, vgs []*VG, prefix string) {
	t.Helper()
	// PV device name (loop device at build time) -> UUID.
	devUUID := map[string]string{}
	pvs := map[string]PVReport{}
	for _, vg := range vgs {
		for _, p := range vg.PVReports() {
			pvs[p.UUID] = p
		}
	}
	for _, g := range goldenRows(t, prefix+"-pvs.json") {
		devUUID[g["pv_name"]] = g["pv_uuid"]
		p, ok := pvs[g["pv_uuid"]]
		if !ok {
			t.Errorf("PV %s not found", g["pv_uuid"])
			continue
		}
		if p.VGName != g["vg_name"] || p.VGUUID != g["vg_uuid"] || p.PEStart != atoi(t, g["pe_start"]) ||
			p.PECount != atoi(t, g["pv_pe_count"]) || p.Size != atoi(t, g["pv_size"]) ||
			p.DevSize != atoi(t, g["dev_size"]) || int64(p.MDACount) != atoi(t, g["pv_mda_count"]) {
			t.Errorf("PV %s: got %+v, lvm2 says %v", g["pv_uuid"], p, g)
		}
	}
	for _, g := range goldenRows(t, prefix+"-vgs.json") {
		var r *VGReport
		for _, vg := range vgs {
			if vg.UUID == g["vg_uuid"] {
				rr := vg.Report()
				r = &rr
			}
		}
		if r == nil {
			t.Errorf("VG %s (%s) not assembled", g["vg_name"], g["vg_uuid"])
			continue
		}
		if r.Name != g["vg_name"] || r.Size != atoi(t, g["vg_size"]) || r.ExtentSize != atoi(t, g["vg_extent_size"]) ||
			r.ExtentCount != atoi(t, g["vg_extent_count"]) || r.FreeCount != atoi(t, g["vg_free_count"]) ||
			int64(r.Seqno) != atoi(t, g["vg_seqno"]) || int64(r.PVCount) != atoi(t, g["pv_count"]) ||
			int64(r.LVCount) != atoi(t, g["lv_count"]) {
			t.Errorf("VG %s: got %+v, lvm2 says %v", g["vg_name"], *r, g)
		}
	}
	lvs := map[string]LVReport{}
	for _, vg := range vgs {
		for _, l := range vg.LVReports() {
			lvs[l.VGName+"/"+l.Name] = l
		}
	}
	unbr := func(s string) string { return strings.Trim(s, "[]") }
	for _, g := range goldenRows(t, prefix+"-lvs.json") {
		key := g["vg_name"] + "/" + unbr(g["lv_name"])
		l, ok := lvs[key]
		if !ok {
			t.Errorf("LV %s not found", key)
			continue
		}
		hidden := strings.HasPrefix(g["lv_name"], "[")
		if l.UUID != g["lv_uuid"] || l.Size != atoi(t, g["lv_size"]) || l.Segtype != g["segtype"] ||
			int64(l.SegCount) != atoi(t, g["seg_count"]) || l.Visible == hidden ||
			l.Origin != unbr(g["origin"]) || l.PoolLV != unbr(g["pool_lv"]) || l.DataLV != unbr(g["data_lv"]) ||
			l.MetadataLV != unbr(g["metadata_lv"]) {
			t.Errorf("LV %s: got %+v, lvm2 says %v", key, l, g)
		}
	}
	segs := map[string]SegReport{}
	for _, vg := range vgs {
		for _, s := range vg.SegReports() {
			segs[s.VGName+"/"+s.LVName+"@"+strconv.FormatInt(s.Start, 10)] = s
		}
	}
	for _, g := range goldenRows(t, prefix+"-segs.json") {
		key := g["vg_name"] + "/" + unbr(g["lv_name"]) + "@" + g["seg_start"]
		s, ok := segs[key]
		if !ok {
			t.Errorf("segment %s not found", key)
			continue
		}
		var ranges []string
		for _, r := range strings.Fields(g["seg_pe_ranges"]) {
			dev, rest, _ := strings.Cut(r, ":")
			if u, ok := devUUID[dev]; ok {
				dev = u
			}
			ranges = append(ranges, unbr(dev)+":"+rest)
		}
		if s.Size != atoi(t, g["seg_size"]) || s.Segtype != g["segtype"] || s.Stripes != atoi(t, g["stripes"]) ||
			s.StripeSize != atoi(t, g["stripe_size"]) ||
			(len(ranges) > 0 && strings.Join(ranges, " ") != strings.Join(s.PERanges, " ")) {
			t.Errorf("segment %s: got %+v, lvm2 says %v (ranges %v)", key, s, g, ranges)
		}
	}
}
