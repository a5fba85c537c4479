// Package md reads Linux MD RAID (mdadm) arrays from their member devices,
// in userspace: it parses the member superblocks (metadata 0.90 in either
// byte order, 1.0, 1.1 and 1.2), groups members into arrays by array UUID,
// orders them by role, leaves out members whose event count shows they
// fell behind, and maps array offsets to member offsets for the levels
// linear, raid0 (every zone layout), raid1, raid10 (near, far, offset)
// and, through package raid, raid4/5/6 — degraded arrays included.
//
// The on-disk formats follow the kernel's include/uapi/linux/raid/md_p.h
// and drivers/md/md.c; mdadm's --examine output is the oracle in the tests.
package md

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Magic is the MD superblock magic (MD_SB_MAGIC).
const Magic = 0xa92b4efc

// Level values as the superblock stores them.
const (
	LevelLinear    = -1
	LevelMultipath = -4
	LevelFaulty    = -5
	LevelContainer = -1000000 // mdadm's pseudo level for external metadata
)

// Role values of a v1 dev_roles entry beyond an active slot number.
const (
	RoleSpare   = -1 // 0xffff
	RoleFaulty  = -2 // 0xfffe
	RoleJournal = -3 // 0xfffd
)

// v1 feature_map bits (MD_FEATURE_*).
const (
	featBitmapOffset   = 1
	featRecoveryOffset = 2
	featReshapeActive  = 4
	featBadBlocks      = 8
	featReplacement    = 16
	featNewOffset      = 64
	featJournal        = 512
	featPPL            = 1024
	featRAID0Layout    = 4096
)

// ErrNoSuperblock means no MD superblock of any version was found.
var ErrNoSuperblock = errors.New("no MD superblock")

// Superblock is what one member device says about itself and its array.
// Sizes and offsets are in bytes.
type Superblock struct {
	// Version is "0.90", "1.0", "1.1" or "1.2".
	Version string
	// BigEndian is set for a 0.90 superblock written by a big-endian host.
	BigEndian bool
	// Offset is where the superblock is on the member.
	Offset int64
	// UUID is the array UUID (shared by all members).
	UUID [16]byte
	// Name is the v1 array name, "homehost:name" or just "name"; empty
	// for 0.90.
	Name string
	// PreferredMinor is the 0.90 md minor (md0, md1...).
	PreferredMinor int
	Level          int
	Layout         int
	ChunkSize      int64
	RaidDisks      int
	// DevSize is the per-member size the array uses (the superblock's
	// "size" field): for raid1/4/5/6/10 every member contributes this.
	DevSize int64
	// DataOffset is where array data starts on the member; DataSize is
	// how much of the member holds data (what linear and raid0 use).
	DataOffset int64
	DataSize   int64
	Events     uint64
	// Role is this member's slot in the array (0...RaidDisks-1), or
	// RoleSpare/RoleFaulty/RoleJournal.
	Role int
	// DevNumber is the member's index in the role table (v1) or the disk
	// table (0.90).
	DevNumber int
	// DeviceUUID is the member's own UUID (v1 only).
	DeviceUUID [16]byte
	Features   uint32
	// RecoveryOffset is set when the member is part-way through recovery:
	// only data below it is in sync.
	RecoveryOffset int64
	// Clean is false when the array was not stopped cleanly (resync
	// needed); ResyncOffset is how far it got (v1), -1 when clean.
	Clean        bool
	ResyncOffset int64
	CTime, UTime int64 // seconds since the epoch
	// Roles is the role of every device the array knows, by DevNumber.
	Roles []int
	// Checksum is the stored checksum; ChecksumOK whether it matches.
	Checksum   uint32
	ChecksumOK bool
	// BitmapOffset is the write-intent bitmap's offset from the superblock
	// (v1: bytes, may be negative), 0 when there is none. Reading never
	// needs the bitmap.
	BitmapOffset int64
	// BadBlocksOffset/Size locate the bad-block log relative to the
	// superblock (v1), 0 when absent. Reading ignores it.
	BadBlocksOffset int64
	BadBlocksSize   int64
	// Reshaping is set when a reshape was in progress (not supported).
	Reshaping bool
}

// UUIDString formats the array UUID as mdadm prints it
// (xxxxxxxx:xxxxxxxx:xxxxxxxx:xxxxxxxx).
func (s *Superblock) UUIDString() string { return mdUUID(s.UUID) }

