package journal

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"

	"github.com/imgtool/imgtool/ext"
)

// Fast-commit replay: the valid tags of a scan (fastcommit.go) applied, in
// order, to the filesystem as the jbd2 replay left it, the way
// ext4_fc_replay does on mount. The result is more blocks in the Overlay:
// inode-table blocks with the replayed inodes, rebuilt extent trees and
// changed directory blocks, all with their metadata_csum checksums, so the
// ext reader (and everything above it) sees the filesystem the kernel
// would mount. Nothing is written to the volume.
//
// Per tag, as the kernel does it:
//   - INODE copies the logged inode over the on-disk one, except i_block
//     (the block map), which is kept (an extent header that is not valid
//     becomes an empty tree) unless the inode has inline data;
//   - ADD_RANGE maps a logical range to the logged physical blocks
//     (replacing any older mapping), DEL_RANGE unmaps a range;
//   - LINK and CREAT add a directory entry (an existing name is left
//     alone), UNLINK removes it when it names the logged inode; link
//     counts follow (CREAT sets 1, LINK adds one, UNLINK takes one away).
//     A CREAT'd directory without a first block gets "." and "..".
//
// Limits, each a Note and a stale view rather than a guess: inodes mapped
// by indirect blocks (ext3-style) and inline-data directories are not
// changed; a file whose map needs more than a two-level extent tree is
// not rebuilt.

// fcReplayer holds the state of one replay.
type fcReplayer struct {
	fsys *ext.FS // the filesystem after the jbd2 replay
	ov   *Overlay
	bs   int64
	isz  int

	inodes map[uint32][]byte       // raw inodes as replayed so far
	maps   map[uint32][]ext.Extent // current block map of inodes whose map changes
	meta   map[uint32][]uint64     // tree blocks the inode owned before the replay
	dirty  map[uint32]bool         // the map changed: rebuild the tree
	blocks map[uint64][]byte       // changed blocks
	order  []uint32                // inodes in the order first touched

	claimed  map[uint64]bool // blocks some ADD_RANGE maps, and blocks allocated here
	bitmaps  map[uint64][]byte
	nextFree uint64

	dirDirty map[uint32]bool // directories with changed blocks

	stale   []string
	applied int
}

func newFCReplayer(fsys *ext.FS, ov *Overlay) *fcReplayer {
	return &fcReplayer{
		fsys: fsys, ov: ov, bs: fsys.BlockSize(), isz: int(fsys.Superblock().InodeSize),
		inodes: map[uint32][]byte{}, maps: map[uint32][]ext.Extent{}, meta: map[uint32][]uint64{},
		dirty: map[uint32]bool{}, blocks: map[uint64][]byte{}, claimed: map[uint64]bool{},
		bitmaps: map[uint64][]byte{},
	}
}

const (
	inoModeOff   = 0x00
	inoSizeLo    = 0x04
	inoLinks     = 0x1A
	inoBlocksLo  = 0x1C
	inoFlags     = 0x20
	inoBlock     = 0x28
	inoGen       = 0x64
	inoSizeHi    = 0x6C
	inoBlocksHi  = 0x74
	iBlockBytes  = 60
	extMagicV    = 0xF30A
	flagExtents  = 0x80000
	flagInline   = 0x10000000
	flagIndex    = 0x1000
	flagHugeFile = 0x40000
	modeTypeMask = 0xF000
	modeDirBits  = 0x4000
	maxInitLen   = 32768
	maxUnwritLen = 32767
)

