package dump

import (
	"encoding/binary"
	"time"
)

// Sizes and magic numbers of the dump format (protocols/dumprestore.h).
const (
	// TPBSize (TP_BSIZE) is the size of every record on the tape: headers,
	// data blocks and bitmap blocks are all 1024 bytes.
	TPBSize = 1024
	// TPNIndir (TP_NINDIR) is the number of c_addr slots in a header: one
	// TS_INODE or TS_ADDR header describes at most 512 data records.
	TPNIndir = TPBSize / 2
	// NTRec is dump's default number of records per tape block (-b 10).
	// Streams are padded with TS_END records to a multiple of it, because
	// restore reads whole tape blocks.
	NTRec = 10
	// LblSize and NameLen are the sizes of the text fields of a header.
	LblSize = 16
	NameLen = 64

	// OFSMagic marks old-format (pre-4.4BSD) tapes, which we do not read.
	OFSMagic = 60011
	// NFSMagic is c_magic of every header of a new-format tape.
	NFSMagic = 60012
	// Checksum is what the 256 little-endian 32-bit words of a header must
	// add up to (with wrap-around) once c_checksum is filled in.
	Checksum = 84446

	// RootIno is the root directory's inode number. restore assumes it.
	RootIno = 2

	// DirBlkSiz (DIRBLKSIZ) is the directory block size restore parses:
	// no directory entry may cross a 512-byte boundary.
	DirBlkSiz = 512
)

// Record types (c_type).
const (
	TSTape  = 1 // TS_TAPE: volume header, first record of the stream
	TSInode = 2 // TS_INODE: start of a file (and of an extended-attribute record)
	TSBits  = 3 // TS_BITS: bitmap of the inodes dumped on this tape
	TSAddr  = 4 // TS_ADDR: continuation header of a file with more than 512 records
	TSEnd   = 5 // TS_END: end of the dump
	TSClri  = 6 // TS_CLRI: bitmap of inodes in use (restore -r deletes the others)
)

// Header flags (c_flags).
const (
	DRNewHeader     = 0x0001 // new format tape header (set on TS_TAPE)
	DRNewInodeFmt   = 0x0002 // new (4.4BSD) dinode format; set on every header
	DRCompressed    = 0x0080 // dump -z: compressed tape blocks (not supported)
	DRMetaOnly      = 0x0100 // only the inode's metadata was dumped
	DRExtAttributes = 0x8000 // this TS_INODE carries extended attributes
)

// c_extattributes values.
const (
	ExtRegular = 0
	ExtXattr   = 3 // EA record: data is an ext2 xattr block or in-inode EA area
)

// Unix file types as stored in di_mode (the S_IFMT bits).
const (
	ModeFmt  = 0o170000
	ModeSock = 0o140000
	ModeLink = 0o120000
	ModeReg  = 0o100000
	ModeBlk  = 0o060000
	ModeDir  = 0o040000
	ModeChr  = 0o020000
	ModeFifo = 0o010000
)

// BSD directory entry types (d_type).
const (
	DTUnknown = 0
	DTFifo    = 1
	DTChr     = 2
	DTDir     = 4
	DTBlk     = 6
	DTReg     = 8
	DTLnk     = 10
	DTSock    = 12
)

// DTFromMode returns the d_type for a mode's S_IFMT bits.
func DTFromMode(mode uint32) uint8 {
	switch mode & ModeFmt {
	case ModeFifo:
		return DTFifo
	case ModeChr:
		return DTChr
	case ModeDir:
		return DTDir
	case ModeBlk:
		return DTBlk
	case ModeReg:
		return DTReg
	case ModeLink:
		return DTLnk
	case ModeSock:
		return DTSock
	}
	return DTUnknown
}

