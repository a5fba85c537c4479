// Package ext reads ext2, ext3 and ext4 filesystems from an io.ReaderAt,
// without the kernel, tolerating damage.
//
// # Opening
//
// Open takes any io.ReaderAt and its size (see Example). Open reads the superblock at byte 1024. When it is missing or corrupt,
// Open looks for a backup superblock (groups 1, 3, 5, 7, 9, 25, 27, 49, ...
// with sparse_super, trying block sizes 1 KiB to 64 KiB with the default
// group size, then group 1 with any group size) and records a Note saying
// which one it used; Options.SuperblockOffset picks one explicitly. A
// filesystem with a single block group has no backup. The group descriptors
// (32- or 64-byte, classic or meta_bg layout) are read once and cached.
//
// Superblock gives the label, UUID, feature names (CompatFeatures,
// IncompatFeatures, ROCompatFeatures, as dumpe2fs spells them), state
// (Clean), NeedsRecovery, the journal inode/device/UUID, block size and
// counts, and the created/mounted/written times and last mount point.
// Groups returns the group descriptors.
//
// # Damaged group descriptors
//
// Every descriptor is checked as e2fsprogs' ext2fs_check_desc does
// (bitmaps and inode table inside the filesystem, and inside their group
// without flex_bg; not over the superblock or the table itself; not over
// each other). An insane descriptor, or, when most fail their checksum,
// each one that does, is replaced by the same descriptor from a backup
// copy of the table (after the superblock backups of groups 1, 3, 5, ...;
// meta_bg keeps its copies in the second and last group of each meta
// group) where that copy is sane, else by the standard location mke2fs
// gives it, computed from the superblock alone (guess.go explains the
// layout; TestStandardLayoutMatchesMke2fs checks it against mke2fs).
// Options.GuessGroupDescriptors computes all of them. FS.DescSource says
// where each came from, and a Note says what was replaced.
//
// # Salvage mode
//
// Options.Salvage reads what a strict reader refuses: a file with a
// damaged block map (what can be mapped is read, the rest is zeros), an
// i_size beyond what the map can address (cut at the last mapped block,
// as e2fsck repairs it), extent trees deeper than 5 levels, and encrypted
// inodes (raw ciphertext). Block map walks always go on past a bad extent
// or pointer and return everything they could map with the first error.
// MapInode, VerifyInode, InodeBitmap and ContentSize serve the salvage
// package's scans.
//
// # Damage is data
//
// Nothing in this package panics on bad input. Every loop and allocation is
// bounded by the filesystem's own geometry (block count, block size, inode
// count): a corrupt i_size of 2^63 does not allocate, an extent tree deeper
// than 5 levels or with a loop is an error, an indirect-block walk never
// visits more blocks than the filesystem has.
//
// Structural damage is returned as a *CorruptError naming the inode and the
// byte offset on disk, e.g.
//
//	ext: inode 1234: extent header at offset 0x1a2b000: bad magic 0x0000
//
// Checksum mismatches (metadata_csum crc32c, gdt_csum crc16) do not stop
// reading: they are recorded as Notes (FS.Notes) wrapping a *ChecksumError,
// and the data is returned anyway. Encrypted inodes are reported with
// ErrEncrypted (no decryption is attempted); casefolded directories are
// readable and flagged by Inode.Flags&FlagCasefold.
//
// # Reading
//
// The native API is by inode number: Lookup (lstat) and LookupFollow,
// Inode (mode, uid/gid, ns times, flags, size, ...), OpenInode (a *File:
// io.ReaderAt and Size, holes read as zeros, DataRanges), ReadDirInode
// (including "." and ".."), Readlink, Xattrs, BlockMap (the []Extent, for
// sparse copies and dump(8)) and MetadataBlocks (indirect or extent-tree
// blocks). Example and ExampleFS_OpenInode show them at work; NewVFS
// (ExampleNewVFS) is the same filesystem as a vfs.FS, what every consumer
// of the project uses.
//
// Inode carries the raw mode, 32-bit uid/gid, size, link count, i_blocks
// in 512-byte units (huge_file honoured), flags, generation, the xattr block,
// the four times with nanoseconds and the extra epoch bits (Crtime when the
// inode is large enough), and the raw i_block; Rdev decodes device numbers.
//
// ReadDirInode and Xattrs return what they could read together with the
// first error, so salvage can keep the good part of a damaged directory.
// Name lookups scan directories linearly (no htree hash search); inodes are
// read through a small cache of inode-table chunks.
// Holes and unwritten (uninit) extents always read as zeros, never as the
// stale bytes that may sit in the blocks, and bytes past the end of the
// block map but inside i_size read as zeros too. File.ReadAt reads each
// physically contiguous run with a single ReadAt on the underlying reader.
//
// # io/fs
//
// *FS implements fs.FS, fs.ReadDirFS, fs.StatFS and fs.ReadLinkFS. Names
// are slash separated and unrooted ("etc/passwd", "." for the root) as
// io/fs requires. Open and Stat follow symlinks, but only inside the
// filesystem: an absolute target is resolved from the filesystem's root,
// never from the host's, and at most 40 links are followed. Lstat and
// ReadLink (and the native Lookup) do not follow a final symlink.
// FileInfo.Sys returns the *Inode. ReadDir omits "." and "..".
//
// Directories are read linearly, block by block: htree (dir_index) index
// blocks look like empty directory entries and are skipped, so an htree
// directory reads like a plain one. Inline-data files and directories (data
// in i_block and the system.data xattr) are supported.
//
// # Not supported
//
// Journal replay (package journal does it in memory; the journal inode is
// readable with OpenInode, and Superblock.NeedsRecovery says when replay
// would matter), compression,
// decryption, verity verification, and htree hash lookups. Lookup compares
// names byte for byte, also in casefolded directories.
package ext
