package ext

import (
	"encoding/binary"
	"fmt"
)

// Helpers for building metadata in memory, the way the kernel would write
// it, for readers that present a changed view of a filesystem without
// writing the volume (the journal package's fast-commit replay). Nothing
// here writes anything: each helper fills or checks a caller's buffer.

// MetadataCsum reports the metadata_csum feature: inodes, extent blocks and
// directory blocks carry crc32c checksums.
func (fsys *FS) MetadataCsum() bool { return fsys.sb.hasMetadataCsum() }

// InodeOffset returns the byte offset of inode ino on the volume.
func (fsys *FS) InodeOffset(ino uint32) (int64, error) { return fsys.inodeOffset(ino) }

// ParseInode decodes raw (s_inode_size bytes) as inode ino found at byte
// offset off, as Inode does after reading it. The Inode keeps raw.
func (fsys *FS) ParseInode(ino uint32, off int64, raw []byte) (*Inode, error) {
	if len(raw) != int(fsys.sb.InodeSize) {
		return nil, fmt.Errorf("ext: inode %d: %d bytes, the filesystem's inodes are %d", ino, len(raw), fsys.sb.InodeSize)
	}
	return fsys.parseInode(ino, off, raw)
}

// SetInodeChecksum stores the metadata_csum checksum of raw, inode ino (a
// no-op without metadata_csum).
func (fsys *FS) SetInodeChecksum(ino uint32, raw []byte) {
	if !fsys.sb.hasMetadataCsum() || len(raw) < goodOldInodeSize {
		return
	}
	le := binary.LittleEndian
	hasHi := false
	if len(raw) > goodOldInodeSize {
		extra := int(le.Uint16(raw[inExtraIsize:]))
		hasHi = goodOldInodeSize+extra >= inChecksumHi+2 && goodOldInodeSize+extra <= len(raw)
	}
	_, c := fsys.inodeChecksum(ino, raw, le.Uint32(raw[inGeneration:]), hasHi)
	le.PutUint16(raw[inChecksumLo:], uint16(c))
	if hasHi {
		le.PutUint16(raw[inChecksumHi:], uint16(c>>16))
	}
}

// SetExtentBlockChecksum stores the crc32c tail of extent tree block b of
// inode ino (generation gen); b's header must be filled in (eh_max decides
// where the tail is).
func (fsys *FS) SetExtentBlockChecksum(ino, gen uint32, b []byte) {
	if !fsys.sb.hasMetadataCsum() || len(b) < extentHeaderSize {
		return
	}
	end := extentHeaderSize + int(binary.LittleEndian.Uint16(b[ehMax:]))*extentEntrySize
	if end+4 > len(b) {
		return
	}
	binary.LittleEndian.PutUint32(b[end:], crc32c(fsys.inodeSeed(ino, gen), b[:end]))
}

// SetDirBlockChecksum stores the checksum of directory leaf block b of
// inode ino (generation gen) in its tail entry. It reports false when b
// has no tail entry (no metadata_csum, or an htree index block).
func (fsys *FS) SetDirBlockChecksum(ino, gen uint32, b []byte) bool {
	if !fsys.sb.hasMetadataCsum() || len(b) < direntTailSize {
		return false
	}
	le := binary.LittleEndian
	t := b[len(b)-direntTailSize:]
	if le.Uint32(t) != 0 || le.Uint16(t[4:]) != direntTailSize || t[6] != 0 || t[7] != direntTailType {
		return false
	}
	le.PutUint32(t[8:], crc32c(fsys.inodeSeed(ino, gen), b[:len(b)-direntTailSize]))
	return true
}

// BlockBitmap returns the block bitmap of group g (bit i set: block
// FirstDataBlock+g*BlocksPerGroup+i in use). With GroupBlockUninit the
// bitmap is not initialised and nil is returned.
func (fsys *FS) BlockBitmap(g uint64) ([]byte, error) {
	if g >= uint64(len(fsys.groups)) {
		return nil, fmt.Errorf("ext: group %d out of range (%d groups)", g, len(fsys.groups))
	}
	gd := &fsys.groups[g]
	if gd.Flags&GroupBlockUninit != 0 && (fsys.sb.hasGdtCsum() || fsys.sb.hasMetadataCsum()) {
		return nil, nil
	}
	b := make([]byte, fsys.bs)
	if err := fsys.readBlock(0, "block bitmap", gd.BlockBitmap, b); err != nil {
		return nil, err
	}
	return b, nil
}

// FTOfMode returns the directory entry file type (FT*) of a mode.
func FTOfMode(mode uint16) uint8 { return modeToFT(mode) }

// HasFiletype reports the filetype feature (entries carry FT* types and
// an 8-bit name length).
func (fsys *FS) HasFiletype() bool { return fsys.sb.hasFiletype() }
