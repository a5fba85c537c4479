// Package journal replays the jbd2 journal of an ext3/ext4 filesystem into
// memory, without writing the image: the filesystem then reads as the
// kernel sees it after mount (or e2fsck after its journal replay).
//
// An image copied from a running guest, or a snapshot of one, usually has an
// unreplayed journal: metadata (and, with data=journal, data) committed to
// the journal but not yet written to its home location. Reading such an
// image plainly shows the filesystem as of an older checkpoint; debugfs can
// replay only by writing into the image.
//
// # Use
//
// The short way, for the CLI, inspect and the TUI:
//
//	v, err := journal.Open(vol, size, nil, &journal.Options{External: jdev, ExternalSize: jsize})
//	// err: no ext filesystem. v.FS is the filesystem to read (replayed when
//	// the journal needed it); v.ReplayErr, when set, is a warning: the
//	// journal needed replay but could not be replayed, v.FS is the on-disk
//	// state. v.Result says what was replayed.
//
// The long way:
//
//	fsys, _ := ext.Open(vol, size, nil)
//	ov, res, err := journal.Replay(vol, size, fsys, nil)
//	switch {
//	case errors.Is(err, journal.ErrNoJournal): // ext2: read vol as is
//	case errors.Is(err, journal.ErrExternalJournal): // tell the user; read vol as is
//	case err != nil: // journal unusable: read vol as is, show err
//	default:
//		fsys, err = ext.Open(ov, ov.Size(), nil) // the replayed view
//	}
//
// res says how many transactions and blocks were replayed, what was revoked,
// whether every checksum held, and carries notes for the user.
//
// # The format (all big endian)
//
// Journal block 0 holds the journal superblock (layout.go); blocks
// s_first..s_maxlen-1 (less a fast-commit area at the end) form a ring, the
// log. s_start is where the log begins (0: nothing to replay) and
// s_sequence the transaction id expected there. A transaction is a run of
// blocks all carrying its id in their header: descriptor blocks, each
// followed by copies of the filesystem blocks its tags name; revoke blocks
// listing blocks whose earlier copies must not be replayed; and a commit
// block. The first block with another id, no magic or an unknown type ends
// the log. A data block whose first four bytes happen to be the journal
// magic is stored with them zeroed and the tag's ESCAPE flag set.
//
// Checksums: v1 (COMPAT_CHECKSUM) puts a crc32_be of each transaction's
// descriptor and data blocks in its commit block; v2/v3 (crc32c seeded with
// crc32c(~0, s_uuid)) checksum the superblock, every descriptor and revoke
// block (a 4-byte tail), every commit block, and every data block (in its
// tag: 16 bits in v2, 32 in v3, seeded further with the transaction id).
//
// # Recovery, as fs/jbd2/recovery.c (shared with e2fsck) does it
//
//   - PASS_SCAN walks the log from s_start to find its end: the first
//     transaction without a valid commit. A commit block that fails its
//     checksum ends the log before that transaction (the "failed commit":
//     e2fsck replays what came before, the kernel refuses to mount). A bad
//     descriptor/revoke checksum is forgiven only when the commit block is
//     older than the previous one (a stale block of an earlier use of the
//     journal); otherwise recovery fails.
//   - PASS_REVOKE collects revoke records with the id of the transaction
//     that wrote them; a record naming a block with r_count beyond the block
//     fails recovery (e2fsck: "Invalid argument").
//   - PASS_REPLAY copies every tagged block, in log order (the latest copy
//     wins), unless a revoke record from the same or a later transaction
//     covers it. A copy whose data checksum fails is skipped, and replay goes
//     on.
//
// Any error in a pass stops the later passes, as in jbd2; nothing is
// replayed unless PASS_REPLAY runs.
//
// # Fast commits
//
// After the jbd2 passes, the fast commits of the next transaction (ext4's
// fast_commit feature) are scanned and replayed as ext4_fc_replay does it
// (fastcommit.go, fcreplay.go): inodes, block ranges and directory entries
// are rebuilt in memory, with their checksums, so the view equals what
// the kernel mounts (the fixtures' oracle is a kernel mount of a copy).
// What could not be replayed is in Result.FastCommitProblems: the view is
// then older than the disk's last state.
//
// # Not done
//
// A journal shared by several filesystems is refused, as e2fsck refuses it.
package journal
