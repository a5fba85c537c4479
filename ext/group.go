package ext

import "encoding/binary"

// A group descriptor is 32 bytes, or s_desc_size (64) with the 64bit
// feature, where the second half holds the high halves of the fields.
const (
	gdBlockBitmapLo  = 0x00
	gdInodeBitmapLo  = 0x04
	gdInodeTableLo   = 0x08
	gdFreeBlocksLo   = 0x0C
	gdFreeInodesLo   = 0x0E
	gdUsedDirsLo     = 0x10
	gdFlags          = 0x12
	gdItableUnusedLo = 0x1C
	gdChecksum       = 0x1E // crc16 (gdt_csum) or low 16 bits of crc32c
	gdBlockBitmapHi  = 0x20
	gdInodeBitmapHi  = 0x24
	gdInodeTableHi   = 0x28
	gdFreeBlocksHi   = 0x2C
	gdFreeInodesHi   = 0x2E
	gdUsedDirsHi     = 0x30
	gdItableUnusedHi = 0x32
	gdDesc32Size     = 32
)

// Group descriptor flags (bg_flags).
const (
	GroupInodeUninit  = 0x1 // inode table and bitmap not initialised
	GroupBlockUninit  = 0x2 // block bitmap not initialised
	GroupItableZeroed = 0x4 // inode table is zeroed
)

// GroupDesc is a decoded block group descriptor.
type GroupDesc struct {
	BlockBitmap  uint64 // block number of the block bitmap
	InodeBitmap  uint64
	InodeTable   uint64 // first block of the inode table
	FreeBlocks   uint32
	FreeInodes   uint32
	UsedDirs     uint32
	ItableUnused uint32
	Flags        uint16
	Checksum     uint16
	Offset       int64 // byte offset of the descriptor on the volume
}

func parseGroupDesc(b []byte, is64 bool) GroupDesc {
	le := binary.LittleEndian
	g := GroupDesc{
		BlockBitmap:  uint64(le.Uint32(b[gdBlockBitmapLo:])),
		InodeBitmap:  uint64(le.Uint32(b[gdInodeBitmapLo:])),
		InodeTable:   uint64(le.Uint32(b[gdInodeTableLo:])),
		FreeBlocks:   uint32(le.Uint16(b[gdFreeBlocksLo:])),
		FreeInodes:   uint32(le.Uint16(b[gdFreeInodesLo:])),
		UsedDirs:     uint32(le.Uint16(b[gdUsedDirsLo:])),
		Flags:        le.Uint16(b[gdFlags:]),
		ItableUnused: uint32(le.Uint16(b[gdItableUnusedLo:])),
		Checksum:     le.Uint16(b[gdChecksum:]),
	}
	if is64 && len(b) >= 64 {
		g.BlockBitmap |= uint64(le.Uint32(b[gdBlockBitmapHi:])) << 32
		g.InodeBitmap |= uint64(le.Uint32(b[gdInodeBitmapHi:])) << 32
		g.InodeTable |= uint64(le.Uint32(b[gdInodeTableHi:])) << 32
		g.FreeBlocks |= uint32(le.Uint16(b[gdFreeBlocksHi:])) << 16
		g.FreeInodes |= uint32(le.Uint16(b[gdFreeInodesHi:])) << 16
		g.UsedDirs |= uint32(le.Uint16(b[gdUsedDirsHi:])) << 16
		g.ItableUnused |= uint32(le.Uint16(b[gdItableUnusedHi:])) << 16
	}
	return g
}

// groupDescChecksum computes the checksum stored in bg_checksum for group
// number g with descriptor bytes b (its own checksum field is skipped):
//   - metadata_csum: crc32c(seed, le32 g, desc with checksum zeroed) & 0xFFFF
//   - gdt_csum: crc16(~0, uuid, le32 g, desc up to the checksum, rest)
func (fsys *FS) groupDescChecksum(g uint32, b []byte) (uint16, bool) {
	var gb [4]byte
	binary.LittleEndian.PutUint32(gb[:], g)
	sb := fsys.sb
	switch {
	case sb.hasMetadataCsum():
		c := crc32c(fsys.csumSeed, gb[:])
		c = crc32c(c, b[:gdChecksum])
		c = crc32c(c, []byte{0, 0})
		c = crc32c(c, b[gdChecksum+2:])
		return uint16(c), true
	case sb.hasGdtCsum():
		c := crc16(0xFFFF, sb.UUID[:])
		c = crc16(c, gb[:])
		c = crc16(c, b[:gdChecksum])
		if len(b) > gdDesc32Size {
			c = crc16(c, b[gdDesc32Size:])
		}
		return c, true
	}
	return 0, false
}

// hasSuper reports whether group g holds a superblock backup (and hence a
// copy of the group descriptor table, unless meta_bg).
func (s *Superblock) hasSuper(g uint64) bool {
	if g == 0 {
		return true
	}
	if s.FeatureCompat&CompatSparseSuper2 != 0 {
		return g == uint64(s.BackupBGs[0]) || g == uint64(s.BackupBGs[1])
	}
	if !s.hasSparseSuper() {
		return true
	}
	if g == 1 {
		return true
	}
	for _, p := range []uint64{3, 5, 7} {
		n := p
		for n < g {
			n *= p
		}
		if n == g {
			return true
		}
	}
	return false
}

// groupFirstBlock is the first block of group g.
func (s *Superblock) groupFirstBlock(g uint64) uint64 {
	return uint64(s.FirstDataBlock) + g*uint64(s.BlocksPerGroup)
}

// gdtBlock returns the block holding descriptor block number i (i =
// group / descriptors-per-block), for a superblock whose copy is in group
// sbGroup (0 for the primary). Without meta_bg the table follows the
// superblock; with meta_bg, descriptor block i past s_first_meta_bg lives in
// the first group of meta group i (after that group's superblock backup).
func (s *Superblock) gdtBlock(i uint64, sbGroup uint64) uint64 {
	if s.FeatureIncompat&IncompatMetaBG == 0 || i < uint64(s.FirstMetaBg) {
		return s.groupStart(sbGroup) + 1 + i
	}
	perBlock := uint64(s.BlockSize) / uint64(s.DescSize)
	g := i * perBlock
	b := s.groupFirstBlock(g)
	if s.hasSuper(g) {
		b++
	}
	return b
}
