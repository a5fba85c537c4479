package journal

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"slices"

	"github.com/imgtool/imgtool/ext"
)

// Options tune Replay. A nil *Options means the defaults.
type Options struct {
	// External is the device holding the filesystem's external journal
	// (a filesystem made with journal_dev: s_journal_inum 0 and
	// s_journal_uuid set), ExternalSize its size in bytes. Without it such
	// a filesystem gets an *ExternalJournalError.
	External     io.ReaderAt
	ExternalSize int64

	// ReplayWithoutFlag replays a log that the journal superblock says is
	// there (s_start != 0) although the filesystem's needs_recovery flag
	// is clear. e2fsck -y does ("Run journal anyway?"); the kernel discards
	// such a log on mount, and so does Replay by default.
	ReplayWithoutFlag bool

	// NoFastCommits leaves fast commits unreplayed: the view is what the
	// full jbd2 commits alone give (older than what the kernel mounts).
	NoFastCommits bool
}

// Result says what Replay did.
type Result struct {
	Journal  *Superblock // the journal superblock as found on disk
	External bool        // the journal is on an external device
	// SuperblockOffset is the byte offset of the journal superblock on the
	// device that holds the journal.
	SuperblockOffset int64

	// NeedsRecovery is the filesystem's needs_recovery flag as found.
	NeedsRecovery bool
	// Replayed is true when the log was walked and its committed
	// transactions applied (needs_recovery set and s_start != 0).
	Replayed bool

	FirstTransaction uint32 // s_sequence: the first transaction in the log
	EndTransaction   uint32 // the first transaction NOT replayed (end of the log)
	Transactions     int    // EndTransaction - FirstTransaction
	// FailedCommit is the transaction whose commit block failed its
	// checksum, ending the log there (0 and !HasFailedCommit if none). The
	// kernel refuses to mount such a filesystem; e2fsck replays the
	// transactions before it and marks the filesystem as having errors,
	// which is what the overlay shows.
	FailedCommit    uint32
	HasFailedCommit bool

	Blocks        int // data blocks written, counting each copy (jbd2's nr_replays)
	Distinct      int // distinct filesystem blocks the overlay serves from the journal
	RevokeRecords int // revoke entries in the log
	Revoked       int // block copies skipped because a revoke covered them

	// ChecksumsOK is false when a checksum failed anywhere: a commit block
	// (the log ends before it), a data block (that block is not replayed),
	// or a stale descriptor/revoke block.
	ChecksumsOK bool
	BadBlocks   int // data block copies skipped for a bad checksum

	// FastCommitBlocks is the size of the fast-commit area (fast_commit
	// feature), FastCommits whether it holds fast commits for the next
	// transaction. FastCommitsReplayed fast commits (FastCommitRecords
	// records) were applied after the jbd2 replay, as ext4 does on mount.
	// FastCommitProblems says what could not be replayed: the view is then
	// older than the disk's last state (stale).
	FastCommitBlocks    uint32
	FastCommits         bool
	FastCommitsReplayed int
	FastCommitRecords   int
	FastCommitProblems  []string
	fc                  *fcScan

	Notes []string
}

// Replay replays the journal of the ext3/ext4 filesystem fsys (opened on
// vol, size bytes) into memory, the way the kernel does on mount and e2fsck
// does before checking, and returns an overlay: vol as it reads after the
// replay. The image is never written. Open the overlay with ext.Open to get
// the post-replay filesystem.
//
// Errors: ErrNoJournal (no journal: use vol as is); *ExternalJournalError
// (journal on another device, not given in opts); *CorruptError or
// *ChecksumError for a journal that cannot be replayed (e2fsck would fail
// or drop the journal too; the caller may still read vol unreplayed). Then
// the Overlay is nil, and the Result, when not nil, says what was found.
//
// Journal block damage that jbd2 survives (a bad data block checksum, a read
// error on one block, a torn last transaction) is not an error: the
// overlay is returned and Result.Notes / ChecksumsOK say what happened.
//
// What the overlay presents besides the replayed blocks, as e2fsck does
// after a replay (the kernel writes the same on mount):
//   - the filesystem superblock with needs_recovery cleared (and its
//     metadata_csum checksum recomputed), whenever needs_recovery is set;
//     s_state gains the error flag after a failed commit or a recorded
//     journal error (s_errno), loses the valid flag after a replay error,
//     as e2fsck sets them; s_wtime and s_kbytes_written are left alone;
//   - for an internal journal, the journal superblock with s_start 0 (the
//     journal is empty), s_sequence the next transaction, s_errno 0 and the
//     v2/v3 checksum recomputed. An external journal device is not part of
//     the volume and is not overlaid.
//
// Memory: the overlay keeps, per replayed block, only where its copy sits
// in the journal (16 bytes), and reads it from there on demand; the revoke
// table is bounded too. Every loop is bounded by the journal's length.
func Replay(vol io.ReaderAt, size int64, fsys *ext.FS, opts *Options) (*Overlay, *Result, error) {
	if opts == nil {
		opts = &Options{}
	}
	fsb := fsys.Superblock()
	if !fsb.HasJournal() {
		return nil, nil, ErrNoJournal
	}
	dev, sbBlock, err := openDevice(vol, size, fsys, opts)
	if err != nil {
		return nil, nil, err
	}
	replays.Add(1)
	ov, res, err := replayLog(vol, size, fsys.BlockSize(), fsb, dev, sbBlock, opts.ReplayWithoutFlag, false)
	if err == nil && res != nil && res.fc != nil && !opts.NoFastCommits {
		replayFastCommits(ov, res)
	}
	return ov, res, err
}

