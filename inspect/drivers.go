package inspect

import (
	"errors"
	"fmt"
	"slices"
	"strings"

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

// salvageTypes are the types package salvage's ext path reads (salvage.Run):
// it rebuilds ext's group descriptors and scans its inode tables, so it is
// ext's alone. Other filesystems are salvaged through package salvage's
// filesystem-neutral walk when their driver declares vfs.Driver.Salvage
// (SalvageFS); every reader also reads tolerantly with its Salvage option.
var salvageTypes = []string{"ext2", "ext3", "ext4", "ext4dev"}

// Salvageable reports whether package salvage's ext path reads the
// volume's content.
func (v *Volume) Salvageable() bool {
	return v.Content != nil && slices.Contains(salvageTypes, v.Content.Type)
}

// ErrNoSalvageDriver is SalvageFS's answer when no registered driver
// that declares vfs.Driver.Salvage reads the volume (ext takes package
// salvage's own path).
var ErrNoSalvageDriver = errors.New("no registered filesystem reader salvages this volume")

// SalvageFS opens v's filesystem tolerantly (opts.Salvage is set) for
// package salvage's filesystem-neutral walk (salvage.RunVFS): through the
// driver of its probed type when that driver declares Salvage or, when v
// holds no filesystem the probe recognised (a primary superblock gone),
// through each such driver in table order, the first that opens it (XFS
// finds a secondary superblock). Without one it returns an error
// matching ErrNoSalvageDriver, with what each driver tried said.
func (v *Volume) SalvageFS(opts vfs.OpenOptions) (vfs.FS, error) {
	opts.Salvage = true
	if v.Content != nil {
		if d := driverFor(v.Content.Type); d == nil || !d.Salvage {
			return nil, fmt.Errorf("volume %s holds %s: %w", v.DisplayAddress(), v.Content.Type, ErrNoSalvageDriver)
		}
		return v.OpenFS(opts)
	}
	r := v.Reader()
	if r == nil {
		return nil, fmt.Errorf("volume %s: no bytes to read", v.DisplayAddress())
	}
	if opts.LogDevice == nil && v.journal != nil && v.journal.External != nil {
		opts.LogDevice = v.logDevice()
	}
	var tried []string
	for i := range Drivers {
		if !Drivers[i].Salvage {
			continue
		}
		fsys, err := Drivers[i].Open(r, v.DisplayAddress(), opts)
		if err == nil {
			return fsys, nil
		}
		tried = append(tried, Drivers[i].Name+": "+err.Error())
	}
	return nil, fmt.Errorf("volume %s: %w (%s)", v.DisplayAddress(), ErrNoSalvageDriver, strings.Join(tried, "; "))
}
