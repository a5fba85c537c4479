package ext

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Extended attributes live in two places: in the inode, after the extra
// fields (a 4-byte magic then entries, values addressed from the first
// entry), and in an external block named by i_file_acl (a 32-byte header then
// entries, values addressed from the block start). With ea_inode a value may
// instead be the content of a separate inode (e_value_inum).
const (
	xattrMagic       = 0xEA020000
	xattrBlockHeader = 32
	xattrEntryHeader = 16
	// xattrMaxValue bounds a value (the kernel's XATTR_SIZE_MAX).
	xattrMaxValue = 65536

	xhMagic    = 0x00
	xhRefcount = 0x04
	xhBlocks   = 0x08
	xhChecksum = 0x10

	xeNameLen   = 0x0
	xeNameIndex = 0x1
	xeValueOffs = 0x2
	xeValueInum = 0x4
	xeValueSize = 0x8
)

// xattrPrefixes maps e_name_index to the name prefix it stands for.
var xattrPrefixes = map[uint8]string{
	1: "user.",
	2: "system.posix_acl_access",
	3: "system.posix_acl_default",
	4: "trusted.",
	6: "security.",
	7: "system.",
	8: "system.richacl",
}

// Xattr is one extended attribute.
type Xattr struct {
	Name  string // full name, prefix included, e.g. "user.comment"
	Value []byte
	// InBlock is true when the attribute was in the external xattr block
	// (i_file_acl), false when it was in the inode.
	InBlock bool
	// ValueInode is the inode holding the value (ea_inode), or 0.
	ValueInode uint32
}

// Xattrs returns the extended attributes of inode ino: in-inode ones first,
// then those of the external block, in on-disk order.
func (fsys *FS) Xattrs(ino uint32) ([]Xattr, error) {
	in, err := fsys.Inode(ino)
	if err != nil {
		return nil, err
	}
	return fsys.xattrs(in)
}

