package journal

import (
	"encoding/binary"
	"fmt"
)

// On-disk layout of the jbd2 journal (ext3/ext4). Unlike the rest of ext,
// every journal structure is BIG endian.
//
// The journal is a ring of blocks. Block 0 of the journal holds the journal
// superblock; blocks s_first..s_maxlen-1 are the log. Every log block that
// is not a plain data copy starts with a 12-byte header:
//
//	h_magic     be32  0xC03B3998
//	h_blocktype be32  descriptor 1, commit 2, superblock v1 3, v2 4, revoke 5
//	h_sequence  be32  the transaction (tid) the block belongs to
//
// A transaction is: one or more descriptor blocks, each followed by the
// data blocks its tags describe (full copies of filesystem blocks), revoke
// blocks anywhere in between, and a commit block that makes it valid.
const (
	Magic = 0xC03B3998 // h_magic

	headerSize = 12 // journal_header_t

	// Block types (h_blocktype).
	BlockDescriptor   = 1
	BlockCommit       = 2
	BlockSuperblockV1 = 3
	BlockSuperblockV2 = 4
	BlockRevoke       = 5
)

// Journal superblock (journal_superblock_t): 1024 bytes at the start of
// journal block 0.
const (
	superblockSize = 1024

	jsBlockSize      = 0x0C // s_blocksize: journal block size, = fs block size
	jsMaxLen         = 0x10 // s_maxlen: total blocks in the journal
	jsFirst          = 0x14 // s_first: first block of the log
	jsSequence       = 0x18 // s_sequence: first tid expected in the log
	jsStart          = 0x1C // s_start: block of the log's start; 0 = clean (nothing to replay)
	jsErrno          = 0x20 // s_errno: error recorded by jbd2_journal_abort
	jsFeatureCompat  = 0x24
	jsFeatureIncompt = 0x28
	jsFeatureROCompt = 0x2C
	jsUUID           = 0x30 // s_uuid[16]: seeds the v2/v3 checksums
	jsNrUsers        = 0x40 // s_nr_users: filesystems sharing the journal
	jsDynSuper       = 0x44
	jsMaxTransaction = 0x48
	jsMaxTransData   = 0x4C
	jsChecksumType   = 0x50 // s_checksum_type (u8): 4 = crc32c
	jsNumFCBlocks    = 0x54 // s_num_fc_blks: fast-commit area size (0 = default 256)
	jsHead           = 0x58 // s_head: head of the log after a clean unmount
	jsChecksum       = 0xFC // s_checksum: crc32c(~0, superblock with this field 0)
	jsUsers          = 0x100
	maxUsers         = 48
)

// Journal features.
const (
	// CompatChecksum: v1 transaction checksums, crc32_be over each
	// transaction's descriptor and data blocks, stored in the commit block.
	CompatChecksum = 0x1

	IncompatRevoke      = 0x1  // revoke blocks may appear
	Incompat64Bit       = 0x2  // block tags carry 64-bit block numbers
	IncompatAsyncCommit = 0x4  // commit block written without waiting for the data
	IncompatCsumV2      = 0x8  // crc32c checksums, 16 bits in the tags (tag size +2)
	IncompatCsumV3      = 0x10 // crc32c checksums, journal_block_tag3_t
	IncompatFastCommit  = 0x20 // a fast-commit area at the end of the journal

	knownCompat   = CompatChecksum
	knownIncompat = IncompatRevoke | Incompat64Bit | IncompatAsyncCommit | IncompatCsumV2 | IncompatCsumV3 | IncompatFastCommit
	knownROCompat = 0
)

// Checksum types (s_checksum_type, commit h_chksum_type).
const (
	chksumCRC32  = 1 // v1 transaction checksum
	chksumCRC32C = 4 // v2/v3

	crc32ChksumSize = 4
)

