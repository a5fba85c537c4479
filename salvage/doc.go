// Package salvage gets files out of a damaged ext2/3/4 filesystem, and
// says exactly what did not come out. RunVFS and RunVFSTar do the same,
// with the same Report, through the vfs interface alone for a reader
// whose driver declares vfs.Driver.Salvage (XFS; see vfs.go).
//
// # Use
//
//	rep, err := salvage.Run(ctx, vol, size, "/srv/rescue", salvage.Options{
//		Extract: extract.Options{Owner: root, Devices: root, Xattrs: true, Progress: fn},
//	})
//	// err: nothing could be done (no ext superblock anywhere, DEST not
//	// writable, ctx cancelled). Everything else is in rep:
//	fmt.Print(rep.Summary(50))
//	if rep.Partial() { os.Exit(3) }
//
// Run writes the files below DEST through the extraction engine (package
// extract: openat, no-follow, never outside DEST), then
// DEST/salvage-report.json (the Report) and DEST/salvage-report.txt
// (Report.Summary). RunView does the same for a filesystem already opened
// by journal.Open or Open (with ext.Options{Salvage: true}: what the
// CLI and the TUI have in hand). RunFS takes a bare
// *ext.FS (open it with ext.Options{Salvage: true}) and writes no report
// files (Report.WriteFiles does); RunTar writes a tar stream instead of a
// directory.
//
// # What it does
//
//  1. Opens tolerantly: ext falls back to a backup superblock, replaces
//     insane group descriptors by a backup copy's or by the standard
//     mke2fs locations computed from the geometry
//     (Options.GuessGroupDescriptors forces that for all groups), and in
//     Salvage mode reads damaged block maps in part, deep extent trees,
//     absurd i_size (cut at the last mapped block, as e2fsck does) and
//     encrypted inodes raw. A journal that needs recovery is replayed in
//     memory (package journal) unless Options.NoJournal.
//  2. Walks from the root, depth first, never stopping on an error. Each
//     inode reached for the first time is examined: inode checksum
//     (metadata_csum), block map damage (what it maps is extracted, the
//     rest reads as zeros), content past the end of the volume, blocks
//     already claimed by another file or by filesystem metadata
//     (cross-linked; the first claimers are found in a second pass, like
//     e2fsck's pass 1B). A directory reached twice (a loop, a directory
//     hard link) is extracted once. Names that cannot exist on the host
//     ('/' or NUL inside) are extracted as "#<inode>".
//  3. Scans every inode table for in-use inodes that the walk did not
//     reach (links_count > 0, a valid type, a good checksum or the inode
//     bitmap's word, content that looks like its type; see orphans.go)
//     and extracts them as DEST/#orphans/<inode>, a directory with its
//     subtree, as e2fsck would link them into lost+found.
//
// # The report
//
// Totals (files recovered, partial, suspect, lost; directories; orphans;
// cycles; cross-linked blocks; bytes recovered and lost), where the
// superblock and descriptors came from and whether the journal was
// replayed, then an Entry for every file or directory that was lost,
// recovered in part, is suspect or was unreachable: its path (or
// #orphans/<inode>), inode, Reasons (bad-block, checksum, unreachable,
// truncated, cycle, cross-linked, bad-inode, encrypted, renamed, refused)
// and bytes recovered of its size.
//
// # Bounds
//
// Time and memory are bounded by the filesystem's size: a bit per inode
// (reached, directory done) and per block (claimed; not tracked above
// 2^31 blocks), one directory's entries per level of the walk (depth at
// most 512), the report's entries (all kept up to 2^20, Options.MaxEntries
// written), and ext's own bounds on every structure it parses.
package salvage
