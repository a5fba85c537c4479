package ext

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// The superblock is 1024 bytes, at byte 1024 of the volume (and, in backups,
// at the start of the first block of some groups). All fields little endian.
const (
	superblockOffset = 1024
	superblockSize   = 1024
	superMagic       = 0xEF53 // s_magic

	// Offsets of the superblock fields we use.
	sbInodesCount      = 0x00
	sbBlocksCountLo    = 0x04
	sbRBlocksCountLo   = 0x08
	sbFreeBlocksLo     = 0x0C
	sbFreeInodes       = 0x10
	sbFirstDataBlock   = 0x14
	sbLogBlockSize     = 0x18 // block size = 1024 << s_log_block_size
	sbLogClusterSize   = 0x1C
	sbBlocksPerGroup   = 0x20
	sbInodesPerGroup   = 0x28
	sbMtime            = 0x2C // last mount time
	sbWtime            = 0x30 // last write time
	sbMntCount         = 0x34
	sbMaxMntCount      = 0x36
	sbMagic            = 0x38
	sbState            = 0x3A
	sbErrors           = 0x3C
	sbMinorRev         = 0x3E
	sbLastCheck        = 0x40
	sbCreatorOS        = 0x48
	sbRevLevel         = 0x4C
	sbFirstIno         = 0x54
	sbInodeSize        = 0x58
	sbBlockGroupNr     = 0x5A
	sbFeatureCompat    = 0x5C
	sbFeatureIncompat  = 0x60
	sbFeatureROCompat  = 0x64
	sbUUID             = 0x68
	sbVolumeName       = 0x78
	sbLastMounted      = 0x88
	sbReservedGDT      = 0xCE
	sbJournalUUID      = 0xD0
	sbJournalInum      = 0xE0
	sbJournalDev       = 0xE4
	sbLastOrphan       = 0xE8
	sbHashSeed         = 0xEC
	sbDefHashVersion   = 0xFC
	sbJnlBackupType    = 0xFD
	sbJnlBlocks        = 0x10C // 17 x le32
	sbDescSize         = 0xFE
	sbFirstMetaBg      = 0x104
	sbMkfsTime         = 0x108
	sbBlocksCountHi    = 0x150
	sbRBlocksCountHi   = 0x154
	sbFreeBlocksHi     = 0x158
	sbMinExtraIsize    = 0x15C
	sbWantExtraIsize   = 0x15E
	sbFlags            = 0x160
	sbLogGroupsPerFlex = 0x174
	sbChecksumType     = 0x175
	sbUsrQuotaInum     = 0x240
	sbGrpQuotaInum     = 0x244
	sbBackupBGs        = 0x24C
	sbPrjQuotaInum     = 0x26C
	sbOrphanFileInum   = 0x280
	sbChecksumSeed     = 0x270
	sbWtimeHi          = 0x274
	sbMtimeHi          = 0x275
	sbMkfsTimeHi       = 0x276
	sbLastCheckHi      = 0x277
	sbEncoding         = 0x27C
	sbChecksum         = 0x3FC
)

// Filesystem states (s_state).
const (
	StateValid   = 0x1 // cleanly unmounted
	StateErrors  = 0x2 // errors detected
	StateOrphans = 0x4 // orphans being recovered
)

// Compatible features: a reader may ignore them.
const (
	CompatDirPrealloc   = 0x1
	CompatImagicInodes  = 0x2
	CompatHasJournal    = 0x4
	CompatExtAttr       = 0x8
	CompatResizeInode   = 0x10
	CompatDirIndex      = 0x20
	CompatLazyBG        = 0x40
	CompatExcludeInode  = 0x80
	CompatExcludeBitmap = 0x100
	CompatSparseSuper2  = 0x200
	CompatFastCommit    = 0x400
	CompatStableInodes  = 0x800
	CompatOrphanFile    = 0x1000
)

