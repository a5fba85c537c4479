package lvm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
)

// The lvm-raid fixtures were built by a real kernel (dm-raid in libguestfs's
// appliance, fixtures/scripts/lvm-raid.sh): every golden sha256 is what the
// kernel read from /dev/vgraid/LV.

func raidPVs(t *testing.T, names ...string) []*PV {
	t.Helper()
	var pvs []*PV
	for _, n := range names {
		pvs = append(pvs, openPV(t, n))
	}
	return pvs
}

// checkRaidContents compares every LV of the golden with what Open reads,
// and requires the golden to hold exactly the LVs listed in want (so a
// fixture that lost an LV fails).
func checkRaidContents(t *testing.T, vg *VG, golden string, want ...string) {
	t.Helper()
	sums := goldenSHA(t, golden)
	var have []string
	for name, sum := range sums {
		have = append(have, name)
		_, lvName, _ := strings.Cut(name, "/")
		lv := vg.LV(lvName)
		if lv == nil {
			t.Errorf("%s: %s: LV not found", golden, name)
			continue
		}
		r, err := lv.Open()
		if err != nil {
			t.Errorf("%s: %s: Open: %v", golden, name, err)
			continue
		}
		if got := shaOf(t, r); got != sum {
			t.Errorf("%s: %s (%s): sha256 %s, the kernel read %s", golden, name, lv.Type, got, sum)
		}
	}
	sort.Strings(have)
	if len(want) > 0 && fmt.Sprint(have) != fmt.Sprint(want) {
		t.Errorf("%s holds %v, want %v", golden, have, want)
	}
}

var allRaidLVs = []string{"vgraid/r10", "vgraid/r4", "vgraid/r5la", "vgraid/r5ls", "vgraid/r5n", "vgraid/r5ra", "vgraid/r5rs",
	"vgraid/r6ls6", "vgraid/r6n6", "vgraid/r6nc", "vgraid/r6nr", "vgraid/r6ra6", "vgraid/r6zr"}

func TestRaidParityLVs(t *testing.T) {
	vg := findVG(t, assemble(t, raidPVs(t, "lvm-raid-pv0", "lvm-raid-pv1", "lvm-raid-pv2", "lvm-raid-pv3", "lvm-raid-pv4")...), "vgraid")
	checkRaidContents(t, vg, "lvm-raid.sha256", allRaidLVs...)
	// Every layout lvm2 made is what the test thinks it is.
	types := map[string]bool{}
	for _, name := range allRaidLVs {
		lv := vg.LV(strings.TrimPrefix(name, "vgraid/"))
		types[lv.Type] = true
		st, err := lv.RaidStatus()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if st[0].Degraded || len(st[0].Notes) != 0 {
			t.Errorf("%s: healthy array reported degraded or with notes: %+v", name, st[0])
		}
		for i, m := range st[0].Members {
			if m.Superblock == nil || int(m.Superblock.ArrayPosition) != i || !m.Used {
				t.Errorf("%s member %d: %+v", name, i, m)
			}
		}
	}
	// lvm2 records its defaults raid5_ls and raid6_zr as "raid5" and "raid6".
	for _, ty := range []string{"raid4", "raid5", "raid5_rs", "raid5_la", "raid5_ra", "raid5_n", "raid6", "raid6_nr", "raid6_nc", "raid6_n_6", "raid6_ls_6", "raid6_ra_6", "raid10"} {
		if !types[ty] {
			t.Errorf("no fixture LV of type %s (have %v)", ty, types)
		}
	}
	// A healthy array has consistent parity everywhere.
	for _, name := range allRaidLVs {
		lv := vg.LV(strings.TrimPrefix(name, "vgraid/"))
		if lv.Type == "raid10" {
			continue
		}
		pcs, err := lv.CheckParity(10)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, pc := range pcs {
			if pc.BadCount != 0 || pc.Unverifiable != 0 || pc.Checked != pc.Stripes || pc.Stripes == 0 {
				t.Errorf("%s: %+v", name, pc)
			}
		}
	}
}

