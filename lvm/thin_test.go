package lvm

import (
	"encoding/xml"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// thinXML is thin_restore's input format (the golden the script fed it).
type thinXML struct {
	DataBlockSize uint32 `xml:"data_block_size,attr"`
	Transaction   uint64 `xml:"transaction,attr"`
	Devices       []struct {
		ID     uint64 `xml:"dev_id,attr"`
		Mapped uint64 `xml:"mapped_blocks,attr"`
		Ranges []struct {
			Origin uint64 `xml:"origin_begin,attr"`
			Data   uint64 `xml:"data_begin,attr"`
			Len    uint64 `xml:"length,attr"`
			Time   uint32 `xml:"time,attr"`
		} `xml:"range_mapping"`
		Singles []struct {
			Origin uint64 `xml:"origin_block,attr"`
			Data   uint64 `xml:"data_block,attr"`
			Time   uint32 `xml:"time,attr"`
		} `xml:"single_mapping"`
	} `xml:"device"`
}

func TestThin(t *testing.T) {
	vgs := assemble(t, openPV(t, "lvm-thin"))
	checkFacts(t, vgs, "lvm-thin")
	checkContents(t, vgs, "lvm-thin.sha256")

	vg := findVG(t, vgs, "vgthin")
	var want thinXML
	if err := xml.Unmarshal(fixturetest.Golden(t, "lvm-thin.xml"), &want); err != nil {
		t.Fatal(err)
	}
	tmeta, err := vg.LV("pool_tmeta").Open()
	if err != nil {
		t.Fatal(err)
	}
	md, err := ReadThinMetadata(tmeta, tmeta.Size())
	if err != nil {
		t.Fatal(err)
	}
	if md.Super.DataBlockSize != want.DataBlockSize || md.Super.TransactionID != want.Transaction {
		t.Errorf("superblock %+v, thin_restore was given block size %d transaction %d", md.Super, want.DataBlockSize, want.Transaction)
	}
	devs, err := md.Devices()
	if err != nil || len(devs) != len(want.Devices) {
		t.Fatalf("devices %v, %v; want %d", devs, err, len(want.Devices))
	}
	for i, d := range want.Devices {
		if devs[i].ID != d.ID || devs[i].MappedBlocks != d.Mapped {
			t.Errorf("device %d: %+v, want id %d mapped %d", i, devs[i], d.ID, d.Mapped)
		}
		var exp []ThinMapping
		for _, r := range d.Ranges {
			for k := uint64(0); k < r.Len; k++ {
				exp = append(exp, ThinMapping{r.Origin + k, r.Data + k, r.Time})
			}
		}
		for _, s := range d.Singles {
			exp = append(exp, ThinMapping{s.Origin, s.Data, s.Time})
		}
		got, err := md.Mappings(d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(exp) {
			t.Fatalf("device %d: %d mappings, want %d", d.ID, len(got), len(exp))
		}
		for j := range exp {
			if got[j] != exp[j] {
				t.Errorf("device %d mapping %d: %+v, want %+v", d.ID, j, got[j], exp[j])
				break
			}
		}
	}
	if _, err := vg.LV("pool").Open(); err == nil {
		t.Error("opening the pool itself should fail: it has no content of its own")
	}
}
