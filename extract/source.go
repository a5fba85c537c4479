package extract

import (
	"io"

	"github.com/imgtool/imgtool/ext"
)

// Source is a filesystem the engine extracts from. Entries are named by
// 32-bit ids, and their metadata travels in ext's records: ext.Inode is
// the richest Unix inode record in the project (mode, owners, nanosecond
// times, link count, device numbers), so ext is read with no conversion
// at all, and a poorer format (package otherfs: FAT, squashfs, ISO 9660)
// fills in what it has. *ext.FS is a Source through ExtSource; an
// otherfs.FS through OtherSource.
//
// A Source is used from several goroutines at once (the walk, the
// content workers, the counting walk).
type Source interface {
	// Lookup resolves a path (absolute, '/'-separated; a final symlink
	// is not followed) to an id.
	Lookup(path string) (uint32, error)
	// Inode returns the metadata of an id. Ino must be the id.
	Inode(id uint32) (*ext.Inode, error)
	// ReadDirInode lists a directory. "." and ".." may come first.
	ReadDirInode(id uint32) ([]ext.DirEntry, error)
	Readlink(id uint32) (string, error)
	Xattrs(id uint32) ([]ext.Xattr, error)
	// OpenContent opens a regular file's content.
	OpenContent(id uint32) (Content, error)
}

// Content is a regular file's data.
type Content interface {
	io.ReaderAt
	Size() int64
	// DataRanges are the byte ranges that may hold data, in order; the
	// rest (holes, unwritten extents) reads as zeros and is not copied.
	DataRanges() []ext.Range
}

// ExtSource is fsys as a Source.
func ExtSource(fsys *ext.FS) Source { return extSource{fsys} }

type extSource struct{ *ext.FS }

func (s extSource) OpenContent(id uint32) (Content, error) {
	f, err := s.OpenInode(id)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// syntheticIDs is implemented by Sources whose ids are not on-disk inode
// numbers: reports then leave the id out.
type syntheticIDs interface{ SyntheticIDs() bool }
