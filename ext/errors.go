package ext

import (
	"errors"
	"fmt"
)

// CorruptError reports on-disk damage: what structure was bad, where it was
// on disk, and for which inode (0 when not inode-specific).
type CorruptError struct {
	Ino    uint32 // inode being read, or 0
	Offset int64  // byte offset of the structure on the volume, or -1
	What   string // the structure, e.g. "extent header"
	Detail string // what is wrong with it, e.g. "bad magic 0x0000"
}

func (e *CorruptError) Error() string {
	s := "ext: "
	if e.Ino != 0 {
		s += fmt.Sprintf("inode %d: ", e.Ino)
	}
	s += e.What
	if e.Offset >= 0 {
		s += fmt.Sprintf(" at offset %#x", e.Offset)
	}
	return s + ": " + e.Detail
}

// VolumeOffset is the byte offset of the damage on the volume (-1 if not
// known). Callers that know where the volume lies (inspect's address and
// image offset) add the absolute position; the interface is the same for
// every reader.
func (e *CorruptError) VolumeOffset() int64 { return e.Offset }

func corrupt(ino uint32, off int64, what, format string, args ...any) error {
	return &CorruptError{Ino: ino, Offset: off, What: what, Detail: fmt.Sprintf(format, args...)}
}

// ChecksumError reports a metadata checksum mismatch. Reading goes on: these
// are recorded as Notes rather than returned.
type ChecksumError struct {
	Ino      uint32 // inode concerned, or 0
	Offset   int64  // byte offset of the checksummed structure
	What     string // e.g. "inode", "group descriptor 3", "extent block"
	Stored   uint32
	Computed uint32
}

func (e *ChecksumError) Error() string {
	s := "ext: "
	if e.Ino != 0 {
		s += fmt.Sprintf("inode %d: ", e.Ino)
	}
	return s + fmt.Sprintf("%s at offset %#x: checksum mismatch: stored %#x, computed %#x",
		e.What, e.Offset, e.Stored, e.Computed)
}

// Errors for valid filesystems whose content cannot be read.
var (
	// ErrEncrypted: the inode is encrypted (fscrypt); names and data are
	// not decrypted.
	ErrEncrypted = errors.New("ext: inode is encrypted (not supported)")
	// ErrNotDir: a directory operation on a non-directory inode.
	ErrNotDir = errors.New("ext: not a directory")
	// ErrNotSymlink: Readlink on an inode that is not a symlink.
	ErrNotSymlink = errors.New("ext: not a symbolic link")
	// ErrNotExt: no ext2/3/4 superblock (primary or backup) was found.
	ErrNotExt = errors.New("ext: no ext2/3/4 superblock found")
	// ErrUnsupported: a feature this reader cannot read (e.g. compression).
	ErrUnsupported = errors.New("ext: unsupported feature")
	// ErrScanIncomplete: VFS.ScanInodes left out inodes it could not read.
	ErrScanIncomplete = errors.New("ext: inode scan incomplete")
)

// Note is something worth telling the user that did not stop reading: a
// checksum mismatch, a backup superblock in use.
type Note struct {
	Ino    uint32 // inode concerned, or 0
	Offset int64  // byte offset on the volume, or -1
	Msg    string
	Err    error // a *ChecksumError or *CorruptError when there is one
}

func (n Note) String() string {
	if n.Err != nil {
		return n.Err.Error()
	}
	s := "ext: "
	if n.Ino != 0 {
		s += fmt.Sprintf("inode %d: ", n.Ino)
	}
	if n.Offset >= 0 {
		s += fmt.Sprintf("offset %#x: ", n.Offset)
	}
	return s + n.Msg
}

// maxNotes bounds the notes kept: a badly damaged filesystem would
// otherwise grow the list without limit.
const maxNotes = 10000
