package extract

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/imgtool/imgtool/ext"
	"golang.org/x/sys/unix"
)

// chunkSize is the largest single read from the image and write to the
// destination. ext.File reads a physically contiguous run with one ReadAt,
// so a large chunk means few system calls for large files.
const chunkSize = 1 << 20

// copier copies file contents, one per worker (it owns a buffer).
type copier struct {
	x   *Extractor
	buf []byte
}

func newCopier(x *Extractor) *copier { return &copier{x: x} }

// copyFile writes f's content to fd with pwrite, skipping holes, unwritten
// extents and all-zero chunks, then sets the length with ftruncate (which
// makes the trailing hole). It returns the bytes written. A read error
// does not stop the copy: the unreadable range stays zeros and the first
// error is returned after the rest is copied.
func (c *copier) copyFile(fd int, f Content) (int64, error) {
	if c.buf == nil {
		c.buf = make([]byte, chunkSize)
	}
	var written, done, end int64 // end: just past the last byte written
	var firstErr error
	for _, r := range f.DataRanges() {
		rEnd := r.Off + r.Len
		c.x.bytes.Add(r.Off - done) // the hole before this range
		done = r.Off
		for off := r.Off; off < rEnd; {
			n := int(min(int64(len(c.buf)), rEnd-off))
			b := c.buf[:n]
			m, err := f.ReadAt(b, off)
			if err != nil && !(errors.Is(err, io.EOF) && m == n) {
				if firstErr == nil {
					firstErr = fmt.Errorf("content at file offset %d: %w", off+int64(m), err)
				}
				if m == 0 {
					// Skip the rest of this chunk; it stays a hole (zeros).
					m = n
					b = b[:0]
				} else {
					b = b[:m]
				}
			}
			if !allZero(b) {
				if err := pwriteFull(fd, b, off); err != nil {
					return written, fmt.Errorf("write at offset %d: %w", off, err)
				}
				written += int64(len(b))
				end = off + int64(len(b))
			}
			off += int64(m)
			c.x.bytes.Add(int64(m))
			done = off
		}
	}
	c.x.bytes.Add(f.Size() - done)
	if end == f.Size() {
		return written, firstErr // the file already has its length
	}
	if err := unix.Ftruncate(fd, f.Size()); err != nil {
		return written, fmt.Errorf("truncate to %d: %w", f.Size(), err)
	}
	return written, firstErr
}

func pwriteFull(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		b = b[n:]
		off += int64(n)
	}
	return nil
}

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.NativeEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

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

// convertACL turns an ext4 on-disk ACL into the VFS xattr format.
func convertACL(b []byte) ([]byte, error) {
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

// hostXattr maps an attribute as stored by ext to what setxattr(2) takes:
// ok is false for attributes that are ext's internals (system.data holds
// inline data), ACLs are converted.
func hostXattr(a ext.Xattr) (name string, val []byte, ok bool, err error) {
	switch a.Name {
	case "system.data":
		return "", nil, false, nil
	case "system.posix_acl_access", "system.posix_acl_default":
		v, err := convertACL(a.Value)
		if err != nil {
			return "", nil, false, err
		}
		return a.Name, v, true, nil
	}
	return a.Name, a.Value, true, nil
}
