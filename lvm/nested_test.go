package lvm

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/image"
)

// sfdiskPart returns partition n (1-based) of an sfdisk -J golden as byte
// offset and size.
func sfdiskPart(t *testing.T, golden string, n int) (int64, int64) {
	t.Helper()
	var d struct {
		PT struct {
			SectorSize int64 `json:"sectorsize"`
			Partitions []struct {
				Start, Size int64
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(fixturetest.Golden(t, golden), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.PT.Partitions) < n {
		t.Fatalf("%s has %d partitions", golden, len(d.PT.Partitions))
	}
	p := d.PT.Partitions[n-1]
	return p.Start * d.PT.SectorSize, p.Size * d.PT.SectorSize
}

// dom0VGs reads the dom0 fixture: the host PV in partition 2, then the
// guest disk inside LV domu1 and the guest PV in its partition 2.
func dom0VGs(t *testing.T, r image.ReaderAtSize) (host, guest *VG, guestPV *PV) {
	t.Helper()
	off, size := sfdiskPart(t, "dom0-sfdisk.json", 2)
	pv, err := ReadPV(image.NewSection(r, off, size), size)
	if err != nil {
		t.Fatal(err)
	}
	host = findVG(t, assemble(t, pv), "VolGroup00")
	domu, err := host.LV("domu1").Open()
	if err != nil {
		t.Fatal(err)
	}
	goff, gsize := sfdiskPart(t, "dom0-guest-sfdisk.json", 2)
	guestPV, err = ReadPV(image.NewSection(domu, goff, gsize), gsize)
	if err != nil {
		t.Fatal(err)
	}
	guest = findVG(t, assemble(t, guestPV), "VolGroup00")
	return host, guest, guestPV
}

// The dom0 disk holds VolGroup00, whose LV domu1 is a disk with its own
// VolGroup00: both are read and told apart by UUID, as lvm2 reported them
// when the fixture was built.
func TestNestedSameNameVGs(t *testing.T) {
	im, err := image.Open(fixturetest.Image(t, "dom0"))
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	host, guest, _ := dom0VGs(t, im)
	if host.UUID == guest.UUID {
		t.Fatal("host and guest VG have the same UUID")
	}
	for _, c := range []struct {
		vg     *VG
		golden string
	}{{host, "dom0-lvs.json"}, {guest, "dom0-guest-lvs.json"}} {
		for _, g := range goldenRows(t, c.golden) {
			if g["vg_uuid"] != c.vg.UUID {
				t.Errorf("%s: VG UUID %s, lvm2 says %s", c.golden, c.vg.UUID, g["vg_uuid"])
			}
			lv := c.vg.LV(g["lv_name"])
			if lv == nil {
				t.Errorf("%s: LV %s missing", c.golden, g["lv_name"])
				continue
			}
			size, _ := strconv.ParseInt(g["lv_size"][:len(g["lv_size"])-1], 10, 64) // "25165824B"
			if lv.UUID != g["lv_uuid"] || lv.Size != size {
				t.Errorf("%s: LV %s %s %d, lvm2 says %v", c.golden, lv.Name, lv.UUID, lv.Size, g)
			}
		}
	}
}

// Renaming the guest VG inside the host LV writes through two levels of
// mapping (partition, LV, partition) to absolute offsets of dom0.img; real
// lvm2, given a loop device at the guest PV's absolute offset, sees the new
// name and passes vgck; the host VG is untouched; undo restores every byte.
func TestRenameNestedGuestVG(t *testing.T) {
	orig := fixturetest.SHA256File(t, fixturetest.Image(t, "dom0"))
	path := fixturetest.Copy(t, "dom0")
	im, err := image.OpenWritable(path)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	host, guest, guestPV := dom0VGs(t, im)
	plan, err := PlanRename(guest, "GuestVG00", &RenameOptions{NewUUIDs: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range plan.Writes {
		if w.Target != path {
			t.Fatalf("write to %q, want the image file %q", w.Target, path)
		}
	}
	undo := plan.Undo()
	targets := map[string]WriteTarget{path: im}
	if err := Apply(plan, targets); err != nil {
		t.Fatal(err)
	}
	_, abs, _, err := image.Resolve(guestPV.R, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, gsize := sfdiskPart(t, "dom0-guest-sfdisk.json", 2)
	l := newLVM2WithLoop(t, path, abs, gsize)
	rows := l.report("vgs", "vg_name,vg_uuid,vg_seqno")
	if len(rows) != 1 || rows[0]["vg_name"] != "GuestVG00" || rows[0]["vg_uuid"] != plan.NewVGUUID ||
		rows[0]["vg_seqno"] != strconv.FormatUint(plan.NewSeqno, 10) {
		t.Errorf("lvm2 sees %v, plan %s %s %d", rows, plan.NewName, plan.NewVGUUID, plan.NewSeqno)
	}
	if out, err := l.run("vgck", "GuestVG00"); err != nil {
		t.Errorf("vgck: %v %s", err, out)
	}
	l.detach()
	host2, guest2, _ := dom0VGs2(t, im)
	if host2.Seqno != host.Seqno || string(host2.Text) != string(host.Text) {
		t.Error("host VG metadata changed")
	}
	if guest2.Name != "GuestVG00" || guest2.UUID != plan.NewVGUUID {
		t.Errorf("guest re-read as %s %s", guest2.Name, guest2.UUID)
	}
	if err := Undo(undo, targets, false); err != nil {
		t.Fatal(err)
	}
	if got := fixturetest.SHA256File(t, path); got != orig {
		t.Errorf("after undo sha256 %s, original %s", got, orig)
	}
}

// dom0VGs2 is dom0VGs after the rename (guest VG under any name).
func dom0VGs2(t *testing.T, r image.ReaderAtSize) (*VG, *VG, *PV) {
	t.Helper()
	off, size := sfdiskPart(t, "dom0-sfdisk.json", 2)
	pv, err := ReadPV(image.NewSection(r, off, size), size)
	if err != nil {
		t.Fatal(err)
	}
	host := findVG(t, assemble(t, pv), "VolGroup00")
	domu, _ := host.LV("domu1").Open()
	goff, gsize := sfdiskPart(t, "dom0-guest-sfdisk.json", 2)
	gpv, err := ReadPV(image.NewSection(domu, goff, gsize), gsize)
	if err != nil {
		t.Fatal(err)
	}
	vgs := assemble(t, gpv)
	if len(vgs) != 1 {
		t.Fatalf("%d guest VGs", len(vgs))
	}
	return host, vgs[0], gpv
}

// newLVM2WithLoop is newLVM2 with one loop device over [off, off+size) of
// path.
func newLVM2WithLoop(t *testing.T, path string, off, size int64) *lvm2 {
	t.Helper()
	l := newLVM2(t)
	l.attach(path, "-o", strconv.FormatInt(off, 10), "--sizelimit", strconv.FormatInt(size, 10))
	return l
}
