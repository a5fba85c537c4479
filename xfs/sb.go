package xfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
)

var be = binary.BigEndian

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crcOK checks a v5 metadata checksum: CRC32C of buf with the 4-byte
// little-endian field at off taken as zero.
func crcOK(buf []byte, off int) bool {
	if off+4 > len(buf) {
		return false
	}
	return binary.LittleEndian.Uint32(buf[off:]) == crcOf(buf, off)
}

func crcOf(buf []byte, off int) uint32 {
	c := crc32.Update(0, castagnoli, buf[:off])
	c = crc32.Update(c, castagnoli, []byte{0, 0, 0, 0})
	return crc32.Update(c, castagnoli, buf[off+4:])
}

// Superblock fields (xfs_format.h, struct xfs_dsb), big-endian.
const (
	sbMagic = 0x58465342 // "XFSB"

	sbVersionNumMask = 0x000f
	sbVersionAttr    = 0x0010
	sbVersionNlink   = 0x0020
	sbVersionAlign   = 0x0080
	sbVersionLogV2   = 0x0400
	sbVersionSector  = 0x0800
	sbVersionExtflg  = 0x1000
	sbVersionDirV2   = 0x2000
	sbVersionMoreBit = 0x8000

	sbF2Lazy    = 0x0002
	sbF2Attr2   = 0x0008
	sbF2Parent  = 0x0010
	sbF2Projid  = 0x0080
	sbF2CRC     = 0x0100
	sbF2Ftype   = 0x0200
	sbRoFinobt  = 0x1
	sbRoRmap    = 0x2
	sbRoReflink = 0x4
	sbRoInobtCt = 0x8

	sbInFtype      = 0x01
	sbInSpinodes   = 0x02
	sbInMetaUUID   = 0x04
	sbInBigtime    = 0x08
	sbInNeedsRepar = 0x10
	sbInNrext64    = 0x20
	sbInExchrange  = 0x40
	sbInParent     = 0x80
	sbInMetadir    = 0x100
	sbInKnown      = 0x1ff

	sbCRCOff = 224
)

// Superblock is the parsed primary (or secondary) superblock.
type Superblock struct {
	BlockSize   uint32
	DBlocks     uint64
	RBlocks     uint64
	UUID        [16]byte
	MetaUUID    [16]byte
	LogStart    uint64
	RootIno     uint64
	RbmIno      uint64
	RsumIno     uint64
	AGBlocks    uint32
	AGCount     uint32
	LogBlocks   uint32
	VersionNum  uint16
	SectSize    uint16
	InodeSize   uint16
	InoPBlock   uint16
	FName       string
	BlockLog    uint8
	SectLog     uint8
	InodeLog    uint8
	InoPBLog    uint8
	AGBlkLog    uint8
	InProgress  uint8
	ICount      uint64
	IFree       uint64
	UQuotIno    uint64
	GQuotIno    uint64
	PQuotIno    uint64
	InoAlignMt  uint32
	DirBlkLog   uint8
	LogSectLog  uint8
	LogSectSize uint16
	LogSUnit    uint32
	Features2   uint32
	Compat      uint32
	RoCompat    uint32
	Incompat    uint32
	LogIncompat uint32
	SpinoAlign  uint32
	LSN         uint64
}

// Version is 4 or 5.
func (s *Superblock) Version() int { return int(s.VersionNum & sbVersionNumMask) }

// HasCRC reports a v5 filesystem (metadata checksums, self-describing blocks).
func (s *Superblock) HasCRC() bool { return s.Version() == 5 }

// HasFtype reports directory entries that carry the file type.
func (s *Superblock) HasFtype() bool {
	if s.HasCRC() {
		return s.Incompat&sbInFtype != 0
	}
	return s.VersionNum&sbVersionMoreBit != 0 && s.Features2&sbF2Ftype != 0
}

