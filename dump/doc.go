// Package dump writes and reads dump(8) streams in the format of Linux dump
// 0.4b47 (Debian's dump package), so that stock restore(8) can list,
// extract and incrementally apply what we write, and so that we can verify
// and restore streams written by either.
//
// # Format
//
// A stream is a sequence of 1024-byte records (TP_BSIZE). Headers are
// struct s_spcl (see Header): little endian, c_magic NFS_MAGIC (60012), and
// a c_checksum chosen so that the record's 256 32-bit words add up to
// CHECKSUM (84446). Every header carries the dump date (c_date), the base
// date (c_ddate), the level, label, filesystem, device and host names, and
// c_flags DR_NEWINODEFMT; the inode headers also carry a copy of the inode
// (struct new_bsd_inode, see Dinode). A stream is:
//
//	TS_TAPE   volume header (c_count 1, empty c_addr; flags add DR_NEWHEADER)
//	TS_CLRI   bitmap of the inodes in use, c_count records follow
//	TS_BITS   bitmap of the inodes dumped, c_count records follow
//	TS_INODE  each dumped directory, in inode order, as BSD directory entries
//	TS_INODE  each other dumped inode, in inode order
//	TS_END    repeated up to a multiple of NTREC (10) records
//
// A file's TS_INODE header has up to 512 c_addr slots, one per 1 KiB of the
// file: 1 means a data record follows, 0 means a hole (nothing follows).
// Longer files continue with TS_ADDR headers. Symbolic link targets are the
// data of the link (fast links are also copied into di_db, as dump does).
// Devices keep their number in di_db[0]; FIFOs, sockets and devices have
// no data. Extended attributes follow the data as separate TS_INODE
// records flagged DR_EXTATTRIBUTES (see xattr.go). The bitmaps number
// inodes from 1: inode i is bit (i-1)%8 of byte (i-1)/8.
//
// # Writing
//
// Write(w, src, opts) reads a filesystem through the Source interface
// (FSSource over any vfs.FS: ext, XFS, FAT, squashfs, ISO 9660; or
// DirSource for a directory tree) and follows dump's passes. FSSource
// gives restore the numbers it needs: the root as 2, 32-bit numbers, and
// each file's own on-disk number where the format has stable ones (so a
// level chain matches files); see FSSource for the renumbering rules.
//
//   - Pass I walks the tree from the root (inode 2). Every reachable inode
//     is in use (TS_CLRI). At level 0 every inode is dumped; at level N an
//     inode is dumped when its ctime or its mtime, in whole seconds, is at
//     or after BaseDate (dump's CHANGEDSINCE, "ctime >= c_ddate || mtime >=
//     c_ddate"; mtime never exceeds ctime on Linux, so in practice this is
//     the ctime test). Like 0.4b47, an inode whose only change is its
//     metadata (chmod, chown, link count) is dumped in full: we measured
//     stock dump writing a chmod'ed file's data at level 1, not a
//     DR_METAONLY header.
//   - Pass II adds every directory that contains, directly, a dumped inode,
//     repeated up the tree (dump's mapdirs loop reaches the same fixed
//     point). So an incremental dump holds the changed inodes plus every
//     directory on the path to them, and a directory whose entries changed
//     (a delete, a rename) is dumped because its own ctime changed. The
//     root is always dumped. restore -r uses the TS_CLRI map to delete
//     inodes that are no longer in use and the dumped directories to apply
//     renames. Unchanged directories elsewhere are not on the tape.
//   - The incremental shortcut: pass II as dump does it reads every
//     directory, which on a large filesystem with few changes is most of
//     the work. When the Source is also an InodeScanner whose scan listed
//     every inode, a ParentSource that says the filesystem is consistent
//     (ext: clean, or journaled; a live snapshot is), and no nodump inode
//     is in the way, the used map is the scan's, and only the directories
//     naming a changed non-directory are read: each changed inode's link
//     count says how many entries to find, the directory with the nearest
//     lower inode number is read first (where the allocator places a new
//     file), the others in inode order only while links remain unfound;
//     ancestors come from "..". The stream is the full walk's, byte for
//     byte (TestIncrementalShortcut); damage met on the way (an unreadable
//     "..", a loop) falls back to the full walk. Stats.DirsRead says how
//     many directories were read.
//   - Passes III and IV write the directories, then the rest.
//
// Holes and unwritten extents become c_addr slots of 0: their blocks are
// never read, so no stale disk data can leak into the stream (stock dump
// copies unwritten extents' blocks). Nothing is held in memory beyond the
// three inode bitmaps, the directory parent map, one directory listing at a
// time and a 512 KiB data buffer.
//
// Deliberate differences from stock dump, all read correctly by restore:
//
//   - Inode flags are masked to the user-modifiable set (FlagsUserModifiable);
//     layout flags such as EXT4_EXTENTS_FL are not passed to restore's
//     FS_IOC_SETFLAGS. restore -C then reports "flags changed" on ext4
//     targets, which is expected.
//   - Device numbers go into di_db[0] in the "new" Linux encoding, which
//     equals the old 8:8 one for small numbers; stock dump copies i_block
//     raw and restore recreates large device numbers as 0:0.
//   - Timestamps carry microseconds (restore passes them to utimes).
//   - File data is written in 1 KiB units up to the file size, not in whole
//     filesystem blocks.
//   - Extended attributes are written in the in-inode layout
//     (EXT2_XATTR_MAGIC2), split over several EA records when they exceed
//     restore's 4096-byte XATTR_MAXSIZE; names restore cannot represent
//     (e.g. "system.data") are skipped with a warning in Stats.
//
// The dumpdates bookkeeping (which base date a level uses) belongs to the
// backup pipeline; DumpDate, DumpID and BaseFor fix its format and rule,
// keyed by a stable identity rather than a device path.
//
// # Reading
//
// NewReader(r) reads TS_TAPE, TS_CLRI and TS_BITS from an io.Reader and
// Next returns the inodes in stream order, with metadata, directory
// entries (Entry.Dirents) and symlink targets (Entry.Target). A regular
// file's data is streamed with Read (holes read as zeros) or Segments
// (only the present runs, so holes can be recreated); Xattrs returns the
// attributes that follow the data. Paths resolves names from the
// directories read so far. Every header's magic and checksum is checked;
// errors are *FormatError with the record number and byte offset.
// Allocations are bounded (MaxDirSize, MaxSymlinkSize, MaxEASize, bitmaps
// grow only as records arrive), so hostile input cannot exhaust memory.
// Compressed (dump -z), multi-volume, old-format and big-endian tapes are
// refused.
package dump
