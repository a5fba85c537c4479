package ext

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// POSIX ACLs. ext4 stores system.posix_acl_access/default in its own
// compact format (struct ext4_acl_header, version 1, then entries of 4
// bytes — tag u16, perm u16 — or 8 bytes with an id u32 for the named
// USER and GROUP tags). The kernel's xattr interface wants the VFS format
// (struct posix_acl_xattr_header, version 2, then 8-byte entries: tag,
// perm, id, with id -1 where the tag has none).
const (
	extACLVersion = 1
	vfsACLVersion = 2

	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20

	aclUndefinedID = 0xFFFFFFFF
	maxACLEntries  = 32 // what ext4 accepts (EXT4_ACL_MAX_ENTRIES)
)

// ACLToXattr turns an ext4 on-disk ACL into the kernel's xattr format
// (posix_acl_xattr, version 2), as getxattr(2) returns it.
func ACLToXattr(b []byte) ([]byte, error) {
	le := binary.LittleEndian
	if len(b) < 4 || le.Uint32(b) != extACLVersion {
		return nil, errors.New("not an ext4 ACL (bad header)")
	}
	out := make([]byte, 4, 4+8*8)
	le.PutUint32(out, vfsACLVersion)
	b = b[4:]
	for n := 0; len(b) > 0; n++ {
		if n >= maxACLEntries || len(b) < 4 {
			return nil, errors.New("ext4 ACL: truncated or too many entries")
		}
		tag, perm := le.Uint16(b), le.Uint16(b[2:])
		id := uint32(aclUndefinedID)
		switch tag {
		case aclUser, aclGroup:
			if len(b) < 8 {
				return nil, errors.New("ext4 ACL: truncated entry")
			}
			id = le.Uint32(b[4:])
			b = b[8:]
		case aclUserObj, aclGroupObj, aclMask, aclOther:
			b = b[4:]
		default:
			return nil, fmt.Errorf("ext4 ACL: unknown tag %#x", tag)
		}
		out = le.AppendUint16(out, tag)
		out = le.AppendUint16(out, perm)
		out = le.AppendUint32(out, id)
	}
	return out, nil
}
