package vfs

import "io"

// Volume is the bytes a filesystem lives in: a partition, an LV, an
// unlocked LUKS device, an MD array, or a whole image.
type Volume interface {
	io.ReaderAt
	Size() int64
}

// OpenOptions tune how a Driver opens a filesystem. The zero value opens
// it the way the kernel would mount it: a journal or log that needs
// recovery is replayed into memory (the volume is never written).
type OpenOptions struct {
	// NoJournal shows the on-disk state: a journal or log that needs
	// recovery is not replayed (mount -o ro,norecovery / noload).
	NoJournal bool
	// Salvage opens tolerantly: damaged structures are read as far as
	// they go and the damage becomes a Note (extract --salvage).
	Salvage bool
	// LogDevice is the external journal (ext, mke2fs -J device=) or log
	// (XFS, mkfs.xfs -l logdev=) device, when there is one.
	LogDevice Volume
}

// Driver opens one family of formats. The registration table in package
// inspect lists every Driver; nothing else chooses between formats.
type Driver struct {
	// Name names the implementation in messages ("ext", "xfs").
	Name string
	// Types are the blkid TYPE values the driver opens ("ext2", "ext3",
	// "ext4"), as inspect's probe names them.
	Types []string
	// Open opens the filesystem on vol. name is the volume's address,
	// for errors and notes.
	Open func(vol Volume, name string, opts OpenOptions) (FS, error)
	// Salvage says that package salvage's filesystem-neutral rescue
	// (salvage.RunVFS, extract --salvage) works through this driver:
	// with OpenOptions.Salvage it opens past a bad primary superblock,
	// reads damaged structures as far as they go, and its WalkInodes
	// finds every in-use inode even when the index of inodes is damaged.
	// ext leaves it unset: package salvage has an ext path of its own.
	Salvage bool
}

// PhysRange is a range of bytes on the volume, for BlockMapper.
type PhysRange struct {
	Off, Len int64
}

// BlockMapper is implemented by filesystems that can say which volume
// bytes an inode owns (ext, XFS). Salvage uses it to find blocks claimed
// by two inodes (cross-links) and to report lost bytes.
type BlockMapper interface {
	// BlockMap returns the volume ranges holding an inode's data and the
	// ranges of its own metadata (extent tree, indirect, directory index
	// blocks). On damage it returns what it could map with the error.
	BlockMap(ino Ino) (data, meta []PhysRange, err error)
}
