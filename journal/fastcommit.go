package journal

import (
	"encoding/binary"
	"fmt"
)

// Fast commits (ext4's fast_commit feature, fs/ext4/fast_commit.c).
//
// After the last full jbd2 commit, an fsync may write a fast commit instead
// of a whole transaction: a list of logical changes (struct ext4_fc_tl: le16
// tag, le16 length, then the value), written to the fast-commit area at the
// end of the journal (journal blocks s_maxlen-s_num_fc_blks+1 .. s_maxlen-1,
// as jbd2's j_fc_first..j_fc_last). Each fast commit starts the area or
// follows the previous one; the area begins with a HEAD tag naming the jbd2
// transaction the fast commits belong to (the one after the last full
// commit), and each fast commit ends with a TAIL tag carrying that tid and
// a crc32c of every tag since the previous TAIL. Tags never span blocks;
// PAD fills the rest of a block.
//
// Scan (ext4_fc_replay_scan): walk the tags; a TAIL with the expected tid
// and a matching crc makes every tag so far valid; anything else ends the
// scan (a stale tail of an older transaction is the common end). Replay
// (ext4_fc_replay) then applies exactly the valid tags, in order.
const (
	fcTagAddRange = 0x0001 // le32 ino, struct ext4_extent (12 bytes)
	fcTagDelRange = 0x0002 // le32 ino, le32 lblk, le32 len
	fcTagCreat    = 0x0003 // le32 parent ino, le32 ino, name
	fcTagLink     = 0x0004 // as CREAT
	fcTagUnlink   = 0x0005 // as CREAT
	fcTagInode    = 0x0006 // le32 ino, raw inode (128..s_inode_size bytes)
	fcTagPad      = 0x0007
	fcTagTail     = 0x0008 // le32 tid, le32 crc
	fcTagHead     = 0x0009 // le32 features, le32 tid

	fcHeadLen     = 8
	fcTLLen       = 4
	fcFeaturesOK  = 0 // EXT4_FC_SUPPORTED_FEATURES
	fcMaxNameLen  = 255
	fcInodeMinLen = 128 // EXT4_GOOD_OLD_INODE_SIZE
)

var fcTagNames = map[uint16]string{
	fcTagAddRange: "ADD_RANGE", fcTagDelRange: "DEL_RANGE", fcTagCreat: "CREAT",
	fcTagLink: "LINK", fcTagUnlink: "UNLINK", fcTagInode: "INODE", fcTagPad: "PAD",
	fcTagTail: "TAIL", fcTagHead: "HEAD",
}

// fcTag is one fast-commit record.
type fcTag struct {
	tag uint16
	val []byte
	off int64 // byte offset of the record on the journal device
}

func (t fcTag) name() string {
	if n, ok := fcTagNames[t.tag]; ok {
		return n
	}
	return fmt.Sprintf("tag %#x", t.tag)
}

// fcScan is what a scan of the fast-commit area found.
type fcScan struct {
	tags    []fcTag // the valid tags, in order (HEAD .. last valid TAIL)
	commits int     // fast commits whose TAIL held
	// pending is true when the area starts with a HEAD for the expected
	// transaction: there is something the kernel would try to replay.
	pending bool
	// stop says why the scan ended before the area did, when that means
	// fast commits were lost (a bad crc or a malformed tag after valid
	// ones is normal: the end of what was written).
	stop string
	// fatal is set when the kernel would refuse the journal (unknown
	// features, no valid fast commit after a HEAD that promised some).
	fatal string
}

// fcValueLenOK is ext4_fc_value_len_isvalid.
func fcValueLenOK(tag uint16, n int, inodeSize int) bool {
	switch tag {
	case fcTagAddRange:
		return n == 16
	case fcTagDelRange:
		return n == 12
	case fcTagCreat, fcTagLink, fcTagUnlink:
		n -= 8
		return n >= 1 && n <= fcMaxNameLen
	case fcTagInode:
		n -= 4
		return n >= fcInodeMinLen && n <= inodeSize
	case fcTagPad:
		return true
	case fcTagTail:
		return n >= 8
	case fcTagHead:
		return n == fcHeadLen
	}
	return false
}

