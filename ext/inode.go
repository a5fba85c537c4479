package ext

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"time"

	"github.com/imgtool/imgtool/internal/zero"
)

// Inode layout (struct ext4_inode). The first 128 bytes are the classic
// ext2 inode; larger inodes continue with i_extra_isize bytes of extra
// fields, then in-inode extended attributes.
const (
	inMode        = 0x00
	inUIDLo       = 0x02
	inSizeLo      = 0x04
	inAtime       = 0x08
	inCtime       = 0x0C
	inMtime       = 0x10
	inDtime       = 0x14
	inGIDLo       = 0x18
	inLinks       = 0x1A
	inBlocksLo    = 0x1C // in 512-byte units, or fs blocks with FlagHugeFile
	inFlags       = 0x20
	inVersionLo   = 0x24
	inBlock       = 0x28 // i_block[15]: block map, extent tree root, symlink or inline data
	inGeneration  = 0x64
	inFileACLLo   = 0x68
	inSizeHi      = 0x6C
	inBlocksHi    = 0x74 // u16
	inFileACLHi   = 0x76 // u16
	inUIDHi       = 0x78 // u16
	inGIDHi       = 0x7A // u16
	inChecksumLo  = 0x7C // u16
	inExtraIsize  = 0x80 // u16, first of the extra fields
	inChecksumHi  = 0x82 // u16
	inCtimeExtra  = 0x84
	inMtimeExtra  = 0x88
	inAtimeExtra  = 0x8C
	inCrtime      = 0x90
	inCrtimeExtra = 0x94
	inVersionHi   = 0x98
	inProjID      = 0x9C

	goodOldInodeSize = 128
	iBlockSize       = 60 // bytes in i_block
)

// Inode flags (i_flags).
const (
	FlagSecRm       = 0x1
	FlagUnrm        = 0x2
	FlagCompr       = 0x4
	FlagSync        = 0x8
	FlagImmutable   = 0x10
	FlagAppend      = 0x20
	FlagNodump      = 0x40
	FlagNoatime     = 0x80
	FlagEncrypt     = 0x800  // fscrypt-encrypted inode
	FlagIndex       = 0x1000 // htree-indexed directory
	FlagJournalData = 0x4000
	FlagHugeFile    = 0x40000 // i_blocks counts fs blocks, not sectors
	FlagExtents     = 0x80000 // i_block holds an extent tree
	FlagVerity      = 0x100000
	FlagEAInode     = 0x200000 // this inode stores an xattr value
	FlagInlineData  = 0x10000000
	FlagProjInherit = 0x20000000
	FlagCasefold    = 0x40000000
)

// File type bits of i_mode (as in stat(2)).
const (
	ModeFIFO    = 0x1000
	ModeChar    = 0x2000
	ModeDir     = 0x4000
	ModeBlock   = 0x6000
	ModeReg     = 0x8000
	ModeSymlink = 0xA000
	ModeSocket  = 0xC000
	ModeType    = 0xF000
)

// Well-known inode numbers.
const (
	RootIno    = 2
	JournalIno = 8
)

// Inode is a decoded inode.
type Inode struct {
	Ino        uint32
	Mode       uint16 // raw i_mode: type bits (Mode*) and permission bits
	UID, GID   uint32 // 32-bit ids (low 16 bits plus the high halves)
	Size       uint64 // i_size_lo | i_size_high<<32
	Links      uint16
	Blocks     uint64 // allocated space in 512-byte units (as stat's st_blocks)
	Flags      uint32 // Flag*
	Generation uint32
	FileACL    uint64 // block of the external xattr block, or 0
	Version    uint64
	ProjID     uint32
	ExtraIsize uint16 // bytes of extra fields past the first 128

	// Times. Atime, Mtime and Ctime carry nanoseconds and the extra epoch
	// bits (dates past 2038) when the inode is large enough; Crtime (birth
	// time) exists only then (HasCrtime).
	Atime, Mtime, Ctime, Crtime time.Time
	HasCrtime                   bool
	Dtime                       uint32 // deletion time (seconds), for salvage

	// Block is the raw i_block area: block pointers, an extent tree root,
	// a fast symlink's target or the first 60 bytes of inline data.
	Block [iBlockSize]byte

	// Offset is the byte offset of the inode on the volume.
	Offset int64

	raw []byte // the whole on-disk inode (s_inode_size bytes)
}

// Raw returns a copy of the on-disk inode (s_inode_size bytes), for
// salvage and dump tools that need fields not decoded here.
func (in *Inode) Raw() []byte { return append([]byte(nil), in.raw...) }

