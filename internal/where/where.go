// Package where is the one error type the structure readers below the
// filesystems (partition, lvm, image/*) return for damage, so that a caller
// can say where the damage lies without knowing which reader found it.
//
// The contract is two methods, which ext.CorruptError shares:
//
//   - VolumeOffset() int64: the byte offset of the bad structure in the
//     reader the layer was handed (a disk, partition or LV), or -1. The
//     caller, who knows which volume that was, maps it to the image file
//     with image.Resolve.
//   - FileOffset() (string, int64): for a container (qcow2, VHD, VHDX,
//     VMDK), the file holding the bad structure and the byte offset in it;
//     "" and -1 otherwise. Those offsets are already absolute.
//
// Callers outside the module use the methods (errors.As to an interface);
// the type is internal.
package where

// Error is damage in an on-disk structure.
type Error struct {
	// Layer names the reader: "gpt", "mbr", "lvm", "qcow2", "vhd",
	// "vhdx", "vmdk".
	Layer string
	// Off is the byte offset of the structure: in the volume the layer
	// read, or, when Path is set, in that container file. -1 if unknown.
	Off int64
	// Path is the container file holding the structure, for image/*
	// errors; "" for volume offsets.
	Path string
	// Msg says what is wrong, in the words the reader always used (it
	// names the offset itself where it did before).
	Msg string
	// Err is the underlying cause, or nil.
	Err error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Msg
	}
	if e.Msg == "" {
		return e.Err.Error()
	}
	return e.Msg + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// VolumeOffset is the offset in the volume the layer read, or -1 for a
// container file's offset.
func (e *Error) VolumeOffset() int64 {
	if e.Path != "" {
		return -1
	}
	return e.Off
}

// FileOffset is the container file and the offset in it, or "", -1.
func (e *Error) FileOffset() (string, int64) {
	if e.Path == "" {
		return "", -1
	}
	return e.Path, e.Off
}

// At returns an Error for the structure at byte off of the volume.
func At(layer string, off int64, msg string, cause error) *Error {
	return &Error{Layer: layer, Off: off, Msg: msg, Err: cause}
}

// InFile returns an Error for the structure at byte off of the container
// file path.
func InFile(layer, path string, off int64, msg string, cause error) *Error {
	return &Error{Layer: layer, Off: off, Path: path, Msg: msg, Err: cause}
}

// Volume is what errors with a volume offset implement (this package's
// Error, ext.CorruptError).
type Volume interface{ VolumeOffset() int64 }

// File is what errors with a container-file offset implement.
type File interface{ FileOffset() (string, int64) }

// VolumeOffset returns the volume offset the first error in err's chain
// that has one (not -1) carries, or -1.
func VolumeOffset(err error) int64 {
	off := int64(-1)
	walk(err, func(e error) bool {
		if v, ok := e.(Volume); ok && v.VolumeOffset() >= 0 {
			off = v.VolumeOffset()
			return true
		}
		return false
	})
	return off
}

// FileOffset returns the container file and offset the first error in
// err's chain that has one carries, or "", -1.
func FileOffset(err error) (string, int64) {
	path, off := "", int64(-1)
	walk(err, func(e error) bool {
		if f, ok := e.(File); ok {
			if p, o := f.FileOffset(); p != "" {
				path, off = p, o
				return true
			}
		}
		return false
	})
	return path, off
}

// walk visits err's chain depth first (as errors.As does) until fn says
// stop.
func walk(err error, fn func(error) bool) bool {
	for err != nil {
		if fn(err) {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if walk(e, fn) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

// Decompressed marks the file offset err carries as one in the
// decompressed stream of the compressed file it names: a container found
// inside a .zst, .xz, .gz or .bz2 file is read from a decompressed copy,
// and its offsets are not bytes of the file on disk.
func Decompressed(err error) error {
	p, o := FileOffset(err)
	if p == "" {
		return err
	}
	return &decompressed{err, p + " (decompressed)", o}
}

type decompressed struct {
	err  error
	path string
	off  int64
}

func (d *decompressed) Error() string               { return d.err.Error() }
func (d *decompressed) Unwrap() error               { return d.err }
func (d *decompressed) FileOffset() (string, int64) { return d.path, d.off }