// scanFastCommits reads the fast-commit area, journal blocks first..end-1,
// for fast commits of transaction tid. ignoreCsum (fuzzing only) accepts
// a TAIL whatever its crc.
func scanFastCommits(dev *device, first, end uint64, tid uint32, inodeSize int, ignoreCsum bool) (*fcScan, error) {
	le := binary.LittleEndian
	sc := &fcScan{}
	var crc uint32
	var cur []fcTag // tags since the last valid TAIL
	b := make([]byte, dev.bs)
	for blk := first; blk < end; blk++ {
		off, err := dev.read(blk, b)
		if err != nil {
			if len(sc.tags) == 0 && blk == first {
				return sc, err
			}
			sc.stop = fmt.Sprintf("fast-commit block %d unreadable: %v", blk, err)
			return sc, nil
		}
		if blk == first {
			// ext4 stops early unless the area starts with a HEAD.
			if le.Uint16(b) != fcTagHead {
				return sc, nil
			}
		}
		for p := 0; p+fcTLLen <= len(b); {
			tag, n := le.Uint16(b[p:]), int(le.Uint16(b[p+2:]))
			val := b[p+fcTLLen:]
			recOff := off + int64(p)
			if tag == 0 && n == 0 {
				// Zeros: the end of what was written. Nothing is lost.
				sc.stopAt("")
				return sc, nil
			}
			if n > len(val) || !fcValueLenOK(tag, n, inodeSize) {
				sc.stopAt(fmt.Sprintf("malformed %s record (length %d) at journal block %d, offset %#x", fcTag{tag: tag}.name(), n, blk, recOff))
				return sc, nil
			}
			val = val[:n]
			rec := b[p : p+fcTLLen+n]
			p += fcTLLen + n
			switch tag {
			case fcTagHead:
				feat, htid := le.Uint32(val), le.Uint32(val[4:])
				if feat&^fcFeaturesOK != 0 {
					sc.fatal = fmt.Sprintf("fast-commit HEAD at offset %#x has unknown features %#x", recOff, feat)
					return sc, nil
				}
				if htid != tid {
					sc.stopAt("")
					return sc, nil
				}
				sc.pending = true
				crc = crc32c(crc, rec)
				cur = append(cur, fcTag{tag: tag, val: clone(val), off: recOff})
			case fcTagTail:
				crc = crc32c(crc, rec[:fcTLLen+4])
				ttid, tcrc := le.Uint32(val), le.Uint32(val[4:])
				cur = append(cur, fcTag{tag: tag, val: clone(val), off: recOff})
				if ttid != tid || (tcrc != crc && !ignoreCsum) {
					if ttid == tid {
						sc.stopAt(fmt.Sprintf("fast commit ending at offset %#x fails its checksum (stored %#08x, computed %#08x)", recOff, tcrc, crc))
					} else {
						sc.stopAt("")
					}
					return sc, nil
				}
				sc.tags = append(sc.tags, cur...)
				cur = cur[:0]
				sc.commits++
				crc = 0
			case fcTagAddRange, fcTagDelRange, fcTagCreat, fcTagLink, fcTagUnlink, fcTagInode, fcTagPad:
				crc = crc32c(crc, rec)
				cur = append(cur, fcTag{tag: tag, val: clone(val), off: recOff})
			default:
				sc.stopAt(fmt.Sprintf("unknown fast-commit tag %#x at offset %#x", tag, recOff))
				return sc, nil
			}
		}
	}
	return sc, nil
}

// stopAt ends the scan. Tags after the last valid TAIL are dropped, as
// ext4 drops them; when a HEAD promised fast commits and none held, the
// kernel fails the mount (-ECANCELED/-EFSBADCRC) and e2fsck the replay.
func (sc *fcScan) stopAt(why string) {
	if sc.commits == 0 && sc.pending {
		if why == "" {
			why = "no fast commit after the HEAD is complete"
		}
		sc.fatal = why
		return
	}
	sc.stop = why
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