// replay applies tags (the valid ones of a scan) and stores the changed
// blocks in the overlay.
func (r *fcReplayer) replay(tags []fcTag) {
	le := binary.LittleEndian
	for _, t := range tags {
		if t.tag == fcTagAddRange {
			ino := le.Uint32(t.val)
			e := decodeFCExtent(t.val[4:])
			for i := uint64(0); i < e.Len; i++ {
				r.claimed[e.Physical+i] = true
			}
			_ = ino
		}
	}
	for _, t := range tags {
		var err error
		switch t.tag {
		case fcTagInode:
			err = r.inode(le.Uint32(t.val), t.val[4:])
		case fcTagAddRange:
			err = r.addRange(le.Uint32(t.val), decodeFCExtent(t.val[4:]))
		case fcTagDelRange:
			err = r.delRange(le.Uint32(t.val), uint64(le.Uint32(t.val[4:])), uint64(le.Uint32(t.val[8:])))
		case fcTagCreat, fcTagLink:
			err = r.link(le.Uint32(t.val), le.Uint32(t.val[4:]), t.val[8:], t.tag == fcTagCreat)
		case fcTagUnlink:
			err = r.unlink(le.Uint32(t.val), le.Uint32(t.val[4:]), t.val[8:])
		default:
			continue
		}
		if err != nil {
			r.stale = append(r.stale, fmt.Sprintf("fast-commit %s record at journal offset %#x not replayed: %v", t.name(), t.off, err))
			continue
		}
		r.applied++
	}
	r.materialize()
}

func decodeFCExtent(b []byte) ext.Extent {
	le := binary.LittleEndian
	n := uint64(le.Uint16(b[4:]))
	e := ext.Extent{
		Logical:  uint64(le.Uint32(b)),
		Physical: uint64(le.Uint16(b[6:]))<<32 | uint64(le.Uint32(b[8:])),
		Len:      n,
	}
	if n > maxInitLen {
		e.Len, e.Unwritten = n-maxInitLen, true
	}
	return e
}

// raw returns inode ino as replayed so far.
func (r *fcReplayer) raw(ino uint32) ([]byte, error) {
	if b, ok := r.inodes[ino]; ok {
		return b, nil
	}
	off, err := r.fsys.InodeOffset(ino)
	if err != nil {
		return nil, err
	}
	b := make([]byte, r.isz)
	if err := r.read(b, off); err != nil {
		return nil, fmt.Errorf("inode %d at offset %#x: %w", ino, off, err)
	}
	r.inodes[ino] = b
	r.order = append(r.order, ino)
	return b, nil
}

// read reads volume bytes as replayed so far.
func (r *fcReplayer) read(p []byte, off int64) error {
	n, err := r.ov.ReadAt(p, off)
	if n < len(p) {
		if err == nil {
			err = fmt.Errorf("short read")
		}
		return err
	}
	// Changed blocks not yet in the overlay.
	for i := off / r.bs; i*r.bs < off+int64(len(p)); i++ {
		if b, ok := r.blocks[uint64(i)]; ok {
			lo, hi := max(i*r.bs, off), min((i+1)*r.bs, off+int64(len(p)))
			copy(p[lo-off:hi-off], b[lo-i*r.bs:hi-i*r.bs])
		}
	}
	return nil
}

func (r *fcReplayer) block(b uint64) ([]byte, error) {
	if blk, ok := r.blocks[b]; ok {
		return blk, nil
	}
	if b == 0 || b >= r.fsys.Superblock().BlocksCount {
		return nil, fmt.Errorf("block %d outside the filesystem", b)
	}
	blk := make([]byte, r.bs)
	if err := r.read(blk, int64(b)*r.bs); err != nil {
		return nil, err
	}
	return blk, nil
}

func (r *fcReplayer) inode(ino uint32, fc []byte) error {
	raw, err := r.raw(ino)
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	n := min(len(fc), len(raw))
	copy(raw[:inoBlock], fc[:inoBlock])
	if n > inoGen {
		copy(raw[inoGen:n], fc[inoGen:n])
	}
	flags := le.Uint32(raw[inoFlags:])
	switch {
	case flags&flagExtents != 0:
		if le.Uint16(raw[inoBlock:]) != extMagicV {
			clear(raw[inoBlock : inoBlock+iBlockBytes])
			le.PutUint16(raw[inoBlock:], extMagicV)
			le.PutUint16(raw[inoBlock+4:], 4)
		}
	case flags&flagInline != 0:
		copy(raw[inoBlock:inoBlock+iBlockBytes], fc[inoBlock:inoBlock+iBlockBytes])
	}
	// The map is re-read from the new i_block when next needed.
	if !r.dirty[ino] {
		delete(r.maps, ino)
	}
	return nil
}

