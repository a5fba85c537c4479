package xfs

import (
	"fmt"
	"sort"
)

// extent is one decoded bmbt record (xfs_bmbt_rec: 128 bits, big-endian:
// unwritten flag:1, startoff:54, startblock:52, blockcount:21).
type extent struct {
	off       uint64 // file offset in fs blocks
	fsb       uint64 // fs block number (agno << agblklog | agbno)
	len       uint64 // blocks
	unwritten bool
}

func decodeExtent(b []byte) extent {
	l0, l1 := be.Uint64(b), be.Uint64(b[8:])
	return extent{
		unwritten: l0>>63 != 0,
		off:       (l0 & (1<<63 - 1)) >> 9,
		fsb:       (l0&0x1ff)<<43 | l1>>21,
		len:       l1 & (1<<21 - 1),
	}
}

// Long-format btree block headers (bmbt).
const (
	bmapMagic   = 0x424d4150 // "BMAP"
	bmap3Magic  = 0x424d4133 // "BMA3"
	lblockLen   = 24
	lblockCRC   = 72
	lblockCRCOf = 64
	maxBtreeLev = 9
)

// fsbOff converts an fs block number to a byte offset on the volume,
// checking it lies inside the filesystem.
func (f *FS) fsbOff(fsb uint64) (int64, error) {
	s := f.sb
	agno := fsb >> s.AGBlkLog
	agbno := fsb & (1<<s.AGBlkLog - 1)
	if agno >= uint64(s.AGCount) || agbno >= uint64(s.AGBlocks) {
		return 0, fmt.Errorf("block %d (AG %d block %d) outside the filesystem", fsb, agno, agbno)
	}
	daddr := agno*uint64(s.AGBlocks) + agbno
	if daddr >= s.DBlocks {
		return 0, fmt.Errorf("block %d beyond the end of the filesystem", fsb)
	}
	return int64(daddr) << s.BlockLog, nil
}

// forkExtents returns the extents of an inode's data (attr=false) or attr
// fork, sorted by file offset and checked not to overlap.
func (f *FS) forkExtents(in *Inode, attr bool) ([]extent, error) {
	if fx := f.bmapFix[forkKey{in.Ino, attr}]; fx != nil {
		return append([]extent(nil), fx.ext...), nil
	}
	fork, format, n := in.DataFork, in.Format, in.NExtents
	if attr {
		fork, format, n = in.AttrFork, in.AFormat, in.ANExtents
	}
	var out []extent
	switch format {
	case fmtExtents:
		if n*16 > uint64(len(fork)) {
			return nil, f.inoErr(in, fmt.Errorf("%d extents do not fit a %d-byte fork", n, len(fork)))
		}
		for i := uint64(0); i < n; i++ {
			out = append(out, decodeExtent(fork[i*16:]))
		}
	case fmtBtree:
		if len(fork) < 4 {
			return nil, f.inoErr(in, fmt.Errorf("btree root does not fit the fork"))
		}
		level := int(be.Uint16(fork))
		nrecs := int(be.Uint16(fork[2:]))
		maxr := (len(fork) - 4) / 16
		if level == 0 || level > maxBtreeLev || nrecs == 0 || nrecs > maxr {
			return nil, f.inoErr(in, fmt.Errorf("bad bmbt root (level %d, %d records)", level, nrecs))
		}
		budget := &walkBudget{blocks: int(f.sb.DBlocks), extents: n}
		for i := 0; i < nrecs; i++ {
			ptr := be.Uint64(fork[4+maxr*8+i*8:])
			var err error
			out, err = f.walkBmbt(in, ptr, level-1, out, budget)
			if err != nil {
				return out, err
			}
		}
	case fmtLocal, fmtDev:
		return nil, nil
	default:
		return nil, f.inoErr(in, fmt.Errorf("unknown fork format %d", format))
	}
	return f.checkExtents(in, out)
}

type walkBudget struct {
	blocks  int
	extents uint64
}