// lvm-raid-pv1 absent: every LV has a member on it; the kernel's own
// degraded reads are the goldens.
func TestRaidDegradedOnePV(t *testing.T) {
	vg := findVG(t, assemble(t, raidPVs(t, "lvm-raid-pv0", "lvm-raid-pv2", "lvm-raid-pv3", "lvm-raid-pv4")...), "vgraid")
	if len(vg.Missing) != 1 {
		t.Fatalf("missing PVs %v", vg.Missing)
	}
	checkRaidContents(t, vg, "lvm-raid-degraded1.sha256", allRaidLVs...)
	// The degraded golden equals the healthy one (same data, rebuilt).
	healthy := goldenSHA(t, "lvm-raid.sha256")
	for name, sum := range goldenSHA(t, "lvm-raid-degraded1.sha256") {
		if healthy[name] != sum {
			t.Errorf("%s: the kernel's degraded read differs from its healthy read", name)
		}
	}
	for _, name := range allRaidLVs {
		st, err := vg.LV(strings.TrimPrefix(name, "vgraid/")).RaidStatus()
		if err != nil || !st[0].Degraded {
			t.Errorf("%s with pv1 missing: not degraded (%v)", name, err)
		}
	}
	st, err := vg.LV("r5rs").RaidStatus()
	if err != nil {
		t.Fatal(err)
	}
	missing := 0
	for _, m := range st[0].Members {
		if m.MissingPV != "" {
			missing++
			if m.Used {
				t.Errorf("member on a missing PV in use: %+v", m)
			}
		}
	}
	if !st[0].Degraded || missing != 1 {
		t.Errorf("r5rs with pv1 missing: %+v", st[0])
	}
	// Parity cannot be verified on stripes of a raid5 missing a member;
	// raid6 still verifies the other syndrome.
	pcs, err := vg.LV("r5rs").CheckParity(10)
	if err != nil || pcs[0].Unverifiable != pcs[0].Stripes {
		t.Errorf("raid5 check with a member missing: %+v %v", pcs, err)
	}
	pcs, err = vg.LV("r6nr").CheckParity(10)
	if err != nil || pcs[0].Unverifiable != 0 || pcs[0].BadCount != 0 {
		t.Errorf("raid6 check with a member missing: %+v %v", pcs, err)
	}
}

// pv1 and pv3 absent: raid6 LVs rebuild two members; raid5 ones fail with
// a clear error.
func TestRaidDegradedTwoPVs(t *testing.T) {
	vg := findVG(t, assemble(t, raidPVs(t, "lvm-raid-pv0", "lvm-raid-pv2", "lvm-raid-pv4")...), "vgraid")
	checkRaidContents(t, vg, "lvm-raid-degraded2.sha256")
	sums := goldenSHA(t, "lvm-raid-degraded2.sha256")
	for _, name := range []string{"vgraid/r6zr", "vgraid/r6nr", "vgraid/r6nc", "vgraid/r6n6", "vgraid/r6ls6", "vgraid/r6ra6"} {
		if sums[name] == "" {
			t.Errorf("%s: no degraded2 golden", name)
		}
	}
	_, err := vg.LV("r5rs").Open()
	if err == nil || !strings.Contains(err.Error(), "2 of 4 members missing") {
		t.Errorf("raid5 with two members missing: %v", err)
	}
}

