package xfs

import (
	"context"
	"errors"
	"fmt"
)

// AG headers and the inode btree (xfs_format.h).
const (
	agiMagic   = 0x58414749 // "XAGI"
	agfMagic   = 0x58414746 // "XAGF"
	ibtMagic   = 0x49414254 // "IABT"
	ibt3Magic  = 0x49414233 // "IAB3"
	agiCRCOff  = 312
	agfCRCOff  = 216
	sblockLen  = 16
	sblockCRC  = 56
	sblockCRCO = 52
)

// AGI is the inode header of an allocation group.
type AGI struct {
	Seqno, Length, Count, Root, Level, FreeCount uint32
}

// agOff is the byte offset of AG agno.
func (f *FS) agOff(agno uint32) int64 {
	return int64(agno) * int64(f.sb.AGBlocks) << f.sb.BlockLog
}

// ReadAGI reads AG agno's AGI (the third sector of the AG).
func (f *FS) ReadAGI(agno uint32) (*AGI, error) {
	off := f.agOff(agno) + 2*int64(f.sb.SectSize)
	b, err := f.readMeta(off, int(f.sb.SectSize))
	if err != nil {
		return nil, err
	}
	if be.Uint32(b) != agiMagic {
		return nil, f.damage(0, off, "AGI of AG %d: bad magic %#x", agno, be.Uint32(b))
	}
	if f.sb.HasCRC() {
		f.checkCRC(0, off, b, agiCRCOff, fmt.Sprintf("AGI of AG %d", agno))
	}
	a := &AGI{Seqno: be.Uint32(b[8:]), Length: be.Uint32(b[12:]), Count: be.Uint32(b[16:]),
		Root: be.Uint32(b[20:]), Level: be.Uint32(b[24:]), FreeCount: be.Uint32(b[28:])}
	if a.Seqno != agno {
		f.note(0, off, false, fmt.Sprintf("AGI of AG %d says it is AG %d", agno, a.Seqno))
	}
	if a.Level == 0 || a.Level > maxBtreeLev || a.Root == 0 || a.Root >= f.sb.AGBlocks {
		return nil, f.damage(0, off, "AGI of AG %d: inode btree root %d level %d", agno, a.Root, a.Level)
	}
	return a, nil
}

// CheckAGF reads AG agno's AGF and checks its magic and CRC.
func (f *FS) CheckAGF(agno uint32) error {
	off := f.agOff(agno) + int64(f.sb.SectSize)
	b, err := f.readMeta(off, int(f.sb.SectSize))
	if err != nil {
		return err
	}
	if be.Uint32(b) != agfMagic {
		return f.damage(0, off, "AGF of AG %d: bad magic %#x", agno, be.Uint32(b))
	}
	if f.sb.HasCRC() {
		f.checkCRC(0, off, b, agfCRCOff, fmt.Sprintf("AGF of AG %d", agno))
	}
	return nil
}