func (s *Superblock) hasBigtime() bool { return s.HasCRC() && s.Incompat&sbInBigtime != 0 }
func (s *Superblock) hasSparse() bool  { return s.HasCRC() && s.Incompat&sbInSpinodes != 0 }
func (s *Superblock) hasNrext64() bool { return s.HasCRC() && s.Incompat&sbInNrext64 != 0 }
func (s *Superblock) hasParent() bool  { return s.HasCRC() && s.Incompat&sbInParent != 0 }

// Features lists the feature names as xfs_info spells them.
func (s *Superblock) Features() []string {
	var f []string
	add := func(c bool, n string) {
		if c {
			f = append(f, n)
		}
	}
	add(s.HasCRC(), "crc")
	add(s.HasFtype(), "ftype")
	add(s.RoCompat&sbRoFinobt != 0, "finobt")
	add(s.hasSparse(), "sparse")
	add(s.RoCompat&sbRoRmap != 0, "rmapbt")
	add(s.RoCompat&sbRoReflink != 0, "reflink")
	add(s.hasBigtime(), "bigtime")
	add(s.RoCompat&sbRoInobtCt != 0, "inobtcount")
	add(s.hasNrext64(), "nrext64")
	add(s.hasParent(), "parent")
	add(s.Incompat&sbInMetadir != 0, "metadir")
	add(s.Incompat&sbInExchrange != 0, "exchange")
	add(s.Incompat&sbInNeedsRepar != 0, "needsrepair")
	return f
}

// dirBlkSize is the directory block size in bytes.
func (s *Superblock) dirBlkSize() int { return int(s.BlockSize) << s.DirBlkLog }

