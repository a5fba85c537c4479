package xfs

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/imgtool/imgtool/vfs"
)

// Attribute formats (xfs_da_format.h).
const (
	attrLocal      = 0x01
	attrRoot       = 0x02 // trusted.
	attrSecure     = 0x04 // security.
	attrParent     = 0x08 // parent pointer (internal)
	attrIncomplete = 0x80

	attrLeafMagic  = 0xfbee
	attr3LeafMagic = 0x3bee
	daNodeMagic    = 0xfebe
	da3NodeMagic   = 0x3ebe
	attrRmtMagic   = 0x5841524d // "XARM"

	attrLeafHdr  = 32
	attr3LeafHdr = 80
	daNodeHdr    = 16
	da3NodeHdr   = 64
	da3CRCOff    = 12
	attrRmtHdr   = 56
)

// Xattrs implements vfs.FS.
func (f *FS) Xattrs(ino vfs.Ino) ([]vfs.Xattr, error) {
	in, err := f.inode(ino)
	if err != nil {
		return nil, err
	}
	if in.ForkOff == 0 || len(in.AttrFork) == 0 {
		return nil, nil
	}
	type raw struct {
		flags       uint8
		name, value []byte
	}
	var raws []raw
	add := func(flags uint8, name, value []byte) {
		if flags&(attrIncomplete|attrParent) != 0 {
			return
		}
		raws = append(raws, raw{flags, name, value})
	}
	switch in.AFormat {
	case fmtLocal:
		d := in.AttrFork
		if len(d) < 4 {
			return nil, f.damage(in.Ino, in.Off, "shortform attr fork too short")
		}
		tot := int(be.Uint16(d))
		if tot > len(d) {
			return nil, f.damage(in.Ino, in.Off, "shortform attrs: size %d beyond the fork", tot)
		}
		if tot < 4 {
			return nil, f.damage(in.Ino, in.Off, "shortform attrs: size %d smaller than their header", tot)
		}
		d = d[:tot]
		n := int(d[2])
		p := 4
		for i := 0; i < n; i++ {
			if p+3 > len(d) {
				return nil, f.damage(in.Ino, in.Off, "shortform attr %d truncated", i)
			}
			nl, vl, fl := int(d[p]), int(d[p+1]), d[p+2]
			if p+3+nl+vl > len(d) {
				return nil, f.damage(in.Ino, in.Off, "shortform attr %d truncated", i)
			}
			add(fl, d[p+3:p+3+nl], d[p+3+nl:p+3+nl+vl])
			p += 3 + nl + vl
		}
	case fmtExtents, fmtBtree:
		if in.AFormat == fmtExtents && in.ANExtents == 0 && f.bmapFix[forkKey{in.Ino, true}] == nil {
			return nil, nil
		}
		ext, err := f.forkExtents(in, true)
		if err != nil {
			return nil, err
		}
		r := &forkReader{f: f, ext: ext}
		err = f.walkAttrLeaves(in, r, func(flags uint8, name, value []byte) { add(flags, name, value) })
		if err != nil {
			return nil, err
		}
	case 0:
		return nil, nil
	default:
		return nil, f.damage(in.Ino, in.Off, "attr fork in format %d", in.AFormat)
	}
	var out []vfs.Xattr
	for _, a := range raws {
		out = append(out, translateXattr(a.flags, a.name, a.value))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// translateXattr gives an attribute its getxattr(2) name; XFS's ACLs
// become the kernel's posix_acl_xattr.
func translateXattr(flags uint8, name, value []byte) vfs.Xattr {
	n := string(name)
	switch {
	case flags&attrRoot != 0:
		switch n {
		case "SGI_ACL_FILE":
			if v, ok := aclToXattr(value); ok {
				return vfs.Xattr{Name: "system.posix_acl_access", Value: v}
			}
		case "SGI_ACL_DEFAULT":
			if v, ok := aclToXattr(value); ok {
				return vfs.Xattr{Name: "system.posix_acl_default", Value: v}
			}
		}
		return vfs.Xattr{Name: "trusted." + n, Value: append([]byte(nil), value...)}
	case flags&attrSecure != 0:
		return vfs.Xattr{Name: "security." + n, Value: append([]byte(nil), value...)}
	}
	return vfs.Xattr{Name: "user." + n, Value: append([]byte(nil), value...)}
}

// aclToXattr converts struct xfs_acl (be32 count, entries of be32 tag,
// be32 id, be16 perm, be16 pad) to posix_acl_xattr (le32 version 2,
// entries of le16 tag, le16 perm, le32 id).
func aclToXattr(v []byte) ([]byte, bool) {
	if len(v) < 4 {
		return nil, false
	}
	n := int(be.Uint32(v))
	if n > 25*1024 || 4+n*12 != len(v) {
		return nil, false
	}
	out := make([]byte, 4, 4+n*8)
	binary.LittleEndian.PutUint32(out, 2)
	for i := 0; i < n; i++ {
		e := v[4+i*12:]
		tag, id, perm := be.Uint32(e), be.Uint32(e[4:]), be.Uint16(e[8:])
		if tag != 0x02 && tag != 0x08 { // ACL_USER, ACL_GROUP carry an id
			id = 0xffffffff
		}
		out = binary.LittleEndian.AppendUint16(out, uint16(tag))
		out = binary.LittleEndian.AppendUint16(out, perm)
		out = binary.LittleEndian.AppendUint32(out, id)
	}
	return out, true
}

// walkAttrLeaves calls fn for every entry of an attr fork in leaf or node
// form: from block 0 down the leftmost node pointers to the first leaf,
// then along the leaves' forward links.
func (f *FS) walkAttrLeaves(in *Inode, r *forkReader, fn func(flags uint8, name, value []byte)) error {
	bs := int(f.sb.BlockSize)
	crc := f.sb.HasCRC()
	maxBlocks := 0
	for _, e := range r.ext {
		maxBlocks += int(e.len)
	}
	read := func(dablk uint64) ([]byte, int64, error) {
		b := make([]byte, bs)
		if !r.mapped(dablk) {
			return nil, -1, f.damage(in.Ino, in.Off, "attr block %d is not mapped", dablk)
		}
		if err := r.ReadAt(b, int64(dablk)<<f.sb.BlockLog); err != nil {
			return nil, -1, err
		}
		pos := int64(-1)
		if i := r.find(dablk); i >= 0 {
			pos, _ = f.fsbOff(r.ext[i].fsb + dablk - r.ext[i].off)
		}
		return b, pos, nil
	}
	blk := uint64(0)
	var b []byte
	var pos int64
	for depth := 0; ; depth++ {
		var err error
		b, pos, err = read(blk)
		if err != nil {
			return err
		}
		magic := be.Uint16(b[8:])
		if magic == attrLeafMagic || magic == attr3LeafMagic {
			break
		}
		if magic != daNodeMagic && magic != da3NodeMagic {
			return f.damage(in.Ino, pos, "attr block: bad magic %#x", magic)
		}
		if depth >= 5 {
			return f.damage(in.Ino, pos, "attr btree deeper than 5 levels")
		}
		hdr := daNodeHdr
		if crc {
			hdr = da3NodeHdr
			f.checkCRC(in.Ino, pos, b, da3CRCOff, "attr node block")
		}
		count := int(be.Uint16(b[hdr-4-boolInt(crc)*4:]))
		if count == 0 || hdr+count*8 > bs {
			return f.damage(in.Ino, pos, "attr node: %d entries", count)
		}
		blk = uint64(be.Uint32(b[hdr+4:]))
	}
	seen := map[uint64]bool{}
	for n := 0; ; n++ {
		if seen[blk] || n > maxBlocks {
			return f.damage(in.Ino, pos, "attr leaf chain loops")
		}
		seen[blk] = true
		if err := f.parseAttrLeaf(in, r, b, pos, fn); err != nil {
			return err
		}
		fwd := uint64(be.Uint32(b))
		if fwd == 0 {
			return nil
		}
		blk = fwd
		var err error
		if b, pos, err = read(blk); err != nil {
			return err
		}
		if m := be.Uint16(b[8:]); m != attrLeafMagic && m != attr3LeafMagic {
			return f.damage(in.Ino, pos, "attr leaf chain: bad magic %#x", m)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (f *FS) parseAttrLeaf(in *Inode, r *forkReader, b []byte, pos int64, fn func(flags uint8, name, value []byte)) error {
	hdr := attrLeafHdr
	cntOff := 12
	if f.sb.HasCRC() {
		if be.Uint16(b[8:]) != attr3LeafMagic {
			return f.damage(in.Ino, pos, "attr leaf: v4 magic on a v5 filesystem")
		}
		hdr, cntOff = attr3LeafHdr, 56
		f.checkCRC(in.Ino, pos, b, da3CRCOff, "attr leaf block")
	} else if be.Uint16(b[8:]) != attrLeafMagic {
		return f.damage(in.Ino, pos, "attr leaf: v5 magic on a v4 filesystem")
	}
	count := int(be.Uint16(b[cntOff:]))
	if hdr+count*8 > len(b) {
		return f.damage(in.Ino, pos, "attr leaf: %d entries do not fit", count)
	}
	for i := 0; i < count; i++ {
		e := b[hdr+i*8:]
		idx := int(be.Uint16(e[4:]))
		flags := e[6]
		if idx < hdr || idx+4 > len(b) {
			return f.damage(in.Ino, pos, "attr leaf entry %d: name index %d", i, idx)
		}
		if flags&attrLocal != 0 {
			vl := int(be.Uint16(b[idx:]))
			nl := int(b[idx+2])
			if idx+3+nl+vl > len(b) {
				return f.damage(in.Ino, pos+int64(idx), "attr leaf entry %d overruns its block", i)
			}
			fn(flags, b[idx+3:idx+3+nl], b[idx+3+nl:idx+3+nl+vl])
			continue
		}
		if idx+9 > len(b) {
			return f.damage(in.Ino, pos+int64(idx), "attr remote entry %d truncated", i)
		}
		vblk := uint64(be.Uint32(b[idx:]))
		vl := int(be.Uint32(b[idx+4:]))
		nl := int(b[idx+8])
		if idx+9+nl > len(b) {
			return f.damage(in.Ino, pos+int64(idx), "attr remote entry %d overruns its block", i)
		}
		name := b[idx+9 : idx+9+nl]
		if flags&(attrIncomplete|attrParent) != 0 {
			continue
		}
		v, err := f.readRemoteAttr(in, r, vblk, vl)
		if err != nil {
			return err
		}
		fn(flags, name, v)
	}
	return nil
}

const maxXattrValue = 64 << 10 // XATTR_SIZE_MAX

func (f *FS) readRemoteAttr(in *Inode, r *forkReader, blk uint64, n int) ([]byte, error) {
	if n < 0 || n > maxXattrValue {
		return nil, f.damage(in.Ino, in.Off, "remote attr value of %d bytes", n)
	}
	bs := int(f.sb.BlockSize)
	out := make([]byte, 0, n)
	for len(out) < n {
		if !r.mapped(blk) {
			return nil, f.damage(in.Ino, in.Off, "remote attr value block %d is not mapped", blk)
		}
		b := make([]byte, bs)
		if err := r.ReadAt(b, int64(blk)<<f.sb.BlockLog); err != nil {
			return nil, err
		}
		pos := int64(-1)
		if i := r.find(blk); i >= 0 {
			pos, _ = f.fsbOff(r.ext[i].fsb + blk - r.ext[i].off)
		}
		if f.sb.HasCRC() {
			if be.Uint32(b) != attrRmtMagic {
				return nil, f.damage(in.Ino, pos, "remote attr block: bad magic %#x", be.Uint32(b))
			}
			off, cnt := int(be.Uint32(b[4:])), int(be.Uint32(b[8:]))
			if off != len(out) || cnt > bs-attrRmtHdr || cnt <= 0 {
				return nil, f.damage(in.Ino, pos, "remote attr block: offset %d, %d bytes", off, cnt)
			}
			f.checkCRC(in.Ino, pos, b, 12, "remote attr block")
			b = b[attrRmtHdr : attrRmtHdr+cnt]
		}
		if rem := n - len(out); len(b) > rem {
			b = b[:rem]
		}
		out = append(out, b...)
		blk++
	}
	return out, nil
}

var _ = fmt.Sprintf
