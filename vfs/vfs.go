// Package vfs is the one filesystem interface of imgtool. Every reader of
// files (ext2/3/4 with its journal, FAT, squashfs, ISO 9660, XFS) is an FS,
// opened by inspect.Volume.OpenFS through the registration table in
// package inspect; every consumer (the CLI's ls/cat/stat/extract, the TUI,
// extract, salvage, the dump writer and backup, mount) uses only this
// package's types.
//
// The model is the Unix inode: entries are named by an Ino, stable for the
// life of the FS and, where the format has on-disk inode numbers, equal to
// them (so hard links share an Ino and a level chain of dumps matches
// files by number). Metadata is a Stat in Unix terms (S_IFMT mode bits,
// numeric owners, nanosecond times); a format that lacks some of it fills
// in documented defaults and says so in Caps.
//
// An FS is safe for concurrent use: the extraction engine walks, counts
// and copies from several goroutines at once.
package vfs

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"time"
)

// Ino identifies an inode within one FS. It is 64 bits wide because XFS
// inode numbers are. 0 is never a valid Ino.
type Ino uint64

// Unix file type bits of Stat.Mode (S_IFMT and its values), and the
// permission bits that extraction treats specially.
const (
	ModeType   = 0o170000
	ModeSocket = 0o140000
	ModeLink   = 0o120000
	ModeReg    = 0o100000
	ModeBlock  = 0o060000
	ModeDir    = 0o040000
	ModeChar   = 0o020000
	ModeFIFO   = 0o010000

	ModeSetuid = 0o4000
	ModeSetgid = 0o2000
	ModeSticky = 0o1000
	ModePerm   = 0o7777
)

// Directory entry types (d_type). DT_x == S_IFx >> 12.
const (
	DTUnknown = 0
	DTFIFO    = 1
	DTChar    = 2
	DTDir     = 4
	DTBlock   = 6
	DTReg     = 8
	DTLink    = 10
	DTSocket  = 12
)

// DTOf returns the d_type of a Unix mode.
func DTOf(mode uint32) uint8 { return uint8((mode & ModeType) >> 12) }

// Stat is the metadata of one inode.
type Stat struct {
	Ino   Ino
	Mode  uint32 // S_IFMT type bits and permission bits (incl. setuid, setgid, sticky)
	Nlink uint32
	UID   uint32
	GID   uint32
	// Size is the length in bytes: file content, a symlink's target, a
	// directory's size as the format reports it.
	Size int64
	// Blocks is the allocated space in 512-byte units, as st_blocks.
	Blocks int64
	// Times carry nanoseconds where the format has them (Caps.NsTimes).
	// Btime (birth) is zero when the format does not store one.
	Atime, Mtime, Ctime, Btime time.Time
	// RdevMajor and RdevMinor are set for character and block devices.
	RdevMajor, RdevMinor uint32
	// Generation is the inode generation (i_generation, di_gen), 0 where
	// the format has none (Caps.Generation).
	Generation uint32
	// Flags are inode flags in the ext2 encoding that FS_IOC_GETFLAGS
	// uses (FlagImmutable, FlagAppend, FlagNodump, ...), translated by
	// formats with flags of their own (XFS's di_flags).
	Flags uint32
}

// Type returns the S_IFMT bits of Mode.
func (s *Stat) Type() uint32 { return s.Mode & ModeType }

// IsDir, IsRegular and IsSymlink test the type bits.
func (s *Stat) IsDir() bool     { return s.Type() == ModeDir }
func (s *Stat) IsRegular() bool { return s.Type() == ModeReg }
func (s *Stat) IsSymlink() bool { return s.Type() == ModeLink }

// IsDevice reports a character or block device.
func (s *Stat) IsDevice() bool { return s.Type() == ModeChar || s.Type() == ModeBlock }

// ext2-style inode flags (FS_IOC_GETFLAGS), the encoding of Stat.Flags.
const (
	FlagSecrm     = 0x00000001
	FlagUnrm      = 0x00000002
	FlagCompr     = 0x00000004
	FlagSync      = 0x00000008
	FlagImmutable = 0x00000010
	FlagAppend    = 0x00000020
	FlagNodump    = 0x00000040
	FlagNoatime   = 0x00000080
	FlagDirsync   = 0x00010000
	FlagProjinher = 0x20000000
)

// DirEntry is one name in a directory. ReadDir never returns "." or "..".
type DirEntry struct {
	Name string
	Ino  Ino
	// Type is the d_type the directory stores (DT*), DTUnknown when the
	// format does not store one: Stat the Ino to learn it.
	Type uint8
}

// Xattr is one extended attribute as getxattr(2) shows it: the full name
// with its namespace ("user.comment", "trusted.x", "security.selinux",
// "system.posix_acl_access") and the value. POSIX ACLs are in the kernel's
// xattr format (posix_acl_xattr, version 2) whatever the on-disk format
// (ext's compact form, XFS's SGI_ACL_* attributes), so they can be set
// with lsetxattr or written to a dump as they are.
type Xattr struct {
	Name  string
	Value []byte
}

// Range is a byte range of a file.
type Range struct {
	Off, Len int64
}

// File is the content of a regular file, open for random access. Holes
// and unwritten (preallocated) extents read as zeros.
type File interface {
	io.ReaderAt
	// Size is the content length in bytes.
	Size() int64
	// DataRanges are the byte ranges that may hold data, in order, not
	// overlapping and within Size; the rest reads as zeros and is neither
	// copied by a sparse copy nor written to a dump.
	DataRanges() []Range
}