// Incompatible features: a reader must understand them.
const (
	IncompatCompression = 0x1
	IncompatFiletype    = 0x2 // dirents carry a file type byte
	IncompatRecover     = 0x4 // journal needs recovery
	IncompatJournalDev  = 0x8 // this is an external journal device
	IncompatMetaBG      = 0x10
	IncompatExtents     = 0x40
	Incompat64Bit       = 0x80
	IncompatMMP         = 0x100
	IncompatFlexBG      = 0x200
	IncompatEAInode     = 0x400
	IncompatDirData     = 0x1000
	IncompatCsumSeed    = 0x2000 // checksum seed in s_checksum_seed
	IncompatLargeDir    = 0x4000
	IncompatInlineData  = 0x8000
	IncompatEncrypt     = 0x10000
	IncompatCasefold    = 0x20000
)

// Read-only compatible features: a reader may read, but not write, without
// understanding them.
const (
	ROCompatSparseSuper   = 0x1
	ROCompatLargeFile     = 0x2
	ROCompatBtreeDir      = 0x4
	ROCompatHugeFile      = 0x8
	ROCompatGdtCsum       = 0x10 // uninit_bg: crc16 group descriptor checksums
	ROCompatDirNlink      = 0x20
	ROCompatExtraIsize    = 0x40
	ROCompatHasSnapshot   = 0x80
	ROCompatQuota         = 0x100
	ROCompatBigalloc      = 0x200
	ROCompatMetadataCsum  = 0x400 // crc32c checksums on all metadata
	ROCompatReplica       = 0x800
	ROCompatReadonly      = 0x1000
	ROCompatProject       = 0x2000
	ROCompatSharedBlocks  = 0x4000
	ROCompatVerity        = 0x8000
	ROCompatOrphanPresent = 0x10000
)

var compatNames = map[uint32]string{
	CompatDirPrealloc: "dir_prealloc", CompatImagicInodes: "imagic_inodes",
	CompatHasJournal: "has_journal", CompatExtAttr: "ext_attr",
	CompatResizeInode: "resize_inode", CompatDirIndex: "dir_index",
	CompatLazyBG: "lazy_bg", CompatExcludeInode: "exclude_inode",
	CompatExcludeBitmap: "exclude_bitmap", CompatSparseSuper2: "sparse_super2",
	CompatFastCommit: "fast_commit", CompatStableInodes: "stable_inodes",
	CompatOrphanFile: "orphan_file",
}

var incompatNames = map[uint32]string{
	IncompatCompression: "compression", IncompatFiletype: "filetype",
	IncompatRecover: "needs_recovery", IncompatJournalDev: "journal_dev",
	IncompatMetaBG: "meta_bg", IncompatExtents: "extent", Incompat64Bit: "64bit",
	IncompatMMP: "mmp", IncompatFlexBG: "flex_bg", IncompatEAInode: "ea_inode",
	IncompatDirData: "dirdata", IncompatCsumSeed: "metadata_csum_seed",
	IncompatLargeDir: "large_dir", IncompatInlineData: "inline_data",
	IncompatEncrypt: "encrypt", IncompatCasefold: "casefold",
}

var roCompatNames = map[uint32]string{
	ROCompatSparseSuper: "sparse_super", ROCompatLargeFile: "large_file",
	ROCompatBtreeDir: "btree_dir", ROCompatHugeFile: "huge_file",
	ROCompatGdtCsum: "uninit_bg", ROCompatDirNlink: "dir_nlink",
	ROCompatExtraIsize: "extra_isize", ROCompatHasSnapshot: "snapshot",
	ROCompatQuota: "quota", ROCompatBigalloc: "bigalloc",
	ROCompatMetadataCsum: "metadata_csum", ROCompatReplica: "replica",
	ROCompatReadonly: "read-only", ROCompatProject: "project",
	ROCompatSharedBlocks: "shared_blocks", ROCompatVerity: "verity",
	ROCompatOrphanPresent: "orphan_present",
}

