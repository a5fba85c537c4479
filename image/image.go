// Package image opens the things imgtool reads: raw image files and block
// devices. Everything above this package sees only an io.ReaderAt and a size.
//
// Images are always opened read-only here. The few commands that write (lvm
// rename/undo with --write) open their target through OpenWritable, which
// refuses block devices that are in use.
package image

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// Image is an opened, read-only source of bytes with a known size.
type Image struct {
	io.ReaderAt
	// Path is the name the image was opened by.
	Path string
	// size in bytes: the file size, or for a block device the size
	// reported by the BLKGETSIZE64 ioctl.
	size int64
	// BlockDevice is true when Path is a block device.
	BlockDevice bool

	f *os.File
}

// Errors returned by Open; test with errors.Is.
var (
	ErrEmpty       = errors.New("image is empty (0 bytes)")
	ErrIsDirectory = errors.New("is a directory, not an image")
	ErrNotImage    = errors.New("not a regular file or block device")
)

// Open opens path read-only. A regular file's size comes from stat; a block
// device's from the BLKGETSIZE64 ioctl.
func Open(path string) (*Image, error) {
	return open(path, os.O_RDONLY)
}

// OpenWritable opens path for reading and writing. Block devices are opened
// with O_EXCL, so the kernel refuses one that is mounted or held by
// device-mapper. Only explicit --write commands use this.
func OpenWritable(path string) (*Image, error) {
	flags := os.O_RDWR
	if fi, err := os.Stat(path); err == nil && fi.Mode()&fs.ModeDevice != 0 {
		flags |= unix.O_EXCL
	}
	return open(path, flags)
}

func open(path string, flags int) (*Image, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, describe(path, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("open %s: %w", path, ErrIsDirectory)
	}
	isDev := fi.Mode()&fs.ModeDevice != 0 && fi.Mode()&fs.ModeCharDevice == 0
	if !fi.Mode().IsRegular() && !isDev {
		return nil, fmt.Errorf("open %s: %w (mode %v)", path, ErrNotImage, fi.Mode().Type())
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		if errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("open %s: device is in use (mounted or held by device-mapper): %w", path, err)
		}
		return nil, describe(path, err)
	}
	size := fi.Size()
	if isDev {
		size, err = blockDeviceSize(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("open %s: reading block device size (BLKGETSIZE64): %w", path, err)
		}
	}
	if size == 0 {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", path, ErrEmpty)
	}
	return &Image{ReaderAt: f, Path: path, size: size, BlockDevice: isDev, f: f}, nil
}

func describe(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("open %s: no such file or device", path)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("open %s: permission denied (reading a block device usually needs root or the disk group)", path)
	}
	return err
}

func blockDeviceSize(f *os.File) (int64, error) {
	var size uint64
	// BLKGETSIZE64 = _IOR(0x12, 114, size_t)
	const blkGetSize64 = 0x80081272
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), blkGetSize64, uintptrOf(&size))
	if errno != 0 {
		return 0, errno
	}
	return int64(size), nil
}

// Size returns the image size in bytes.
func (im *Image) Size() int64 { return im.size }

// File returns the underlying *os.File (for writers and SEEK_HOLE users).
func (im *Image) File() *os.File { return im.f }

// WriteAt writes to an image opened with OpenWritable.
func (im *Image) WriteAt(p []byte, off int64) (int, error) { return im.f.WriteAt(p, off) }

// Sync flushes writes to stable storage.
func (im *Image) Sync() error { return im.f.Sync() }

// Close closes the image.
func (im *Image) Close() error {
	if im == nil || im.f == nil {
		return nil
	}
	return im.f.Close()
}
