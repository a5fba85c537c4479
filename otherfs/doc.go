// Package otherfs reads the filesystems imgtool does not parse itself —
// FAT12/16/32 (EFI system partitions, USB sticks), squashfs and ISO 9660
// (with Rock Ridge and Joliet) — through github.com/diskfs/go-diskfs's
// readers, behind the same io.ReaderAt + size convention as the rest of
// imgtool, so a filesystem is read at any offset in an image, inside a
// partition or an LV.
//
// # Use
//
//	fsys, err := otherfs.Open(r, size, "p1")      // r: the volume, offset 0 = filesystem start
//	ents, err := fsys.ReadDir("EFI/BOOT")          // io/fs names: no leading '/', "." is the root
//	st, err := fsys.Lstat("links/to-readme")       // *otherfs.Stat in FileInfo.Sys()
//	f, err := fsys.Open("EFI/BOOT/BOOTX64.EFI")    // follows symlinks inside the filesystem
//
// FS implements fs.FS, fs.ReadDirFS, fs.StatFS and fs.ReadLinkFS. The
// metadata each format keeps is in *Stat (FileInfo.Sys()):
//
//	             names          modes        owners  mtime        symlinks  hard links
//	FAT12/16/32  long (VFAT)    no (0755/0644) no    2 s, local   no        no
//	squashfs     as stored      rwx only (1) yes     1 s          yes       yes (inode number)
//	ISO 9660 RR  Rock Ridge     yes          yes     1 s (2)      yes       no (3)
//
// (1) go-diskfs drops the setuid, setgid and sticky bits of squashfs inodes.
// (2) the directory record's recording time, which xorriso sets to mtime.
// (3) Rock Ridge serial numbers are reported (Stat.Ino) but not used to
// pair names.
//
// # Hostile input
//
// go-diskfs was written for images its caller made; on damaged or hostile
// bytes it may panic (index out of range, nil dereference) or allocate
// what a header field asks for. Every call into it is wrapped: a panic
// becomes an error that names the volume and says the filesystem is
// corrupt, and the headers that size go-diskfs's allocations (the FAT BPB,
// the squashfs superblock) are checked against the volume size first. The
// adapter hands go-diskfs a read-only view: a write attempt fails.
package otherfs