// ParseSuperblock decodes and checks a superblock sector. It returns an
// error when the fields are not a usable geometry; crcBad is set when a v5
// checksum does not match (the fields may still be usable).
func ParseSuperblock(b []byte) (sb *Superblock, crcBad bool, err error) {
	if len(b) < 512 {
		return nil, false, fmt.Errorf("superblock: short read")
	}
	if be.Uint32(b) != sbMagic {
		return nil, false, fmt.Errorf("superblock: bad magic %#x", be.Uint32(b))
	}
	s := &Superblock{
		BlockSize:   be.Uint32(b[4:]),
		DBlocks:     be.Uint64(b[8:]),
		RBlocks:     be.Uint64(b[16:]),
		LogStart:    be.Uint64(b[48:]),
		RootIno:     be.Uint64(b[56:]),
		RbmIno:      be.Uint64(b[64:]),
		RsumIno:     be.Uint64(b[72:]),
		AGBlocks:    be.Uint32(b[84:]),
		AGCount:     be.Uint32(b[88:]),
		LogBlocks:   be.Uint32(b[96:]),
		VersionNum:  be.Uint16(b[100:]),
		SectSize:    be.Uint16(b[102:]),
		InodeSize:   be.Uint16(b[104:]),
		InoPBlock:   be.Uint16(b[106:]),
		FName:       strings.TrimRight(string(bytes.TrimRight(b[108:120], "\x00")), " "),
		BlockLog:    b[120],
		SectLog:     b[121],
		InodeLog:    b[122],
		InoPBLog:    b[123],
		AGBlkLog:    b[124],
		InProgress:  b[126],
		ICount:      be.Uint64(b[128:]),
		IFree:       be.Uint64(b[136:]),
		UQuotIno:    be.Uint64(b[160:]),
		GQuotIno:    be.Uint64(b[168:]),
		InoAlignMt:  be.Uint32(b[180:]),
		DirBlkLog:   b[192],
		LogSectLog:  b[193],
		LogSectSize: be.Uint16(b[194:]),
		LogSUnit:    be.Uint32(b[196:]),
		Features2:   be.Uint32(b[200:]),
	}
	copy(s.UUID[:], b[32:48])
	s.MetaUUID = s.UUID
	v := s.Version()
	if v != 4 && v != 5 {
		return nil, false, fmt.Errorf("superblock: unsupported version %d", v)
	}
	if v == 5 {
		s.Compat = be.Uint32(b[208:])
		s.RoCompat = be.Uint32(b[212:])
		s.Incompat = be.Uint32(b[216:])
		s.LogIncompat = be.Uint32(b[220:])
		s.SpinoAlign = be.Uint32(b[228:])
		s.PQuotIno = be.Uint64(b[232:])
		s.LSN = be.Uint64(b[240:])
		if s.Incompat&sbInMetaUUID != 0 {
			copy(s.MetaUUID[:], b[248:264])
		}
	}
	switch {
	case s.BlockLog < 9 || s.BlockLog > 16 || s.BlockSize != 1<<s.BlockLog:
		return nil, false, fmt.Errorf("superblock: bad block size %d (log %d)", s.BlockSize, s.BlockLog)
	case s.SectLog < 9 || s.SectLog > 15 || uint32(s.SectSize) != 1<<s.SectLog || uint32(s.SectSize) > s.BlockSize:
		return nil, false, fmt.Errorf("superblock: bad sector size %d", s.SectSize)
	case s.InodeLog < 8 || s.InodeLog > 11 || uint32(s.InodeSize) != 1<<s.InodeLog || uint32(s.InodeSize) > s.BlockSize:
		return nil, false, fmt.Errorf("superblock: bad inode size %d", s.InodeSize)
	case v == 5 && s.InodeSize < 512:
		return nil, false, fmt.Errorf("superblock: v5 inode size %d < 512", s.InodeSize)
	case uint32(s.InoPBlock)<<s.InodeLog != s.BlockSize || s.InoPBLog != s.BlockLog-s.InodeLog:
		return nil, false, fmt.Errorf("superblock: inodes per block %d inconsistent", s.InoPBlock)
	case s.AGCount == 0 || s.AGBlocks < 8:
		return nil, false, fmt.Errorf("superblock: bad AG geometry (%d AGs of %d blocks)", s.AGCount, s.AGBlocks)
	case s.AGBlkLog > 31 || uint64(s.AGBlocks) > 1<<s.AGBlkLog || (s.AGBlkLog > 0 && uint64(s.AGBlocks) <= 1<<(s.AGBlkLog-1)):
		return nil, false, fmt.Errorf("superblock: agblklog %d does not fit %d blocks", s.AGBlkLog, s.AGBlocks)
	case s.DBlocks == 0 || s.DBlocks > uint64(s.AGCount)*uint64(s.AGBlocks) || s.DBlocks <= uint64(s.AGCount-1)*uint64(s.AGBlocks):
		return nil, false, fmt.Errorf("superblock: %d blocks do not fit %d AGs of %d", s.DBlocks, s.AGCount, s.AGBlocks)
	case int(s.BlockLog)+int(s.DirBlkLog) > 16:
		return nil, false, fmt.Errorf("superblock: directory block log %d too large", s.DirBlkLog)
	case int(s.AGBlkLog)+int(s.InoPBLog) > 32:
		return nil, false, fmt.Errorf("superblock: inode numbers wider than 64 bits")
	}
	if v == 5 && !crcOK(b[:s.SectSize], sbCRCOff) {
		crcBad = true
	}
	return s, crcBad, nil
}

// UUIDString formats the filesystem UUID as blkid does.
func (s *Superblock) UUIDString() string {
	u := s.UUID
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// crc32Start begins a CRC32C over b with the 4 bytes at off taken as zero;
// crc32Cont continues it. The result is finished with ^.
func crc32Start(b []byte, off int) uint32 {
	c := crc32.Update(0, castagnoli, b[:off])
	c = crc32.Update(c, castagnoli, []byte{0, 0, 0, 0})
	return ^crc32.Update(c, castagnoli, b[off+4:])
}

func crc32Cont(c uint32, b []byte) uint32 { return ^crc32.Update(^c, castagnoli, b) }