func mdUUID(u [16]byte) string {
	return fmt.Sprintf("%x:%x:%x:%x", u[0:4], u[4:8], u[8:12], u[12:16])
}

// HomeHost and ShortName split a v1 Name "host:name".
func (s *Superblock) HomeHost() string {
	if i := strings.IndexByte(s.Name, ':'); i >= 0 {
		return s.Name[:i]
	}
	return ""
}

// ShortName is the array name without the homehost.
func (s *Superblock) ShortName() string {
	if i := strings.IndexByte(s.Name, ':'); i >= 0 {
		return s.Name[i+1:]
	}
	return s.Name
}

// LevelName is the level as mdadm names it (raid5, linear...).
func LevelName(level int) string {
	switch level {
	case LevelLinear:
		return "linear"
	case LevelMultipath:
		return "multipath"
	case LevelFaulty:
		return "faulty"
	case LevelContainer:
		return "container"
	}
	return fmt.Sprintf("raid%d", level)
}

// Locations of the superblock on a member of size bytes, by version.
func offset1(version string, size int64) int64 {
	switch version {
	case "1.1":
		return 0
	case "1.2":
		return 4096
	}
	// 1.0: 8 KiB from the end, rounded down to 4 KiB.
	return (size - 8192) &^ 4095
}

func offset090(size int64) int64 {
	return (size &^ (64<<10 - 1)) - 64<<10
}