// defaultFCBlocks is the size of the fast-commit area when s_num_fc_blks is
// 0 (JBD2_DEFAULT_FAST_COMMIT_BLOCKS); minJournalBlocks is the smallest log
// jbd2 accepts (JBD2_MIN_JOURNAL_BLOCKS).
const (
	defaultFCBlocks  = 256
	minJournalBlocks = 1024
)

// Descriptor block tags. After the header, a descriptor block holds tags,
// one per data block that follows it in the log, in the same order. Three
// layouts exist:
//
//	journal_block_tag3_t (csum v3), 16 bytes:
//	  t_blocknr be32, t_flags be32, t_blocknr_high be32, t_checksum be32
//	journal_block_tag_t (csum v2 or none):
//	  t_blocknr be32, t_checksum be16, t_flags be16, t_blocknr_high be32
//	  12 bytes with 64bit, 8 without; csum v2 adds 2 bytes (a quirk of
//	  journal_tag_bytes kept for compatibility).
//
// Unless a tag has SAME_UUID, a 16-byte UUID follows it. LAST_TAG ends the
// list. With csum v2/v3 the last 4 bytes of the block are a tail checksum
// (struct jbd2_journal_block_tail), not tag space.
const (
	TagEscape   = 0x1 // the data block began with the magic; it was zeroed in the log
	TagSameUUID = 0x2 // no UUID follows this tag
	TagDeleted  = 0x4 // block deleted by this transaction (unused by jbd2)
	TagLastTag  = 0x8 // last tag of this descriptor block

	tag3Size   = 16
	tagSize    = 12 // journal_block_tag_t
	tagUUIDLen = 16
	tailSize   = 4 // jbd2_journal_block_tail, and jbd2_journal_revoke_tail
)

// Revoke block (jbd2_journal_revoke_header_t): header, then r_count be32 =
// bytes used in the block including this 16-byte header, then block
// numbers (be32, or be64 with the 64bit feature).
const (
	revokeHeaderSize = 16
	rvCount          = 0x0C
)

// Commit block (struct commit_header).
const (
	cmChksumType = 0x0C // u8
	cmChksumSize = 0x0D // u8
	cmChksum     = 0x10 // h_chksum[8] be32; [0] used
	cmCommitSec  = 0x30 // be64
	cmCommitNsec = 0x38 // be32
)

var be = binary.BigEndian

// Superblock is the decoded journal superblock.
type Superblock struct {
	Version         int    // 1 or 2 (h_blocktype 3 or 4)
	BlockSize       uint32 // s_blocksize
	MaxLen          uint32 // s_maxlen: journal length in blocks
	First           uint32 // s_first: first log block
	Sequence        uint32 // s_sequence: first transaction to replay
	Start           uint32 // s_start: log start, 0 when the journal is clean
	Errno           int32  // s_errno
	FeatureCompat   uint32
	FeatureIncompat uint32
	FeatureROCompat uint32
	UUID            [16]byte
	NrUsers         uint32
	MaxTransaction  uint32
	MaxTransData    uint32
	ChecksumType    uint8
	NumFCBlocks     uint32 // s_num_fc_blks as stored (0 = default)
	Head            uint32
	Checksum        uint32
	Users           [][16]byte // s_users[:min(nr_users, 48)]
}

// CsumV2or3 reports whether v2 or v3 (crc32c) checksums are in use.
func (s *Superblock) CsumV2or3() bool {
	return s.FeatureIncompat&(IncompatCsumV2|IncompatCsumV3) != 0
}

// FastCommitBlocks is the size of the fast-commit area at the end of the
// journal: s_num_fc_blks, or 256 when that is 0 and the fast_commit journal
// feature is set. mke2fs -O fast_commit reserves the area (and sets
// s_num_fc_blks) before any kernel turns the journal feature on; jbd2 only
// keeps the log out of it while the feature is set (see logEnd).
func (s *Superblock) FastCommitBlocks() uint32 {
	if s.NumFCBlocks != 0 {
		return s.NumFCBlocks
	}
	if s.FeatureIncompat&IncompatFastCommit != 0 {
		return defaultFCBlocks
	}
	return 0
}