// mapOf returns the current block map of an extent-mapped inode.
func (r *fcReplayer) mapOf(ino uint32) ([]ext.Extent, error) {
	if m, ok := r.maps[ino]; ok {
		return m, nil
	}
	raw, err := r.raw(ino)
	if err != nil {
		return nil, err
	}
	if binary.LittleEndian.Uint32(raw[inoFlags:])&flagExtents == 0 {
		return nil, fmt.Errorf("inode %d is not extent-mapped (indirect blocks or inline data): not changed", ino)
	}
	off, _ := r.fsys.InodeOffset(ino)
	in, err := r.fsys.ParseInode(ino, off, slices.Clone(raw))
	if err != nil {
		return nil, err
	}
	data, meta, err := r.fsys.MapInode(in)
	if err != nil {
		return nil, fmt.Errorf("inode %d: reading its extent tree: %w", ino, err)
	}
	r.maps[ino] = slices.Clone(data)
	if _, ok := r.meta[ino]; !ok {
		r.meta[ino] = meta
	}
	return r.maps[ino], nil
}

// setRange maps [lblk, lblk+n) to pblk.. (or unmaps it when pblk is 0).
func (r *fcReplayer) setRange(ino uint32, lblk, n, pblk uint64, unwritten bool) error {
	m, err := r.mapOf(ino)
	if err != nil {
		return err
	}
	end := lblk + n
	var out []ext.Extent
	for _, e := range m {
		eEnd := e.Logical + e.Len
		if eEnd <= lblk || e.Logical >= end {
			out = append(out, e)
			continue
		}
		if e.Logical < lblk {
			out = append(out, ext.Extent{Logical: e.Logical, Physical: e.Physical, Len: lblk - e.Logical, Unwritten: e.Unwritten})
		}
		if eEnd > end {
			out = append(out, ext.Extent{Logical: end, Physical: e.Physical + (end - e.Logical), Len: eEnd - end, Unwritten: e.Unwritten})
		}
	}
	if pblk != 0 {
		out = append(out, ext.Extent{Logical: lblk, Physical: pblk, Len: n, Unwritten: unwritten})
	}
	slices.SortFunc(out, func(a, b ext.Extent) int { return cmp.Compare(a.Logical, b.Logical) })
	r.maps[ino] = out
	r.dirty[ino] = true
	return nil
}

func (r *fcReplayer) addRange(ino uint32, e ext.Extent) error {
	if e.Len == 0 {
		return nil
	}
	if e.Physical == 0 || e.Physical+e.Len > r.fsys.Superblock().BlocksCount {
		return fmt.Errorf("inode %d: blocks %d..%d outside the filesystem", ino, e.Physical, e.Physical+e.Len-1)
	}
	return r.setRange(ino, e.Logical, e.Len, e.Physical, e.Unwritten)
}

func (r *fcReplayer) delRange(ino uint32, lblk, n uint64) error {
	if n == 0 {
		return nil
	}
	return r.setRange(ino, lblk, n, 0, false)
}

func (r *fcReplayer) adjustLinks(ino uint32, set int, delta int) error {
	raw, err := r.raw(ino)
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	n := int(le.Uint16(raw[inoLinks:]))
	if set >= 0 {
		n = set
	}
	n = max(n+delta, 0)
	le.PutUint16(raw[inoLinks:], uint16(min(n, 0xFFFF)))
	return nil
}

func isDir(raw []byte) bool {
	return binary.LittleEndian.Uint16(raw[inoModeOff:])&modeTypeMask == modeDirBits
}

