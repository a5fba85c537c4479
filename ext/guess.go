package ext

import (
	"fmt"
	"sort"
)

// Recovering the group descriptor table.
//
// The descriptors say where each group's block bitmap, inode bitmap and
// inode table are. When they are damaged, nothing but the superblock can be
// read, yet the locations are rarely arbitrary: mke2fs puts them at
// standard places that follow from the geometry alone, and e2fsck and
// debugfs -s -b rely on the copies of the table kept after each superblock
// backup. Open therefore checks every descriptor (as e2fsprogs'
// ext2fs_check_desc does) and, when one is insane or when most fail their
// checksum, takes each bad group's descriptor from the first backup copy
// where it is sane, and failing that computes its standard location
// (Options.GuessGroupDescriptors forces the computed layout for all).
//
// The standard layout (lib/ext2fs/alloc_tables.c):
//   - Every group starts with its superblock backup if it has one, then,
//     without meta_bg, the descriptor table and the reserved GDT blocks
//     (s_reserved_gdt_blocks, for online resize); with meta_bg, groups 0, 1
//     and the last of each meta group hold one descriptor block instead.
//   - Without flex_bg the block bitmap, inode bitmap and inode table follow
//     that overhead, inside their group.
//   - With flex_bg, the 2^s_log_groups_per_flex groups of a flex group keep
//     their metadata packed in the flex group's first group: all block
//     bitmaps, then all inode bitmaps, then all inode tables, each run
//     starting at the first free block at or after the previous run's
//     reserved slot (table_offset: the flex group's size, or the number of
//     groups left in the last flex group).

// Where a group's descriptor came from.
const (
	DescPrimary = "primary" // the table after the superblock in use
	DescBackup  = "backup"  // a copy of the table after a superblock backup
	DescGuessed = "guessed" // computed from the geometry (standard layout)
)

// inodeTableBlocks is the number of blocks of one group's inode table.
func (s *Superblock) inodeTableBlocks() uint64 {
	return (uint64(s.InodesPerGroup)*uint64(s.InodeSize) + uint64(s.BlockSize) - 1) / uint64(s.BlockSize)
}

// descBlocks is the number of blocks of the (whole) descriptor table.
func (s *Superblock) descBlocks() uint64 {
	per := uint64(s.BlockSize) / uint64(s.DescSize)
	return (s.groupCount() + per - 1) / per
}

// groupLastBlock is the last block of group g.
func (s *Superblock) groupLastBlock(g uint64) uint64 {
	last := s.groupFirstBlock(g) + uint64(s.BlocksPerGroup) - 1
	return min(last, s.BlocksCount-1)
}

// groupOverhead returns the number of blocks at the start of group g taken
// by its superblock backup and descriptor blocks (reserved GDT blocks
// included), as ext2fs_super_and_bgd_loc2 counts them.
func (s *Superblock) groupOverhead(g uint64) uint64 {
	n := uint64(0)
	has := s.hasSuper(g)
	if has {
		n++
	}
	per := uint64(s.BlockSize) / uint64(s.DescSize)
	if s.FeatureIncompat&IncompatMetaBG == 0 || g/per < uint64(s.FirstMetaBg) {
		if has {
			if s.FeatureIncompat&IncompatMetaBG == 0 {
				n += s.descBlocks() + uint64(s.ReservedGDTBlocks)
			} else {
				n += uint64(s.FirstMetaBg)
			}
		}
	} else if r := g % per; r == 0 || r == 1 || r == per-1 {
		n++
	}
	return n
}

// groupStart is the first block of group g as the allocator sees it (block
// 1 for group 0 of a 1 KiB-block filesystem, where block 0 is the boot
// block).
func (s *Superblock) groupStart(g uint64) uint64 {
	b := s.groupFirstBlock(g)
	if b == 0 && s.BlockSize == 1024 {
		b = 1
	}
	return b
}

// layoutSim finds free blocks the way mke2fs does while placing the
// tables: blocks taken by superblock/descriptor copies and by tables
// already placed are skipped.
type layoutSim struct {
	s     *Superblock
	taken [][2]uint64 // tables placed in the current flex group: [start, end)
}

