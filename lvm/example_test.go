package lvm_test

import (
	"fmt"
	"io"
	"log"

	"github.com/imgtool/imgtool/fixtures"
	"github.com/imgtool/imgtool/lvm"
)

// Read the PV label of a partition, assemble its VG from the on-disk
// metadata and list the LVs (the embedded demo's p2 at byte 17825792;
// lvs of the same image is fixtures/golden/dom0-lvs.json).
func ExampleAssemble() {
	disk, err := fixtures.Demo()
	if err != nil {
		log.Fatal(err)
	}
	p2 := io.NewSectionReader(disk, 17825792, 99614720)
	pv, err := lvm.ReadPV(p2, p2.Size())
	if err != nil {
		log.Fatal(err)
	}
	vgs, err := lvm.Assemble([]*lvm.PV{pv}, nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, vg := range vgs {
		fmt.Println("VG", vg.Name, "extent size", vg.ExtentSize)
		for _, lv := range vg.LVs {
			fmt.Println(" LV", lv.Name, lv.Size)
		}
	}
	// Output:
	// VG VolGroup00 extent size 1048576
	//  LV LogVol00 25165824
	//  LV LogVol01 8388608
	//  LV domu1 41943040
}