// Type returns the file type bits of Mode (ModeDir, ModeReg, ...).
func (in *Inode) Type() uint16 { return in.Mode & ModeType }

// IsDir, IsRegular and IsSymlink test the type bits.
func (in *Inode) IsDir() bool     { return in.Type() == ModeDir }
func (in *Inode) IsRegular() bool { return in.Type() == ModeReg }
func (in *Inode) IsSymlink() bool { return in.Type() == ModeSymlink }

// Rdev returns the major and minor device numbers of a character or block
// device inode (old and new encodings, as the kernel stores them in i_block).
func (in *Inode) Rdev() (major, minor uint32) {
	le := binary.LittleEndian
	if old := le.Uint32(in.Block[0:]); old != 0 {
		return (old >> 8) & 0xff, old & 0xff
	}
	n := le.Uint32(in.Block[4:])
	return (n & 0xfff00) >> 8, (n & 0xff) | ((n >> 12) & 0xfff00)
}

// FileMode converts Mode to an io/fs FileMode.
func (in *Inode) FileMode() fs.FileMode {
	m := fs.FileMode(in.Mode & 0o777)
	if in.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if in.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if in.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch in.Type() {
	case ModeDir:
		m |= fs.ModeDir
	case ModeSymlink:
		m |= fs.ModeSymlink
	case ModeFIFO:
		m |= fs.ModeNamedPipe
	case ModeChar:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case ModeBlock:
		m |= fs.ModeDevice
	case ModeSocket:
		m |= fs.ModeSocket
	case ModeReg:
	default:
		m |= fs.ModeIrregular
	}
	return m
}

// inodeTime decodes a 32-bit seconds field and its optional extra field:
// the low 2 bits of extra extend the (signed) seconds past 2038, the upper
// 30 bits are nanoseconds.
func inodeTime(sec uint32, extra uint32, hasExtra bool) time.Time {
	s := int64(int32(sec))
	var ns int64
	if hasExtra {
		s += int64(extra&3) << 32
		ns = int64(extra >> 2)
		if ns > 999999999 {
			ns = 999999999
		}
	}
	return time.Unix(s, ns).UTC()
}

// inodeOffset returns the byte offset of inode ino on the volume.
func (fsys *FS) inodeOffset(ino uint32) (int64, error) {
	sb := fsys.sb
	if ino == 0 || ino > sb.InodesCount {
		return 0, fmt.Errorf("ext: inode %d out of range (1..%d): %w", ino, sb.InodesCount, fs.ErrNotExist)
	}
	g := uint64(ino-1) / uint64(sb.InodesPerGroup)
	idx := uint64(ino-1) % uint64(sb.InodesPerGroup)
	if g >= uint64(len(fsys.groups)) {
		return 0, corrupt(ino, -1, "inode", "group %d beyond the %d groups", g, len(fsys.groups))
	}
	gd := &fsys.groups[g]
	off := int64(gd.InodeTable)*fsys.bs + int64(idx)*int64(sb.InodeSize)
	if gd.InodeTable >= sb.BlocksCount || off+int64(sb.InodeSize) > fsys.size {
		return 0, corrupt(ino, gd.Offset, "group descriptor", "inode table block %d of group %d outside the volume", gd.InodeTable, g)
	}
	return off, nil
}

// Inode reads and decodes inode ino. With metadata_csum the inode checksum is
// verified; a mismatch is recorded as a Note and the inode is returned.
func (fsys *FS) Inode(ino uint32) (*Inode, error) {
	off, err := fsys.inodeOffset(ino)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, fsys.sb.InodeSize)
	if err := fsys.readInodeBytes(raw, off); err != nil {
		return nil, fmt.Errorf("ext: inode %d at offset %#x: %w", ino, off, err)
	}
	in, err := fsys.parseInode(ino, off, raw)
	if err != nil {
		return nil, err
	}
	return in, nil
}

// Inodes are read through a small cache of inode-table chunks: a directory's
// entries usually sit close together in the table, so one ReadAt serves
// many inodes.
const (
	itChunk      = 16 << 10 // bytes per cached chunk
	itCacheLimit = 64       // chunks kept (1 MiB)
)

