package journal

import (
	"fmt"
	"io"
	"slices"
	"sort"

	"github.com/imgtool/imgtool/ext"
)

// device reads journal blocks by their logical number: through the journal
// inode's block map for an internal journal, one to one for an external
// journal device.
type device struct {
	r     io.ReaderAt
	size  int64 // bytes on r
	bs    int64
	total uint64       // j_total_len: blocks in the journal
	runs  []ext.Extent // nil: identity mapping (external journal)
	note  string       // how the journal was found, when unusual
}

// offset maps journal block lblk to its byte offset on the device.
func (d *device) offset(lblk uint64) (int64, error) {
	if lblk >= d.total {
		return -1, corrupt(lblk, -1, "journal", "block beyond the journal's %d blocks (corrupt journal superblock)", d.total)
	}
	phys := lblk
	if d.runs != nil {
		i := sort.Search(len(d.runs), func(i int) bool { return d.runs[i].Logical+d.runs[i].Len > lblk })
		if i == len(d.runs) || d.runs[i].Logical > lblk {
			return -1, corrupt(lblk, -1, "journal inode", "journal block is not mapped (a hole in the journal inode)")
		}
		phys = d.runs[i].Physical + (lblk - d.runs[i].Logical)
	}
	if phys >= uint64(d.size/d.bs) {
		return -1, corrupt(lblk, -1, "journal", "maps to device block %d, beyond the end of the device (%d bytes)", phys, d.size)
	}
	return int64(phys) * d.bs, nil
}

