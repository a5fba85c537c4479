package dump

import (
	"errors"
	"fmt"
	"strings"
)

// Extended attributes go on the tape as "EA records": after a file's data,
// a TS_INODE header for the same inode with DR_EXTATTRIBUTES in c_flags and
// c_extattributes = EXT_XATTR, whose data (di_size bytes, all c_count
// records present) is an ext2 xattr area in one of two layouts:
//
//   - EXT2_XATTR_MAGIC (0xEA020000): an ext2 xattr block: a 32-byte header
//     (magic, refcount, blocks, hash, reserved), entries from offset 32,
//     value offsets counted from the start of the block. Stock dump writes
//     a file's xattr block this way.
//   - EXT2_XATTR_MAGIC2 (0xEA020001): the in-inode layout: a 4-byte magic,
//     entries right after it, value offsets counted from the first entry.
//     Stock dump writes the in-inode EA area this way; so do we.
//
// An entry is: u8 e_name_len, u8 e_name_index, u16 e_value_offs, u32
// e_value_inum (0), u32 e_value_size, u32 e_hash, then the name (without
// its prefix), padded to 4 bytes. Four zero bytes end the entry list.
// restore reads at most XATTR_MAXSIZE bytes per EA record, so the writer
// splits larger sets over several records (restore applies each one).
const (
	XattrMagic       = 0xEA020000 // EXT2_XATTR_MAGIC: block layout
	XattrMagicInode  = 0xEA020001 // EXT2_XATTR_MAGIC2: in-inode layout
	xattrEntryHeader = 16
	// MaxEARecord is the largest EA record we write: restore 0.4b47's
	// XATTR_MAXSIZE. Measured: it applies a 3,950-byte record and refuses
	// a 5,028-byte one ("EA size too big") and then loses its place.
	MaxEARecord = 4096
)

// ext2 xattr name indexes (e_name_index) and their prefixes.
var xattrPrefixes = []struct {
	index  uint8
	prefix string
	exact  bool // the whole name is the prefix (ACLs)
}{
	{1, "user.", false},
	{2, "system.posix_acl_access", true},
	{3, "system.posix_acl_default", true},
	{4, "trusted.", false},
	{5, "lustre.", false},
	{6, "security.", false},
}

func xattrIndex(name string) (uint8, string, bool) {
	for _, p := range xattrPrefixes {
		if p.exact {
			if name == p.prefix {
				return p.index, "", true
			}
			continue
		}
		if strings.HasPrefix(name, p.prefix) && len(name) > len(p.prefix) {
			return p.index, name[len(p.prefix):], true
		}
	}
	return 0, "", false
}

func xattrName(index uint8, suffix string) (string, bool) {
	for _, p := range xattrPrefixes {
		if p.index == index {
			return p.prefix + suffix, true
		}
	}
	return "", false
}

func pad4(n int) int { return (n + 3) &^ 3 }

// encodeEARecords encodes xattrs into one or more in-inode-layout EA
// buffers of at most MaxEARecord bytes. Attributes restore cannot
// represent are returned in skipped with the reason.
func encodeEARecords(xs []Xattr) (recs [][]byte, skipped []string) {
	type ent struct {
		index  uint8
		suffix string
		value  []byte
	}
	var cur []ent
	curSize := 4 + 4 // magic + end marker
	flush := func() {
		if len(cur) == 0 {
			return
		}
		buf := make([]byte, curSize)
		le.PutUint32(buf, XattrMagicInode)
		// Entries from offset 4, values after the end marker.
		eoff := 4
		voff := 4
		for _, e := range cur {
			voff += pad4(xattrEntryHeader + len(e.suffix))
		}
		voff += 4 // end marker
		for _, e := range cur {
			buf[eoff] = uint8(len(e.suffix))
			buf[eoff+1] = e.index
			le.PutUint16(buf[eoff+2:], uint16(voff-4)) // relative to first entry
			le.PutUint32(buf[eoff+8:], uint32(len(e.value)))
			copy(buf[eoff+xattrEntryHeader:], e.suffix)
			eoff += pad4(xattrEntryHeader + len(e.suffix))
			copy(buf[voff:], e.value)
			voff += pad4(len(e.value))
		}
		recs = append(recs, buf)
		cur = nil
		curSize = 8
	}
	for _, x := range xs {
		index, suffix, ok := xattrIndex(x.Name)
		if !ok {
			skipped = append(skipped, fmt.Sprintf("xattr %q: name prefix not representable in a dump EA record", x.Name))
			continue
		}
		if len(suffix) > 255 {
			skipped = append(skipped, fmt.Sprintf("xattr %q: name too long", x.Name))
			continue
		}
		value := x.Value
		if index == 2 || index == 3 {
			v, err := ACLToDisk(value)
			if err != nil {
				skipped = append(skipped, fmt.Sprintf("xattr %q: %v", x.Name, err))
				continue
			}
			value = v
		}
		need := pad4(xattrEntryHeader+len(suffix)) + pad4(len(value))
		if 8+need > MaxEARecord {
			skipped = append(skipped, fmt.Sprintf("xattr %q: %d-byte value too large for an EA record", x.Name, len(x.Value)))
			continue
		}
		if curSize+need > MaxEARecord {
			flush()
		}
		cur = append(cur, ent{index, suffix, value})
		curSize += need
	}
	flush()
	return recs, skipped
}