// Caps say what a format stores. Where it stores nothing, Stat holds the
// documented default of the implementation (package doc of each).
type Caps struct {
	// HardLinks: several names may share one Ino, and Nlink is real.
	HardLinks bool
	// Xattrs: Xattrs can return attributes.
	Xattrs bool
	// NsTimes: times carry nanoseconds (FAT has 2 s or 10 ms, ISO 1 s).
	NsTimes bool
	// Owners: UID and GID are stored (otherwise they are the defaults).
	Owners bool
	// Perms: permission bits are stored (otherwise 0755 for directories,
	// 0644 for everything else).
	Perms bool
	// Inodes: Ino is an on-disk inode number, stable across opens of the
	// same filesystem (dump's incremental levels rely on it). Without it
	// Ino is derived from the entry's on-disk position and is stable only
	// while the entry does not move.
	Inodes bool
	// Generation: Stat.Generation is stored.
	Generation bool
	// Devices: device nodes carry their device numbers.
	Devices bool
}

// Info describes an opened filesystem.
type Info struct {
	// Type is blkid's name for the format: "ext4", "vfat", "squashfs",
	// "iso9660", "xfs".
	Type  string
	Label string
	UUID  string
	// BlockSize is the allocation unit in bytes (the cluster for FAT).
	BlockSize int64
	// MaxIno is the largest Ino the filesystem can hand out, for sizing
	// bitmaps (dump's inode maps). It is 0 when Inos are sparse (FAT and
	// ISO 9660 derive them from positions and they may exceed 32 bits):
	// collect them with WalkInodes and number them densely where a
	// format needs small numbers (dump's 32-bit inode numbers).
	MaxIno Ino
	Caps   Caps
}

// Note is something a reader was told about the filesystem that did not
// stop it: a checksum mismatch, a backup superblock in use, a journal
// replayed in memory, a log left unreplayed.
type Note struct {
	// Ino is the inode concerned, or 0 for the whole volume.
	Ino Ino
	// Offset is the byte offset of the structure on the volume, or -1.
	Offset int64
	Msg    string
	// Checksum is set when the note is a checksum mismatch of the
	// structure at Offset (of inode Ino, when not 0), read anyway:
	// salvage marks such an inode suspect.
	Checksum bool
	// Stale is set when the view is known to be incomplete or older than
	// the disk's last state (a journal that could not be replayed, fast
	// commits skipped). Readers that produce output from such a view say
	// so and extract exits 3.
	Stale bool
}

func (n Note) String() string {
	s := ""
	if n.Ino != 0 {
		s += fmt.Sprintf("inode %d: ", n.Ino)
	}
	if n.Offset >= 0 {
		s += fmt.Sprintf("offset %#x: ", n.Offset)
	}
	return s + n.Msg
}

// FS is an opened, read-only filesystem.
type FS interface {
	// Info describes the filesystem.
	Info() Info
	// Root is the root directory's Ino.
	Root() Ino
	// Lookup resolves an absolute '/'-separated path without following a
	// final symlink (lstat). Symlinks along the way are followed inside
	// the filesystem (an absolute target starts from Root). A missing
	// name gives an error that matches fs.ErrNotExist.
	Lookup(path string) (Ino, error)
	// LookupFollow is Lookup that also follows a final symlink (stat).
	LookupFollow(path string) (Ino, error)
	// Stat returns an inode's metadata.
	Stat(ino Ino) (*Stat, error)
	// ReadDir lists a directory in on-disk order, without "." and "..".
	// On damage it returns the entries it could read with the error.
	ReadDir(ino Ino) ([]DirEntry, error)
	// Readlink returns a symlink's target, verbatim.
	Readlink(ino Ino) (string, error)
	// Xattrs returns an inode's extended attributes (nil when none),
	// in getxattr(2) form; internal attributes of the format (ext's
	// "system.data") are left out.
	Xattrs(ino Ino) ([]Xattr, error)
	// Open opens a regular file's content.
	Open(ino Ino) (File, error)
	// WalkInodes calls fn for every inode the filesystem holds as in use,
	// in increasing Ino order (for dump and for salvage's orphan scan).
	// Internal inodes of the format (journals, quota files, ext's
	// reserved inodes other than the root) are not visited. An inode
	// that cannot be read is passed with a nil Stat and its error; fn's
	// error stops the walk and is returned. ctx ends a long walk.
	WalkInodes(ctx context.Context, fn func(ino Ino, st *Stat, err error) error) error
	// Notes returns what the filesystem noticed so far (it grows as
	// damaged structures are met).
	Notes() []Note
}

// FileMode returns Mode as an io/fs mode (type bits, permissions,
// setuid, setgid and sticky).
func (s *Stat) FileMode() fs.FileMode {
	m := fs.FileMode(s.Mode & 0o777)
	if s.Mode&ModeSetuid != 0 {
		m |= fs.ModeSetuid
	}
	if s.Mode&ModeSetgid != 0 {
		m |= fs.ModeSetgid
	}
	if s.Mode&ModeSticky != 0 {
		m |= fs.ModeSticky
	}
	switch s.Type() {
	case ModeDir:
		m |= fs.ModeDir
	case ModeLink:
		m |= fs.ModeSymlink
	case ModeChar:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case ModeBlock:
		m |= fs.ModeDevice
	case ModeFIFO:
		m |= fs.ModeNamedPipe
	case ModeSocket:
		m |= fs.ModeSocket
	case ModeReg:
	default:
		m |= fs.ModeIrregular
	}
	return m
}
