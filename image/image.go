// Package image opens the things imgtool reads: raw image files, block
// devices, and virtual-disk containers — qcow2, VMDK, VHD — and compressed
// raw images (.xz, .gz, .zst, .bz2). Everything above this package sees only
// an io.ReaderAt over the virtual disk and its size.
//
// The format is found from the content, never from the file name:
//
//	"QFI\xfb" at 0                          qcow2 (image/qcow2)
//	"KDMV" at 0                             VMDK sparse extent (image/vmdk)
//	"# Disk DescriptorFile"                 VMDK descriptor naming extent files
//	"conectix" footer at the end (or at 0)  VHD (image/vhd)
//	"vhdxfile" at 0                         VHDX (image/vhdx)
//	xz / gzip / zstd / bzip2 magic          compressed raw (image/compressed)
//	anything else                           raw
//
// Images are always opened read-only here. The few commands that write (lvm
// rename/undo with --write) open their target through OpenWritable, which
// refuses block devices that are in use and any format but raw.
package image

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"syscall"

	"github.com/imgtool/imgtool/image/compressed"
	"github.com/imgtool/imgtool/image/qcow2"
	"github.com/imgtool/imgtool/image/ref"
	"github.com/imgtool/imgtool/image/vhd"
	"github.com/imgtool/imgtool/image/vhdx"
	"github.com/imgtool/imgtool/image/vmdk"
	"github.com/imgtool/imgtool/internal/where"
	"golang.org/x/sys/unix"
)

// Format names recorded in Image.Format.
const (
	FormatRaw   = "raw"
	FormatQcow2 = "qcow2"
	// VMDK formats are "vmdk-" + the descriptor's createType:
	// vmdk-monolithicSparse, vmdk-streamOptimized, vmdk-monolithicFlat,
	// vmdk-twoGbMaxExtentSparse, vmdk-twoGbMaxExtentFlat, or
	// vmdk-sparseExtent for a bare extent file.
	FormatVMDKPrefix  = "vmdk-"
	FormatVHDFixed    = "vhd-fixed"
	FormatVHDDynamic  = "vhd-dynamic"
	FormatVHDXFixed   = "vhdx-fixed"
	FormatVHDXDynamic = "vhdx-dynamic"
	// Compressed raw images are named by their compression: "xz", "gzip",
	// "zstd", "bzip2"; when the decompressed bytes are themselves a
	// container, the two are joined: "xz+qcow2", "gzip+vhd-fixed".
)

// Image is an opened, read-only source of bytes with a known size: the
// virtual disk of a container format, or the file itself for raw images.
type Image struct {
	io.ReaderAt
	// Path is the name the image was opened by.
	Path string
	// size in bytes: the virtual disk size, the file size, or for a block
	// device the size reported by the BLKGETSIZE64 ioctl.
	size int64
	// BlockDevice is true when Path is a block device.
	BlockDevice bool
	// Format is what the content turned out to be (see the Format*
	// constants).
	Format string
	// Details describe the container, for inspect: extent and backing
	// files, cluster size, compression. Empty for raw images.
	Details []string
	// Backing is a qcow2 image's backing chain (nearest first), if any.
	Backing []qcow2.Layer
	// Snapshots lists a qcow2 image's internal snapshots. imgtool reads
	// the current state, not the snapshots.
	Snapshots []qcow2.Snapshot
	// Notes are oddities found while opening (bad checksums, dirty bits).
	Notes []string

	f       *os.File // the file holding raw bytes (the temp copy for compressed images); nil for containers
	closers []io.Closer
}

// Options tune OpenWithOptions.
type Options struct {
	// Progress, if not nil, is called while a compressed image is being
	// decompressed, with the decompressed bytes so far and the size the
	// stream declares, or -1 while it is unknown (gzip, bzip2, zstd without
	// content sizes; the last call then has done == total). Nothing else
	// is slow enough to report.
	Progress func(done, total int64)
	// TempDir is where compressed images are decompressed (default
	// os.TempDir()). The copy is sparse and is deleted when the image is
	// closed (it is unlinked at once, so it also vanishes if the process
	// dies).
	TempDir string
	// TempLimit caps the disk space the decompressed copy may take (its
	// non-zero data; zero runs are holes). 0: the temp directory's free
	// space less a tenth of it (at most 1 GiB). A stream that needs more
	// is refused with compressed.ErrBudget, as is one that produces more
	// than it declares (compressed.ErrPastDeclared).
	TempLimit int64
	// Raw skips format detection: the file is read as it is.
	Raw bool
	// Backing says which host files a container may name as its backing
	// file or extent files (nil: only files in the image's own directory;
	// see package image/ref).
	Backing *ref.Policy
}