// dirBlocks returns the directory's data blocks that hold entries (leaf
// blocks), as (logical, physical) pairs.
func (r *fcReplayer) dirBlocks(dir uint32) ([][2]uint64, error) {
	raw, err := r.raw(dir)
	if err != nil {
		return nil, err
	}
	if !isDir(raw) {
		return nil, fmt.Errorf("inode %d is not a directory", dir)
	}
	m, err := r.mapOf(dir)
	if err != nil {
		return nil, err
	}
	size := inodeSize(raw)
	var out [][2]uint64
	for _, e := range m {
		if e.Unwritten {
			continue
		}
		for i := uint64(0); i < e.Len; i++ {
			if int64(e.Logical+i)*r.bs >= size {
				break
			}
			out = append(out, [2]uint64{e.Logical + i, e.Physical + i})
		}
	}
	return out, nil
}

func inodeSize(raw []byte) int64 {
	le := binary.LittleEndian
	return int64(uint64(le.Uint32(raw[inoSizeLo:])) | uint64(le.Uint32(raw[inoSizeHi:]))<<32)
}

func setInodeSize(raw []byte, n int64) {
	le := binary.LittleEndian
	le.PutUint32(raw[inoSizeLo:], uint32(n))
	le.PutUint32(raw[inoSizeHi:], uint32(uint64(n)>>32))
}

// dirent layout
func direntLen(nameLen int) int { return (8 + nameLen + 3) &^ 3 }

// leafEnd is where a directory leaf block's entries end (before the
// metadata_csum tail), or -1 when b is not a leaf (an htree index block).
func (r *fcReplayer) leafEnd(b []byte, lblk uint64, indexed bool) int {
	le := binary.LittleEndian
	end := len(b)
	if r.fsys.MetadataCsum() {
		t := b[len(b)-12:]
		if le.Uint32(t) != 0 || le.Uint16(t[4:]) != 12 || t[7] != 0xDE {
			return -1
		}
		end -= 12
	}
	if indexed {
		if lblk == 0 {
			return -1 // dx_root: "." and ".." then the index
		}
		if le.Uint32(b) == 0 && int(le.Uint16(b[4:])) == len(b) {
			return -1 // a dx node: an empty entry spanning the block
		}
	}
	return end
}

// findEntry returns the block and byte position of name in dir, and the
// position of the entry before it in that block (-1 when first).
func (r *fcReplayer) findEntry(dir uint32, name []byte) (pblk uint64, pos, prev int, ino uint32, ok bool, err error) {
	blocks, err := r.dirBlocks(dir)
	if err != nil {
		return 0, 0, 0, 0, false, err
	}
	raw := r.inodes[dir]
	indexed := binary.LittleEndian.Uint32(raw[inoFlags:])&flagIndex != 0
	le := binary.LittleEndian
	for _, lp := range blocks {
		b, err := r.block(lp[1])
		if err != nil {
			return 0, 0, 0, 0, false, err
		}
		end := r.leafEnd(b, lp[0], indexed)
		if end < 0 && !(indexed && lp[0] == 0) {
			continue
		}
		if end < 0 {
			end = len(b)
		}
		prev := -1
		for p := 0; p+8 <= end; {
			rl := int(le.Uint16(b[p+4:]))
			if rl < 8 || p+rl > len(b) {
				break
			}
			nl := int(b[p+6])
			if le.Uint32(b[p:]) != 0 && p+8+nl <= len(b) && string(b[p+8:p+8+nl]) == string(name) {
				return lp[1], p, prev, le.Uint32(b[p:]), true, nil
			}
			prev = p
			p += rl
		}
	}
	return 0, 0, 0, 0, false, nil
}

func (r *fcReplayer) link(parent, ino uint32, name []byte, creat bool) error {
	raw, err := r.raw(ino)
	if err != nil {
		return err
	}
	if creat && isDir(raw) {
		if err := r.initDir(parent, ino); err != nil {
			return err
		}
	}
	_, _, _, _, found, err := r.findEntry(parent, name)
	if err != nil {
		return err
	}
	if found {
		return nil // the entry reached the disk before the crash
	}
	if err := r.addEntry(parent, ino, name, ext.FTOfMode(binary.LittleEndian.Uint16(raw[inoModeOff:]))); err != nil {
		return err
	}
	if creat {
		set := 1
		if isDir(raw) {
			set = 2
		}
		return r.adjustLinks(ino, set, 0)
	}
	return r.adjustLinks(ino, -1, 1)
}