// replayFastCommits applies the fast commits a scan found to the overlay
// the jbd2 replay built.
func replayFastCommits(ov *Overlay, res *Result) {
	sc := res.fc
	if len(sc.tags) == 0 {
		return
	}
	fsys, err := ext.Open(ov, ov.Size(), nil)
	if err != nil {
		res.FastCommitProblems = append(res.FastCommitProblems, fmt.Sprintf("fast commits not replayed: the filesystem after the jbd2 replay does not open: %v", err))
		res.Notes = append(res.Notes, res.FastCommitProblems...)
		return
	}
	rp := newFCReplayer(fsys, ov)
	rp.replay(sc.tags)
	res.FastCommitsReplayed = sc.commits
	res.FastCommitRecords = len(sc.tags)
	res.FastCommitProblems = append(res.FastCommitProblems, rp.stale...)
	res.Notes = append(res.Notes, fmt.Sprintf("replayed %d fast commit(s) of transaction %d (%d records, %d changes applied) after the journal", sc.commits, res.EndTransaction, len(sc.tags), rp.applied))
	res.Notes = append(res.Notes, rp.stale...)
}

// replayLog is Replay once the journal's device is known: fsb is the
// filesystem superblock, sbBlock the journal block of the journal
// superblock. withoutFlag is Options.ReplayWithoutFlag; ignoreCsum is for
// the fuzz target only.
func replayLog(vol io.ReaderAt, size, bs int64, fsb *ext.Superblock, dev *device, sbBlock uint64, withoutFlag, ignoreCsum bool) (*Overlay, *Result, error) {
	res := &Result{NeedsRecovery: fsb.NeedsRecovery(), ChecksumsOK: true}
	res.External = dev.runs == nil
	if dev.note != "" {
		res.Notes = append(res.Notes, dev.note)
	}
	buf := make([]byte, bs)
	sbOff, err := dev.read(sbBlock, buf)
	if err != nil {
		return nil, nil, err
	}
	res.SuperblockOffset = sbOff
	jsb, err := ParseSuperblock(buf, sbOff)
	if err != nil {
		return nil, nil, err
	}
	res.Journal = jsb
	res.FirstTransaction, res.EndTransaction = jsb.Sequence, jsb.Sequence
	first, last, err := geometry(jsb, dev, bs, sbOff)
	if err != nil {
		return nil, res, err
	}
	if jsb.Version == 2 && jsb.NrUsers > 1 {
		return nil, res, unsupported(sbOff+jsNrUsers, "journal shared by %d filesystems", jsb.NrUsers)
	}
	res.FastCommitBlocks = jsb.FastCommitBlocks()

	ov := &Overlay{vol: vol, size: size, bs: bs, dev: dev.r}
	switch {
	case !res.NeedsRecovery && jsb.Start != 0 && withoutFlag:
		res.Notes = append(res.Notes, fmt.Sprintf("journal holds a log (s_start %d, transaction %d) although needs_recovery is clear: replayed as asked (e2fsck -y does; the kernel would discard it)", jsb.Start, jsb.Sequence))
	case !res.NeedsRecovery:
		if jsb.Start != 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("journal holds a log (s_start %d, transaction %d) but needs_recovery is clear: the kernel discards it on mount; not replayed (e2fsck -y would replay it: Options.ReplayWithoutFlag)", jsb.Start, jsb.Sequence))
		}
		return ov, res, nil
	case jsb.Start == 0:
		// jbd2 finds nothing to recover and moves on to the next
		// transaction id; e2fsck then clears the flag.
		res.Notes = append(res.Notes, "needs_recovery is set but the journal is empty (s_start 0): nothing to replay; needs_recovery cleared in the overlay")
		res.EndTransaction = jsb.Sequence + 1
		if err := ov.patchSuperblock(fsb, 0, 0); err != nil {
			return nil, res, err
		}
		if !res.External {
			ov.patchJournalSuperblock(sbOff, jsb.Sequence+1)
		}
		return ov, res, nil
	}
	if uint64(jsb.Start) < first || uint64(jsb.Start) >= dev.total {
		return nil, res, corrupt(sbBlock, sbOff+jsStart, "journal superblock", "s_start %d outside the log (%d..%d)", jsb.Start, first, dev.total-1)
	}

	r := newRecovery(dev, jsb, first, last)
	r.ignoreCsum = ignoreCsum
	r.fsBlocks = uint64(size / bs)
	soft, hard := r.run()
	res.EndTransaction = r.endTx
	res.Transactions = r.transactions
	res.FailedCommit, res.HasFailedCommit = r.failedCommit, r.failedSet
	res.Blocks, res.RevokeRecords, res.Revoked, res.BadBlocks = r.replays, r.revokes, r.revokeHits, r.badData
	res.Notes = append(res.Notes, r.notes...)
	if hard != nil {
		return nil, res, hard
	}
	res.ChecksumsOK = !r.csumFailed
	res.Replayed = true
	ov.refs = r.blocks
	ov.keys = r.replayed()
	res.Distinct = len(ov.keys)
	if r.failedSet {
		res.Notes = append(res.Notes, fmt.Sprintf("transaction %d failed its commit checksum: replay stopped before it (as e2fsck does; the kernel refuses to mount)", r.failedCommit))
	}
	if res.FastCommitBlocks > 0 && jsb.FeatureIncompat&IncompatFastCommit == 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("a fast-commit area of %d blocks is reserved, but the journal's fast_commit feature is off: no fast commits to replay", res.FastCommitBlocks))
	}
	if res.FastCommitBlocks > 0 && jsb.FeatureIncompat&IncompatFastCommit != 0 {
		sc, err := scanFastCommits(dev, last+1, uint64(jsb.MaxLen), r.endTx, int(fsb.InodeSize), ignoreCsum)
		switch {
		case err != nil:
			res.FastCommitProblems = append(res.FastCommitProblems, fmt.Sprintf("fast-commit area (journal blocks %d..%d) unreadable: %v; fast commits for transaction %d may be missing from this view", last+1, uint64(jsb.MaxLen)-1, err, r.endTx))
			res.Notes = append(res.Notes, res.FastCommitProblems...)
		case sc.fatal != "":
			res.FastCommits = true
			res.FastCommitProblems = append(res.FastCommitProblems, fmt.Sprintf("fast commits for transaction %d not replayed: %s (the kernel would refuse to mount; changes fsync'ed after the last full commit are missing from this view)", r.endTx, sc.fatal))
			res.Notes = append(res.Notes, res.FastCommitProblems...)
		default:
			res.FastCommits = sc.pending
			res.fc = sc
			if sc.stop != "" {
				res.FastCommitProblems = append(res.FastCommitProblems, fmt.Sprintf("fast-commit replay stopped: %s; later fast commits are missing from this view", sc.stop))
				res.Notes = append(res.Notes, res.FastCommitProblems...)
			}
		}
	}

	// The superblocks, as e2fsck leaves them after the replay.
	var setState, clearState uint16
	if r.failedSet || jsb.Errno != 0 {
		setState |= ext.StateErrors
	}
	if soft != nil {
		clearState |= ext.StateValid
	}
	if err := ov.patchSuperblock(fsb, setState, clearState); err != nil {
		return nil, res, err
	}
	if !res.External {
		seq := jsb.Sequence
		if soft == nil {
			seq = r.endTx + 1
		}
		ov.patchJournalSuperblock(sbOff, seq)
	}
	return ov, res, nil
}

