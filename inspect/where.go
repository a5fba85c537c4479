package inspect

import (
	"fmt"
	"strings"

	"github.com/imgtool/imgtool/image"
	"github.com/imgtool/imgtool/internal/where"
)

// Where says where the damage err names lies, as a suffix for its message:
// " [volume ADDR byte N = byte M of IMAGE]" for an offset in this volume
// (any error with a VolumeOffset: ext, partition, lvm), mapped to the image
// file through image.Resolve (partitions, LVs, nested disks, MD arrays) —
// IMAGE names a container's virtual disk or a compressed file's
// decompressed stream when the file is not raw (image.OffsetsName);
// " [volume ADDR: byte M of FILE]" for a container's own structures (qcow2
// and the like, whose offsets are in the container file). "" when err
// carries no offset.
func (v *Volume) Where(err error) string {
	if v == nil || err == nil {
		return ""
	}
	if file, off := where.FileOffset(err); file != "" {
		return fmt.Sprintf(" [volume %s: byte %d of %s]", v.DisplayAddress(), off, file)
	}
	off := where.VolumeOffset(err)
	if off < 0 {
		return ""
	}
	if v.r != nil {
		if under, abs, _, rerr := image.ResolveBeyond(v.r, off); rerr == nil {
			if name := v.imageOf(under); name != "" {
				return fmt.Sprintf(" [volume %s byte %d = byte %d of %s%s]", v.DisplayAddress(), off, abs, name, storedAt(under, abs, name))
			}
		}
	}
	if v.Offset >= 0 && v.Image != "" {
		return fmt.Sprintf(" [volume %s byte %d = byte %d of %s]", v.DisplayAddress(), off, v.Offset+off, v.root().offsetsName())
	}
	return fmt.Sprintf(" [volume %s byte %d]", v.DisplayAddress(), off)
}

// imageOf names the image file whose reader is r: the root disk above v
// that reads it.
func (v *Volume) imageOf(r any) string {
	for u := v; u != nil; u = u.parent {
		if s, ok := u.r.(*image.Section); ok && u.Kind == KindDisk && u.parent == nil && s.R == r {
			return u.offsetsName()
		}
	}
	return ""
}

// storedAt says, for byte abs of a container's virtual disk r (named
// name), the byte of the container file that holds it (image.Locate):
// ", stored at byte H of FILE", or "" when r is raw or cannot say.
func storedAt(r any, abs int64, name string) string {
	l, ok := r.(image.Locator)
	if !ok {
		return ""
	}
	path, h, ok := l.Locate(abs)
	if !ok || path == name {
		return ""
	}
	return fmt.Sprintf(", stored at byte %d of %s", h, path)
}

// offsetsName names what the offsets of root disk v count: its image file
// when raw, else the container's virtual disk or the decompressed stream.
func (v *Volume) offsetsName() string { return image.OffsetsName(v.Image, v.Format) }

// root is the disk at the top of v's tree.
func (v *Volume) root() *Volume {
	for v.parent != nil {
		v = v.parent
	}
	return v
}

// Damage returns the located errors behind the volume's damage notes
// (partition table, LVM label and metadata areas), in the order found.
func (v *Volume) Damage() []error { return v.damage }

// noteDamage notes err (prefixed with what) with where it lies, and keeps
// it in the volume's Damage.
func (v *Volume) noteDamage(what string, err error) {
	v.addNote("%s: %v%s", what, err, v.Where(err))
	v.damage = append(v.damage, err)
}

// addNotes appends a reader's notes; the one holding each damage error's
// text gains where that damage lies.
func (v *Volume) addNotes(notes []string, damage []error) {
	notes = append([]string(nil), notes...)
	for _, d := range damage {
		for i, n := range notes {
			if strings.Contains(n, d.Error()) {
				notes[i] += v.Where(d)
				break
			}
		}
		v.damage = append(v.damage, d)
	}
	v.Notes = append(v.Notes, notes...)
}