// Errors returned by Open; test with errors.Is.
var (
	ErrEmpty       = errors.New("image is empty (0 bytes)")
	ErrIsDirectory = errors.New("is a directory, not an image")
	ErrNotImage    = errors.New("not a regular file or block device")
	ErrNotRaw      = errors.New("only raw images can be opened for writing")
	ErrUnsupported = errors.New("unsupported image format")
)

// Open opens path read-only and returns its virtual disk, detecting the
// format from the content. A regular file's size comes from stat; a block
// device's from the BLKGETSIZE64 ioctl.
func Open(path string) (*Image, error) {
	return OpenWithOptions(path, nil)
}

// OpenWithOptions is Open with options (progress for decompression, temp
// directory, raw mode).
func OpenWithOptions(path string, opt *Options) (*Image, error) {
	if opt == nil {
		opt = &Options{}
	}
	im, err := open(path, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	if opt.Raw {
		return im, nil
	}
	if err := im.detect(opt, true); err != nil {
		im.Close()
		return nil, err
	}
	return im, nil
}

// OpenWritable opens path for reading and writing. Block devices are opened
// with O_EXCL, so the kernel refuses one that is mounted or held by
// device-mapper. Only raw images can be written: a qcow2, VMDK, VHD or
// compressed image is refused with ErrNotRaw. Only explicit --write
// commands use this.
func OpenWritable(path string) (*Image, error) {
	flags := os.O_RDWR
	if fi, err := os.Stat(path); err == nil && fi.Mode()&fs.ModeDevice != 0 {
		flags |= unix.O_EXCL
	}
	im, err := open(path, flags)
	if err != nil {
		return nil, err
	}
	if im.BlockDevice {
		// Linux lets O_RDWR open a read-only block device and fails the
		// writes later; ask the device instead (BLKROGET).
		ro, err := unix.IoctlGetInt(int(im.f.Fd()), unix.BLKROGET)
		if err == nil && ro != 0 {
			im.Close()
			return nil, fmt.Errorf("open %s for writing: the block device is read-only", path)
		}
	}
	format, err := sniff(im.f, im.size)
	if err != nil {
		im.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if format != FormatRaw {
		im.Close()
		return nil, fmt.Errorf("open %s for writing: it is a %s image; %w (convert it with qemu-img convert -O raw, or decompress it, first)", path, format, ErrNotRaw)
	}
	im.Format = FormatRaw
	return im, nil
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
	return &Image{ReaderAt: f, Path: path, size: size, BlockDevice: isDev, Format: FormatRaw, f: f, closers: []io.Closer{f}}, nil
}

// sniff names the format of r by content: a Format* constant, a
// compression kind, "vmdk" (either VMDK kind) or "vhdx".
func sniff(r io.ReaderAt, size int64) (string, error) {
	head := make([]byte, 4096)
	n, err := r.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("reading the first bytes: %w", err)
	}
	head = head[:n]
	switch {
	case len(head) >= 4 && string(head[:4]) == qcow2.Magic:
		return FormatQcow2, nil
	case len(head) >= 4 && string(head[:4]) == "KDMV":
		return "vmdk", nil
	case len(head) >= 8 && string(head[:8]) == "vhdxfile":
		return "vhdx", nil
	case len(head) >= 4 && string(head[:4]) == "COWD":
		return "vmdk-cowd", nil
	case size <= 1<<20 && vmdk.ProbeDescriptor(head):
		return "vmdk", nil
	case vhd.Probe(r, size):
		return "vhd", nil
	}
	if k := compressed.Detect(head); k != "" {
		return k, nil
	}
	return FormatRaw, nil
}

// detect replaces im's reader with the virtual disk of its container
// format. outer is false for the decompressed copy of a compressed image
// (which is not decompressed again).
func (im *Image) detect(opt *Options, outer bool) error {
	format, err := sniff(im.f, im.size)
	if err != nil {
		return fmt.Errorf("open %s: %w", im.Path, err)
	}
	switch format {
	case FormatRaw:
		return nil
	case FormatQcow2:
		q, err := qcow2.OpenPolicy(im.f, im.size, im.Path, opt.Backing)
		if err != nil {
			return fmt.Errorf("open %s: %w", im.Path, err)
		}
		im.closers = append(im.closers, q)
		im.ReaderAt, im.size, im.Format = q, q.Size(), FormatQcow2
		h := q.Header
		im.Details = append(im.Details, fmt.Sprintf("qcow2 v%d, %d-byte clusters, compression %s", h.Version, h.ClusterSize(), h.Compression()))
		for _, l := range q.Backing {
			im.Details = append(im.Details, fmt.Sprintf("backing file %s (%s)", l.Path, l.Format))
		}
		for _, s := range q.Snapshots {
			im.Details = append(im.Details, fmt.Sprintf("snapshot %s %q taken %s (not shown: imgtool reads the current state)", s.ID, s.Name, s.Date.Local().Format("2006-01-02 15:04:05 -0700")))
		}
		im.Backing, im.Snapshots, im.Notes = q.Backing, q.Snapshots, append(im.Notes, q.Notes...)
	case "vmdk":
		container := ""
		if outer {
			container = im.Path
		}
		d, err := vmdk.OpenNamed(im.f, im.size, container, im.Path, opt.Backing)
		if err != nil {
			return fmt.Errorf("open %s: %w", im.Path, err)
		}
		im.closers = append(im.closers, d)
		im.ReaderAt, im.size, im.Format = d, d.Size(), FormatVMDKPrefix+d.CreateType
		for _, f := range d.Files {
			im.Details = append(im.Details, "extent file "+f)
		}
	case "vhd":
		d, err := vhd.OpenNamed(im.f, im.size, im.Path)
		if err != nil {
			return fmt.Errorf("open %s: %w", im.Path, err)
		}
		d.Path = im.Path
		im.ReaderAt, im.size, im.Format = d, d.Size(), "vhd-"+d.Type()
		im.Details = append(im.Details, d.String())
		im.Notes = append(im.Notes, d.Notes...)
	case "vhdx":
		d, err := vhdx.OpenNamed(im.f, im.size, im.Path)
		if err != nil {
			return fmt.Errorf("open %s: %w", im.Path, err)
		}
		im.ReaderAt, im.size, im.Format = d, d.Size(), "vhdx-"+d.Type()
		im.Details = append(im.Details, fmt.Sprintf("VHDX %s, %d-byte sectors, %d MiB blocks", d.Type(), d.LogicalSectorSize, d.BlockSize>>20))
		im.Notes = append(im.Notes, d.Notes...)
	case "vmdk-cowd":
		return fmt.Errorf("open %s: %w: VMware ESX sparse (COWD) extent", im.Path, ErrUnsupported)
	default: // compressed
		if !outer {
			return nil // a compressed file inside a compressed file: leave it raw
		}
		return im.decompress(format, opt)
	}
	im.f = nil // the file no longer holds the disk's bytes as they are
	if im.size <= 0 {
		return fmt.Errorf("open %s: %s image with a virtual size of %d bytes", im.Path, im.Format, im.size)
	}
	return nil
}

func (im *Image) decompress(kind string, opt *Options) (err error) {
	dir := opt.TempDir
	if dir == "" {
		dir = os.TempDir()
	}
	declared := compressed.Declared(im.f, im.size, kind)
	budget := opt.TempLimit
	var avail int64 = -1
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil {
		avail = int64(st.Bavail) * int64(st.Bsize)
	}
	if budget == 0 && avail >= 0 {
		// Leave the file system a tenth of its free space, at most 1 GiB:
		// filling $TMPDIR breaks everything else on the host.
		budget = max(avail-min(avail/10, 1<<30), 1)
	}
	if declared >= 0 && avail >= 0 && declared > avail {
		// Not an error yet: zero runs become holes, and a mostly empty
		// disk takes a fraction of its size. The budget stops it if not.
		slog.Warn("the decompressed image may not fit", "image", im.Path, "declared", declared, "tmp", dir, "free", avail)
	}
	tmp, err := os.CreateTemp(dir, "imgtool-decompressed-*.img")
	if err != nil {
		return fmt.Errorf("open %s: creating a file to decompress %s into: %w", im.Path, kind, err)
	}
	// Unlink now: the open descriptor keeps the data, and the space is
	// freed on Close or when the process ends, however it ends.
	os.Remove(tmp.Name())
	var progress func(int64)
	if opt.Progress != nil {
		progress = func(n int64) { opt.Progress(n, declared) }
	}
	defer func() {
		if opt.Progress != nil && err == nil && declared < 0 {
			opt.Progress(im.size, im.size) // the end, now that it is known
		}
	}()
	n, err := compressed.DecompressLimited(tmp, io.NewSectionReader(im.f, 0, im.size), kind,
		compressed.Limits{Declared: declared, Budget: budget}, progress)
	if err != nil {
		tmp.Close()
		if errors.Is(err, compressed.ErrBudget) {
			return fmt.Errorf("open %s: %w; decompressing it into %s would leave too little free space (it declares %s; use a temporary directory with more room)", im.Path, err, dir, declaredText(declared))
		}
		return fmt.Errorf("open %s: %w", im.Path, err)
	}
	if n == 0 {
		tmp.Close()
		return fmt.Errorf("open %s: %w (after %s decompression)", im.Path, ErrEmpty, kind)
	}
	// The compressed file is no longer needed.
	for _, c := range im.closers {
		c.Close()
	}
	im.closers = []io.Closer{tmp}
	im.ReaderAt, im.f, im.size, im.Format = tmp, tmp, n, kind
	var used int64
	if fi, err := tmp.Stat(); err == nil {
		if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
			used = sys.Blocks * 512
		}
	}
	im.Details = append(im.Details, fmt.Sprintf("%s-compressed; decompressed to a temporary file (%d bytes, %d on disk)", kind, n, used))
	if err := im.detect(opt, false); err != nil {
		return where.Decompressed(err)
	}
	if inner := im.Format; inner != kind {
		im.Format = kind + "+" + inner
		// The container's read-time errors (a bad L2 entry, a cluster
		// that does not inflate) name bytes of the decompressed copy.
		im.ReaderAt = decompressedErrs{im.ReaderAt}
	}
	return nil
}