// walkInobt calls fn for every allocated inode, in increasing order. With
// OpenOptions.Salvage an AG whose AGI or inode btree is damaged is scanned
// block by block for inode chunks instead (with a note).
func (f *FS) walkInobt(ctx context.Context, fn func(ino uint64) error) error {
	for agno := uint32(0); agno < f.sb.AGCount; agno++ {
		var last uint64
		seen := false
		track := func(ino uint64) error {
			last, seen = ino, true
			return fn(ino)
		}
		agi, err := f.ReadAGI(agno)
		if err == nil {
			budget := int(f.sb.AGBlocks)
			err = f.walkIbt(ctx, agno, agi.Root, int(agi.Level)-1, &budget, track)
		}
		var de *DamageError
		if err != nil && f.opts.Salvage && errors.As(err, &de) {
			f.note(0, de.Offset, false, fmt.Sprintf("AG %d: %v; scanning the AG for inode chunks instead", agno, de.Msg))
			err = f.scanAGInodes(ctx, agno, func(ino uint64) error {
				if seen && ino <= last {
					return nil
				}
				return fn(ino)
			})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// scanAGInodes finds in-use inodes by reading every block of an AG: a
// block whose inodes decode (magic, version, and on v5 their own inode
// number) is part of an inode chunk; inodes with a mode are in use.
func (f *FS) scanAGInodes(ctx context.Context, agno uint32, fn func(ino uint64) error) error {
	s := f.sb
	bs := int64(s.BlockSize)
	chunk := make([]byte, 1<<20)
	per := int64(len(chunk)) / bs
	agLen := int64(s.AGBlocks)
	if last := int64(s.DBlocks) - int64(agno)*int64(s.AGBlocks); last < agLen {
		agLen = last
	}
	base := uint64(agno) << (s.AGBlkLog + s.InoPBLog)
	for b := int64(0); b < agLen; b += per {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(per, agLen-b)
		buf := chunk[:n*bs]
		if err := f.readFull(buf, f.agOff(agno)+b*bs); err != nil {
			return err
		}
		for i := int64(0); i < n; i++ {
			blk := buf[i*bs : (i+1)*bs]
			for j := 0; j < int(s.InoPBlock); j++ {
				ib := blk[j*int(s.InodeSize) : (j+1)*int(s.InodeSize)]
				ino := base + uint64(b+i)<<s.InoPBLog + uint64(j)
				if be.Uint16(ib) != inodeMagic || be.Uint16(ib[2:]) == 0 {
					continue
				}
				if _, err := s.parseInode(ib, ino); err != nil {
					continue
				}
				if ino == s.RbmIno || ino == s.RsumIno {
					continue
				}
				if err := fn(ino); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (f *FS) walkIbt(ctx context.Context, agno, agbno uint32, level int, budget *int, fn func(uint64) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if *budget--; *budget < 0 {
		return f.damage(0, f.agOff(agno), "inode btree of AG %d larger than the AG", agno)
	}
	if agbno >= f.sb.AGBlocks {
		return f.damage(0, f.agOff(agno), "inode btree of AG %d points at block %d", agno, agbno)
	}
	off := f.agOff(agno) + int64(agbno)<<f.sb.BlockLog
	b, err := f.readMeta(off, int(f.sb.BlockSize))
	if err != nil {
		return err
	}
	hdr, magic := sblockLen, uint32(ibtMagic)
	if f.sb.HasCRC() {
		hdr, magic = sblockCRC, ibt3Magic
	}
	if be.Uint32(b) != magic {
		return f.damage(0, off, "inode btree block: bad magic %#x", be.Uint32(b))
	}
	if f.sb.HasCRC() {
		f.checkCRC(0, off, b, sblockCRCO, "inode btree block")
	}
	if int(be.Uint16(b[4:])) != level {
		return f.damage(0, off, "inode btree block: level %d, expected %d", be.Uint16(b[4:]), level)
	}
	n := int(be.Uint16(b[6:]))
	if level > 0 {
		maxr := (len(b) - hdr) / 8
		if n == 0 || n > maxr {
			return f.damage(0, off, "inode btree node: %d records", n)
		}
		for i := 0; i < n; i++ {
			if err := f.walkIbt(ctx, agno, be.Uint32(b[hdr+maxr*4+i*4:]), level-1, budget, fn); err != nil {
				return err
			}
		}
		return nil
	}
	if n > (len(b)-hdr)/16 {
		return f.damage(0, off, "inode btree leaf: %d records", n)
	}
	base := uint64(agno) << (f.sb.AGBlkLog + f.sb.InoPBLog)
	for i := 0; i < n; i++ {
		r := b[hdr+i*16:]
		start := be.Uint32(r)
		var holemask uint16
		if f.sb.hasSparse() {
			holemask = be.Uint16(r[4:])
		}
		free := be.Uint64(r[8:])
		for j := uint32(0); j < 64; j++ {
			if holemask&(1<<(j/4)) != 0 || free&(1<<j) != 0 {
				continue
			}
			if err := fn(base + uint64(start+j)); err != nil {
				return err
			}
		}
	}
	return nil
}

// firstInode returns the first allocated inode of AG 0.
func (f *FS) firstInode() (uint64, error) {
	var first uint64
	stop := fmt.Errorf("stop")
	budget := int(f.sb.AGBlocks)
	agi, err := f.ReadAGI(0)
	if err != nil {
		return 0, err
	}
	err = f.walkIbt(context.Background(), 0, agi.Root, int(agi.Level)-1, &budget, func(ino uint64) error {
		first = ino
		return stop
	})
	if err != stop {
		if err == nil {
			err = fmt.Errorf("AG 0 has no inodes")
		}
		return 0, err
	}
	return first, nil
}

// InodesInUse estimates how many inodes WalkInodes visits, for a
// progress bar's total: allocated less free inodes by the AGIs (the
// superblock's counters are lazy on v5, and a secondary superblock's are
// those of mkfs), less the internal inodes (realtime bitmap and summary,
// quotas). An AGI that cannot be read counts nothing.
func (f *FS) InodesInUse() int64 {
	var n int64
	for agno := uint32(0); agno < f.sb.AGCount; agno++ {
		if agi, err := f.ReadAGI(agno); err == nil && agi.FreeCount <= agi.Count {
			n += int64(agi.Count - agi.FreeCount)
		}
	}
	internal := map[uint64]bool{}
	for _, ino := range []uint64{f.sb.RbmIno, f.sb.RsumIno, f.sb.UQuotIno, f.sb.GQuotIno, f.sb.PQuotIno} {
		if ino != 0 && ino != ^uint64(0) && ino != f.sb.RootIno {
			internal[ino] = true
		}
	}
	return max(n-int64(len(internal)), 0)
}