// Byte offsets of the fields of struct s_spcl (little endian, 1024 bytes).
const (
	offType       = 0
	offDate       = 4
	offDDate      = 8
	offVolume     = 12
	offTapeA      = 16
	offInumber    = 20
	offMagic      = 24
	offChecksum   = 28
	offDinode     = 32 // struct new_bsd_inode, 128 bytes
	offCount      = 160
	offAddr       = 164 // c_addr[TP_NINDIR]
	offLabel      = 676
	offLevel      = 692
	offFilesys    = 696
	offDev        = 760
	offHost       = 824
	offFlags      = 888
	offFirstRec   = 892
	offNTRec      = 896
	offExtAttr    = 900
	offSpare      = 904 // c_spare[30]
	dinodeSize    = 128
	maxNameLength = 255
)

// Byte offsets within struct new_bsd_inode (the c_dinode copy).
const (
	diMode   = 0   // u16
	diNlink  = 2   // s16
	diOUID   = 4   // u16 old (16-bit) uid
	diOGID   = 6   // u16 old gid
	diSize   = 8   // u64
	diAtime  = 16  // u32 seconds, u32 microseconds
	diMtime  = 24  // same
	diCtime  = 32  // same
	diDB     = 40  // u32 di_db[12]: dump copies ext2 i_block here (rdev, fast symlink)
	diIB     = 88  // u32 di_ib[3]
	diFlags  = 100 // u32 ext2 inode flags
	diBlocks = 104 // s32 512-byte sectors
	diGen    = 108 // s32 generation
	diUID    = 112 // u32
	diGID    = 116 // u32
)

// Dinode is the inode copy a header carries (struct new_bsd_inode).
type Dinode struct {
	Mode       uint16
	Nlink      int16
	Size       uint64
	Atime      time.Time // second + microsecond precision on tape
	Mtime      time.Time
	Ctime      time.Time
	DB         [12]uint32 // di_db: raw ext2 i_block words (device number, fast symlink text)
	IB         [3]uint32
	Flags      uint32
	Blocks     int32
	Generation uint32
	UID        uint32
	GID        uint32
}

// Header is one dump header record (struct s_spcl), decoded.
type Header struct {
	Type          int32
	Date          uint32 // c_date: this dump, Unix seconds
	DDate         uint32 // c_ddate: the base dump, 0 for level 0
	Volume        int32
	TapeA         uint32 // record number of this header
	Inumber       uint32
	Magic         int32
	Checksum      int32
	Dinode        Dinode
	Count         int32
	Addr          [TPNIndir]byte
	Label         string
	Level         int32
	Filesys       string
	Dev           string
	Host          string
	Flags         int32
	FirstRec      int32
	NTRec         int32
	ExtAttributes int32
}

var le = binary.LittleEndian

func putTime(b []byte, t time.Time) {
	if t.IsZero() || t.Unix() < 0 {
		le.PutUint32(b, 0)
		le.PutUint32(b[4:], 0)
		return
	}
	le.PutUint32(b, uint32(t.Unix()))
	le.PutUint32(b[4:], uint32(t.Nanosecond()/1000))
}

func getTime(b []byte) time.Time {
	sec := le.Uint32(b)
	usec := le.Uint32(b[4:])
	if usec >= 1000000 {
		usec = 0
	}
	return time.Unix(int64(sec), int64(usec)*1000)
}

func putString(b []byte, s string) {
	n := copy(b[:len(b)-1], s) // keep a NUL terminator
	for i := n; i < len(b); i++ {
		b[i] = 0
	}
}

func getString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

func (d *Dinode) marshal(b []byte) {
	le.PutUint16(b[diMode:], d.Mode)
	le.PutUint16(b[diNlink:], uint16(d.Nlink))
	le.PutUint16(b[diOUID:], uint16(d.UID))
	le.PutUint16(b[diOGID:], uint16(d.GID))
	le.PutUint64(b[diSize:], d.Size)
	putTime(b[diAtime:], d.Atime)
	putTime(b[diMtime:], d.Mtime)
	putTime(b[diCtime:], d.Ctime)
	for i, v := range d.DB {
		le.PutUint32(b[diDB+4*i:], v)
	}
	for i, v := range d.IB {
		le.PutUint32(b[diIB+4*i:], v)
	}
	le.PutUint32(b[diFlags:], d.Flags)
	le.PutUint32(b[diBlocks:], uint32(d.Blocks))
	le.PutUint32(b[diGen:], d.Generation)
	le.PutUint32(b[diUID:], d.UID)
	le.PutUint32(b[diGID:], d.GID)
}

