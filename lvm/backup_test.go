package lvm

import (
	"io"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/image"
)

// zeroed reads r with [from, to) zeroed: a metadata area header wiped out.
type zeroed struct {
	r        io.ReaderAt
	from, to int64
}

func (z zeroed) ReadAt(p []byte, off int64) (int, error) {
	n, err := z.r.ReadAt(p, off)
	for i := range p[:n] {
		if o := off + int64(i); o >= z.from && o < z.to {
			p[i] = 0
		}
	}
	return n, err
}

// With every on-disk copy gone, the vgcfgbackup file lvm2 wrote for the
// fixture is enough to assemble the VG and read its LVs.
func TestAssembleFromBackupFile(t *testing.T) {
	im, err := image.Open(fixturetest.Image(t, "lvm-linear"))
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	clean, err := ReadPV(im, im.Size())
	if err != nil {
		t.Fatal(err)
	}
	mda := clean.Header.MetadataAreas[0]
	pv, err := ReadPV(zeroed{im, int64(mda.Offset), int64(mda.Offset) + mdaHeaderSize}, im.Size())
	if err != nil {
		t.Fatal(err)
	}
	if pv.MDAs[0].Err == nil || len(pv.Notes) == 0 {
		t.Fatal("wiped mda header not reported")
	}
	if vgs := assemble(t, pv); len(vgs) != 0 {
		t.Fatalf("assembled %d VGs with no metadata", len(vgs))
	}
	if o := Orphans([]*PV{pv}, nil); len(o) != 1 {
		t.Errorf("PV without readable metadata is not an orphan: %v", o)
	}
	md, err := ParseMetadata(fixturetest.Golden(t, "lvm-linear-vglin.vg"))
	if err != nil {
		t.Fatal(err)
	}
	vgs, err := Assemble([]*PV{pv}, &AssembleOptions{Metadata: []*Metadata{md}})
	if err != nil || len(vgs) != 1 {
		t.Fatalf("Assemble with backup: %d VGs, %v", len(vgs), err)
	}
	if vgs[0].Source != nil || len(vgs[0].Notes) == 0 || !strings.Contains(vgs[0].Notes[0], "supplied") {
		t.Errorf("notes %v", vgs[0].Notes)
	}
	checkContents(t, vgs, "lvm-linear.sha256")
	if o := Orphans([]*PV{pv}, vgs); len(o) != 0 {
		t.Errorf("PV of an assembled VG listed as orphan")
	}
	if _, err := PlanRename(vgs[0], "x", nil); err == nil {
		t.Error("rename from supplied metadata should need Force")
	}
	if _, err := PlanRename(vgs[0], "x", &RenameOptions{Force: true}); err == nil {
		t.Error("rename onto a PV with an unreadable metadata area should fail")
	}
}
