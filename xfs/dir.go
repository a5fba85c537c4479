package xfs

import (
	"fmt"

	"github.com/imgtool/imgtool/vfs"
)

// Directory formats (xfs_da_format.h).
const (
	dir2BlockMagic = 0x58443242 // "XD2B": single-block directory
	dir2DataMagic  = 0x58443244 // "XD2D": data block of a leaf/node directory
	dir3BlockMagic = 0x58444233 // "XDB3"
	dir3DataMagic  = 0x58444433 // "XDD3"

	dir2DataHdr  = 16 // magic + 3 bestfree
	dir3DataHdr  = 64 // dir3_blk_hdr (48) + 3 bestfree + pad
	dir3CRCOff   = 4
	dirFreeTag   = 0xffff
	dirLeafSpace = 32 << 30 // XFS_DIR2_LEAF_OFFSET: data blocks live below it

	// d_type values of dirents with ftype (XFS_DIR3_FT_*).
	ftUnknown = 0
	ftReg     = 1
	ftDir     = 2
	ftChr     = 3
	ftBlk     = 4
	ftFIFO    = 5
	ftSock    = 6
	ftSymlink = 7
)

var ftToDT = [...]uint8{ftUnknown: vfs.DTUnknown, ftReg: vfs.DTReg, ftDir: vfs.DTDir, ftChr: vfs.DTChar,
	ftBlk: vfs.DTBlock, ftFIFO: vfs.DTFIFO, ftSock: vfs.DTSocket, ftSymlink: vfs.DTLink}

func dtOf(ft uint8) uint8 {
	if int(ft) < len(ftToDT) {
		return ftToDT[ft]
	}
	return vfs.DTUnknown
}

// ReadDir implements vfs.FS: the entries of every data block in on-disk
// order, without "." and "..".
func (f *FS) ReadDir(ino vfs.Ino) ([]vfs.DirEntry, error) {
	in, err := f.inode(ino)
	if err != nil {
		return nil, err
	}
	if in.typ() != vfs.ModeDir {
		return nil, f.damage(in.Ino, in.Off, "not a directory")
	}
	ents, _, err := f.readDir(in)
	return ents, err
}

// parent returns the ".." of a directory.
func (f *FS) parent(ino vfs.Ino) (vfs.Ino, error) {
	if ino == f.Root() {
		return ino, nil
	}
	in, err := f.inode(ino)
	if err != nil {
		return 0, err
	}
	_, p, err := f.readDir(in)
	return p, err
}

func (f *FS) readDir(in *Inode) ([]vfs.DirEntry, vfs.Ino, error) {
	switch in.Format {
	case fmtLocal:
		return f.readShortform(in)
	case fmtExtents, fmtBtree:
	default:
		return nil, 0, f.damage(in.Ino, in.Off, "directory in fork format %d", in.Format)
	}
	ext, err := f.forkExtents(in, false)
	if err != nil {
		return nil, 0, err
	}
	r := forkReader{f: f, ext: ext}
	dbs := int64(f.sb.dirBlkSize())
	fpd := uint64(dbs >> f.sb.BlockLog) // fs blocks per directory block
	var out []vfs.DirEntry
	var parent vfs.Ino
	var firstErr error
	// Data blocks are every directory block below the leaf offset that is
	// mapped. Walk the extents rather than every logical block.
	limit := uint64(dirLeafSpace >> f.sb.BlockLog)
	var next uint64
	for _, e := range ext {
		if e.off >= limit {
			break
		}
		start := e.off / fpd * fpd
		if start < next {
			start = next
		}
		for b := start; b < e.off+e.len && b < limit; b += fpd {
			next = b + fpd
			buf := make([]byte, dbs)
			if err := r.ReadAt(buf, int64(b)<<f.sb.BlockLog); err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			pos := int64(-1)
			if off, err := f.fsbOff(e.fsb + (b - e.off)); err == nil {
				pos = off
			}
			ents, p, err := f.parseDataBlock(in, buf, pos)
			out = append(out, ents...)
			if p != 0 && parent == 0 {
				parent = p
			}
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}
	}
	return out, parent, firstErr
}