// openDevice finds the device holding the journal and the journal block
// of its superblock.
func openDevice(vol io.ReaderAt, size int64, fsys *ext.FS, opts *Options) (*device, uint64, error) {
	fsb := fsys.Superblock()
	bs := fsys.BlockSize()
	if fsb.JournalInum == 0 {
		var zero [16]byte
		if fsb.JournalUUID == zero && fsb.JournalDev == 0 {
			return nil, 0, corrupt(0, fsb.Offset, "filesystem superblock", "has_journal set, but neither a journal inode nor a journal device")
		}
		if opts.External == nil {
			return nil, 0, &ExternalJournalError{UUID: fsb.JournalUUID, Dev: fsb.JournalDev}
		}
		return openExternal(opts.External, opts.ExternalSize, bs, fsb.JournalUUID)
	}
	in, err := fsys.Inode(fsb.JournalInum)
	if err != nil {
		err = fmt.Errorf("journal: journal inode %d: %w", fsb.JournalInum, err)
	} else {
		var dev *device
		if dev, err = inodeDevice(vol, size, fsys, in); err == nil {
			return dev, 0, nil
		}
	}
	// The journal inode is damaged: like e2fsck, use the copy of its
	// block map the superblock keeps (s_jnl_blocks).
	if bin := fsb.JournalInodeBackup(); bin != nil {
		if dev, berr := inodeDevice(vol, size, fsys, bin); berr == nil {
			dev.note = fmt.Sprintf("journal inode %d unusable (%v); replayed through the superblock's backup of its block map (s_jnl_blocks), as e2fsck does", fsb.JournalInum, err)
			return dev, 0, nil
		}
	}
	return nil, 0, err
}