// Features returns the feature names as dumpe2fs prints them.
func (s *Superblock) Features() []string {
	var out []string
	add := func(v, bit uint32, name string) {
		if v&bit != 0 {
			out = append(out, name)
		}
	}
	add(s.FeatureCompat, CompatChecksum, "journal_checksum")
	add(s.FeatureIncompat, IncompatRevoke, "journal_incompat_revoke")
	add(s.FeatureIncompat, Incompat64Bit, "journal_64bit")
	add(s.FeatureIncompat, IncompatAsyncCommit, "journal_async_commit")
	add(s.FeatureIncompat, IncompatCsumV2, "journal_checksum_v2")
	add(s.FeatureIncompat, IncompatCsumV3, "journal_checksum_v3")
	add(s.FeatureIncompat, IncompatFastCommit, "journal_fast_commit")
	for _, x := range []struct {
		v, known uint32
		kind     string
	}{{s.FeatureCompat, knownCompat, "compat"}, {s.FeatureIncompat, knownIncompat, "incompat"}, {s.FeatureROCompat, knownROCompat, "ro_compat"}} {
		for bit := uint32(1); bit != 0; bit <<= 1 {
			if x.v&bit != 0 && x.known&bit == 0 {
				out = append(out, fmt.Sprintf("journal_%s_%#x", x.kind, bit))
			}
		}
	}
	return out
}

// tagBytes is journal_tag_bytes(): the size of one block tag, not counting
// the UUID that may follow it.
func (s *Superblock) tagBytes() int {
	if s.FeatureIncompat&IncompatCsumV3 != 0 {
		return tag3Size
	}
	sz := tagSize
	if s.FeatureIncompat&IncompatCsumV2 != 0 {
		sz += 2
	}
	if s.FeatureIncompat&Incompat64Bit != 0 {
		return sz
	}
	return sz - 4
}

// ParseSuperblock decodes a journal superblock from b (at least 1024
// bytes; off is its byte offset, for errors). It checks the magic, the
// block type and the features, but not the checksum or the geometry
// against the journal's size: Replay does that.
func ParseSuperblock(b []byte, off int64) (*Superblock, error) {
	if len(b) < superblockSize {
		return nil, corrupt(0, off, "journal superblock", "short (%d bytes)", len(b))
	}
	if m := be.Uint32(b); m != Magic {
		return nil, corrupt(0, off, "journal superblock", "bad magic %#08x (want %#08x)", m, uint32(Magic))
	}
	s := &Superblock{
		BlockSize: be.Uint32(b[jsBlockSize:]),
		MaxLen:    be.Uint32(b[jsMaxLen:]),
		First:     be.Uint32(b[jsFirst:]),
		Sequence:  be.Uint32(b[jsSequence:]),
		Start:     be.Uint32(b[jsStart:]),
		Errno:     int32(be.Uint32(b[jsErrno:])),
	}
	switch t := be.Uint32(b[4:]); t {
	case BlockSuperblockV1:
		// Version 1 has no feature fields; e2fsck ignores whatever is there.
		s.Version = 1
		return s, nil
	case BlockSuperblockV2:
		s.Version = 2
	case BlockDescriptor, BlockCommit, BlockRevoke:
		return nil, corrupt(0, off+4, "journal superblock", "block type %d is a log block, not a superblock", t)
	default:
		return nil, corrupt(0, off+4, "journal superblock", "unknown superblock version (block type %d)", t)
	}
	s.FeatureCompat = be.Uint32(b[jsFeatureCompat:])
	s.FeatureIncompat = be.Uint32(b[jsFeatureIncompt:])
	s.FeatureROCompat = be.Uint32(b[jsFeatureROCompt:])
	copy(s.UUID[:], b[jsUUID:])
	s.NrUsers = be.Uint32(b[jsNrUsers:])
	s.MaxTransaction = be.Uint32(b[jsMaxTransaction:])
	s.MaxTransData = be.Uint32(b[jsMaxTransData:])
	s.ChecksumType = b[jsChecksumType]
	s.NumFCBlocks = be.Uint32(b[jsNumFCBlocks:])
	s.Head = be.Uint32(b[jsHead:])
	s.Checksum = be.Uint32(b[jsChecksum:])
	for i := range min(s.NrUsers, maxUsers) {
		var u [16]byte
		copy(u[:], b[jsUsers+16*int(i):])
		s.Users = append(s.Users, u)
	}
	if v := s.FeatureIncompat &^ knownIncompat; v != 0 {
		return nil, unsupported(off+jsFeatureIncompt, "unknown incompatible journal features %#x", v)
	}
	if v := s.FeatureROCompat &^ knownROCompat; v != 0 {
		return nil, unsupported(off+jsFeatureROCompt, "unknown read-only compatible journal features %#x", v)
	}
	if s.FeatureIncompat&IncompatCsumV2 != 0 && s.FeatureIncompat&IncompatCsumV3 != 0 {
		return nil, corrupt(0, off+jsFeatureIncompt, "journal superblock", "both checksum v2 and v3 set")
	}
	if s.CsumV2or3() && s.FeatureCompat&CompatChecksum != 0 {
		return nil, corrupt(0, off+jsFeatureCompat, "journal superblock", "checksum v1 set together with v2/v3")
	}
	if s.CsumV2or3() {
		if s.ChecksumType != chksumCRC32C {
			return nil, corrupt(0, off+jsChecksumType, "journal superblock", "checksum type %d (want %d, crc32c)", s.ChecksumType, chksumCRC32C)
		}
		if c := superblockChecksum(b); c != s.Checksum {
			return nil, &ChecksumError{Block: 0, Offset: off + jsChecksum, What: "journal superblock", Stored: s.Checksum, Computed: c}
		}
	}
	return s, nil
}

