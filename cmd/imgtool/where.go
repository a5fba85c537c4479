package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/internal/where"
)

// Every structural error the CLI prints says where the damage lies: the
// volume's address and the byte of the image file (issue 12.5). The
// readers' errors carry the offset in the volume they read (ext, partition,
// lvm) or in the container file (qcow2); inspect.Volume.Where maps it
// through image.Resolve. These helpers add it where a command meets such
// an error.

// volumeErr adds to err, met opening or reading volume v, where the
// damage it names lies.
func volumeErr(v *inspect.Volume, err error) error {
	if err == nil || v == nil {
		return err
	}
	if w := v.Where(err); w != "" {
		return fmt.Errorf("%w%s", err, w)
	}
	return err
}

// openErr adds to err, met opening the image file path, where the damage
// it names lies: a container's (qcow2, VHD, VHDX, VMDK) header, table or
// descriptor is located in its file. The volume is the image's whole disk,
// addressed as the tree addresses the i-th image (inspect): the first by
// the file's base name, the others as a1, a2, ...
func openErr(i int, path string, err error) error {
	file, off := where.FileOffset(err)
	if file == "" {
		return err
	}
	addr := filepath.Base(path)
	if i > 0 {
		addr = fmt.Sprintf("a%d", i)
	}
	return fmt.Errorf("%w [volume %s: byte %d of %s]", err, addr, off, file)
}

// maxDamageShown bounds the damage listed after a missing volume.
const maxDamageShown = 4

// missingVolumeErr explains a volume address that names nothing when the
// tree holds damage that may be why (a partition table or LVM metadata
// that did not read): it lists that damage with where it lies.
func missingVolumeErr(t *inspect.Tree, err error) error {
	var ae *inspect.AddressError
	if t == nil || !errors.As(err, &ae) {
		return err
	}
	var found []string
	t.Walk(func(v *inspect.Volume) bool {
		for _, d := range v.Damage() {
			found = append(found, fmt.Sprintf("%s: %v%s", v.DisplayAddress(), d, v.Where(d)))
		}
		return true
	})
	if len(found) == 0 {
		return err
	}
	more := ""
	if len(found) > maxDamageShown {
		more = fmt.Sprintf("; and %d more (see imgtool inspect)", len(found)-maxDamageShown)
		found = found[:maxDamageShown]
	}
	return fmt.Errorf("%w; the image is damaged where it may have been: %s%s", err, strings.Join(found, "; "), more)
}