// Read finds and parses the superblock of one member of size bytes. It
// tries 1.2, 1.1, 1.0 then 0.90, and returns the first one whose magic and
// version match; a bad checksum or an inconsistent field is an error
// naming the absolute offset within the member.
func Read(r io.ReaderAt, size int64) (*Superblock, error) {
	var firstErr error
	for _, v := range []string{"1.2", "1.1", "1.0"} {
		off := offset1(v, size)
		if off < 0 || off+1024 > size {
			continue
		}
		sb, err := read1(r, off, size, v)
		if err == ErrNoSuperblock {
			continue
		}
		if err != nil && firstErr == nil {
			firstErr = err
			continue
		}
		if err == nil {
			return sb, nil
		}
	}
	if size >= 128<<10 {
		sb, err := read090(r, offset090(size), size)
		if err == nil {
			return sb, nil
		}
		if err != ErrNoSuperblock && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, ErrNoSuperblock
}

func readFull(r io.ReaderAt, off int64, n int) ([]byte, error) {
	b := make([]byte, n)
	k, err := r.ReadAt(b, off)
	if k == n {
		return b, nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return nil, fmt.Errorf("reading %d bytes at byte %d: %w", n, off, err)
}

// maxDev bounds the v1 role table: 256 + 2*max_dev must fit the 4 KiB
// the superblock may occupy (mdadm uses at most 384 roles).
const maxDev = (4096 - 256) / 2

func read1(r io.ReaderAt, off, size int64, version string) (*Superblock, error) {
	b, err := readFull(r, off, 4096)
	if err != nil {
		// A member shorter than 4 KiB past the superblock: 1 KiB is enough
		// for up to 384 roles.
		if b, err = readFull(r, off, 1024); err != nil {
			return nil, ErrNoSuperblock
		}
	}
	le := binary.LittleEndian
	if le.Uint32(b[0:]) != Magic || le.Uint32(b[4:]) != 1 {
		return nil, ErrNoSuperblock
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("MD %s superblock at byte %d: %s", version, off, fmt.Sprintf(format, a...))
	}
	nDev := le.Uint32(b[220:])
	if nDev > maxDev || 256+2*int(nDev) > len(b) {
		return nil, bad("max_dev %d is too large", nDev)
	}
	s := &Superblock{Version: version, Offset: off}
	s.Features = le.Uint32(b[8:])
	copy(s.UUID[:], b[16:32])
	s.Name = cstr(b[32:64])
	s.CTime = int64(le.Uint64(b[64:]) & (1<<40 - 1))
	s.Level = int(int32(le.Uint32(b[72:])))
	s.Layout = int(int32(le.Uint32(b[76:])))
	s.DevSize = int64(le.Uint64(b[80:])) * 512
	s.ChunkSize = int64(le.Uint32(b[88:])) * 512
	s.RaidDisks = int(int32(le.Uint32(b[92:])))
	if s.Features&featBitmapOffset != 0 {
		s.BitmapOffset = int64(int32(le.Uint32(b[96:]))) * 512
	}
	s.Reshaping = s.Features&featReshapeActive != 0
	s.DataOffset = int64(le.Uint64(b[128:])) * 512
	s.DataSize = int64(le.Uint64(b[136:])) * 512
	superOff := int64(le.Uint64(b[144:])) * 512
	if s.Features&featRecoveryOffset != 0 {
		s.RecoveryOffset = int64(le.Uint64(b[152:])) * 512
	}
	s.DevNumber = int(le.Uint32(b[160:]))
	copy(s.DeviceUUID[:], b[168:184])
	if s.Features&featBadBlocks != 0 || le.Uint16(b[186:]) != 0 {
		s.BadBlocksSize = int64(le.Uint16(b[186:])) * 512
		s.BadBlocksOffset = int64(int32(le.Uint32(b[188:]))) * 512
	}
	s.UTime = int64(le.Uint64(b[192:]) & (1<<40 - 1))
	s.Events = le.Uint64(b[200:])
	resync := le.Uint64(b[208:])
	s.Clean = resync == ^uint64(0)
	s.ResyncOffset = -1
	if !s.Clean {
		s.ResyncOffset = int64(resync) * 512
	}
	s.Checksum = le.Uint32(b[216:])
	s.ChecksumOK = s.Checksum == csum1(b, int(nDev))
	s.Roles = make([]int, nDev)
	for i := range s.Roles {
		s.Roles[i] = role1(le.Uint16(b[256+2*i:]))
	}
	s.Role = RoleSpare
	if s.DevNumber < len(s.Roles) {
		s.Role = s.Roles[s.DevNumber]
	}
	if !s.ChecksumOK {
		return s, bad("checksum %08x does not match the computed %08x", s.Checksum, csum1(b, int(nDev)))
	}
	if superOff != off {
		return s, bad("records its own offset as byte %d", superOff)
	}
	if s.DevNumber >= int(nDev) {
		return s, bad("device number %d is outside its role table of %d", s.DevNumber, nDev)
	}
	if err := s.sane(size); err != nil {
		return s, bad("%v", err)
	}
	return s, nil
}

func role1(v uint16) int {
	switch v {
	case 0xffff:
		return RoleSpare
	case 0xfffe:
		return RoleFaulty
	case 0xfffd:
		return RoleJournal
	}
	return int(v)
}

// csum1 is calc_sb_1_csum: the 32-bit little-endian words of the first
// 256+2*max_dev bytes (checksum field as 0), folded to 32 bits.
func csum1(b []byte, nDev int) uint32 {
	n := 256 + 2*nDev
	var sum uint64
	i := 0
	for ; n-i >= 4; i += 4 {
		if i == 216 {
			continue
		}
		sum += uint64(binary.LittleEndian.Uint32(b[i:]))
	}
	if n-i == 2 {
		sum += uint64(binary.LittleEndian.Uint16(b[i:]))
	}
	return uint32(sum&0xffffffff + sum>>32)
}

// sane checks the geometry fields against the member's size.
func (s *Superblock) sane(size int64) error {
	if s.RaidDisks <= 0 || s.RaidDisks > 4096 {
		return fmt.Errorf("%d raid disks", s.RaidDisks)
	}
	if s.ChunkSize < 0 || s.ChunkSize > 1<<30 || (s.ChunkSize != 0 && s.ChunkSize%512 != 0) {
		return fmt.Errorf("chunk size %d", s.ChunkSize)
	}
	if s.DataOffset < 0 || s.DataSize < 0 || s.DataOffset > size || s.DataSize > size-s.DataOffset {
		return fmt.Errorf("data area of %d bytes at byte %d does not fit the %d-byte member", s.DataSize, s.DataOffset, size)
	}
	if s.DevSize < 0 || s.DevSize > size {
		return fmt.Errorf("per-device size %d is larger than the %d-byte member", s.DevSize, size)
	}
	if s.Version != "0.90" && s.DevSize > s.DataSize && s.Level != LevelLinear && s.Level != 0 {
		return fmt.Errorf("per-device size %d is larger than the data area (%d bytes)", s.DevSize, s.DataSize)
	}
	return nil
}

// 0.90 superblock: 4096 bytes of 32-bit words in the writer's byte order.
const (
	sb090Bytes     = 4096
	sb090DiskWords = 32
	sb090Disks     = 27
	sb090ThisDisk  = 992 // word index of this_disk
)

// 0.90 disk state bits.
const (
	diskFaulty  = 0
	diskActive  = 1
	diskSync    = 2
	diskRemoved = 3
)

func read090(r io.ReaderAt, off, size int64) (*Superblock, error) {
	if off < 0 {
		return nil, ErrNoSuperblock
	}
	b, err := readFull(r, off, sb090Bytes)
	if err != nil {
		return nil, ErrNoSuperblock
	}
	var bo binary.ByteOrder
	switch {
	case binary.LittleEndian.Uint32(b) == Magic && binary.LittleEndian.Uint32(b[4:]) == 0:
		bo = binary.LittleEndian
	case binary.BigEndian.Uint32(b) == Magic && binary.BigEndian.Uint32(b[4:]) == 0:
		bo = binary.BigEndian
	default:
		return nil, ErrNoSuperblock
	}
	w := func(i int) uint32 { return bo.Uint32(b[4*i:]) }
	s := &Superblock{Version: "0.90", Offset: off, BigEndian: bo == binary.BigEndian, ResyncOffset: -1}
	// set_uuid0 is word 5, set_uuid1..3 words 13..15; mdadm prints them
	// as host-order words.
	for i, wi := range []int{5, 13, 14, 15} {
		binary.BigEndian.PutUint32(s.UUID[4*i:], w(wi))
	}
	s.CTime = int64(w(6))
	s.Level = int(int32(w(7)))
	s.DevSize = int64(w(8)) * 1024
	s.RaidDisks = int(int32(w(10)))
	s.PreferredMinor = int(w(11))
	s.UTime = int64(w(32))
	state := w(33)
	s.Clean = state&1 != 0
	s.Checksum = w(38)
	// events: a u64 in the writer's byte order at word 39 (events_lo,hi
	// on little-endian hosts, events_hi,lo on big-endian ones).
	s.Events = bo.Uint64(b[4*39:])
	s.Layout = int(int32(w(64)))
	s.ChunkSize = int64(w(65))
	s.ChecksumOK = s.Checksum == csum090(b, bo)
	// minor version 91 marks a reshape in progress (reshape_position,
	// new_level... are valid then).
	s.Reshaping = w(2) >= 91
	// The data starts at 0 and runs to the superblock.
	s.DataOffset = 0
	s.DataSize = off
	// this_disk
	td := sb090ThisDisk
	s.DevNumber = int(w(td))
	raidDisk := int(int32(w(td + 3)))
	dstate := w(td + 4)
	s.Role = roleFromState(raidDisk, dstate, s.RaidDisks)
	s.Roles = make([]int, sb090Disks)
	for i := range s.Roles {
		d := 128 + i*sb090DiskWords
		s.Roles[i] = roleFromState(int(int32(w(d+3))), w(d+4), s.RaidDisks)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("MD 0.90 superblock at byte %d: %s", off, fmt.Sprintf(format, a...))
	}
	if !s.ChecksumOK {
		return s, bad("checksum %08x does not match the computed %08x", s.Checksum, csum090(b, bo))
	}
	if s.RaidDisks > sb090Disks {
		return s, bad("%d raid disks (0.90 holds at most %d)", s.RaidDisks, sb090Disks)
	}
	if err := s.sane(size); err != nil {
		return s, bad("%v", err)
	}
	if s.Level != LevelLinear && s.Level != 0 && s.DevSize > off {
		return s, bad("per-device size %d is larger than the data area (%d bytes)", s.DevSize, off)
	}
	return s, nil
}

func roleFromState(raidDisk int, state uint32, raidDisks int) int {
	switch {
	case state&(1<<diskFaulty) != 0:
		return RoleFaulty
	case state&(1<<diskRemoved) != 0 && state&(1<<diskActive) == 0:
		return RoleSpare
	case state&(1<<diskActive) != 0 && state&(1<<diskSync) != 0 && raidDisk >= 0 && raidDisk < raidDisks:
		return raidDisk
	}
	return RoleSpare
}

// csum090 is calc_sb_csum: the sum of the 1024 words (checksum as 0) in
// the writer's byte order, folded to 32 bits.
func csum090(b []byte, bo binary.ByteOrder) uint32 {
	var sum uint64
	for i := 0; i < sb090Bytes/4; i++ {
		if i == 38 {
			continue
		}
		sum += uint64(bo.Uint32(b[4*i:]))
	}
	return uint32(sum&0xffffffff + sum>>32)
}

func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
