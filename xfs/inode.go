package xfs

import (
	"fmt"
	"time"

	"github.com/imgtool/imgtool/vfs"
)

// Dinode core (xfs_format.h, struct xfs_dinode), big-endian.
const (
	inodeMagic = 0x494e // "IN"

	fmtDev     = 0
	fmtLocal   = 1
	fmtExtents = 2
	fmtBtree   = 3
	fmtUUID    = 4

	dicoreV2Size = 100 // v1/v2 core: the literal area starts here
	dicoreV3Size = 176
	inodeCRCOff  = 100

	diflagRealtime  = 0x0001
	diflagImmutable = 0x0008
	diflagAppend    = 0x0010
	diflagSync      = 0x0020
	diflagNoatime   = 0x0040
	diflagNodump    = 0x0080
	diflagProjinh   = 0x0200

	diflag2Reflink = 0x02
	diflag2Bigtime = 0x08
	diflag2Nrext64 = 0x10

	bigtimeEpochOffset = 1 << 31 // seconds between the bigtime epoch and 1970
)

// Inode is a decoded on-disk inode: the core and the raw fork areas.
type Inode struct {
	Ino       uint64
	Off       int64 // byte offset on the volume
	Mode      uint16
	Version   uint8
	Format    uint8
	AFormat   uint8
	UID, GID  uint32
	Nlink     uint32
	Atime     time.Time
	Mtime     time.Time
	Ctime     time.Time
	Crtime    time.Time
	Size      int64
	NBlocks   uint64
	NExtents  uint64
	ANExtents uint64
	ForkOff   uint8
	Flags     uint16
	Flags2    uint64
	Gen       uint32
	DataFork  []byte
	AttrFork  []byte
	CRCBad    bool
}

func decodeTime(b []byte, big bool) time.Time {
	if big {
		ns := be.Uint64(b)
		sec := int64(ns/1e9) - bigtimeEpochOffset
		return time.Unix(sec, int64(ns%1e9)).UTC()
	}
	return time.Unix(int64(int32(be.Uint32(b))), int64(be.Uint32(b[4:]))).UTC()
}

// parseInode decodes an inode buffer of sb.InodeSize bytes.
func (s *Superblock) parseInode(b []byte, ino uint64) (*Inode, error) {
	if be.Uint16(b) != inodeMagic {
		return nil, fmt.Errorf("bad inode magic %#04x", be.Uint16(b))
	}
	in := &Inode{
		Ino:     ino,
		Mode:    be.Uint16(b[2:]),
		Version: b[4],
		Format:  b[5],
		UID:     be.Uint32(b[8:]),
		GID:     be.Uint32(b[12:]),
		Size:    int64(be.Uint64(b[56:])),
		NBlocks: be.Uint64(b[64:]),
		ForkOff: b[82],
		AFormat: b[83],
		Flags:   be.Uint16(b[90:]),
		Gen:     be.Uint32(b[92:]),
	}
	lit := dicoreV2Size
	switch in.Version {
	case 1:
		in.Nlink = uint32(be.Uint16(b[6:]))
	case 2:
		in.Nlink = be.Uint32(b[16:])
	case 3:
		if !s.HasCRC() {
			return nil, fmt.Errorf("v3 inode on a v4 filesystem")
		}
		in.Nlink = be.Uint32(b[16:])
		lit = dicoreV3Size
		in.Flags2 = be.Uint64(b[120:])
		if !crcOK(b, inodeCRCOff) {
			in.CRCBad = true
		}
		if got := be.Uint64(b[152:]); got != ino {
			return nil, fmt.Errorf("inode records number %d", got)
		}
	default:
		return nil, fmt.Errorf("bad inode version %d", in.Version)
	}
	if s.HasCRC() && in.Version != 3 {
		return nil, fmt.Errorf("v%d inode on a v5 filesystem", in.Version)
	}
	big := in.Flags2&diflag2Bigtime != 0
	in.Atime = decodeTime(b[32:], big)
	in.Mtime = decodeTime(b[40:], big)
	in.Ctime = decodeTime(b[48:], big)
	if in.Version == 3 {
		in.Crtime = decodeTime(b[144:], big)
	}
	if in.Flags2&diflag2Nrext64 != 0 {
		in.NExtents = be.Uint64(b[24:])
		in.ANExtents = uint64(be.Uint32(b[76:]))
	} else {
		in.NExtents = uint64(be.Uint32(b[76:]))
		in.ANExtents = uint64(be.Uint16(b[80:]))
	}
	if in.Size < 0 {
		return nil, fmt.Errorf("negative size %d", in.Size)
	}
	litEnd := len(b)
	dEnd := litEnd
	if in.ForkOff != 0 {
		aStart := lit + int(in.ForkOff)*8
		if aStart >= litEnd {
			return nil, fmt.Errorf("attr fork offset %d beyond the inode", in.ForkOff)
		}
		dEnd = aStart
		in.AttrFork = b[aStart:litEnd]
	} else if in.AFormat != fmtExtents && in.AFormat != 0 {
		// No attr fork: aformat should be extents with no extents.
		in.AFormat = 0
	}
	in.DataFork = b[lit:dEnd]
	return in, nil
}

func (in *Inode) typ() uint32 { return uint32(in.Mode) & vfs.ModeType }

// stat converts to vfs.Stat.
func (in *Inode) stat(s *Superblock) *vfs.Stat {
	st := &vfs.Stat{
		Ino:        vfs.Ino(in.Ino),
		Mode:       uint32(in.Mode),
		Nlink:      in.Nlink,
		UID:        in.UID,
		GID:        in.GID,
		Size:       in.Size,
		Blocks:     int64(in.NBlocks) << (s.BlockLog - 9),
		Atime:      in.Atime,
		Mtime:      in.Mtime,
		Ctime:      in.Ctime,
		Btime:      in.Crtime,
		Generation: in.Gen,
	}
	if in.Version == 3 {
		st.Btime = in.Crtime
	} else {
		st.Btime = time.Time{}
	}
	if st.IsDir() {
		// The kernel reports a directory's size as di_size.
	}
	if in.Format == fmtDev && len(in.DataFork) >= 4 {
		dev := be.Uint32(in.DataFork)
		st.RdevMajor = dev >> 18
		st.RdevMinor = dev & 0x3ffff
	}
	f := uint32(0)
	if in.Flags&diflagImmutable != 0 {
		f |= vfs.FlagImmutable
	}
	if in.Flags&diflagAppend != 0 {
		f |= vfs.FlagAppend
	}
	if in.Flags&diflagSync != 0 {
		f |= vfs.FlagSync
	}
	if in.Flags&diflagNoatime != 0 {
		f |= vfs.FlagNoatime
	}
	if in.Flags&diflagNodump != 0 {
		f |= vfs.FlagNodump
	}
	if in.Flags&diflagProjinh != 0 {
		f |= vfs.FlagProjinher
	}
	st.Flags = f
	return st
}