// featureNames lists the names of the bits set in v, in bit order, using
// dumpe2fs's spelling; unknown bits are shown as FEATURE_<kind><bit>.
func featureNames(v uint32, names map[uint32]string, kind string) []string {
	var out []string
	for bit := range 32 {
		m := uint32(1) << bit
		if v&m == 0 {
			continue
		}
		if n, ok := names[m]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("FEATURE_%s%d", kind, bit))
		}
	}
	return out
}

// Superblock is the decoded superblock.
type Superblock struct {
	InodesCount       uint32
	BlocksCount       uint64
	RBlocksCount      uint64
	FreeBlocksCount   uint64
	FreeInodesCount   uint32
	FirstDataBlock    uint32
	BlockSize         uint32 // bytes, 1024..65536
	ClusterSize       uint32 // bytes (bigalloc), else BlockSize
	BlocksPerGroup    uint32
	InodesPerGroup    uint32
	MountCount        uint16
	MaxMountCount     uint16
	State             uint16 // StateValid | StateErrors | StateOrphans
	Errors            uint16 // behaviour on errors: 1 continue, 2 remount-ro, 3 panic
	RevLevel          uint32
	MinorRevLevel     uint16
	CreatorOS         uint32
	FirstIno          uint32 // first non-reserved inode
	InodeSize         uint16
	BlockGroupNr      uint16 // group this copy is in (backups)
	FeatureCompat     uint32
	FeatureIncompat   uint32
	FeatureROCompat   uint32
	UUID              [16]byte
	VolumeName        string
	LastMounted       string
	ReservedGDTBlocks uint16
	JournalUUID       [16]byte
	JournalInum       uint32
	JournalDev        uint32
	LastOrphan        uint32
	HashSeed          [4]uint32
	DefHashVersion    uint8
	DescSize          uint16 // group descriptor size: 32, or s_desc_size with 64bit
	FirstMetaBg       uint32
	MinExtraIsize     uint16
	WantExtraIsize    uint16
	Flags             uint32
	LogGroupsPerFlex  uint8
	ChecksumType      uint8
	ChecksumSeed      uint32    // s_checksum_seed (valid with metadata_csum_seed)
	Encoding          uint16    // casefold encoding
	BackupBGs         [2]uint32 // sparse_super2: the two groups with backups
	// Internal files that live in ordinary (non-reserved) inodes: the
	// quota files (quota feature) and the orphan file (orphan_file).
	UsrQuotaInum, GrpQuotaInum, PrjQuotaInum uint32
	OrphanFileInum                           uint32
	// JnlBackupType is 1 (JnlBackupBlocks) when JnlBlocks holds a copy
	// of the journal inode's i_block (0-14), i_size_high (15) and i_size
	// (16), which mke2fs and e2fsck keep for when the inode is damaged.
	JnlBackupType uint8
	JnlBlocks     [17]uint32
	Checksum      uint32

	Created     time.Time // s_mkfs_time
	Mounted     time.Time // s_mtime: last mount
	Written     time.Time // s_wtime: last write
	LastChecked time.Time

	// Offset is the byte offset this superblock was read from: 1024 for
	// the primary, otherwise a backup's.
	Offset int64
}

// CompatFeatures, IncompatFeatures and ROCompatFeatures return the feature
// names (as dumpe2fs spells them) of the bits set.
func (s *Superblock) CompatFeatures() []string {
	return featureNames(s.FeatureCompat, compatNames, "C")
}
func (s *Superblock) IncompatFeatures() []string {
	return featureNames(s.FeatureIncompat, incompatNames, "I")
}
func (s *Superblock) ROCompatFeatures() []string {
	return featureNames(s.FeatureROCompat, roCompatNames, "R")
}

// Features returns all feature names: compat, incompat, then ro_compat.
func (s *Superblock) Features() []string {
	return append(append(s.CompatFeatures(), s.IncompatFeatures()...), s.ROCompatFeatures()...)
}

// Clean reports whether the filesystem was cleanly unmounted without errors.
func (s *Superblock) Clean() bool { return s.State&StateValid != 0 && s.State&StateErrors == 0 }