// firstFree returns the first block b >= from such that [b, b+n) is free
// and inside the filesystem, or false.
func (l *layoutSim) firstFree(from, n uint64) (uint64, bool) {
	s := l.s
	b := from
	for range 1 << 16 { // each round moves b forward past an obstacle
		if b+n > s.BlocksCount || b+n < b {
			return 0, false
		}
		moved := false
		// superblock/descriptor copies at the start of the groups the
		// range touches
		if b >= uint64(s.FirstDataBlock) {
			g0 := (b - uint64(s.FirstDataBlock)) / uint64(s.BlocksPerGroup)
			g1 := (b + n - 1 - uint64(s.FirstDataBlock)) / uint64(s.BlocksPerGroup)
			for g := g0; g <= g1 && g < s.groupCount(); g++ {
				st := s.groupStart(g)
				end := st + s.groupOverhead(g)
				if end > st && b < end && b+n > st {
					b, moved = end, true
					break
				}
			}
		} else {
			b, moved = uint64(s.FirstDataBlock), true
		}
		if moved {
			continue
		}
		for _, t := range l.taken {
			if b < t[1] && b+n > t[0] {
				b, moved = t[1], true
				break
			}
		}
		if !moved {
			return b, true
		}
	}
	return 0, false
}

// standardLayout computes every group's bitmap and inode table locations
// as mke2fs would have placed them. Groups it cannot place keep zeros.
func (s *Superblock) standardLayout() []GroupDesc {
	n := s.groupCount()
	out := make([]GroupDesc, n)
	itb := s.inodeTableBlocks()
	l := &layoutSim{s: s}
	flex := uint64(0)
	if s.FeatureIncompat&IncompatFlexBG != 0 && s.LogGroupsPerFlex > 0 && s.LogGroupsPerFlex < 32 {
		flex = 1 << s.LogGroupsPerFlex
	}
	if flex == 0 {
		for g := range n {
			b := s.groupStart(g) + s.groupOverhead(g)
			out[g] = GroupDesc{BlockBitmap: b, InodeBitmap: b + 1, InodeTable: b + 2, Offset: -1}
		}
		return out
	}
	for g := uint64(0); g < n; g++ {
		first := g &^ (flex - 1)
		lastG := min(first+flex-1, n-1)
		tableOffset := flex
		if g == first {
			l.taken = l.taken[:0]
			if lastG == n-1 {
				if r := lastG & (flex - 1); r != 0 {
					tableOffset = r + 1
				}
			}
		}
		var ok bool
		d := &out[g]
		d.Offset = -1
		// block bitmap
		start := s.groupStart(first)
		if g != first {
			start = out[g-1].BlockBitmap + 1
		}
		if d.BlockBitmap, ok = l.firstFree(start, 1); !ok {
			continue
		}
		l.taken = append(l.taken, [2]uint64{d.BlockBitmap, d.BlockBitmap + 1})
		// inode bitmap
		if g != first {
			start = out[g-1].InodeBitmap + 1
		} else {
			start = d.BlockBitmap + tableOffset
		}
		if d.InodeBitmap, ok = l.firstFree(start, 1); !ok {
			continue
		}
		l.taken = append(l.taken, [2]uint64{d.InodeBitmap, d.InodeBitmap + 1})
		// inode table
		if g != first {
			start = out[g-1].InodeTable + itb
		} else {
			start = d.InodeBitmap + tableOffset
		}
		if d.InodeTable, ok = l.firstFree(start, itb); !ok {
			continue
		}
		l.taken = append(l.taken, [2]uint64{d.InodeTable, d.InodeTable + itb})
	}
	return out
}

// checkDesc reports what is wrong with descriptor d of group g, or "" when
// it is sane: bitmaps and inode table inside the filesystem, past the
// primary superblock and descriptor table, not overlapping each other, and
// (without flex_bg) inside their own group.
func (s *Superblock) checkDesc(g uint64, d *GroupDesc) string {
	itb := s.inodeTableBlocks()
	lo := uint64(s.FirstDataBlock) + 1 // past the primary superblock
	hi := s.BlocksCount                // exclusive
	if s.FeatureIncompat&IncompatFlexBG == 0 {
		lo = s.groupFirstBlock(g)
		if lo == 0 {
			lo = 1
		}
		hi = s.groupLastBlock(g) + 1
	}
	in := func(b, n uint64) bool { return b >= lo && b+n <= hi && b+n > b }
	switch {
	case !in(d.BlockBitmap, 1):
		return fmt.Sprintf("block bitmap at block %d outside blocks %d..%d", d.BlockBitmap, lo, hi-1)
	case !in(d.InodeBitmap, 1):
		return fmt.Sprintf("inode bitmap at block %d outside blocks %d..%d", d.InodeBitmap, lo, hi-1)
	case !in(d.InodeTable, itb):
		return fmt.Sprintf("inode table at blocks %d+%d outside blocks %d..%d", d.InodeTable, itb, lo, hi-1)
	case d.BlockBitmap == d.InodeBitmap:
		return "block and inode bitmaps in the same block"
	case d.BlockBitmap >= d.InodeTable && d.BlockBitmap < d.InodeTable+itb:
		return "block bitmap inside the inode table"
	case d.InodeBitmap >= d.InodeTable && d.InodeBitmap < d.InodeTable+itb:
		return "inode bitmap inside the inode table"
	}
	// The primary superblock and descriptor table itself.
	pEnd := s.groupStart(0) + s.groupOverhead(0)
	for _, b := range []uint64{d.BlockBitmap, d.InodeBitmap, d.InodeTable} {
		if b < pEnd {
			return fmt.Sprintf("block %d lies in the superblock or descriptor table (blocks up to %d)", b, pEnd-1)
		}
	}
	return ""
}

