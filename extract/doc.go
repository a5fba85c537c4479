// Package extract copies files out of an ext2/3/4 filesystem (package ext)
// into a directory or a tar stream, keeping everything a backup needs:
// contents with their holes, modes (setuid, sticky), numeric owners,
// nanosecond atime/mtime, symlinks, hard links, FIFOs, device nodes and
// extended attributes. It is the engine behind `imgtool extract` and the
// TUI's extraction.
//
// Other filesystems go through the same engine and the same safety rules:
// the engine reads a Source (ids, ext.Inode metadata records, directory
// entries, symlink targets, xattrs, content with its data ranges).
// ExtSource adapts *ext.FS with no conversion; OtherSource adapts an
// otherfs.FS (FAT12/16/32, squashfs, ISO 9660), handing out ids as
// entries are met and pairing squashfs hard links by inode number. The
// *Source variants (RunSource, RunTarSource, NewDiskSource,
// NewTarSource, CountSource) take any Source; Run, RunTar, NewDisk,
// NewTar and Count keep taking *ext.FS.
//
// # Use
//
//	rep, err := extract.Run(ctx, fsys, []string{"/home"}, "/srv/restore/home", extract.Options{
//		Owner:    os.Geteuid() == 0,
//		Devices:  os.Geteuid() == 0,
//		Xattrs:   true,
//		Progress: func(p extract.Progress) { ... }, // from another goroutine
//		Count:    true,                             // fill in totals for an ETA
//	})
//	rep, err := extract.RunTar(ctx, fsys, []string{"/home"}, os.Stdout, opts)
//
// err is non-nil only for what stops the whole run (a source path that
// does not exist, DEST not writable, the tar stream broken, ctx
// cancelled). Everything that goes wrong with single entries is in the
// Report: a Problem per entry with its source path, inode, Kind (Refused,
// Lost, Damaged, Metadata) and reason; Report.Partial says whether the
// copy is incomplete (the CLI's exit code 3). Problems beyond MaxProblems
// are counted, not kept.
//
// For other walks (a salvage walker over orphan inodes, a TUI selection)
// create the Extractor and say where each inode goes:
//
//	x, err := extract.NewDisk(ctx, fsys, dest, opts) // or extract.NewTar(ctx, fsys, w, opts)
//	x.AddTree(ctx, []string{"home"}, "/home", ino) // a whole tree
//	x.Add(ctx, []string{"#lost", "#1234"}, "inode 1234", 1234)
//	rep, err := x.Close()
//
// Directories named on the way are created as needed (0700, no metadata);
// a directory inode added gets its metadata when the walk leaves it.
//
// # Safety
//
// Nothing is written outside DEST. Entry names that are empty, "." or
// "..", or contain '/' or NUL are refused and reported. Entries are created
// relative to open directory descriptors (openat family) and directories
// are opened O_NOFOLLOW, so a symlink extracted earlier is never followed
// by a later entry; files are created O_EXCL|O_NOFOLLOW; existing entries
// are replaced only with Options.Force, and directories never. Symlink
// targets are written verbatim and never resolved. The image is only read.
//
// # Fidelity and its limits
//
// Regular files are written with pwrite over the written extents only:
// holes and unwritten (preallocated) extents become holes, never stale
// data, and all-zero chunks are skipped too, so a copy never allocates
// more than the source. Times: atime and mtime to the nanosecond (ctime
// and crtime cannot be set by any API). Owners are numeric only. Device
// nodes need Options.Devices (root). Xattrs on symlinks and special
// files are set through /proc/self/fd. POSIX ACLs are converted from
// ext4's format to the kernel's. Tar output writes holes as zeros (see
// tar.go).
//
// # Speed and memory
//
// One goroutine walks the tree (reading directories and inodes, creating
// entries); Options.Workers goroutines (default 2) copy contents through
// ext.File, which reads each contiguous run with one ReadAt, in 1 MiB
// chunks. Memory is bounded: one directory's entries per level of the
// current path, a bounded job queue, and a map of inodes with several
// names (for hard links) and of directories seen (for loops).
package extract