// decompressedErrs marks the file offsets in its reader's errors as bytes
// of the decompressed stream (where.Decompressed).
type decompressedErrs struct{ r io.ReaderAt }

func (d decompressedErrs) ReadAt(p []byte, off int64) (int, error) {
	n, err := d.r.ReadAt(p, off)
	if err != nil && err != io.EOF {
		err = where.Decompressed(err)
	}
	return n, err
}

func declaredText(d int64) string {
	if d < 0 {
		return "no size"
	}
	return fmt.Sprintf("%d bytes", d)
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

// Size returns the size in bytes of the virtual disk.
func (im *Image) Size() int64 { return im.size }

// File returns the *os.File holding the disk's bytes as they are (for
// writers and SEEK_HOLE users): the image file for raw images, the
// decompressed temporary copy for compressed raw images, and nil for
// container formats (qcow2, VMDK, VHD), whose bytes are not laid out as
// the disk.
func (im *Image) File() *os.File { return im.f }

// WriteAt writes to an image opened with OpenWritable.
func (im *Image) WriteAt(p []byte, off int64) (int, error) {
	if im.f == nil || im.Format != FormatRaw {
		return 0, fmt.Errorf("write %s: %w", im.Path, ErrNotRaw)
	}
	return im.f.WriteAt(p, off)
}

// Sync flushes writes to stable storage.
func (im *Image) Sync() error {
	if im.f == nil {
		return nil
	}
	return im.f.Sync()
}

// Close closes the image and every file it opened (backing files, extent
// files, the decompressed copy).
func (im *Image) Close() error {
	if im == nil {
		return nil
	}
	var first error
	for i := len(im.closers) - 1; i >= 0; i-- {
		if err := im.closers[i].Close(); err != nil && first == nil {
			first = err
		}
	}
	im.closers = nil
	return first
}

// Locate says where byte v of the disk is stored: the image file itself
// when it is raw; for a container (qcow2, VHD, VHDX, VMDK), the byte of
// its file (or VMDK extent file) holding v. ok is false when no file byte
// holds v as such: a compressed file's stream, an unallocated, zero or
// compressed cluster, grain or block, a backing file's cluster.
func (im *Image) Locate(v int64) (path string, off int64, ok bool) {
	if v < 0 || v >= im.size {
		return "", 0, false
	}
	if im.Format == FormatRaw {
		return im.Path, v, true
	}
	if l, ok := im.ReaderAt.(Locator); ok {
		return l.Locate(v)
	}
	return "", 0, false
}

// Locator is a disk that can say which byte of which file stores its byte
// v (Image, and the containers behind it).
type Locator interface {
	Locate(v int64) (path string, off int64, ok bool)
}

// OffsetsName names what the byte offsets of an image opened from path
// count, for locating damage in a volume inside it: the file itself when
// format is raw; the virtual disk when it is a container (qcow2, VMDK, VHD,
// VHDX), whose bytes lie elsewhere in the file or not at all; the
// decompressed stream when the file is compressed.
func OffsetsName(path, format string) string {
	kind, inner, nested := strings.Cut(format, "+")
	switch kind {
	case "", FormatRaw:
		return path
	case compressed.XZ, compressed.Gzip, compressed.Zstd, compressed.Bzip2:
		if !nested {
			return path + " (decompressed)"
		}
		return "the " + inner + " virtual disk of " + path + " (decompressed)"
	}
	return "the " + format + " virtual disk of " + path
}