// gdtCopyBlock returns the block holding descriptor block i in copy number
// c (0: the table at the superblock in use; 1, 2, ...: backups), or false
// when there is no such copy.
func (s *Superblock) gdtCopyBlock(i uint64, c int, sbGroup uint64) (uint64, bool) {
	if c == 0 {
		return s.gdtBlock(i, sbGroup), true
	}
	per := uint64(s.BlockSize) / uint64(s.DescSize)
	if s.FeatureIncompat&IncompatMetaBG != 0 && i >= uint64(s.FirstMetaBg) {
		// meta_bg keeps copies in the second and the last group of the
		// meta group.
		g := i * per
		switch c {
		case 1:
			g++
		case 2:
			g += per - 1
		default:
			return 0, false
		}
		if g >= s.groupCount() {
			return 0, false
		}
		b := s.groupFirstBlock(g)
		if s.hasSuper(g) {
			b++
		}
		return b, true
	}
	// Copies follow the superblock backups, in group order.
	k := 0
	for _, g := range s.backupGroupList(8) {
		if g == sbGroup {
			continue
		}
		if k++; k == c {
			return s.groupFirstBlock(g) + 1 + i, true
		}
	}
	return 0, false
}

// backupGroupList returns up to max groups (after group 0) that hold a
// superblock backup, in increasing order.
func (s *Superblock) backupGroupList(max int) []uint64 {
	var out []uint64
	n := s.groupCount()
	if s.FeatureCompat&CompatSparseSuper2 != 0 {
		for _, g := range s.BackupBGs {
			if g != 0 && uint64(g) < n {
				out = append(out, uint64(g))
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
		return out
	}
	for g := uint64(1); g < n && len(out) < max; g++ {
		if s.hasSuper(g) {
			out = append(out, g)
		}
		if g > 1<<20 {
			break
		}
	}
	return out
}

// maxDescCopies is how many descriptor table copies (primary included)
// are tried for bad descriptors.
const maxDescCopies = 4

// repairGroups checks the descriptors just read and replaces bad ones:
// from a backup copy where that copy is sane (and its checksum holds, if
// any copy's does), else by the standard layout. csumBad[g] says whether
// the primary's descriptor g failed its checksum.
func (fsys *FS) repairGroups(csumBad []bool, guessAll bool) {
	sb := fsys.sb
	n := uint64(len(fsys.groups))
	fsys.descSource = make([]string, n)
	var insane, nbad int
	reasons := make([]string, n)
	for g := range n {
		fsys.descSource[g] = DescPrimary
		if r := sb.checkDesc(g, &fsys.groups[g]); r != "" {
			reasons[g] = r
			insane++
		}
		if csumBad[g] {
			nbad++
		}
	}
	manyBadCsums := nbad > 0 && uint64(nbad)*2 > n
	if !guessAll && insane == 0 && !manyBadCsums {
		return
	}
	var guess []GroupDesc
	if guessAll {
		guess = sb.standardLayout()
		for g := range n {
			gd := guess[g]
			gd.Offset = -1
			fsys.groups[g] = gd
			fsys.descSource[g] = DescGuessed
		}
		fsys.note(0, -1, fmt.Sprintf("group descriptors computed from the geometry for all %d groups (standard mke2fs layout), as asked", n), nil)
		return
	}
	// Which groups to replace: the insane ones, and with many checksum
	// failures all whose checksum fails.
	want := func(g uint64) bool { return reasons[g] != "" || (manyBadCsums && csumBad[g]) }
	perBlock := uint64(fsys.bs / int64(sb.DescSize))
	buf := make([]byte, fsys.bs)
	fromBackup, guessed := 0, 0
	for blk := uint64(0); blk*perBlock < n; blk++ {
		lo, hi := blk*perBlock, min((blk+1)*perBlock, n)
		need := false
		for g := lo; g < hi; g++ {
			need = need || want(g)
		}
		if !need {
			continue
		}
		cands := fsys.backupDescs(blk, lo, hi, buf)
		for g := lo; g < hi; g++ {
			if !want(g) {
				continue
			}
			var pick *GroupDesc
			for i := range cands[g-lo] {
				if cands[g-lo][i].csumOK {
					pick = &cands[g-lo][i].gd
					break
				}
			}
			if pick == nil && reasons[g] != "" && len(cands[g-lo]) > 0 {
				pick = &cands[g-lo][0].gd
			}
			if pick != nil {
				// A backup's counters and flags are stale (the kernel
				// updates only the primary): keep only the locations.
				fsys.groups[g] = GroupDesc{BlockBitmap: pick.BlockBitmap, InodeBitmap: pick.InodeBitmap, InodeTable: pick.InodeTable, Offset: pick.Offset}
				fsys.descSource[g] = DescBackup
				fromBackup++
				continue
			}
			if reasons[g] == "" {
				continue // only a checksum failure and no better copy: keep it
			}
			if guess == nil {
				guess = sb.standardLayout()
			}
			gd := guess[g]
			if sb.checkDesc(g, &gd) != "" {
				continue // cannot place it either: keep the bad one (reads will fail and say so)
			}
			gd.Offset = -1
			fsys.groups[g] = gd
			fsys.descSource[g] = DescGuessed
			guessed++
		}
	}
	if insane == 0 && fromBackup+guessed == 0 {
		return // checksum failures only, already noted one by one
	}
	msg := fmt.Sprintf("group descriptors: %d of %d insane, %d fail their checksum; %d taken from a backup copy, %d computed from the geometry (standard layout)", insane, n, nbad, fromBackup, guessed)
	for g := range n {
		if reasons[g] != "" {
			msg += fmt.Sprintf("; first insane: group %d: %s", g, reasons[g])
			break
		}
	}
	fsys.note(0, fsys.groups[0].Offset, msg, nil)
}

// descCand is a group descriptor found in a backup copy of the
// descriptor table, and whether its checksum holds.
type descCand struct {
	gd     GroupDesc
	csumOK bool
}

// backupDescs reads descriptor block blk (groups lo..hi-1) from every
// backup copy of the table and returns, per group, the sane descriptors
// found there, in copy order. buf is a block-sized scratch buffer.
func (fsys *FS) backupDescs(blk, lo, hi uint64, buf []byte) [][]descCand {
	sb := fsys.sb
	cands := make([][]descCand, hi-lo)
	for c := 1; c < maxDescCopies; c++ {
		pb, ok := sb.gdtCopyBlock(blk, c, fsys.sbGroup)
		if !ok || pb >= sb.BlocksCount {
			continue
		}
		off := int64(pb) * fsys.bs
		if fsys.readFull(buf, off) != nil {
			continue
		}
		for g := lo; g < hi; g++ {
			ds := int64(sb.DescSize)
			d := buf[int64(g-lo)*ds : int64(g-lo+1)*ds]
			gd := parseGroupDesc(d, sb.has64Bit())
			gd.Offset = off + int64(g-lo)*ds
			if sb.checkDesc(g, &gd) != "" {
				continue
			}
			c, has := fsys.groupDescChecksum(uint32(g), d)
			cands[g-lo] = append(cands[g-lo], descCand{gd, !has || c == gd.Checksum})
		}
	}
	return cands
}

// DescSource says where the descriptor of group g came from: DescPrimary,
// DescBackup or DescGuessed ("" for a group out of range).
func (fsys *FS) DescSource(g uint64) string {
	if g >= uint64(len(fsys.descSource)) {
		return ""
	}
	return fsys.descSource[g]
}

// DescRepaired reports whether any group descriptor was taken from a
// backup copy or computed, rather than read from the primary table.
func (fsys *FS) DescRepaired() bool {
	for _, s := range fsys.descSource {
		if s != DescPrimary {
			return true
		}
	}
	return false
}

// GroupOverhead returns how many blocks at the start of group g hold its
// superblock backup and descriptor blocks (reserved GDT blocks included).
func (fsys *FS) GroupOverhead(g uint64) uint64 { return fsys.sb.groupOverhead(g) }