// NeedsRecovery reports whether the journal holds transactions not yet
// replayed (the filesystem was not cleanly unmounted).
func (s *Superblock) NeedsRecovery() bool { return s.FeatureIncompat&IncompatRecover != 0 }

// HasJournal reports whether the filesystem has a journal (ext3/ext4).
func (s *Superblock) HasJournal() bool { return s.FeatureCompat&CompatHasJournal != 0 }

// JnlBackupBlocks is s_jnl_backup_type when s_jnl_blocks is valid.
const JnlBackupBlocks = 1

// JournalInodeBackup returns the journal inode as the superblock's backup
// copy (s_jnl_blocks) describes it, or nil when there is none: the block
// map and size, a regular file of mode 0600, extent-mapped when the copy
// starts with an extent header, as e2fsck rebuilds it when the journal
// inode itself is damaged. Map it with FS.MapInode.
func (s *Superblock) JournalInodeBackup() *Inode {
	if s.JnlBackupType != JnlBackupBlocks || s.JournalInum == 0 {
		return nil
	}
	in := &Inode{Ino: s.JournalInum, Mode: ModeReg | 0o600, Links: 1, Offset: s.Offset + sbJnlBlocks}
	in.Size = uint64(s.JnlBlocks[15])<<32 | uint64(s.JnlBlocks[16])
	for i := 0; i < 15; i++ {
		binary.LittleEndian.PutUint32(in.Block[4*i:], s.JnlBlocks[i])
	}
	if binary.LittleEndian.Uint16(in.Block[:]) == extentMagic {
		in.Flags |= FlagExtents
	}
	return in
}

func (s *Superblock) has64Bit() bool        { return s.FeatureIncompat&Incompat64Bit != 0 }
func (s *Superblock) hasMetadataCsum() bool { return s.FeatureROCompat&ROCompatMetadataCsum != 0 }
func (s *Superblock) hasGdtCsum() bool      { return s.FeatureROCompat&ROCompatGdtCsum != 0 }
func (s *Superblock) hasFiletype() bool     { return s.FeatureIncompat&IncompatFiletype != 0 }
func (s *Superblock) hasSparseSuper() bool  { return s.FeatureROCompat&ROCompatSparseSuper != 0 }
func (s *Superblock) hasHugeFile() bool     { return s.FeatureROCompat&ROCompatHugeFile != 0 }