// inodeDevice maps the internal journal held by inode in.
func inodeDevice(vol io.ReaderAt, size int64, fsys *ext.FS, in *ext.Inode) (*device, error) {
	bs := fsys.BlockSize()
	if !in.IsRegular() {
		return nil, corrupt(0, in.Offset, "journal inode", "journal inode %d is not a regular file (mode %#o)", in.Ino, in.Mode)
	}
	runs, _, err := fsys.MapInode(in)
	if err != nil {
		return nil, fmt.Errorf("journal: journal inode %d block map: %w", in.Ino, err)
	}
	runs = slices.Clone(runs)
	slices.SortFunc(runs, func(a, b ext.Extent) int { return cmp.Compare(a.Logical, b.Logical) })
	if runs == nil {
		runs = []ext.Extent{}
	}
	total := in.Size / uint64(bs)
	if total < minJournalBlocks {
		return nil, corrupt(0, in.Offset, "journal inode", "journal inode %d is %d blocks, less than the minimum %d", in.Ino, total, minJournalBlocks)
	}
	return &device{r: vol, size: size, bs: bs, total: total, runs: runs}, nil
}

// External journal devices: an ext2 superblock at byte 1024 with the
// journal_dev feature, and the journal superblock in the block after it
// (block 2 with 1 KiB blocks, block 1 otherwise). Journal blocks are device
// blocks.
const (
	extSBOffset       = 1024
	extMagic          = 0xEF53
	extMagicOff       = 0x38
	extBlocksLo       = 0x04
	extBlocksHi       = 0x150
	extLogBlockSize   = 0x18
	extIncompat       = 0x60
	extUUID           = 0x68
	extIncompat64     = 0x80
	extIncompatJDev   = 0x08
	extIncompatRecov  = 0x04
	extState          = 0x3A
	extROCompat       = 0x64
	extROCompatMCsum  = 0x400
	extChecksum       = 0x3FC
	extSuperblockSize = 1024
)

func openExternal(r io.ReaderAt, size int64, bs int64, want [16]byte) (*device, uint64, error) {
	le := binary.LittleEndian
	b := make([]byte, extSuperblockSize)
	if size < extSBOffset+extSuperblockSize {
		return nil, 0, corrupt(0, extSBOffset, "external journal device", "too small (%d bytes)", size)
	}
	if _, err := r.ReadAt(b, extSBOffset); err != nil {
		return nil, 0, &CorruptError{Offset: extSBOffset, What: "external journal device", Detail: "read error: " + err.Error(), Err: err}
	}
	if m := le.Uint16(b[extMagicOff:]); m != extMagic {
		return nil, 0, corrupt(0, extSBOffset+extMagicOff, "external journal device", "no ext2 superblock (magic %#04x)", m)
	}
	inc := le.Uint32(b[extIncompat:])
	if inc&extIncompatJDev == 0 {
		return nil, 0, corrupt(0, extSBOffset+extIncompat, "external journal device", "not a journal device (journal_dev feature not set)")
	}
	var uuid [16]byte
	copy(uuid[:], b[extUUID:])
	if uuid != want {
		return nil, 0, corrupt(0, extSBOffset+extUUID, "external journal device", "UUID %x does not match the filesystem's journal UUID %x", uuid, want)
	}
	if lb := le.Uint32(b[extLogBlockSize:]); lb > 6 || int64(1024)<<lb != bs {
		return nil, 0, corrupt(0, extSBOffset+extLogBlockSize, "external journal device", "block size 1024<<%d differs from the filesystem's %d", lb, bs)
	}
	blocks := uint64(le.Uint32(b[extBlocksLo:]))
	if inc&extIncompat64 != 0 {
		blocks |= uint64(le.Uint32(b[extBlocksHi:])) << 32
	}
	blocks = min(blocks, 1<<32-1)
	sbBlock := uint64(1)
	if bs == 1024 {
		sbBlock = 2
	}
	return &device{r: r, size: size, bs: bs, total: blocks}, sbBlock, nil
}