func (fsys *FS) readInodeBytes(raw []byte, off int64) error {
	base := off &^ (itChunk - 1)
	if off+int64(len(raw)) > base+itChunk {
		return fsys.readFull(raw, off) // straddles chunks (cannot happen for power-of-two inode sizes)
	}
	// Copies out of cached chunks happen under the lock: evicted chunks
	// are reused (a walk of 10,000 directories spread over the groups
	// allocated a fresh 16 KiB chunk for nearly every one).
	fsys.itMu.Lock()
	if chunk, ok := fsys.itCache[base]; ok && off-base+int64(len(raw)) <= int64(len(chunk)) {
		copy(raw, chunk[off-base:])
		fsys.itMu.Unlock()
		return nil
	}
	var chunk []byte
	if k := len(fsys.itFree); k > 0 {
		chunk, fsys.itFree = fsys.itFree[k-1], fsys.itFree[:k-1]
	}
	fsys.itMu.Unlock()
	n := min(int64(itChunk), fsys.size-base)
	if n <= 0 || off-base+int64(len(raw)) > n {
		return fsys.readFull(raw, off)
	}
	if chunk == nil {
		chunk = make([]byte, itChunk)
	}
	chunk = chunk[:n]
	if err := fsys.readFull(chunk, base); err != nil {
		return fsys.readFull(raw, off)
	}
	copy(raw, chunk[off-base:])
	fsys.itMu.Lock()
	if fsys.itCache == nil || len(fsys.itCache) >= itCacheLimit {
		for _, c := range fsys.itCache {
			fsys.itFree = append(fsys.itFree, c[:cap(c)])
		}
		fsys.itCache = make(map[int64][]byte, itCacheLimit)
	}
	fsys.itCache[base] = chunk
	fsys.itMu.Unlock()
	return nil
}

func (fsys *FS) parseInode(ino uint32, off int64, raw []byte) (*Inode, error) {
	in := &Inode{}
	fsys.decodeInode(in, ino, off, raw, nil)
	return in, nil
}

// decodeInode fills in from the on-disk inode raw (which in keeps: a scan
// that reuses its buffer must not keep in past the next inode). What it
// notices is recorded as a Note, or appended to *held when held is not nil
// (a parallel scan records them later, in inode order).
func (fsys *FS) decodeInode(in *Inode, ino uint32, off int64, raw []byte, held *[]Note) {
	note := func(ino uint32, off int64, msg string, err error) {
		if held != nil {
			*held = append(*held, Note{Ino: ino, Offset: off, Msg: msg, Err: err})
			return
		}
		fsys.note(ino, off, msg, err)
	}
	le := binary.LittleEndian
	sb := fsys.sb
	*in = Inode{Ino: ino, Offset: off, raw: raw}
	in.Mode = le.Uint16(raw[inMode:])
	in.UID = uint32(le.Uint16(raw[inUIDLo:])) | uint32(le.Uint16(raw[inUIDHi:]))<<16
	in.GID = uint32(le.Uint16(raw[inGIDLo:])) | uint32(le.Uint16(raw[inGIDHi:]))<<16
	in.Size = uint64(le.Uint32(raw[inSizeLo:])) | uint64(le.Uint32(raw[inSizeHi:]))<<32
	in.Links = le.Uint16(raw[inLinks:])
	in.Flags = le.Uint32(raw[inFlags:])
	in.Generation = le.Uint32(raw[inGeneration:])
	in.FileACL = uint64(le.Uint32(raw[inFileACLLo:]))
	if sb.has64Bit() {
		in.FileACL |= uint64(le.Uint16(raw[inFileACLHi:])) << 32
	}
	in.Version = uint64(le.Uint32(raw[inVersionLo:]))
	in.Dtime = le.Uint32(raw[inDtime:])
	copy(in.Block[:], raw[inBlock:inBlock+iBlockSize])

	blocks := uint64(le.Uint32(raw[inBlocksLo:]))
	if sb.hasHugeFile() {
		blocks |= uint64(le.Uint16(raw[inBlocksHi:])) << 32
		if in.Flags&FlagHugeFile != 0 {
			blocks *= uint64(fsys.bs / 512)
		}
	}
	in.Blocks = blocks

	// Extra fields: present when 128 + i_extra_isize covers them (end is
	// where they stop; a plain int, not a closure, so nothing escapes).
	end := 0
	if len(raw) > goodOldInodeSize {
		in.ExtraIsize = le.Uint16(raw[inExtraIsize:])
		if int(in.ExtraIsize) > len(raw)-goodOldInodeSize || in.ExtraIsize&3 != 0 {
			note(ino, off+inExtraIsize, fmt.Sprintf("i_extra_isize %d invalid for %d-byte inodes; extra fields ignored", in.ExtraIsize, len(raw)), nil)
			in.ExtraIsize = 0
		}
		end = goodOldInodeSize + int(in.ExtraIsize)
	}
	has := func(field, size int) bool { return field+size <= end }
	in.Atime = inodeTime(le.Uint32(raw[inAtime:]), extra(raw, inAtimeExtra, end), has(inAtimeExtra, 4))
	in.Mtime = inodeTime(le.Uint32(raw[inMtime:]), extra(raw, inMtimeExtra, end), has(inMtimeExtra, 4))
	in.Ctime = inodeTime(le.Uint32(raw[inCtime:]), extra(raw, inCtimeExtra, end), has(inCtimeExtra, 4))
	if has(inCrtime, 4) {
		in.HasCrtime = true
		in.Crtime = inodeTime(le.Uint32(raw[inCrtime:]), extra(raw, inCrtimeExtra, end), has(inCrtimeExtra, 4))
	}
	if has(inVersionHi, 4) {
		in.Version |= uint64(le.Uint32(raw[inVersionHi:])) << 32
	}
	if has(inProjID, 4) {
		in.ProjID = le.Uint32(raw[inProjID:])
	}

	if sb.hasMetadataCsum() {
		stored, computed := fsys.inodeChecksum(ino, raw, in.Generation, has(inChecksumHi, 2))
		if stored != computed && !zero.Is(raw) {
			note(ino, off, "", &ChecksumError{Ino: ino, Offset: off, What: "inode", Stored: stored, Computed: computed})
		}
	}
}

