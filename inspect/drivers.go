package inspect

import (
	"slices"

	"github.com/imgtool/imgtool/journal"
	"github.com/imgtool/imgtool/otherfs"
	"github.com/imgtool/imgtool/vfs"
	"github.com/imgtool/imgtool/xfs"
)

// Drivers is the registration table of filesystem readers: the one place
// that chooses a reader by the probed type (Signature.Type, blkid's
// name). To add a filesystem, write a package with a vfs.Driver and list
// it here.
var Drivers = []vfs.Driver{
	journal.Driver, // ext2, ext3, ext4 (journal replayed in memory)
	otherfs.Driver, // vfat (FAT12/16/32), squashfs, iso9660
	xfs.Driver,     // xfs (v4, v5; a dirty log replayed in memory)
}

// driverFor returns the driver for a probed type, or nil.
func driverFor(typ string) *vfs.Driver {
	for i := range Drivers {
		for _, t := range Drivers[i].Types {
			if t == typ {
				return &Drivers[i]
			}
		}
	}
	return nil
}

// salvageTypes are the types `extract --salvage` (package salvage) reads:
// it rebuilds ext's group descriptors and scans its inode tables, so it is
// ext's alone; every other reader salvages through its Salvage option.
var salvageTypes = []string{"ext2", "ext3", "ext4", "ext4dev"}

// Salvageable reports whether package salvage reads the volume's content.
func (v *Volume) Salvageable() bool {
	return v.Content != nil && slices.Contains(salvageTypes, v.Content.Type)
}