func (r *fcReplayer) unlink(parent, ino uint32, name []byte) error {
	pblk, pos, prev, got, found, err := r.findEntry(parent, name)
	if err != nil || !found {
		return err // ENOENT: it may not exist any more
	}
	if got != ino {
		return fmt.Errorf("entry %q in directory %d names inode %d, the fast commit %d", name, parent, got, ino)
	}
	b, err := r.block(pblk)
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	b = slices.Clone(b)
	if prev >= 0 {
		le.PutUint16(b[prev+4:], le.Uint16(b[prev+4:])+le.Uint16(b[pos+4:]))
	} else {
		le.PutUint32(b[pos:], 0)
	}
	r.blocks[pblk] = b
	r.dirtyDirBlock(parent)
	return r.adjustLinks(ino, -1, -1)
}

// dirBlockOwners remembers which directory each changed directory block
// belongs to, for its checksum.
func (r *fcReplayer) dirtyDirBlock(dir uint32) {
	if r.dirDirty == nil {
		r.dirDirty = map[uint32]bool{}
	}
	r.dirDirty[dir] = true
}

func (r *fcReplayer) putEntry(b []byte, p, recLen int, ino uint32, name []byte, ft uint8) {
	le := binary.LittleEndian
	le.PutUint32(b[p:], ino)
	le.PutUint16(b[p+4:], uint16(recLen))
	b[p+6] = byte(len(name))
	b[p+7] = 0
	if r.fsys.HasFiletype() {
		b[p+7] = ft
	}
	copy(b[p+8:], name)
}

func (r *fcReplayer) addEntry(dir, ino uint32, name []byte, ft uint8) error {
	blocks, err := r.dirBlocks(dir)
	if err != nil {
		return err
	}
	raw := r.inodes[dir]
	indexed := binary.LittleEndian.Uint32(raw[inoFlags:])&flagIndex != 0
	need := direntLen(len(name))
	le := binary.LittleEndian
	for _, lp := range blocks {
		b, err := r.block(lp[1])
		if err != nil {
			return err
		}
		end := r.leafEnd(b, lp[0], indexed)
		if end < 0 {
			continue
		}
		for p := 0; p+8 <= end; {
			rl := int(le.Uint16(b[p+4:]))
			if rl < 8 || p+rl > end {
				break
			}
			used := 0
			if le.Uint32(b[p:]) != 0 {
				used = direntLen(int(b[p+6]))
			}
			if rl-used >= need {
				b = slices.Clone(b)
				if used == 0 {
					r.putEntry(b, p, rl, ino, name, ft)
				} else {
					le.PutUint16(b[p+4:], uint16(used))
					r.putEntry(b, p+used, rl-used, ino, name, ft)
				}
				r.blocks[lp[1]] = b
				r.dirtyDirBlock(dir)
				return nil
			}
			p += rl
		}
	}
	// No room: a new block at the end of the directory.
	nb, err := r.alloc()
	if err != nil {
		return err
	}
	size := inodeSize(raw)
	lblk := uint64((size + r.bs - 1) / r.bs)
	b := r.newLeaf()
	r.putEntry(b, 0, r.leafSpace(), ino, name, ft)
	r.blocks[nb] = b
	if err := r.setRange(dir, lblk, 1, nb, false); err != nil {
		return err
	}
	setInodeSize(raw, int64(lblk+1)*r.bs)
	r.dirtyDirBlock(dir)
	return nil
}

// leafSpace is the room for entries in a leaf block.
func (r *fcReplayer) leafSpace() int {
	if r.fsys.MetadataCsum() {
		return int(r.bs) - 12
	}
	return int(r.bs)
}

