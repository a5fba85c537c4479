// Package backup is imgtool's nightly backup pipeline: the cron script of
// old (xm pause; lvcreate --snapshot; xm unpause; kpartx; dump | bzip2;
// kpartx -d; lvremove; scp) done in one process that reads the snapshot
// directly, with the failures of that script designed out.
//
// # A run, per guest (Runner.Run)
//
//  1. Cross-check the guest definition (libvirt XML or Xen cfg): a disk it
//     lists that the config does not is reported loudly (UncoveredError;
//     the CLI exits 4) and the configured disks are still backed up.
//  2. Pause the guest, snapshot every LV source, resume it and log how long
//     it stayed paused. Sources without a snapshot (image files with
//     snapshot.mode = auto) are read while the guest stays paused: a live
//     copy without a snapshot is inconsistent.
//  3. Inspect every source (partitions, nested LVM) and dump every
//     filesystem a registered reader opens (inspect.Volume.OpenFS: ext2/3/4
//     through its journal, replayed in memory as a mount would; FAT,
//     squashfs, ISO 9660; XFS once registered) at its level, through
//     dump.FSSource. Formats without stable inode numbers (FAT, ISO) are
//     dumped at level 0 only; owners and modes they lack are the reader's
//     documented defaults (0:0, 0755 directories, 0644 files). Never silent: swap, all-zero
//     volumes and those in the guest's skip list are skipped with the
//     reason; any other volume that holds data and cannot be dumped (a
//     filesystem type it cannot read, LUKS without a key, an unreadable
//     LV, an unknown signature, a filesystem that fails to open, or one
//     whose dump stops at damage while writing an inode (a link target
//     that cannot be read, its xattrs); that partial stream
//     is dropped, never stored) is LEFT OUT: the rest is still backed up,
//     then the run fails with IncompleteError naming each (the CLI exits
//     6, one line per volume). An inode the filesystem cannot read, a
//     directory whose entries it can read only in part, or file data it
//     cannot map or read (dumped as zeros, as dump(8) does) does not stop
//     the dump: what was read is dumped, the rest listed in Manifest.Lost,
//     and the volume is named as backed up INCOMPLETE in the same error.
//     Plan says the same; verify checks that
//     every volume a run would dump has a restorable chain. Holes and unwritten
//     extents go on tape as holes: stock dump leaks stale bytes there.
//  4. Check the snapshot's COW store valid flag (an overflowed snapshot
//     fails the backup loudly), remove the snapshot, log its lifetime. With
//     xz (slow) the raw dump is spooled to a temp file and compressed after
//     the snapshot is gone, so the snapshot lives as long as the read.
//  5. Rename the temp files into place (fsync, rename, fsync dir), then write
//     each manifest (Manifest, FILE.json): a backup exists only once its
//     manifest does. Quick-verify, apply retention (never deleting a backup
//     a kept incremental depends on), copy to the other hosts and confirm
//     their sha256.
//
// Undo steps (resume, remove snapshot, delete temps) run on every path,
// errors and SIGINT/SIGTERM included. Each step that needs undoing is
// first recorded in STATEDIR/GUEST.state; after a kill -9 the next run, or
// `imgtool backup recover`, reads it back, resumes the guest, removes the
// stale snapshot and deletes temp files and data files without a manifest
// (Recover). An flock on STATEDIR/lock keeps runs from overlapping
// (ErrLocked; the CLI exits 5).
//
// # Levels
//
// Schedule picks the level by date in the modified Tower-of-Hanoi order of
// dump(8)'s manual: level 0 on full_day (the 1st by default), then the
// sequence 3 2 5 4 7 6 9 8 9, repeated:
//
//	day of month  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15 16 17 18 19 20 21 ...
//	level         0  3  2  5  4  7  6  9  8  9  3  2  5  4  7  6  9  8  9  3  2 ...
//
// A level-N dump holds what changed since the newest dump below N, so a
// restore applies at most one dump per level (day 9: days 1, 3, 5, 7, 9).
// A level 0 is taken whenever no usable base exists (first run, a base
// file missing or of the wrong size, a broken chain, a new fs UUID);
// --level N overrides the schedule. Bases are found from the manifests and
// kept as dump's bookkeeping in DEST/GUEST/dumpdates, keyed by a stable
// identity (guest name | source#volume address | fs UUID), never by the
// snapshot's device path.
//
// # Files
//
//	DEST/GUEST/SOURCE_VOLUME.YYYYMMDD-HHMMSS.L<level>.dump.zst   (or .xz, or none)
//	DEST/GUEST/SOURCE_VOLUME.YYYYMMDD-HHMMSS.L<level>.dump.zst.json
//	DEST/GUEST/dumpdates
//
// With dest = "s3://BUCKET/PREFIX" the same names are objects under
// PREFIX/GUEST/ (Store abstracts both). Data objects are streamed as
// multipart uploads (two parts in memory, no local spool unless xz spools),
// visible only once complete; the manifest is put after it. Manifests and
// dumpdates live in the bucket, so list, verify and restore work from any
// host with the credentials. PREFIX/GUEST/lock is taken with a conditional
// put (If-None-Match: *): a second host backing up the same guest fails
// with ErrLocked naming the holder; a lock left by this host is stale (the
// host's flock is held) and taken over. A run first aborts the guest's
// abandoned multipart uploads and deletes data objects without manifest.
//
// The streams are plain dump(8) format: `zstd -dc F | restore -rf -`
// works. zstd streams start at the default level and switch to the best
// level (a new frame) where the dump compresses 8:1 or better and best
// stays fast, as inode headers and small files do (adaptiveZstd): the
// 1M-small-file bench dump is 0.57x the size of dump | zstd -T2's. Restorer applies a chain itself (level 0 then incrementals, with
// deletions and renames, like restore -r); Verify decompresses and parses
// every record; VerifyDeep compares content with a source.
package backup
