package ext

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"sync"
)

// A directory is a file of directory blocks, each a chain of variable-length
// entries (struct ext4_dir_entry_2): inode u32, rec_len u16 (bytes to the
// next entry), name_len u8, file_type u8 (name_len is u16 without the
// filetype feature), then the name. Inode 0 marks an unused entry. htree
// index blocks disguise themselves as an empty entry spanning the block
// (and the root's dx info sits inside ".."'s rec_len), so a linear read
// skips them. With metadata_csum each leaf block ends in a 12-byte fake
// entry (inode 0, rec_len 12, name_len 0, type 0xDE) holding a crc32c.
const (
	direntHeader    = 8
	direntTailSize  = 12
	direntTailType  = 0xDE
	maxNameLen      = 255
	inlineDirParent = 4 // inline dirs start with the parent's inode number
)

// Directory entry file types (with the filetype feature).
const (
	FTUnknown = 0
	FTReg     = 1
	FTDir     = 2
	FTChr     = 3
	FTBlk     = 4
	FTFIFO    = 5
	FTSock    = 6
	FTSymlink = 7
)

// DirEntry is one directory entry.
type DirEntry struct {
	Name string
	Ino  uint32
	// FileType is the FT* type from the entry, or derived from the
	// inode's mode when the filesystem lacks the filetype feature.
	FileType uint8
}

// Mode returns the io/fs type bits for the entry's file type.
func (d DirEntry) Mode() fs.FileMode {
	switch d.FileType {
	case FTDir:
		return fs.ModeDir
	case FTChr:
		return fs.ModeDevice | fs.ModeCharDevice
	case FTBlk:
		return fs.ModeDevice
	case FTFIFO:
		return fs.ModeNamedPipe
	case FTSock:
		return fs.ModeSocket
	case FTSymlink:
		return fs.ModeSymlink
	case FTReg:
		return 0
	}
	return fs.ModeIrregular
}

func modeToFT(mode uint16) uint8 {
	switch mode & ModeType {
	case ModeReg:
		return FTReg
	case ModeDir:
		return FTDir
	case ModeChar:
		return FTChr
	case ModeBlock:
		return FTBlk
	case ModeFIFO:
		return FTFIFO
	case ModeSocket:
		return FTSock
	case ModeSymlink:
		return FTSymlink
	}
	return FTUnknown
}

// ReadDirInode returns the entries of directory inode ino in on-disk order,
// including "." and ".." (synthesised for inline-data directories, which do
// not store them). A damaged block does not stop the read: the entries of
// the other blocks are returned together with the first error.
func (fsys *FS) ReadDirInode(ino uint32) ([]DirEntry, error) {
	in, err := fsys.Inode(ino)
	if err != nil {
		return nil, err
	}
	return fsys.readDir(in)
}

// dirList is one directory's entries as scanDir found them, in space
// reused through dirListPool: the names end to end in one buffer. readDir
// and VFS.ReadDir copy it out at its exact size with the names in one
// string: a dump of 1M files in 10,000 directories made 1.2M allocations
// here, one per name plus the slices' growth, and a copy per layer.
type dirList struct {
	ents  []DirEntry // Name unset: see name
	ends  []int
	names []byte
	all   string // names, once each() made it
}

var dirListPool = sync.Pool{New: func() any { return new(dirList) }}

// listDir scans directory in into a dirList (release it when done); an
// entry's unknown file type (no filetype feature) comes from its inode.
func (fsys *FS) listDir(in *Inode) (*dirList, error) {
	l := dirListPool.Get().(*dirList)
	l.ents, l.ends, l.names, l.all = l.ents[:0], l.ends[:0], l.names[:0], ""
	err := fsys.scanDir(in, func(name []byte, ino uint32, ft uint8) bool {
		l.names = append(l.names, name...)
		l.ends = append(l.ends, len(l.names))
		l.ents = append(l.ents, DirEntry{Ino: ino, FileType: ft})
		return true
	})
	if !fsys.sb.hasFiletype() {
		for i := range l.ents {
			if l.ents[i].FileType == FTUnknown {
				if cin, err := fsys.Inode(l.ents[i].Ino); err == nil {
					l.ents[i].FileType = modeToFT(cin.Mode)
				}
			}
		}
	}
	return l, err
}

// each calls fn for every entry, its name a substring of one string
// holding all the names.
func (l *dirList) each(fn func(e DirEntry)) {
	l.all = string(l.names)
	start := 0
	for i, e := range l.ents {
		e.Name, start = l.all[start:l.ends[i]], l.ends[i]
		fn(e)
	}
}

func (l *dirList) release() {
	if cap(l.names) > 1<<20 { // a huge directory: do not keep its space
		*l = dirList{}
	}
	l.all = ""
	dirListPool.Put(l)
}