func (d *Dinode) unmarshal(b []byte) {
	d.Mode = le.Uint16(b[diMode:])
	d.Nlink = int16(le.Uint16(b[diNlink:]))
	d.Size = le.Uint64(b[diSize:])
	d.Atime = getTime(b[diAtime:])
	d.Mtime = getTime(b[diMtime:])
	d.Ctime = getTime(b[diCtime:])
	for i := range d.DB {
		d.DB[i] = le.Uint32(b[diDB+4*i:])
	}
	for i := range d.IB {
		d.IB[i] = le.Uint32(b[diIB+4*i:])
	}
	d.Flags = le.Uint32(b[diFlags:])
	d.Blocks = int32(le.Uint32(b[diBlocks:]))
	d.Generation = le.Uint32(b[diGen:])
	d.UID = le.Uint32(b[diUID:])
	d.GID = le.Uint32(b[diGID:])
	if d.UID == 0 && d.GID == 0 {
		// Very old tapes only had the 16-bit ids.
		d.UID = uint32(le.Uint16(b[diOUID:]))
		d.GID = uint32(le.Uint16(b[diOGID:]))
	}
}

// Marshal encodes h into a 1024-byte record and fills in c_magic and
// c_checksum (the magic is always NFS_MAGIC).
func (h *Header) Marshal(b []byte) {
	_ = b[TPBSize-1]
	clear(b[:TPBSize])
	le.PutUint32(b[offType:], uint32(h.Type))
	le.PutUint32(b[offDate:], h.Date)
	le.PutUint32(b[offDDate:], h.DDate)
	le.PutUint32(b[offVolume:], uint32(h.Volume))
	le.PutUint32(b[offTapeA:], h.TapeA)
	le.PutUint32(b[offInumber:], h.Inumber)
	le.PutUint32(b[offMagic:], NFSMagic)
	h.Dinode.marshal(b[offDinode : offDinode+dinodeSize])
	le.PutUint32(b[offCount:], uint32(h.Count))
	copy(b[offAddr:offAddr+TPNIndir], h.Addr[:])
	putString(b[offLabel:offLabel+LblSize], h.Label)
	le.PutUint32(b[offLevel:], uint32(h.Level))
	putString(b[offFilesys:offFilesys+NameLen], h.Filesys)
	putString(b[offDev:offDev+NameLen], h.Dev)
	putString(b[offHost:offHost+NameLen], h.Host)
	le.PutUint32(b[offFlags:], uint32(h.Flags))
	le.PutUint32(b[offFirstRec:], uint32(h.FirstRec))
	le.PutUint32(b[offNTRec:], uint32(h.NTRec))
	le.PutUint32(b[offExtAttr:], uint32(h.ExtAttributes))
	h.Magic = NFSMagic
	h.Checksum = int32(uint32(Checksum) - sum32(b[:TPBSize]))
	le.PutUint32(b[offChecksum:], uint32(h.Checksum))
}

// sum32 adds the record's 32-bit little-endian words with wrap-around.
func sum32(b []byte) uint32 {
	var s uint32
	for i := 0; i+4 <= len(b); i += 4 {
		s += le.Uint32(b[i:])
	}
	return s
}

// ChecksumOK reports whether a 1024-byte record is a header whose words add
// up to CHECKSUM.
func ChecksumOK(b []byte) bool {
	return len(b) >= TPBSize && sum32(b[:TPBSize]) == Checksum
}

// IsHeader reports whether a record looks like a valid header: NFS_MAGIC
// and a correct checksum.
func IsHeader(b []byte) bool {
	return len(b) >= TPBSize && int32(le.Uint32(b[offMagic:])) == NFSMagic && ChecksumOK(b)
}

