// Package xfs is imgtool's own read path for XFS (v4 and v5), written from
// the kernel's on-disk format headers (fs/xfs/libxfs/xfs_format.h,
// xfs_da_format.h, xfs_log_format.h) and the "XFS Algorithms & Data
// Structures" book. It implements vfs.FS and registers as the vfs.Driver
// for blkid type "xfs".
//
// What it reads:
//   - the superblock (v4 and v5, 512 B–64 KiB blocks, 512 B–32 KiB
//     sectors); when the primary is unusable a secondary superblock is
//     searched for and used, with a Note;
//   - inodes v1, v2 and v3 (bigtime, nrext64), data and attr forks in
//     local, extents and btree (bmbt of any depth) formats;
//   - directories in every form (shortform, block, leaf, node, btree), with
//     and without ftype, read by walking the data blocks (the hash index
//     is not needed to list a directory);
//   - files: holes and unwritten extents read as zeros and are left out of
//     DataRanges; reflinked extents read like any other; a realtime file
//     is an error (the realtime device is not read);
//   - symlinks (local and remote, v5 remote block headers), device nodes;
//   - xattrs (shortform, leaf, node, remote values) in getxattr(2) form:
//     no namespace flag is "user.", XFS_ATTR_ROOT "trusted.",
//     XFS_ATTR_SECURE "security.", and SGI_ACL_FILE / SGI_ACL_DEFAULT
//     become system.posix_acl_access / _default in the kernel's
//     posix_acl_xattr format; parent pointers are internal and left out;
//   - the inode btrees (for WalkInodes), with sparse inode chunks.
//
// Damage: every v5 CRC is checked and a mismatch is a vfs.Note naming the
// volume and byte offset; reading goes on. Structural damage is an error
// naming the volume, the inode and the byte offset, never a panic; every
// loop is bounded by the geometry (extent counts, btree depth, fork size).
//
// The log: a log that needs recovery is replayed in memory (log.go) into
// an overlay beneath the reader, as the kernel's recovery would apply it
// on mount, without writing the volume; OpenOptions.NoJournal reads the
// disk as it is (mount -o ro,norecovery).
package xfs