func (fsys *FS) xattrs(in *Inode) ([]Xattr, error) {
	out, err := fsys.inodeXattrs(in)
	if err != nil {
		return out, err
	}
	if in.FileACL != 0 {
		bx, err := fsys.blockXattrs(in)
		out = append(out, bx...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// inodeXattrs parses the attributes stored in the inode body.
func (fsys *FS) inodeXattrs(in *Inode) ([]Xattr, error) {
	raw := in.raw
	start := goodOldInodeSize + int(in.ExtraIsize)
	if len(raw) <= goodOldInodeSize || start+4 > len(raw) {
		return nil, nil
	}
	if binary.LittleEndian.Uint32(raw[start:]) != xattrMagic {
		return nil, nil
	}
	return fsys.parseXattrEntries(in, raw[start+4:], raw[start+4:], in.Offset+int64(start+4), false)
}

// blockXattrs reads and parses the external xattr block.
func (fsys *FS) blockXattrs(in *Inode) ([]Xattr, error) {
	b := make([]byte, fsys.bs)
	if err := fsys.readBlock(in.Ino, "xattr block", in.FileACL, b); err != nil {
		return nil, err
	}
	off := int64(in.FileACL) * fsys.bs
	le := binary.LittleEndian
	if m := le.Uint32(b[xhMagic:]); m != xattrMagic {
		return nil, corrupt(in.Ino, off, "xattr block", "bad magic %#08x", m)
	}
	if n := le.Uint32(b[xhBlocks:]); n != 1 {
		return nil, corrupt(in.Ino, off+xhBlocks, "xattr block", "h_blocks %d (must be 1)", n)
	}
	if fsys.sb.hasMetadataCsum() {
		var nb [8]byte
		le.PutUint64(nb[:], in.FileACL)
		c := crc32c(fsys.csumSeed, nb[:])
		c = crc32c(c, b[:xhChecksum])
		c = crc32c(c, []byte{0, 0, 0, 0})
		c = crc32c(c, b[xhChecksum+4:])
		if stored := le.Uint32(b[xhChecksum:]); stored != c {
			fsys.note(in.Ino, off, "", &ChecksumError{Ino: in.Ino, Offset: off, What: "xattr block", Stored: stored, Computed: c})
		}
	}
	return fsys.parseXattrEntries(in, b[xattrBlockHeader:], b, off+xattrBlockHeader, true)
}

// parseXattrEntries decodes the entry table ents; values are addressed
// relative to the start of vals. off is ents' byte offset on disk.
func (fsys *FS) parseXattrEntries(in *Inode, ents, vals []byte, off int64, inBlock bool) ([]Xattr, error) {
	le := binary.LittleEndian
	var out []Xattr
	pos := 0
	for pos+xattrEntryHeader <= len(ents) {
		e := ents[pos:]
		if le.Uint32(e) == 0 { // end of entries
			break
		}
		nameLen := int(e[xeNameLen])
		idx := e[xeNameIndex]
		voff := int(le.Uint16(e[xeValueOffs:]))
		vinum := le.Uint32(e[xeValueInum:])
		vsize := le.Uint32(e[xeValueSize:])
		eoff := off + int64(pos)
		if pos+xattrEntryHeader+nameLen > len(ents) {
			return out, corrupt(in.Ino, eoff, "xattr entry", "name of %d bytes runs past the end", nameLen)
		}
		name := string(e[xattrEntryHeader : xattrEntryHeader+nameLen])
		if p, ok := xattrPrefixes[idx]; ok {
			name = p + name
		} else if idx != 0 {
			name = fmt.Sprintf("index%d.%s", idx, name)
		}
		x := Xattr{Name: name, InBlock: inBlock, ValueInode: vinum}
		switch {
		case vsize > xattrMaxValue:
			return out, corrupt(in.Ino, eoff, "xattr entry", "value of %q is %d bytes (max %d)", name, vsize, xattrMaxValue)
		case vinum != 0:
			v, err := fsys.eaInodeValue(in.Ino, vinum, vsize)
			if err != nil {
				return out, err
			}
			x.Value = v
		default:
			if voff+int(vsize) > len(vals) {
				return out, corrupt(in.Ino, eoff, "xattr entry", "value of %q (%d bytes at %d) runs past the end", name, vsize, voff)
			}
			x.Value = append([]byte(nil), vals[voff:voff+int(vsize)]...)
		}
		out = append(out, x)
		pos += (xattrEntryHeader + nameLen + 3) &^ 3
	}
	return out, nil
}

// eaInodeValue reads an xattr value stored in inode vino (ea_inode).
func (fsys *FS) eaInodeValue(owner, vino, size uint32) ([]byte, error) {
	vin, err := fsys.Inode(vino)
	if err != nil {
		return nil, fmt.Errorf("ext: inode %d: xattr value inode: %w", owner, err)
	}
	if vin.Flags&FlagInlineData != 0 || vin.Ino == owner {
		// An xattr value inode holds its value in blocks; inline data
		// would read xattrs again and could recurse without end.
		return nil, corrupt(owner, vin.Offset, "xattr value inode", "inode %d is inline-data or the owner itself", vino)
	}
	if vin.Flags&FlagEAInode == 0 {
		fsys.note(owner, vin.Offset, fmt.Sprintf("xattr value inode %d lacks the EA_INODE flag", vino), nil)
	}
	f, err := fsys.openInode(vin)
	if err != nil {
		return nil, err
	}
	v := make([]byte, size)
	n, err := f.ReadAt(v, 0)
	if n < int(size) {
		if err == nil || err == io.EOF {
			err = corrupt(owner, vin.Offset, "xattr value inode", "inode %d holds %d bytes, entry says %d", vino, f.Size(), size)
		}
		return nil, err
	}
	return v, nil
}

// inlineData returns the inline content of an inode with FlagInlineData:
// i_block (60 bytes) followed by the system.data xattr value.
func (fsys *FS) inlineData(in *Inode) ([]byte, error) {
	xs, err := fsys.inodeXattrs(in)
	if err != nil {
		return nil, err
	}
	data := append([]byte(nil), in.Block[:]...)
	for _, x := range xs {
		if x.Name == "system.data" {
			data = append(data, x.Value...)
			break
		}
	}
	return data, nil
}