// Writes made while pv1 was absent: the stale pv1 is back, its rmeta has
// fewer events and the others' superblocks mark it failed, so its data is
// not trusted.
func TestRaidStaleMember(t *testing.T) {
	for _, withStale := range []bool{true, false} {
		names := []string{"lvm-raid-stale-pv0", "lvm-raid-stale-pv2", "lvm-raid-stale-pv3", "lvm-raid-stale-pv4"}
		if withStale {
			names = append(names, "lvm-raid-pv1")
		}
		vg := findVG(t, assemble(t, raidPVs(t, names...)...), "vgraid")
		checkRaidContents(t, vg, "lvm-raid-stale.sha256", allRaidLVs...)
		if !withStale {
			continue
		}
		for _, lv := range []string{"r5la", "r5rs", "r6nr", "r10"} {
			st, err := vg.LV(lv).RaidStatus()
			if err != nil {
				t.Fatal(err)
			}
			failed := 0
			for _, m := range st[0].Members {
				if m.Failed {
					failed++
				}
			}
			if failed != 1 || !st[0].Degraded {
				t.Errorf("%s with stale pv1: %+v", lv, st[0])
			}
		}
	}
	// The rewritten LVs really changed (so the test above can tell a stale
	// read from a fresh one).
	healthy, stale := goldenSHA(t, "lvm-raid.sha256"), goldenSHA(t, "lvm-raid-stale.sha256")
	for _, n := range []string{"vgraid/r5la", "vgraid/r5rs", "vgraid/r6nr", "vgraid/r10"} {
		if healthy[n] == stale[n] {
			t.Errorf("%s: degraded write did not change it", n)
		}
	}
}

// flipReader flips one byte of an image at off.
type flipReader struct {
	r   io.ReaderAt
	off int64
}

func (f flipReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.r.ReadAt(p, off)
	if f.off >= off && f.off < off+int64(n) {
		p[f.off-off] ^= 0x5a
	}
	return n, err
}

// One flipped byte in a member's data: CheckParity names that stripe and
// the PV byte where the corrupted chunk lies; the flip position comes from
// lvm2's own segment report (vgcfgbackup of the fixture), not from the
// raid maths under test.
func TestRaidCheckFindsCorruption(t *testing.T) {
	for _, c := range []struct {
		lv     string
		member int
		moff   int64 // byte in the member's data area
	}{{"r5rs", 2, 3*16384 + 1000}, {"r6zr", 4, 5*16384 + 7}, {"r4", 0, 16384 + 600}} {
		pvs := raidPVs(t, "lvm-raid-pv0", "lvm-raid-pv1", "lvm-raid-pv2", "lvm-raid-pv3", "lvm-raid-pv4")
		vg := findVG(t, assemble(t, pvs...), "vgraid")
		img := vg.LV(fmt.Sprintf("%s_rimage_%d", c.lv, c.member))
		if img == nil || len(img.Segments) != 1 || len(img.Segments[0].Areas) != 1 {
			t.Fatalf("%s rimage %d: unexpected layout", c.lv, c.member)
		}
		a := img.Segments[0].Areas[0]
		p := vg.pvByName[a.PV]
		pvOff := p.PEStart + a.Extent*vg.ExtentSize + c.moff
		var target *PV
		for _, pv := range pvs {
			if pv.UUID == p.UUID {
				target = pv
			}
		}
		target.R = flipReader{target.R, pvOff}
		vg = findVG(t, assemble(t, pvs...), "vgraid")
		pcs, err := vg.LV(c.lv).CheckParity(10)
		if err != nil {
			t.Fatal(err)
		}
		pc := pcs[0]
		chunk := vg.LV(c.lv).Segments[0].StripeSize
		if pc.BadCount != 1 || len(pc.Bad) != 1 {
			t.Fatalf("%s: %d bad stripes (%+v), want 1", c.lv, pc.BadCount, pc.Bad)
		}
		b := pc.Bad[0]
		if b.Stripe != c.moff/chunk || b.MemberOff != c.moff/512*512 || b.Len != 512 {
			t.Errorf("%s: bad stripe %+v, flipped member byte %d", c.lv, b, c.moff)
		}
		loc := b.Locations[c.member]
		if loc.PVOffset != pvOff/512*512 || loc.ImageOffset != pvOff/512*512 || loc.PV != a.PV {
			t.Errorf("%s: location %+v, flipped PV %s byte %d", c.lv, loc, a.PV, pvOff)
		}
		// Reading still works (the data chunk itself is what is stored).
		if _, err := vg.LV(c.lv).Open(); err != nil {
			t.Fatal(err)
		}
	}
}