// superblockChecksum is the v2/v3 superblock checksum: crc32c(~0) over the
// 1024 bytes with s_checksum taken as 0.
func superblockChecksum(b []byte) uint32 {
	c := crc32c(^uint32(0), b[:jsChecksum])
	c = crc32c(c, []byte{0, 0, 0, 0})
	return crc32c(c, b[jsChecksum+4:superblockSize])
}

// tag is one decoded descriptor tag.
type tag struct {
	block    uint64
	flags    uint32
	checksum uint32 // be32 (v3) or be16 (v2)
}

// parseTag decodes the tag at b (tagBytes long).
func (s *Superblock) parseTag(b []byte) tag {
	var t tag
	t.block = uint64(be.Uint32(b))
	// jbd2 reads the flags as the be16 at offset 6 in both layouts: in
	// tag3 that is the low half of the be32 t_flags.
	t.flags = uint32(be.Uint16(b[6:]))
	if s.FeatureIncompat&Incompat64Bit != 0 {
		t.block |= uint64(be.Uint32(b[8:])) << 32
	}
	if s.FeatureIncompat&IncompatCsumV3 != 0 {
		t.checksum = be.Uint32(b[12:])
	} else {
		t.checksum = uint32(be.Uint16(b[4:]))
	}
	return t
}

// tags decodes the tags of descriptor block b, as count_tags and the replay
// loop walk them: stop at LAST_TAG or when the next tag would not fit
// (before the tail with csum v2/v3).
func (s *Superblock) tags(b []byte) []tag {
	size := len(b)
	if s.CsumV2or3() {
		size -= tailSize
	}
	tb := s.tagBytes()
	var out []tag
	for p := headerSize; p+tb <= size; {
		t := s.parseTag(b[p : p+tb])
		out = append(out, t)
		p += tb
		if t.flags&TagSameUUID == 0 {
			p += tagUUIDLen
		}
		if t.flags&TagLastTag != 0 {
			break
		}
	}
	return out
}