// parseDataBlock decodes one directory data block (block form, or a data
// block of the leaf/node/btree forms).
func (f *FS) parseDataBlock(in *Inode, b []byte, pos int64) ([]vfs.DirEntry, vfs.Ino, error) {
	magic := be.Uint32(b)
	hdr := dir2DataHdr
	block := false
	switch magic {
	case dir2BlockMagic:
		block = true
	case dir2DataMagic:
	case dir3BlockMagic:
		block, hdr = true, dir3DataHdr
	case dir3DataMagic:
		hdr = dir3DataHdr
	default:
		return nil, 0, f.damage(in.Ino, pos, "directory block: bad magic %#x", magic)
	}
	if (hdr == dir3DataHdr) != f.sb.HasCRC() {
		return nil, 0, f.damage(in.Ino, pos, "directory block: magic %#x on a v%d filesystem", magic, f.sb.Version())
	}
	if hdr == dir3DataHdr {
		f.checkCRC(in.Ino, pos, b, dir3CRCOff, "directory block")
		if owner := be.Uint64(b[40:]); owner != in.Ino {
			f.note(in.Ino, pos, false, fmt.Sprintf("directory block owned by inode %d", owner))
		}
	}
	end := len(b)
	if block {
		count := int(be.Uint32(b[len(b)-8:]))
		end = len(b) - 8 - count*8
		if end < hdr {
			return nil, 0, f.damage(in.Ino, pos, "directory block: %d leaf entries do not fit", count)
		}
	}
	ftype := f.sb.HasFtype()
	var out []vfs.DirEntry
	var parent vfs.Ino
	p := hdr
	for p+8 <= end {
		if be.Uint16(b[p:]) == dirFreeTag {
			l := int(be.Uint16(b[p+2:]))
			if l < 8 || l%8 != 0 || p+l > end {
				return out, parent, f.damage(in.Ino, pos+int64(p), "directory block: bad free entry length %d", l)
			}
			p += l
			continue
		}
		if p+11 > end {
			return out, parent, f.damage(in.Ino, pos+int64(p), "directory entry truncated")
		}
		ino := be.Uint64(b[p:])
		nl := int(b[p+8])
		sz := 8 + 1 + nl + 2
		if ftype {
			sz++
		}
		sz = (sz + 7) &^ 7
		if nl == 0 || p+sz > end {
			return out, parent, f.damage(in.Ino, pos+int64(p), "directory entry: bad name length %d", nl)
		}
		name := string(b[p+9 : p+9+nl])
		var dt uint8
		if ftype {
			dt = dtOf(b[p+9+nl])
		}
		if tag := int(be.Uint16(b[p+sz-2:])); tag != p {
			f.note(in.Ino, pos+int64(p), false, fmt.Sprintf("directory entry %q: tag %d does not match its offset %d", name, tag, p))
		}
		switch name {
		case ".":
		case "..":
			parent = vfs.Ino(ino)
		default:
			out = append(out, vfs.DirEntry{Name: name, Ino: vfs.Ino(ino), Type: dt})
		}
		p += sz
	}
	return out, parent, nil
}

// readShortform decodes a directory stored in the inode (xfs_dir2_sf_hdr).
func (f *FS) readShortform(in *Inode) ([]vfs.DirEntry, vfs.Ino, error) {
	d := in.DataFork
	if int64(len(d)) > in.Size {
		d = d[:in.Size]
	}
	if len(d) < 6 {
		return nil, 0, f.damage(in.Ino, in.Off, "shortform directory too short (%d bytes)", len(d))
	}
	count := int(d[0])
	i8 := d[1] != 0
	isz := 4
	if i8 {
		isz = 8
		count = int(d[1])
	}
	getIno := func(b []byte) uint64 {
		if i8 {
			return be.Uint64(b)
		}
		return uint64(be.Uint32(b))
	}
	p := 2
	if p+isz > len(d) {
		return nil, 0, f.damage(in.Ino, in.Off, "shortform directory header truncated")
	}
	parent := vfs.Ino(getIno(d[p:]))
	p += isz
	ftype := 0
	if f.sb.HasFtype() {
		ftype = 1
	}
	var out []vfs.DirEntry
	for i := 0; i < count; i++ {
		if p+3 > len(d) {
			return out, parent, f.damage(in.Ino, in.Off, "shortform directory: entry %d truncated", i)
		}
		nl := int(d[p])
		e := p + 3 + nl + ftype + isz
		if nl == 0 || e > len(d) {
			return out, parent, f.damage(in.Ino, in.Off, "shortform directory: entry %d: bad name length %d", i, nl)
		}
		name := string(d[p+3 : p+3+nl])
		var dt uint8
		if ftype == 1 {
			dt = dtOf(d[p+3+nl])
		}
		out = append(out, vfs.DirEntry{Name: name, Ino: vfs.Ino(getIno(d[p+3+nl+ftype:])), Type: dt})
		p = e
	}
	return out, parent, nil
}