// Unmarshal decodes a 1024-byte record. It does not check the magic or the
// checksum; see IsHeader.
func (h *Header) Unmarshal(b []byte) {
	_ = b[TPBSize-1]
	h.Type = int32(le.Uint32(b[offType:]))
	h.Date = le.Uint32(b[offDate:])
	h.DDate = le.Uint32(b[offDDate:])
	h.Volume = int32(le.Uint32(b[offVolume:]))
	h.TapeA = le.Uint32(b[offTapeA:])
	h.Inumber = le.Uint32(b[offInumber:])
	h.Magic = int32(le.Uint32(b[offMagic:]))
	h.Checksum = int32(le.Uint32(b[offChecksum:]))
	h.Dinode.unmarshal(b[offDinode : offDinode+dinodeSize])
	h.Count = int32(le.Uint32(b[offCount:]))
	copy(h.Addr[:], b[offAddr:offAddr+TPNIndir])
	h.Label = getString(b[offLabel : offLabel+LblSize])
	h.Level = int32(le.Uint32(b[offLevel:]))
	h.Filesys = getString(b[offFilesys : offFilesys+NameLen])
	h.Dev = getString(b[offDev : offDev+NameLen])
	h.Host = getString(b[offHost : offHost+NameLen])
	h.Flags = int32(le.Uint32(b[offFlags:]))
	h.FirstRec = int32(le.Uint32(b[offFirstRec:]))
	h.NTRec = int32(le.Uint32(b[offNTRec:]))
	h.ExtAttributes = int32(le.Uint32(b[offExtAttr:]))
}

// TypeName returns the dumprestore.h name of a record type.
func TypeName(t int32) string {
	switch t {
	case TSTape:
		return "TS_TAPE"
	case TSInode:
		return "TS_INODE"
	case TSBits:
		return "TS_BITS"
	case TSAddr:
		return "TS_ADDR"
	case TSEnd:
		return "TS_END"
	case TSClri:
		return "TS_CLRI"
	}
	return "unknown"
}

// Device numbers. ext2 keeps a device number in i_block[0] in the old
// 8:8 encoding when it fits, otherwise in i_block[1] in the "new" encoding
// (minor low byte, major, minor high bits), with i_block[0] zero. Stock dump
// copies i_block raw into di_db and restore calls mknod(di_db[0]), so a large
// device number copied that way is restored as device 0. The new encoding is
// the same 32-bit value as glibc's makedev for major < 4096, so we always put
// the new encoding into di_db[0]: restore then recreates the right device,
// and for small numbers it is identical to the old encoding.

// EncodeDev returns the 32-bit "new" Linux device encoding.
func EncodeDev(major, minor uint32) uint32 {
	return (minor & 0xff) | (major&0xfff)<<8 | (minor&^0xff)<<12
}

// DecodeDev splits a device number in the new (or old, which is a subset)
// encoding.
func DecodeDev(dev uint32) (major, minor uint32) {
	return (dev & 0xfff00) >> 8, (dev & 0xff) | (dev>>12)&0xfff00
}

// RdevFromDB returns the device number stored in a dinode's di_db, as dump
// or we wrote it.
func RdevFromDB(db [12]uint32) (major, minor uint32) {
	if db[0] != 0 {
		return DecodeDev(db[0])
	}
	return DecodeDev(db[1])
}

// bitmap helpers: inode i is bit (i-1)%8 of byte (i-1)/8, as TSTINO/SETINO.
func setBit(m []byte, ino uint32) {
	if ino == 0 || int(ino-1)/8 >= len(m) {
		return
	}
	m[(ino-1)/8] |= 1 << ((ino - 1) % 8)
}

func testBit(m []byte, ino uint32) bool {
	if ino == 0 || int(ino-1)/8 >= len(m) {
		return false
	}
	return m[(ino-1)/8]&(1<<((ino-1)%8)) != 0
}