// ReadExternal reads an external journal device (blkid type "jbd"): the
// UUID of its ext2 superblock, which a filesystem using it names in
// s_journal_uuid (so inspect can pair them, then pass the device in
// Options.External), and its journal superblock.
func ReadExternal(r io.ReaderAt, size int64) (uuid [16]byte, jsb *Superblock, err error) {
	le := binary.LittleEndian
	b := make([]byte, extSuperblockSize)
	if size < extSBOffset+extSuperblockSize {
		return uuid, nil, corrupt(0, extSBOffset, "external journal device", "too small (%d bytes)", size)
	}
	if _, err := r.ReadAt(b, extSBOffset); err != nil {
		return uuid, nil, &CorruptError{Offset: extSBOffset, What: "external journal device", Detail: "read error: " + err.Error(), Err: err}
	}
	if le.Uint16(b[extMagicOff:]) != extMagic || le.Uint32(b[extIncompat:])&extIncompatJDev == 0 {
		return uuid, nil, corrupt(0, extSBOffset, "external journal device", "no ext2 superblock with the journal_dev feature")
	}
	lb := le.Uint32(b[extLogBlockSize:])
	if lb > 6 {
		return uuid, nil, corrupt(0, extSBOffset+extLogBlockSize, "external journal device", "block size 1024<<%d out of range", lb)
	}
	copy(uuid[:], b[extUUID:])
	dev, sbBlock, err := openExternal(r, size, int64(1024)<<lb, uuid)
	if err != nil {
		return uuid, nil, err
	}
	jb := make([]byte, dev.bs)
	off, err := dev.read(sbBlock, jb)
	if err != nil {
		return uuid, nil, err
	}
	jsb, err = ParseSuperblock(jb, off)
	return uuid, jsb, err
}

// geometry checks the journal superblock against the journal's size and
// returns the log area [first, last), as e2fsck_journal_load does.
func geometry(jsb *Superblock, dev *device, bs int64, sbOff int64) (first, last uint64, err error) {
	if int64(jsb.BlockSize) != bs {
		return 0, 0, corrupt(0, sbOff+jsBlockSize, "journal superblock", "block size %d differs from the filesystem's %d", jsb.BlockSize, bs)
	}
	switch maxLen := uint64(jsb.MaxLen); {
	case maxLen < dev.total:
		dev.total = maxLen
	case maxLen > dev.total:
		return 0, 0, corrupt(0, sbOff+jsMaxLen, "journal superblock", "s_maxlen %d larger than the journal (%d blocks)", maxLen, dev.total)
	}
	first = uint64(jsb.First)
	if first == 0 || first >= dev.total {
		return 0, 0, corrupt(0, sbOff+jsFirst, "journal superblock", "s_first %d outside the journal (%d blocks)", first, dev.total)
	}
	last = uint64(jsb.MaxLen)
	if fc := uint64(jsb.FastCommitBlocks()); fc > 0 && jsb.FeatureIncompat&IncompatFastCommit != 0 {
		if fc > last || last-fc < minJournalBlocks {
			return 0, 0, corrupt(0, sbOff+jsNumFCBlocks, "journal superblock", "fast-commit area of %d blocks leaves less than %d of %d for the log", fc, minJournalBlocks, last)
		}
		last -= fc
	}
	if first >= last {
		return 0, 0, corrupt(0, sbOff+jsFirst, "journal superblock", "s_first %d not below the end of the log %d", first, last)
	}
	return first, last, nil
}