func (fsys *FS) readDir(in *Inode) ([]DirEntry, error) {
	l, err := fsys.listDir(in)
	defer l.release()
	if len(l.ents) == 0 {
		return nil, err
	}
	out := make([]DirEntry, 0, len(l.ents))
	l.each(func(e DirEntry) { out = append(out, e) })
	return out, err
}

// lookupName finds name in directory in without building the entry list.
// It returns 0 when the name is absent.
func (fsys *FS) lookupName(in *Inode, name string) (uint32, error) {
	var found uint32
	err := fsys.scanDir(in, func(n []byte, ino uint32, _ uint8) bool {
		if string(n) == name {
			found = ino
			return false
		}
		return true
	})
	if found != 0 {
		return found, nil
	}
	return 0, err
}

// dirReadBlocks is how many directory blocks are read per ReadAt.
const dirReadBlocks = 16

// scanDir calls fn for each live entry of directory in, in on-disk order,
// until fn returns false. A damaged block does not stop the scan: the
// first error is returned at the end.
func (fsys *FS) scanDir(in *Inode, fn func(name []byte, ino uint32, ft uint8) bool) error {
	if !in.IsDir() {
		return fmt.Errorf("ext: inode %d: %w", in.Ino, ErrNotDir)
	}
	if in.Flags&FlagEncrypt != 0 && !fsys.salvage {
		return fmt.Errorf("ext: inode %d: %w", in.Ino, ErrEncrypted)
	}
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if in.Flags&FlagInlineData != 0 {
		d, err := fsys.inlineData(in)
		if err != nil {
			return err
		}
		if len(d) < inlineDirParent {
			return corrupt(in.Ino, in.Offset+inBlock, "inline directory", "only %d bytes", len(d))
		}
		parent := binary.LittleEndian.Uint32(d)
		if !fn([]byte("."), in.Ino, FTDir) || !fn([]byte(".."), parent, FTDir) {
			return nil
		}
		// i_block after the parent, then the system.data part, each a
		// chain of entries of its own.
		stop, err := fsys.parseDirBlock(in, d[inlineDirParent:iBlockSize], in.Offset+inBlock+inlineDirParent, false, fn)
		keep(err)
		if !stop && len(d) > iBlockSize {
			_, err = fsys.parseDirBlock(in, d[iBlockSize:], -1, false, fn)
			keep(err)
		}
		return firstErr
	}
	m, err := fsys.blockMap(in)
	keep(err)
	bs := uint64(fsys.bs)
	nblocks := (in.Size + bs - 1) / bs
	budget := min(nblocks, fsys.nblocks) // overlapping extents cannot multiply the work
	var buf *[]byte
	defer func() {
		if buf != nil {
			fsys.dirBufs.Put(buf)
		}
	}()
	for _, e := range m {
		if e.Unwritten || e.Logical >= nblocks {
			continue
		}
		n := min(e.Len, nblocks-e.Logical)
		for i := uint64(0); i < n; {
			if budget == 0 {
				return firstErr
			}
			k := min(n-i, dirReadBlocks, budget)
			budget -= k
			pb := e.Physical + i
			if buf == nil {
				if b, ok := fsys.dirBufs.Get().(*[]byte); ok {
					buf = b
				} else {
					b := make([]byte, dirReadBlocks*fsys.bs)
					buf = &b
				}
			}
			chunk := (*buf)[:int64(k)*fsys.bs]
			if pb+k > fsys.sb.BlocksCount {
				keep(corrupt(in.Ino, int64(pb)*fsys.bs, "directory block", "blocks %d+%d beyond the block count %d", pb, k, fsys.sb.BlocksCount))
				i += k
				continue
			}
			if err := fsys.readFull(chunk, int64(pb)*fsys.bs); err != nil {
				keep(fmt.Errorf("ext: inode %d: directory blocks at offset %#x: %w", in.Ino, int64(pb)*fsys.bs, err))
				i += k
				continue
			}
			for j := uint64(0); j < k; j++ {
				blk := chunk[int64(j)*fsys.bs : int64(j+1)*fsys.bs]
				stop, err := fsys.parseDirBlock(in, blk, int64(pb+j)*fsys.bs, true, fn)
				keep(err)
				if stop {
					return nil
				}
			}
			i += k
		}
	}
	return firstErr
}

