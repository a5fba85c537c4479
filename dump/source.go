package dump

import (
	"errors"
	"io"
	"time"
)

// Inode is the metadata of one inode, as the writer needs it from a Source
// and as the reader reports it.
type Inode struct {
	Ino        uint32
	Mode       uint32 // S_IFMT type bits and permission bits (ext2 i_mode)
	Nlink      uint32
	UID, GID   uint32
	Size       uint64 // bytes; for symlinks the target length
	Atime      time.Time
	Mtime      time.Time
	Ctime      time.Time
	Flags      uint32 // ext2 inode flags (EXT2_*_FL), e.g. NodumpFlag
	RdevMajor  uint32 // character and block devices
	RdevMinor  uint32
	Generation uint32
	Blocks     uint64 // allocated 512-byte sectors (informational)
}

// IsDir and friends test the file type.
func (i *Inode) IsDir() bool     { return i.Mode&ModeFmt == ModeDir }
func (i *Inode) IsRegular() bool { return i.Mode&ModeFmt == ModeReg }
func (i *Inode) IsSymlink() bool { return i.Mode&ModeFmt == ModeLink }

// ext2 inode flags the writer interprets or passes on.
const (
	// NodumpFlag is EXT2_NODUMP_FL (chattr +d).
	NodumpFlag = 0x00000040
	// FlagsUserModifiable are the flags written to the tape. restore hands
	// them to FS_IOC_SETFLAGS; flags such as EXT4_EXTENTS_FL or
	// EXT4_INLINE_DATA_FL describe the on-disk layout of the source and
	// must not be set on the restored file.
	FlagsUserModifiable = 0x000380FF | 0x00004000 | 0x20000000
)

// DirEntry is one entry of a directory as a Source lists it. "." and ".."
// are not listed (the writer makes them).
type DirEntry struct {
	Name string
	Ino  uint32
	Type uint8 // DT_* (0 when unknown)
}

// Extent maps part of a file. Offsets and lengths are in bytes. Bytes not
// covered by any extent are holes.
type Extent struct {
	Logical  int64 // offset in the file
	Physical int64 // byte address on the volume; NoPhysical for a hole
	Length   int64
	// Unwritten (uninit) extents are allocated but read as zeros; they are
	// dumped as holes and their blocks are never read.
	Unwritten bool
}

// NoPhysical marks an Extent that is a hole.
const NoPhysical = -1

// File is the content of a regular file. If it also implements io.Closer,
// Write closes it when done with it.
type File interface {
	// ReadAt reads file bytes; holes and unwritten extents read as zeros.
	io.ReaderAt
	// Extents returns the block map sorted by Logical, non-overlapping.
	Extents() ([]Extent, error)
}

// Xattr is one extended attribute, with its full name as getxattr(2) sees
// it ("user.foo", "security.selinux", "system.posix_acl_access"). POSIX
// ACL values are in the VFS format (posix_acl_xattr, version 2), not ext's
// on-disk format; see ACLToDisk and ACLFromDisk.
type Xattr struct {
	Name  string
	Value []byte
}

// Source is a read-only view of a filesystem to dump: in practice an
// adapter over the ext package, or NewDirSource for a directory tree.
// Inode numbers must be stable across the dumps of a level chain (restore -r
// matches files by inode number), the root must be RootIno (2) and all
// numbers must be at most MaxIno.
type Source interface {
	// RootIno returns the root directory's inode number (must be 2).
	RootIno() uint32
	// MaxIno returns the highest inode number that can exist (for ext2,
	// s_inodes_count). It sizes the inode bitmaps on the tape.
	MaxIno() uint32
	// Stat returns an inode's metadata.
	Stat(ino uint32) (Inode, error)
	// ReadDir lists a directory, without "." and "..".
	ReadDir(ino uint32) ([]DirEntry, error)
	// Open returns the content of a regular file.
	Open(ino uint32) (File, error)
	// Readlink returns a symbolic link's target.
	Readlink(ino uint32) (string, error)
	// Xattrs returns an inode's extended attributes (nil when none).
	Xattrs(ino uint32) ([]Xattr, error)
}

// InodeScanner is an optional interface of a Source that can list the
// metadata of every inode in use faster than a Stat per inode (ext: one
// sequential pass over the inode tables in large reads). The writer's
// pass I then reads each inode's type, flags and times from the scan and
// reads only directories, as dump(8)'s own pass I does. ScanInodes calls
// fn for inodes in use, in any order; the *Inode is valid only during the
// call. Inodes it does not list are Stat'ed on their own.
// ErrNoScan means the Source cannot scan (the writer then Stats).
type InodeScanner interface {
	ScanInodes(fn func(in *Inode)) error
}

// ParentSource is an optional interface of a Source that can name a
// directory's parent (its ".." entry) and say whether the filesystem
// claims to be consistent. With it and a complete InodeScanner scan, an
// incremental dump reads only the directories it needs instead of all of
// them (see Write).
type ParentSource interface {
	// Parent returns the inode of directory dir's ".." entry.
	Parent(dir uint32) (uint32, error)
	// Consistent reports whether the filesystem says it is consistent
	// (cleanly unmounted or journaled, no errors recorded), so that every
	// inode in use is reachable from the root and its link count is the
	// number of entries naming it.
	Consistent() bool
}

// ErrNoScan is returned by a ScanInodes that cannot scan.
var ErrNoScan = errors.New("dump: source cannot scan its inodes")