// extra reads a 32-bit extra field when the extra area (ending at end)
// covers it, else 0.
func extra(raw []byte, field, end int) uint32 {
	if field+4 > end {
		return 0
	}
	return binary.LittleEndian.Uint32(raw[field:])
}

// inodeSeed is the per-inode checksum seed: crc32c(fs seed, le32 ino,
// le32 generation). Extent blocks and the inode itself use it.
func (fsys *FS) inodeSeed(ino, gen uint32) uint32 {
	return crc32cU32(crc32cU32(fsys.csumSeed, ino), gen)
}

// inodeChecksum returns the stored and the computed checksum of an inode:
// crc32c(inode seed, inode with both checksum fields zeroed), 32 bits when
// the inode has i_checksum_hi, else the low 16 bits.
func (fsys *FS) inodeChecksum(ino uint32, raw []byte, gen uint32, hasHi bool) (stored, computed uint32) {
	le := binary.LittleEndian
	stored = uint32(le.Uint16(raw[inChecksumLo:]))
	if hasHi {
		stored |= uint32(le.Uint16(raw[inChecksumHi:])) << 16
	}
	c := fsys.inodeSeed(ino, gen)
	c = crc32c(c, raw[:inChecksumLo])
	c = crc32cZero2(c)
	c = crc32c(c, raw[inChecksumLo+2:goodOldInodeSize])
	if len(raw) > goodOldInodeSize {
		c = crc32c(c, raw[goodOldInodeSize:inChecksumHi])
		if hasHi {
			c = crc32cZero2(c)
			c = crc32c(c, raw[inChecksumHi+2:])
		} else {
			c = crc32c(c, raw[inChecksumHi:])
		}
	}
	if !hasHi {
		c &= 0xFFFF
	}
	return stored, c
}

// VerifyInode checks in's metadata_csum checksum: checked is false when the
// filesystem has no inode checksums, ok whether the stored one matches. A
// salvage scan uses it to tell a live inode from stale bytes in an inode
// table.
func (fsys *FS) VerifyInode(in *Inode) (ok, checked bool) {
	if !fsys.sb.hasMetadataCsum() || len(in.raw) < goodOldInodeSize {
		return false, false
	}
	hasHi := len(in.raw) > goodOldInodeSize && goodOldInodeSize+int(in.ExtraIsize) >= inChecksumHi+2
	stored, computed := fsys.inodeChecksum(in.Ino, in.raw, in.Generation, hasHi)
	return stored == computed, true
}

// InodeBitmap returns the inode bitmap block of group g (bit i set: inode
// g*InodesPerGroup+i+1 in use), read from where the group's descriptor
// says. With GroupInodeUninit the bitmap is not initialised and nil is
// returned.
func (fsys *FS) InodeBitmap(g uint64) ([]byte, error) {
	if g >= uint64(len(fsys.groups)) {
		return nil, fmt.Errorf("ext: group %d out of range (%d groups)", g, len(fsys.groups))
	}
	gd := &fsys.groups[g]
	if gd.Flags&GroupInodeUninit != 0 && (fsys.sb.hasGdtCsum() || fsys.sb.hasMetadataCsum()) {
		return nil, nil
	}
	b := make([]byte, fsys.bs)
	if err := fsys.readBlock(0, "inode bitmap", gd.InodeBitmap, b); err != nil {
		return nil, err
	}
	return b, nil
}
