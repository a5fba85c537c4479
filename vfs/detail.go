package vfs

// Extent maps Len bytes of a file, from byte Logical, to the volume bytes
// from Physical. Unwritten extents are allocated but read as zeros.
type Extent struct {
	Logical, Physical, Len int64
	Unwritten              bool
}

// ExtentMapper is implemented by filesystems with a block map that can be
// shown (ext, XFS): stat prints it, dump can address it.
type ExtentMapper interface {
	// Extents returns a file's mapping in logical order. On damage it
	// returns what it could map with the error.
	Extents(ino Ino) ([]Extent, error)
}

// Details are facts about an inode that only some formats have, for
// stat. Zero values mean "not stored".
type Details struct {
	// Format is the exact format variant ("ext4", "fat32", "squashfs").
	Format string
	// Offset is the byte offset on the volume of the on-disk inode (or
	// the directory record that stands for it), -1 when unknown.
	Offset int64
	// ShortName is FAT's 8.3 name.
	ShortName string
	// XattrBlock is the block number of ext's external xattr block.
	XattrBlock uint64
}

// Detailer is implemented by filesystems that can say more about an inode
// than Stat does.
type Detailer interface {
	Details(ino Ino) (Details, error)
}

// flagNames names the Stat.Flags bits as chattr/lsattr and debugfs do.
var flagNames = []struct {
	bit  uint32
	name string
}{
	{FlagSecrm, "secrm"}, {FlagUnrm, "unrm"}, {FlagCompr, "compr"}, {FlagSync, "sync"},
	{FlagImmutable, "immutable"}, {FlagAppend, "append"}, {FlagNodump, "nodump"},
	{FlagNoatime, "noatime"}, {0x800, "encrypt"}, {0x1000, "index"},
	{0x4000, "journal_data"}, {0x40000, "huge_file"}, {0x80000, "extents"},
	{0x100000, "verity"}, {0x200000, "ea_inode"}, {0x10000000, "inline_data"},
	{FlagProjinher, "projinherit"}, {0x40000000, "casefold"},
}

// FlagNames names the bits set in flags (Stat.Flags, ext2 encoding).
func FlagNames(flags uint32) []string {
	var out []string
	for _, f := range flagNames {
		if flags&f.bit != 0 {
			out = append(out, f.name)
		}
	}
	return out
}