// read reads journal block lblk into b (bs bytes) and returns its offset.
func (d *device) read(lblk uint64, b []byte) (int64, error) {
	off, err := d.offset(lblk)
	if err != nil {
		return off, err
	}
	n, err := d.r.ReadAt(b, off)
	if n == len(b) {
		return off, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return off, &CorruptError{Block: lblk, Offset: off, What: "journal", Detail: "read error: " + err.Error(), Err: err}
}

type passType int

const (
	passScan   passType = iota // find the end of the log
	passRevoke                 // collect revoke records
	passReplay                 // copy the unrevoked blocks
)

func (p passType) String() string {
	return [...]string{"scan", "revoke", "replay"}[p]
}

// maxRevokes bounds the revoke table. A real journal holds a few thousand
// at most; a corrupt one could list (journal bytes / 4) of them.
const maxRevokes = 1 << 22

// ref is where a replayed filesystem block's new content sits: the byte
// offset of its copy on the journal device, and whether the copy was
// escaped (its first 4 bytes must read as the journal magic).
type ref struct {
	off    int64
	escape bool
}

// recovery is the state of jbd2's three-pass recovery (the recovery_info of
// fs/jbd2/recovery.c, which e2fsck shares), ported pass for pass.
type recovery struct {
	dev         *device
	sb          *Superblock
	seed        uint32 // j_csum_seed: crc32c(~0, s_uuid)
	first, last uint64 // log area [first, last)
	fsBlocks    uint64 // blocks of the filesystem volume: replay targets must be below
	// ignoreCsum makes every v2/v3 checksum pass: only the fuzz target
	// sets it, to reach the parsers behind the checksums.
	ignoreCsum bool

	startTx, endTx uint32
	endSet         bool
	headBlock      uint64
	failedCommit   uint32
	failedSet      bool
	transactions   int

	replays, revokes, revokeHits, badData int
	csumFailed                            bool // some v1/v2/v3 checksum failed
	revoked                               map[uint64]uint32
	blocks                                map[uint64]ref
	notes                                 []string

	buf, dbuf []byte
}

func newRecovery(dev *device, sb *Superblock, first, last uint64) *recovery {
	r := &recovery{
		dev: dev, sb: sb, first: first, last: last,
		revoked: make(map[uint64]uint32),
		blocks:  make(map[uint64]ref),
		buf:     make([]byte, dev.bs),
		dbuf:    make([]byte, dev.bs),
	}
	if sb.CsumV2or3() {
		r.seed = crc32c(^uint32(0), sb.UUID[:])
	}
	return r
}

const maxNotes = 1000

func (r *recovery) note(format string, args ...any) {
	if len(r.notes) < maxNotes {
		r.notes = append(r.notes, fmt.Sprintf(format, args...))
	}
}

// wrap is jbd2's wrap(): a block number that ran off the end of the log
// comes back to its start. Like jbd2 it subtracts the log length once.
func (r *recovery) wrap(b uint64) uint64 {
	if b >= r.last {
		b -= r.last - r.first
	}
	return b
}

// tidGT is tid_gt: transaction ids compare modulo 2^32.
func tidGT(x, y uint32) bool { return int32(x-y) > 0 }

// descCsumOK checks the tail checksum of a descriptor or revoke block.
func (r *recovery) descCsumOK(b []byte) (ok bool, stored, computed uint32) {
	if !r.sb.CsumV2or3() || r.ignoreCsum {
		return true, 0, 0
	}
	t := len(b) - tailSize
	stored = be.Uint32(b[t:])
	computed = crc32c(crc32c(r.seed, b[:t]), []byte{0, 0, 0, 0})
	return stored == computed, stored, computed
}

// commitCsumOK checks a v2/v3 commit block checksum: crc32c over the block
// with h_chksum[0] taken as 0.
func (r *recovery) commitCsumOK(b []byte) (ok bool, stored, computed uint32) {
	if !r.sb.CsumV2or3() || r.ignoreCsum {
		return true, 0, 0
	}
	stored = be.Uint32(b[cmChksum:])
	c := crc32c(r.seed, b[:cmChksum])
	c = crc32c(c, []byte{0, 0, 0, 0})
	computed = crc32c(c, b[cmChksum+4:])
	return stored == computed, stored, computed
}

// tagCsumOK checks a data block against its tag: crc32c(seed, be32
// sequence) continued over the block; v3 stores 32 bits, v2 the low 16.
func (r *recovery) tagCsumOK(t tag, data []byte, seq uint32) (ok bool, computed uint32) {
	if !r.sb.CsumV2or3() || r.ignoreCsum {
		return true, 0
	}
	var s [4]byte
	be.PutUint32(s[:], seq)
	c := crc32c(crc32c(r.seed, s[:]), data)
	if r.sb.FeatureIncompat&IncompatCsumV3 != 0 {
		return t.checksum == c, c
	}
	return t.checksum == c&0xFFFF, c & 0xFFFF
}

// pass runs one pass over the log, as do_one_pass does. It returns soft,
// an error jbd2 reports at the end of the pass after doing what it could
// (it still stops the later passes), and hard, one that aborts at once.
func (r *recovery) pass(p passType) (soft, hard error) {
	ps := &passState{
		next:   r.sb.Sequence,
		blk:    uint64(r.sb.Start),
		crcSum: ^uint32(0),
		csum:   r.sb.CsumV2or3(),
		v1:     r.sb.FeatureCompat&CompatChecksum != 0,
	}
	ps.head = ps.blk
	if p == passScan {
		r.startTx = ps.next
	}
	// Every iteration consumes at least one log block. A log can hold no
	// more blocks than the ring has; more means the ring loops on itself
	// (jbd2 would spin here forever).
	limit := r.last - r.first + 1

	for {
		if p != passScan && !tidGT(r.endTx, ps.next) {
			break
		}
		if ps.visited++; ps.visited > limit {
			return ps.soft, &CorruptError{Block: ps.blk, Offset: -1, What: "log", Err: ErrLoop,
				Detail: fmt.Sprintf("%s pass read more than the journal's %d log blocks without reaching the end of the log", p, limit-1)}
		}
		cur := ps.blk
		off, err := r.dev.read(cur, r.buf)
		if err != nil {
			return ps.soft, err
		}
		ps.blk = r.wrap(ps.blk + 1)
		b := r.buf
		if be.Uint32(b) != Magic {
			break
		}
		typ := be.Uint32(b[4:])
		if seq := be.Uint32(b[8:]); seq != ps.next {
			break
		}
		var stop bool
		switch typ {
		case BlockDescriptor:
			stop, err = r.descriptor(ps, p, b, cur, off)
		case BlockCommit:
			stop, err = r.commit(ps, p, b, cur, off)
		case BlockRevoke:
			stop, err = r.revoke(ps, p, b, cur, off)
		default:
			stop = true
		}
		if err != nil {
			return ps.soft, err
		}
		if stop {
			break
		}
	}

	if p == passScan {
		if !r.endSet {
			r.endTx, r.endSet = ps.next, true
		}
		if r.headBlock == 0 {
			r.headBlock = ps.head
		}
		r.transactions = int(r.endTx - r.startTx)
	} else if r.endTx != ps.next {
		ps.soft = fmt.Errorf("journal: recovery %s pass ended at transaction %d, expected %d", p, ps.next, r.endTx)
		r.note("%v", ps.soft)
	}
	return ps.soft, nil
}

// passState is the walk of one pass over the log (do_one_pass's locals).
type passState struct {
	next                uint32 // the transaction expected
	blk                 uint64 // the next log block
	head                uint64 // where the log ends so far (after the last good commit)
	crcSum              uint32 // v1 transaction checksum
	needCheckCommitTime bool   // a descriptor or revoke checksum failed in this transaction
	lastCommitTime      uint64
	visited             uint64 // log blocks read, against a ring that loops
	soft                error  // damage recovery goes on past (the last one)
	csum, v1            bool   // v2/v3 checksums; v1 transaction checksums
}

// descriptor handles descriptor block b (journal block cur, at off): its
// checksum, then its data blocks — summed for the v1 checksum in
// PASS_SCAN, skipped in PASS_REVOKE, recorded for replay in PASS_REPLAY
// unless revoked or failing their checksum. stop ends the walk; an error
// fails the pass.
func (r *recovery) descriptor(ps *passState, p passType, b []byte, cur uint64, off int64) (stop bool, err error) {
	if ok, st, co := r.descCsumOK(b); !ok {
		// PASS_SCAN can meet stale blocks (lazy journal init): the
		// commit block's time decides.
		if p != passScan {
			return false, &ChecksumError{Block: cur, Offset: off + int64(len(b)-tailSize), What: fmt.Sprintf("descriptor block of transaction %d", ps.next), Stored: st, Computed: co}
		}
		ps.needCheckCommitTime = true
		r.note("journal block %d (offset %#x): descriptor block of transaction %d fails its checksum (stored %#x, computed %#x)", cur, off, ps.next, st, co)
	}
	tags := r.sb.tags(b)
	if p != passReplay {
		if p == passScan && ps.v1 && !ps.needCheckCommitTime && !r.endSet {
			// calc_chksums: the v1 checksum runs over the
			// descriptor and its data blocks.
			// A read error stops the sum; jbd2 then goes on with
			// the next block all the same.
			ps.crcSum = crc32be(ps.crcSum, b)
			for range tags {
				io := ps.blk
				ps.blk = r.wrap(ps.blk + 1)
				ps.visited++
				if _, err := r.dev.read(io, r.dbuf); err != nil {
					r.note("%v", err)
					break
				}
				ps.crcSum = crc32be(ps.crcSum, r.dbuf)
			}
			return false, nil
		}
		ps.blk = r.wrap(ps.blk + uint64(len(tags)))
		ps.visited += uint64(len(tags))
		return false, nil
	}
	for _, t := range tags {
		io := ps.blk
		ps.blk = r.wrap(ps.blk + 1)
		ps.visited++
		ioOff, err := r.dev.read(io, r.dbuf)
		if err != nil {
			// Recover what we can, report the failure at the end.
			ps.soft = err
			r.note("%v", err)
			continue
		}
		if rs, ok := r.revoked[t.block]; ok && !tidGT(ps.next, rs) {
			r.revokeHits++
			continue
		}
		if ok, co := r.tagCsumOK(t, r.dbuf, ps.next); !ok {
			r.badData++
			r.csumFailed = true
			ps.soft = &ChecksumError{Block: io, Offset: ioOff, What: fmt.Sprintf("data block for filesystem block %d in transaction %d", t.block, ps.next), Stored: t.checksum, Computed: co}
			r.note("journal block %d (offset %#x): checksum mismatch on the copy of filesystem block %d in transaction %d: block not replayed (as e2fsck/jbd2 skip it)", io, ioOff, t.block, ps.next)
			continue
		}
		if t.block >= r.fsBlocks {
			r.note("journal block %d (offset %#x): transaction %d writes filesystem block %d, beyond the volume's %d blocks: skipped", io, ioOff, ps.next, t.block, r.fsBlocks)
			continue
		}
		r.blocks[t.block] = ref{off: ioOff, escape: t.flags&TagEscape != 0}
		r.replays++
	}
	return false, nil
}

// commit handles commit block b: a stale transaction after a descriptor
// or revoke checksum failure ends the log; a commit whose checksum fails
// ends it before this transaction (the failed commit); otherwise the
// transaction is complete and the walk moves to the next.
func (r *recovery) commit(ps *passState, p passType, b []byte, cur uint64, off int64) (stop bool, err error) {
	next := ps.next
	commitTime := be.Uint64(b[cmCommitSec:])
	if ps.needCheckCommitTime {
		if commitTime >= ps.lastCommitTime {
			return false, &CorruptError{Block: cur, Offset: off, What: "log",
				Detail: fmt.Sprintf("invalid checksum found in transaction %d (a descriptor or revoke block failed its checksum, the commit is not older than the last one)", next)}
		}
		// Older than the last commit: a stale block of an earlier
		// use of the journal. End the log here, successfully.
		r.note("transaction %d: its checksum mismatch is ignored, the transaction is stale (commit time %d < %d): end of log", next, commitTime, ps.lastCommitTime)
		return true, nil
	}
	bad := false
	if p == passScan && ps.v1 {
		if r.endSet {
			r.failedCommit, r.failedSet = r.endTx, true
			return false, nil
		}
		found := be.Uint32(b[cmChksum:])
		ct, cs := b[cmChksumType], b[cmChksumSize]
		if !((ps.crcSum == found && ct == chksumCRC32 && cs == crc32ChksumSize) || (ct == 0 && cs == 0 && found == 0)) {
			bad = true
			r.note("transaction %d: v1 commit checksum mismatch at journal block %d (offset %#x): stored %#x, computed %#x", next, cur, off, found, ps.crcSum)
		}
		ps.crcSum = ^uint32(0)
	}
	if !bad && p == passScan && ps.csum {
		if ok, st, co := r.commitCsumOK(b); !ok {
			bad = true
			r.note("transaction %d: commit block checksum mismatch at journal block %d (offset %#x): stored %#x, computed %#x", next, cur, off, st, co)
		}
	}
	if bad {
		if commitTime < ps.lastCommitTime {
			r.note("transaction %d: stale commit (commit time %d < %d): end of log", next, commitTime, ps.lastCommitTime)
			return true, nil
		}
		r.csumFailed = true
		r.endTx, r.endSet = next, true
		r.headBlock = ps.head
		if r.sb.FeatureIncompat&IncompatAsyncCommit == 0 {
			r.failedCommit, r.failedSet = next, true
			return false, nil
		}
	}
	if p == passScan {
		ps.lastCommitTime = commitTime
		ps.head = ps.blk
	}
	ps.next++
	return false, nil
}

// revoke handles revoke block b: its checksum in PASS_SCAN, its records in
// PASS_REVOKE.
func (r *recovery) revoke(ps *passState, p passType, b []byte, cur uint64, off int64) (stop bool, err error) {
	if p == passScan {
		if ok, st, co := r.descCsumOK(b); !ok {
			ps.needCheckCommitTime = true
			r.note("journal block %d (offset %#x): revoke block of transaction %d fails its checksum (stored %#x, computed %#x)", cur, off, ps.next, st, co)
		}
	}
	if p != passRevoke {
		return false, nil
	}
	return false, r.scanRevoke(b, ps.next, cur, off)
}

// scanRevoke records the revoke entries of revoke block b (transaction
// seq): a revoked block is not replayed from any transaction up to and
// including the newest one that revoked it.
func (r *recovery) scanRevoke(b []byte, seq uint32, blk uint64, off int64) error {
	rcount := be.Uint32(b[rvCount:])
	max := uint32(len(b))
	if r.sb.CsumV2or3() {
		max -= tailSize
	}
	if rcount > max {
		return &CorruptError{Block: blk, Offset: off + rvCount, What: "revoke block",
			Detail: fmt.Sprintf("r_count %d larger than the %d bytes available (e2fsck: Invalid argument)", rcount, max)}
	}
	recLen := uint32(4)
	if r.sb.FeatureIncompat&Incompat64Bit != 0 {
		recLen = 8
	}
	for o := uint32(revokeHeaderSize); o+recLen <= rcount; o += recLen {
		var bn uint64
		if recLen == 4 {
			bn = uint64(be.Uint32(b[o:]))
		} else {
			bn = be.Uint64(b[o:])
		}
		if old, ok := r.revoked[bn]; !ok || tidGT(seq, old) {
			if !ok && len(r.revoked) >= maxRevokes {
				return &CorruptError{Block: blk, Offset: off + int64(o), What: "revoke block",
					Detail: fmt.Sprintf("more than %d distinct revoked blocks", maxRevokes)}
			}
			r.revoked[bn] = seq
		}
		r.revokes++
	}
	return nil
}

// run does the three passes; any error from a pass stops the later ones,
// as in jbd2_journal_recover.
func (r *recovery) run() (soft, hard error) {
	for _, p := range []passType{passScan, passRevoke, passReplay} {
		soft, hard = r.pass(p)
		if hard != nil {
			return soft, hard
		}
		if soft != nil {
			if p != passReplay {
				// jbd2 stops before replaying anything: nothing was written.
				return nil, soft
			}
			return soft, nil
		}
	}
	return nil, nil
}

// replayed returns the replayed filesystem blocks, sorted.
func (r *recovery) replayed() []uint64 {
	keys := make([]uint64, 0, len(r.blocks))
	for k := range r.blocks {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