// A member part-way through a rebuild (disk_recovery_offset in its rmeta
// superblock) serves only the bytes below that offset; above it its chunks
// are rebuilt. The fixture's superblock of r6zr member 2 is edited to say
// the rebuild reached 256 KiB, and the member's data above is overwritten
// with junk: the LV must still read as the kernel wrote it, and the same
// junk without the superblock edit must change what is read (so the test
// can fail).
func TestRaidRebuildPosition(t *testing.T) {
	names := []string{"lvm-raid-pv0", "lvm-raid-pv1", "lvm-raid-pv2", "lvm-raid-pv3", "lvm-raid-pv4"}
	want := goldenSHA(t, "lvm-raid.sha256")["vgraid/r6zr"]
	const rebuilt = 256 << 10
	for _, edit := range []bool{true, false} {
		pvs := raidPVs(t, names...)
		vg := findVG(t, assemble(t, pvs...), "vgraid")
		place := func(lv string) (*PV, int64) {
			a := vg.LV(lv).Segments[0].Areas[0]
			p := vg.pvByName[a.PV]
			for _, pv := range pvs {
				if pv.UUID == p.UUID {
					return pv, p.PEStart + a.Extent*vg.ExtentSize
				}
			}
			t.Fatalf("%s: PV not open", lv)
			return nil, 0
		}
		r, _ := vg.LV("r6zr_rmeta_2").Open()
		sb := make([]byte, 512)
		if _, err := r.ReadAt(sb, 0); err != nil {
			t.Fatal(err)
		}
		if edit {
			binary.LittleEndian.PutUint64(sb[32:], rebuilt/512)
		}
		junk := bytes.Repeat([]byte{0xaa}, 64<<10)
		mpv, moff := place("r6zr_rmeta_2")
		mpv.R = overlayReader{mpv.R, moff, &sb}
		dpv, doff := place("r6zr_rimage_2")
		dpv.R = overlayReader{dpv.R, doff + rebuilt + 4096, &junk}
		vg = findVG(t, assemble(t, pvs...), "vgraid")
		st, err := vg.LV("r6zr").RaidStatus()
		if err != nil {
			t.Fatal(err)
		}
		lr, err := vg.LV("r6zr").Open()
		if err != nil {
			t.Fatal(err)
		}
		got := shaOf(t, lr)
		if edit {
			if m := st[0].Members[2]; m.RebuildFrom != rebuilt || !st[0].Degraded {
				t.Errorf("rebuild position not taken: %+v", m)
			}
			if got != want {
				t.Errorf("r6zr with member 2 rebuilt to %d reads %s, the kernel wrote %s", rebuilt, got, want)
			}
		} else if got == want {
			t.Error("junk in member 2 did not change the read: the test cannot tell")
		}
	}
}

// BenchmarkRaidRead reads the raid5 fixture LV and, for comparison, one of
// its linear rimage sub-LVs, in 32 KiB reads (as io.Copy does). For pprof:
// go test ./lvm -run '^$' -bench RaidRead -cpuprofile cpu.out
func BenchmarkRaidRead(b *testing.B) {
	var pvs []*PV
	for _, n := range []string{"lvm-raid-pv0", "lvm-raid-pv1", "lvm-raid-pv2", "lvm-raid-pv3", "lvm-raid-pv4"} {
		pvs = append(pvs, openPV(b, n))
	}
	vgs, err := Assemble(pvs, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"r5ls", "r5ls_rimage_0"} {
		b.Run(name, func(b *testing.B) {
			r, err := findVG(b, vgs, "vgraid").LV(name).Open()
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 32<<10)
			b.SetBytes(r.Size())
			for b.Loop() {
				for off := int64(0); off < r.Size(); off += int64(len(buf)) {
					if _, err := r.ReadAt(buf[:min(int64(len(buf)), r.Size()-off)], off); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
