package dump

import (
	"fmt"
)

// Directories go on the tape as BSD "struct direct" entries, the format
// dump converts ext2 directories to:
//
//	u32 d_ino
//	u16 d_reclen   (multiple of 4; the last entry of a 512-byte block is
//	                stretched to the block's end)
//	u8  d_type     (DT_*)
//	u8  d_namlen
//	    d_name     (d_namlen bytes, NUL, zero padding to d_reclen)
//
// No entry crosses a DIRBLKSIZ (512-byte) boundary, and the directory's size
// on tape is a multiple of 512. "." and ".." come first, as in ext2.
const direntHeader = 8

// direntLen is EXT2_DIR_REC_LEN(namlen + 1), the record length dump uses.
func direntLen(namlen int) int {
	return (direntHeader + namlen + 1 + 3) &^ 3
}

// validName reports whether a name can be a directory entry on tape.
func validName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > maxNameLength {
		return false
	}
	// A byte loop: strings.ContainsAny was 9% of a level-9 dump's CPU.
	for i := 0; i < len(name); i++ {
		if name[i] == '/' || name[i] == 0 {
			return false
		}
	}
	return true
}

// encodeDir builds the tape image of a directory: "." and ".." then ents.
func encodeDir(self, parent uint32, ents []DirEntry) []byte {
	all := make([]DirEntry, 0, len(ents)+2)
	all = append(all, DirEntry{Name: ".", Ino: self, Type: DTDir}, DirEntry{Name: "..", Ino: parent, Type: DTDir})
	all = append(all, ents...)
	size := 0
	for _, e := range all {
		n := direntLen(len(e.Name))
		if size%DirBlkSiz+n > DirBlkSiz {
			size += DirBlkSiz - size%DirBlkSiz
		}
		size += n
	}
	if size%DirBlkSiz != 0 {
		size += DirBlkSiz - size%DirBlkSiz
	}
	buf := make([]byte, size)
	off, prev := 0, -1
	for _, e := range all {
		n := direntLen(len(e.Name))
		if off%DirBlkSiz+n > DirBlkSiz {
			// Stretch the previous entry to the end of its block.
			pad := DirBlkSiz - off%DirBlkSiz
			le.PutUint16(buf[prev+4:], le.Uint16(buf[prev+4:])+uint16(pad))
			off += pad
		}
		le.PutUint32(buf[off:], e.Ino)
		le.PutUint16(buf[off+4:], uint16(n))
		buf[off+6] = e.Type
		buf[off+7] = uint8(len(e.Name))
		copy(buf[off+direntHeader:], e.Name)
		prev = off
		off += n
	}
	if off%DirBlkSiz != 0 {
		pad := DirBlkSiz - off%DirBlkSiz
		le.PutUint16(buf[prev+4:], le.Uint16(buf[prev+4:])+uint16(pad))
	}
	return buf
}

// decodeDir parses a directory's tape image. It returns all entries with a
// non-zero inode, "." and ".." included. base is the byte offset of the
// directory data in the stream, for error messages.
func decodeDir(b []byte, base int64) ([]DirEntry, error) {
	var out []DirEntry
	for off := 0; off < len(b); {
		blockEnd := (off/DirBlkSiz + 1) * DirBlkSiz
		if blockEnd > len(b) {
			blockEnd = len(b)
		}
		if blockEnd-off < direntHeader {
			off = blockEnd
			continue
		}
		ino := le.Uint32(b[off:])
		reclen := int(le.Uint16(b[off+4:]))
		typ := b[off+6]
		namlen := int(b[off+7])
		if reclen < direntHeader || reclen%4 != 0 || off+reclen > blockEnd {
			return out, fmt.Errorf("directory entry at byte %d: bad d_reclen %d", base+int64(off), reclen)
		}
		if ino != 0 {
			if direntHeader+namlen > reclen {
				return out, fmt.Errorf("directory entry at byte %d: d_namlen %d does not fit d_reclen %d", base+int64(off), namlen, reclen)
			}
			name := string(b[off+direntHeader : off+direntHeader+namlen])
			out = append(out, DirEntry{Name: name, Ino: ino, Type: typ})
		}
		off += reclen
	}
	return out, nil
}