func (f *FS) walkBmbt(in *Inode, fsb uint64, level int, out []extent, b *walkBudget) ([]extent, error) {
	if b.blocks <= 0 {
		return out, f.inoErr(in, fmt.Errorf("bmbt larger than the filesystem"))
	}
	b.blocks--
	off, err := f.fsbOff(fsb)
	if err != nil {
		return out, f.inoErr(in, fmt.Errorf("bmbt pointer: %w", err))
	}
	blk, err := f.readMeta(off, int(f.sb.BlockSize))
	if err != nil {
		return out, err
	}
	hdr := lblockLen
	magic := uint32(bmapMagic)
	if f.sb.HasCRC() {
		hdr, magic = lblockCRC, bmap3Magic
	}
	if be.Uint32(blk) != magic {
		return out, f.damage(in.Ino, off, "bmbt block: bad magic %#x", be.Uint32(blk))
	}
	if f.sb.HasCRC() {
		f.checkCRC(in.Ino, off, blk, lblockCRCOf, "bmbt block")
	}
	lev := int(be.Uint16(blk[4:]))
	nrecs := int(be.Uint16(blk[6:]))
	if lev != level {
		return out, f.damage(in.Ino, off, "bmbt block: level %d, expected %d", lev, level)
	}
	if level == 0 {
		if nrecs > (len(blk)-hdr)/16 {
			return out, f.damage(in.Ino, off, "bmbt leaf: %d records", nrecs)
		}
		if uint64(len(out)+nrecs) > b.extents+16 {
			return out, f.damage(in.Ino, off, "bmbt holds more extents than the inode's %d", b.extents)
		}
		for i := 0; i < nrecs; i++ {
			out = append(out, decodeExtent(blk[hdr+i*16:]))
		}
		return out, nil
	}
	maxr := (len(blk) - hdr) / 16
	if nrecs == 0 || nrecs > maxr {
		return out, f.damage(in.Ino, off, "bmbt node: %d records", nrecs)
	}
	for i := 0; i < nrecs; i++ {
		ptr := be.Uint64(blk[hdr+maxr*8+i*8:])
		out, err = f.walkBmbt(in, ptr, level-1, out, b)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// checkExtents sorts extents and drops ones that are empty, overlap an
// earlier one, or point outside the filesystem (each a note).
func (f *FS) checkExtents(in *Inode, ext []extent) ([]extent, error) {
	sort.SliceStable(ext, func(i, j int) bool { return ext[i].off < ext[j].off })
	out := ext[:0]
	var end, total uint64
	for _, e := range ext {
		if e.len == 0 {
			continue
		}
		if e.off < end {
			f.note(in.Ino, in.Off, true, fmt.Sprintf("extent at file block %d overlaps the previous one; skipped", e.off))
			continue
		}
		if _, err := f.fsbOff(e.fsb); err != nil {
			f.note(in.Ino, in.Off, true, fmt.Sprintf("extent at file block %d: %v; reads as zeros", e.off, err))
			continue
		}
		if _, err := f.fsbOff(e.fsb + e.len - 1); err != nil {
			f.note(in.Ino, in.Off, true, fmt.Sprintf("extent at file block %d: %v; reads as zeros", e.off, err))
			continue
		}
		if total += e.len; total > f.sb.DBlocks {
			f.note(in.Ino, in.Off, true, "fork maps more blocks than the filesystem has; the rest is ignored")
			break
		}
		out = append(out, e)
		end = e.off + e.len
	}
	return out, nil
}

// forkReader reads a fork's logical bytes: mapped blocks from the volume,
// holes (and, for data, unwritten extents) as zeros.
type forkReader struct {
	f    *FS
	ext  []extent
	zero bool // unwritten extents read as zeros
}

// find returns the index of the extent containing block b, or -1.
func (r *forkReader) find(b uint64) int {
	i := sort.Search(len(r.ext), func(i int) bool { return r.ext[i].off+r.ext[i].len > b })
	if i < len(r.ext) && r.ext[i].off <= b {
		return i
	}
	return -1
}

func (r *forkReader) mapped(b uint64) bool { return r.find(b) >= 0 }

// ReadAt reads len(p) logical bytes at off.
func (r *forkReader) ReadAt(p []byte, off int64) error {
	bl := r.f.sb.BlockLog
	bs := int64(1) << bl
	for len(p) > 0 {
		b := uint64(off >> bl)
		in := off & (bs - 1)
		i := r.find(b)
		if i < 0 {
			// Hole up to the next extent.
			j := sort.Search(len(r.ext), func(i int) bool { return r.ext[i].off > b })
			n := int64(len(p))
			if j < len(r.ext) {
				if lim := int64(r.ext[j].off)<<bl - off; lim < n {
					n = lim
				}
			}
			clear(p[:n])
			p, off = p[n:], off+n
			continue
		}
		e := r.ext[i]
		n := int64(e.off+e.len)<<bl - off
		if n > int64(len(p)) {
			n = int64(len(p))
		}
		if e.unwritten && r.zero {
			clear(p[:n])
		} else {
			base, err := r.f.fsbOff(e.fsb)
			if err != nil {
				return err
			}
			pos := base + int64(b-e.off)<<bl + in
			if err := r.f.readFull(p[:n], pos); err != nil {
				return err
			}
		}
		p, off = p[n:], off+n
	}
	return nil
}