// cstring returns b up to its first NUL.
func cstring(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func unixHi(lo uint32, hi uint8) time.Time {
	if lo == 0 && hi == 0 {
		return time.Time{}
	}
	return time.Unix(int64(lo)|int64(hi)<<32, 0).UTC()
}

// parseSuperblock decodes and sanity-checks a 1024-byte superblock read at
// off. The checks bound everything later code derives from it.
func parseSuperblock(b []byte, off int64, volSize int64) (*Superblock, error) {
	le := binary.LittleEndian
	if len(b) < superblockSize {
		return nil, corrupt(0, off, "superblock", "short read (%d bytes)", len(b))
	}
	if m := le.Uint16(b[sbMagic:]); m != superMagic {
		return nil, corrupt(0, off+sbMagic, "superblock", "bad magic %#04x (want %#04x)", m, superMagic)
	}
	s := &Superblock{Offset: off}
	s.InodesCount = le.Uint32(b[sbInodesCount:])
	s.FeatureCompat = le.Uint32(b[sbFeatureCompat:])
	s.FeatureIncompat = le.Uint32(b[sbFeatureIncompat:])
	s.FeatureROCompat = le.Uint32(b[sbFeatureROCompat:])
	s.BlocksCount = uint64(le.Uint32(b[sbBlocksCountLo:]))
	s.RBlocksCount = uint64(le.Uint32(b[sbRBlocksCountLo:]))
	s.FreeBlocksCount = uint64(le.Uint32(b[sbFreeBlocksLo:]))
	if s.has64Bit() {
		s.BlocksCount |= uint64(le.Uint32(b[sbBlocksCountHi:])) << 32
		s.RBlocksCount |= uint64(le.Uint32(b[sbRBlocksCountHi:])) << 32
		s.FreeBlocksCount |= uint64(le.Uint32(b[sbFreeBlocksHi:])) << 32
	}
	s.FreeInodesCount = le.Uint32(b[sbFreeInodes:])
	s.FirstDataBlock = le.Uint32(b[sbFirstDataBlock:])
	logBS := le.Uint32(b[sbLogBlockSize:])
	if logBS > 6 {
		return nil, corrupt(0, off+sbLogBlockSize, "superblock", "block size 1024<<%d out of range (1 KiB..64 KiB)", logBS)
	}
	s.BlockSize = 1024 << logBS
	logCS := le.Uint32(b[sbLogClusterSize:])
	if s.FeatureROCompat&ROCompatBigalloc != 0 && logCS <= 16 {
		s.ClusterSize = 1024 << logCS
	} else {
		s.ClusterSize = s.BlockSize
	}
	s.BlocksPerGroup = le.Uint32(b[sbBlocksPerGroup:])
	s.InodesPerGroup = le.Uint32(b[sbInodesPerGroup:])
	s.MountCount = le.Uint16(b[sbMntCount:])
	s.MaxMountCount = le.Uint16(b[sbMaxMntCount:])
	s.State = le.Uint16(b[sbState:])
	s.Errors = le.Uint16(b[sbErrors:])
	s.MinorRevLevel = le.Uint16(b[sbMinorRev:])
	s.CreatorOS = le.Uint32(b[sbCreatorOS:])
	s.RevLevel = le.Uint32(b[sbRevLevel:])
	if s.RevLevel == 0 {
		// Revision 0: fixed inode size and first inode, no features.
		s.InodeSize = 128
		s.FirstIno = 11
		s.FeatureCompat, s.FeatureIncompat, s.FeatureROCompat = 0, 0, 0
	} else {
		s.InodeSize = le.Uint16(b[sbInodeSize:])
		s.FirstIno = le.Uint32(b[sbFirstIno:])
	}
	s.BlockGroupNr = le.Uint16(b[sbBlockGroupNr:])
	copy(s.UUID[:], b[sbUUID:])
	s.VolumeName = cstring(b[sbVolumeName : sbVolumeName+16])
	s.LastMounted = cstring(b[sbLastMounted : sbLastMounted+64])
	s.ReservedGDTBlocks = le.Uint16(b[sbReservedGDT:])
	copy(s.JournalUUID[:], b[sbJournalUUID:])
	s.JournalInum = le.Uint32(b[sbJournalInum:])
	s.JournalDev = le.Uint32(b[sbJournalDev:])
	s.LastOrphan = le.Uint32(b[sbLastOrphan:])
	for i := range s.HashSeed {
		s.HashSeed[i] = le.Uint32(b[sbHashSeed+4*i:])
	}
	s.DefHashVersion = b[sbDefHashVersion]
	s.JnlBackupType = b[sbJnlBackupType]
	for i := range s.JnlBlocks {
		s.JnlBlocks[i] = le.Uint32(b[sbJnlBlocks+4*i:])
	}
	s.DescSize = 32
	if s.has64Bit() {
		// s_desc_size 0 with 64bit is read as 32, as e2fsprogs does
		// (EXT2_DESC_SIZE falls back to the minimum).
		if d := le.Uint16(b[sbDescSize:]); d != 0 {
			s.DescSize = d
		}
	}
	s.FirstMetaBg = le.Uint32(b[sbFirstMetaBg:])
	s.MinExtraIsize = le.Uint16(b[sbMinExtraIsize:])
	s.WantExtraIsize = le.Uint16(b[sbWantExtraIsize:])
	s.Flags = le.Uint32(b[sbFlags:])
	s.LogGroupsPerFlex = b[sbLogGroupsPerFlex]
	s.ChecksumType = b[sbChecksumType]
	s.ChecksumSeed = le.Uint32(b[sbChecksumSeed:])
	s.Encoding = le.Uint16(b[sbEncoding:])
	s.UsrQuotaInum = le.Uint32(b[sbUsrQuotaInum:])
	s.GrpQuotaInum = le.Uint32(b[sbGrpQuotaInum:])
	s.PrjQuotaInum = le.Uint32(b[sbPrjQuotaInum:])
	s.OrphanFileInum = le.Uint32(b[sbOrphanFileInum:])
	s.BackupBGs[0] = le.Uint32(b[sbBackupBGs:])
	s.BackupBGs[1] = le.Uint32(b[sbBackupBGs+4:])
	s.Checksum = le.Uint32(b[sbChecksum:])
	s.Created = unixHi(le.Uint32(b[sbMkfsTime:]), b[sbMkfsTimeHi])
	s.Mounted = unixHi(le.Uint32(b[sbMtime:]), b[sbMtimeHi])
	s.Written = unixHi(le.Uint32(b[sbWtime:]), b[sbWtimeHi])
	s.LastChecked = unixHi(le.Uint32(b[sbLastCheck:]), b[sbLastCheckHi])

	if err := s.check(off); err != nil {
		return nil, err
	}
	return s, nil
}

// check is the superblock's sanity check (off: its byte offset, for the
// errors): everything the reader does later is bounded by these numbers.
// A first inode below 11 is raised to 11, as e2fsprogs does.
func (s *Superblock) check(off int64) error {
	bad := func(field int, format string, args ...any) error {
		return corrupt(0, off+int64(field), "superblock", format, args...)
	}
	switch {
	case s.BlocksCount == 0:
		return bad(sbBlocksCountLo, "block count is 0")
	case s.BlocksPerGroup == 0 || s.BlocksPerGroup > 8*s.BlockSize*(s.ClusterSize/s.BlockSize):
		return bad(sbBlocksPerGroup, "blocks per group %d out of range", s.BlocksPerGroup)
	case s.InodesPerGroup == 0 || s.InodesPerGroup > 8*s.BlockSize:
		return bad(sbInodesPerGroup, "inodes per group %d out of range", s.InodesPerGroup)
	case s.InodeSize < 128 || s.InodeSize > uint16(min(s.BlockSize, 1<<15)) || s.InodeSize&(s.InodeSize-1) != 0:
		return bad(sbInodeSize, "inode size %d invalid", s.InodeSize)
	case s.FirstDataBlock >= uint32(min(s.BlocksCount, 1<<32-1)):
		return bad(sbFirstDataBlock, "first data block %d beyond block count %d", s.FirstDataBlock, s.BlocksCount)
	case s.DescSize < 32 || s.DescSize > 1024 || s.DescSize&(s.DescSize-1) != 0:
		return bad(sbDescSize, "group descriptor size %d invalid", s.DescSize)
	case s.BlocksCount > uint64(1)<<48 || s.BlocksCount > (uint64(1)<<62)/uint64(s.BlockSize):
		return bad(sbBlocksCountLo, "block count %d too large", s.BlocksCount)
	}
	groups := s.groupCount()
	if uint64(s.InodesCount) > groups*uint64(s.InodesPerGroup) {
		return bad(sbInodesCount, "inode count %d exceeds %d groups x %d", s.InodesCount, groups, s.InodesPerGroup)
	}
	if s.FirstIno < 11 && s.RevLevel > 0 {
		s.FirstIno = 11
	}
	return nil
}

// groupCount is the number of block groups.
func (s *Superblock) groupCount() uint64 {
	return (s.BlocksCount - uint64(s.FirstDataBlock) + uint64(s.BlocksPerGroup) - 1) / uint64(s.BlocksPerGroup)
}

// verifyChecksum checks s_checksum: crc32c(~0, superblock[0:0x3FC]).
func superblockChecksum(b []byte) uint32 { return crc32c(^uint32(0), b[:sbChecksum]) }

func (s *Superblock) hasExtents() bool { return s.FeatureIncompat&IncompatExtents != 0 }