// decodeEA parses an EA record's data (either layout).
func decodeEA(b []byte) ([]Xattr, error) {
	if len(b) < 8 {
		return nil, errors.New("EA record too short")
	}
	magic := le.Uint32(b)
	var first, valueBase int
	switch magic {
	case XattrMagicInode:
		first, valueBase = 4, 4
	case XattrMagic:
		first, valueBase = 32, 0
	default:
		return nil, fmt.Errorf("EA record: bad magic %#x", magic)
	}
	var out []Xattr
	for off := first; ; {
		if off+4 > len(b) {
			return out, errors.New("EA record: entry list runs off the end")
		}
		if le.Uint32(b[off:]) == 0 {
			return out, nil
		}
		if off+xattrEntryHeader > len(b) {
			return out, fmt.Errorf("EA record: entry at %d runs off the end", off)
		}
		nlen := int(b[off])
		index := b[off+1]
		voffs := int(le.Uint16(b[off+2:]))
		vsize := int(le.Uint32(b[off+8:]))
		if off+xattrEntryHeader+nlen > len(b) {
			return out, fmt.Errorf("EA record: name of entry at %d runs off the end", off)
		}
		suffix := string(b[off+xattrEntryHeader : off+xattrEntryHeader+nlen])
		vstart := valueBase + voffs
		if vsize < 0 || vstart > len(b) || vsize > len(b)-vstart {
			return out, fmt.Errorf("EA record: value of entry at %d (offset %d, size %d) out of range", off, voffs, vsize)
		}
		name, ok := xattrName(index, suffix)
		if !ok {
			return out, fmt.Errorf("EA record: entry at %d has unknown name index %d", off, index)
		}
		value := append([]byte(nil), b[vstart:vstart+vsize]...)
		if index == 2 || index == 3 {
			v, err := ACLFromDisk(value)
			if err != nil {
				return out, fmt.Errorf("EA record: %s: %v", name, err)
			}
			value = v
		}
		out = append(out, Xattr{Name: name, Value: value})
		off += pad4(xattrEntryHeader + nlen)
	}
}

// POSIX ACL tags.
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20

	aclXattrVersion = 2 // POSIX_ACL_XATTR_VERSION (VFS format)
	aclDiskVersion  = 1 // EXT2_ACL_VERSION (on-disk format)
)

// ACLToDisk converts a POSIX ACL from the VFS xattr format (version 2,
// 8-byte entries) to ext2's on-disk format (version 1, 4-byte entries for
// the tags without an id), the form dump puts on tape.
func ACLToDisk(v []byte) ([]byte, error) {
	if len(v) < 4 || (len(v)-4)%8 != 0 {
		return nil, fmt.Errorf("ACL: bad length %d", len(v))
	}
	if le.Uint32(v) != aclXattrVersion {
		return nil, fmt.Errorf("ACL: version %d, want %d", le.Uint32(v), aclXattrVersion)
	}
	out := make([]byte, 4, len(v))
	le.PutUint32(out, aclDiskVersion)
	for off := 4; off < len(v); off += 8 {
		tag := le.Uint16(v[off:])
		perm := le.Uint16(v[off+2:])
		id := le.Uint32(v[off+4:])
		switch tag {
		case aclUserObj, aclGroupObj, aclMask, aclOther:
			out = le.AppendUint16(out, tag)
			out = le.AppendUint16(out, perm)
		case aclUser, aclGroup:
			out = le.AppendUint16(out, tag)
			out = le.AppendUint16(out, perm)
			out = le.AppendUint32(out, id)
		default:
			return nil, fmt.Errorf("ACL: unknown tag %#x", tag)
		}
	}
	return out, nil
}

// ACLFromDisk converts an ACL from ext2's on-disk format to the VFS xattr
// format.
func ACLFromDisk(v []byte) ([]byte, error) {
	if len(v) < 4 || le.Uint32(v) != aclDiskVersion {
		return nil, errors.New("ACL: bad on-disk header")
	}
	out := make([]byte, 4, 4+2*len(v))
	le.PutUint32(out, aclXattrVersion)
	for off := 4; off < len(v); {
		if off+4 > len(v) {
			return nil, errors.New("ACL: truncated entry")
		}
		tag := le.Uint16(v[off:])
		perm := le.Uint16(v[off+2:])
		id := uint32(0xFFFFFFFF) // ACL_UNDEFINED_ID
		switch tag {
		case aclUserObj, aclGroupObj, aclMask, aclOther:
			off += 4
		case aclUser, aclGroup:
			if off+8 > len(v) {
				return nil, errors.New("ACL: truncated entry")
			}
			id = le.Uint32(v[off+4:])
			off += 8
		default:
			return nil, fmt.Errorf("ACL: unknown tag %#x", tag)
		}
		out = le.AppendUint16(out, tag)
		out = le.AppendUint16(out, perm)
		out = le.AppendUint32(out, id)
	}
	return out, nil
}
