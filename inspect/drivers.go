package inspect

import (
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