// newLeaf returns an empty directory leaf block (with its csum tail).
func (r *fcReplayer) newLeaf() []byte {
	b := make([]byte, r.bs)
	if r.fsys.MetadataCsum() {
		t := b[r.bs-12:]
		binary.LittleEndian.PutUint16(t[4:], 12)
		t[7] = 0xDE
	}
	return b
}

// initDir gives a CREAT'd directory "." and ".." when it has no first
// block, as ext4_init_new_dir does on replay.
func (r *fcReplayer) initDir(parent, dir uint32) error {
	m, err := r.mapOf(dir)
	if err != nil {
		return err
	}
	for _, e := range m {
		if e.Logical == 0 {
			return nil
		}
	}
	nb, err := r.alloc()
	if err != nil {
		return err
	}
	b := r.newLeaf()
	r.putEntry(b, 0, 12, dir, []byte("."), ext.FTDir)
	r.putEntry(b, 12, r.leafSpace()-12, parent, []byte(".."), ext.FTDir)
	r.blocks[nb] = b
	if err := r.setRange(dir, 0, 1, nb, false); err != nil {
		return err
	}
	setInodeSize(r.inodes[dir], r.bs)
	r.dirtyDirBlock(dir)
	return nil
}

// alloc returns a block free in the bitmaps, not mapped by any fast
// commit and not allocated before, as the kernel's allocator would find
// one during replay.
func (r *fcReplayer) alloc() (uint64, error) {
	sb := r.fsys.Superblock()
	bpg := uint64(sb.BlocksPerGroup)
	first := uint64(sb.FirstDataBlock)
	groups := uint64(len(r.fsys.Groups()))
	for b := max(r.nextFree, first); b < sb.BlocksCount; b++ {
		g := (b - first) / bpg
		if g >= groups {
			break
		}
		bm, ok := r.bitmaps[g]
		if !ok {
			var err error
			bm, err = r.fsys.BlockBitmap(g)
			if err != nil {
				bm = nil
			}
			r.bitmaps[g] = bm
		}
		if bm == nil {
			b = first + (g+1)*bpg - 1 // uninitialised or unreadable: skip the group
			continue
		}
		i := b - first - g*bpg
		if bm[i/8]&(1<<(i%8)) != 0 || r.claimed[b] {
			continue
		}
		r.claimed[b] = true
		r.nextFree = b + 1
		return b, nil
	}
	return 0, fmt.Errorf("no free block left for the replay")
}

// materialize writes every changed inode, extent tree and directory block
// into the overlay, with checksums.
func (r *fcReplayer) materialize() {
	le := binary.LittleEndian
	for _, ino := range r.order {
		raw := r.inodes[ino]
		if r.dirty[ino] {
			if err := r.buildTree(ino, raw); err != nil {
				r.stale = append(r.stale, fmt.Sprintf("inode %d: block map not rebuilt: %v", ino, err))
				continue
			}
		}
		gen := le.Uint32(raw[inoGen:])
		if r.dirDirty[ino] {
			m := r.maps[ino]
			for _, e := range m {
				for i := uint64(0); i < e.Len; i++ {
					if b, ok := r.blocks[e.Physical+i]; ok {
						r.fsys.SetDirBlockChecksum(ino, gen, b)
					}
				}
			}
		}
		off, err := r.fsys.InodeOffset(ino)
		if err != nil {
			continue
		}
		r.fsys.SetInodeChecksum(ino, raw)
		blk := uint64(off / r.bs)
		b, err := r.block(blk)
		if err != nil {
			r.stale = append(r.stale, fmt.Sprintf("inode %d: inode table block %d unreadable: %v", ino, blk, err))
			continue
		}
		b = slices.Clone(b)
		copy(b[off-int64(blk)*r.bs:], raw)
		r.blocks[blk] = b
	}
	if r.ov.mem == nil {
		r.ov.mem = map[uint64][]byte{}
	}
	for b, d := range r.blocks {
		r.ov.mem[b] = d
	}
	r.ov.memKeys = r.ov.memKeys[:0]
	for b := range r.ov.mem {
		r.ov.memKeys = append(r.ov.memKeys, b)
	}
	sort.Slice(r.ov.memKeys, func(i, j int) bool { return r.ov.memKeys[i] < r.ov.memKeys[j] })
}

