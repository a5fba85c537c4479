package partition_test

import (
	"fmt"
	"log"

	"github.com/imgtool/imgtool/fixtures"
	"github.com/imgtool/imgtool/partition"
)

// Read the partition table of a disk image (any io.ReaderAt): here the
// embedded demo, an MBR disk (fixtures/scripts/dom0.sh; sfdisk -J of the
// same image is fixtures/golden/dom0-sfdisk.json).
func ExampleRead() {
	disk, err := fixtures.Demo()
	if err != nil {
		log.Fatal(err)
	}
	t, err := partition.Read(disk, disk.Size(), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.Scheme, t.SectorSize)
	for _, p := range t.Partitions {
		fmt.Printf("p%d start %d size %d type %s\n", p.Number, p.Start, p.Size, p.Type)
	}
	// Output:
	// dos 512
	// p1 start 1048576 size 16777216 type 83
	// p2 start 17825792 size 99614720 type 8e
}