// parseDirBlock calls fn for the live entries of one directory block b
// (found at byte offset off, -1 if not a block on disk); stop reports that
// fn asked to stop. isBlock enables the checksum tail check. A live entry
// it cannot pass on (an empty name, an inode number out of range) is
// skipped, the block is read on, and the first such entry is returned as
// the error: every skipped entry is a reported loss, never a silent one.
func (fsys *FS) parseDirBlock(in *Inode, b []byte, off int64, isBlock bool, fn func(name []byte, ino uint32, ft uint8) bool) (stop bool, err error) {
	le := binary.LittleEndian
	hasFT := fsys.sb.hasFiletype()
	pos := 0
	at := func(p int) int64 {
		if off < 0 {
			return -1
		}
		return off + int64(p)
	}
	for pos+direntHeader <= len(b) {
		e := b[pos:]
		ino := le.Uint32(e)
		recLen := int(le.Uint16(e[4:]))
		if fsys.bs >= 65536 && (recLen == 0 || recLen == 65535) && isBlock {
			recLen = len(b) - pos // 64 KiB blocks: rec_len 0/65535 means "whole block"
		} else if fsys.bs >= 65536 {
			recLen = recLen&0xFFFC | (recLen&3)<<16
		}
		nameLen := int(e[6])
		ft := uint8(FTUnknown)
		if hasFT {
			ft = e[7]
		} else {
			nameLen |= int(e[7]) << 8
		}
		if recLen < direntHeader || recLen%4 != 0 || pos+recLen > len(b) {
			return false, corrupt(in.Ino, at(pos), "directory entry", "rec_len %d invalid (entry at %d of a %d-byte block)", recLen, pos, len(b))
		}
		if nameLen+direntHeader > recLen {
			return false, corrupt(in.Ino, at(pos), "directory entry", "name_len %d does not fit in rec_len %d", nameLen, recLen)
		}
		if ino == 0 && recLen == direntTailSize && nameLen == 0 && hasFT && ft == direntTailType && pos+recLen == len(b) {
			if isBlock && fsys.sb.hasMetadataCsum() {
				stored := le.Uint32(e[8:])
				c := crc32c(fsys.inodeSeed(in.Ino, in.Generation), b[:pos])
				if c != stored {
					fsys.note(in.Ino, at(pos), "", &ChecksumError{Ino: in.Ino, Offset: off, What: "directory block", Stored: stored, Computed: c})
				}
			}
			break
		}
		switch {
		case ino != 0 && nameLen == 0:
			// A live entry without a name cannot be listed or extracted,
			// but it is a file that the reader leaves out: say so (the
			// rest of the block is still read).
			if err == nil {
				err = corrupt(in.Ino, at(pos), "directory entry", "inode %d has an empty name (name_len 0): skipped, the file is not reachable by name (extract --salvage finds it as an orphan)", ino)
			}
		case ino != 0:
			name := e[direntHeader : direntHeader+nameLen]
			if ino > fsys.sb.InodesCount {
				if err == nil {
					err = corrupt(in.Ino, at(pos), "directory entry", "%q points to inode %d beyond the inode count %d: skipped", name, ino, fsys.sb.InodesCount)
				}
			} else if !fn(name, ino, ft) {
				return true, nil
			}
		}
		pos += recLen
	}
	// err is the first entry skipped in this block, if any.
	return false, err
}

// isFastSymlink reports whether a symlink's target is stored in i_block.
func (fsys *FS) isFastSymlink(in *Inode) bool {
	if in.Flags&FlagInlineData != 0 {
		return false
	}
	if in.Flags&FlagExtents != 0 {
		// An extent-mapped symlink has a tree root in i_block.
		return in.Size < iBlockSize && binary.LittleEndian.Uint16(in.Block[:]) != extentMagic
	}
	if in.Size >= iBlockSize {
		return false
	}
	eaBlocks := uint64(0)
	if in.FileACL != 0 {
		eaBlocks = uint64(fsys.sb.ClusterSize / 512)
	}
	return in.Blocks <= eaBlocks
}

// Readlink returns the target of symlink inode ino: from i_block (fast
// symlinks), inline data, or its data block. (ReadLink, with a capital L,
// is the io/fs method that takes a path.)
func (fsys *FS) Readlink(ino uint32) (string, error) {
	in, err := fsys.Inode(ino)
	if err != nil {
		return "", err
	}
	return fsys.readlink(in)
}

// maxSymlink bounds a symlink target (PATH_MAX 4096; the format allows up
// to one block).
func (fsys *FS) readlink(in *Inode) (string, error) {
	if !in.IsSymlink() {
		return "", fmt.Errorf("ext: inode %d: %w", in.Ino, ErrNotSymlink)
	}
	if in.Flags&FlagEncrypt != 0 && !fsys.salvage {
		return "", fmt.Errorf("ext: inode %d: %w", in.Ino, ErrEncrypted)
	}
	if in.Size > uint64(fsys.bs) {
		return "", corrupt(in.Ino, in.Offset+inSizeLo, "symlink", "target length %d exceeds the block size", in.Size)
	}
	if fsys.isFastSymlink(in) {
		return string(in.Block[:in.Size]), nil
	}
	f, err := fsys.openInode(in)
	if err != nil {
		return "", err
	}
	b := make([]byte, f.Size())
	if _, err := f.ReadAt(b, 0); err != nil && len(b) > 0 {
		return "", err
	}
	return string(b), nil
}