// buildTree writes the inode's block map as an extent tree: in i_block
// when it fits (4 extents), else one level of leaf blocks (reusing the
// inode's old tree blocks first).
func (r *fcReplayer) buildTree(ino uint32, raw []byte) error {
	le := binary.LittleEndian
	var ex []ext.Extent
	var total uint64
	for _, e := range r.maps[ino] {
		limit := uint64(maxInitLen)
		if e.Unwritten {
			limit = maxUnwritLen
		}
		total += e.Len
		for e.Len > 0 {
			n := min(e.Len, limit)
			if k := len(ex); k > 0 {
				p := &ex[k-1]
				if p.Logical+p.Len == e.Logical && p.Physical+p.Len == e.Physical && p.Unwritten == e.Unwritten && p.Len+n <= limit {
					p.Len += n
					e.Logical, e.Physical, e.Len = e.Logical+n, e.Physical+n, e.Len-n
					continue
				}
			}
			ex = append(ex, ext.Extent{Logical: e.Logical, Physical: e.Physical, Len: n, Unwritten: e.Unwritten})
			e.Logical, e.Physical, e.Len = e.Logical+n, e.Physical+n, e.Len-n
		}
	}
	putExtent := func(b []byte, e ext.Extent) {
		le.PutUint32(b, uint32(e.Logical))
		n := e.Len
		if e.Unwritten {
			n += maxInitLen
		}
		le.PutUint16(b[4:], uint16(n))
		le.PutUint16(b[6:], uint16(e.Physical>>32))
		le.PutUint32(b[8:], uint32(e.Physical))
	}
	root := raw[inoBlock : inoBlock+iBlockBytes]
	clear(root)
	le.PutUint16(root, extMagicV)
	le.PutUint16(root[4:], 4)
	var treeBlocks uint64
	if len(ex) <= 4 {
		le.PutUint16(root[2:], uint16(len(ex)))
		for i, e := range ex {
			putExtent(root[12+12*i:], e)
		}
	} else {
		per := int((r.bs - 12) / 12)
		leaves := (len(ex) + per - 1) / per
		if leaves > 4 {
			return fmt.Errorf("%d extents need a deeper tree than this replay builds", len(ex))
		}
		le.PutUint16(root[2:], uint16(leaves))
		le.PutUint16(root[6:], 1)
		old := r.meta[ino]
		gen := le.Uint32(raw[inoGen:])
		for l := range leaves {
			var nb uint64
			if l < len(old) {
				nb = old[l]
			} else {
				var err error
				if nb, err = r.alloc(); err != nil {
					return err
				}
			}
			part := ex[l*per : min((l+1)*per, len(ex))]
			b := make([]byte, r.bs)
			le.PutUint16(b, extMagicV)
			le.PutUint16(b[2:], uint16(len(part)))
			le.PutUint16(b[4:], uint16(per))
			for i, e := range part {
				putExtent(b[12+12*i:], e)
			}
			r.fsys.SetExtentBlockChecksum(ino, gen, b)
			r.blocks[nb] = b
			ix := root[12+12*l:]
			le.PutUint32(ix, uint32(part[0].Logical))
			le.PutUint32(ix[4:], uint32(nb))
			le.PutUint16(ix[8:], uint16(nb>>32))
		}
		treeBlocks = uint64(leaves)
	}
	// i_blocks, as ext4_ext_replay_set_iblocks recounts it.
	blocks := total + treeBlocks
	if le.Uint32(raw[inoFlags:])&flagHugeFile == 0 {
		blocks *= uint64(r.bs / 512)
	}
	le.PutUint32(raw[inoBlocksLo:], uint32(blocks))
	le.PutUint16(raw[inoBlocksHi:], uint16(blocks>>32))
	return nil
}
