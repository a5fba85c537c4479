// Package partition reads the partition table of a disk image: an MBR ("dos"
// label) with its whole chain of extended boot records, or a GUID partition
// table ("gpt") with CRC checks and a fallback to the backup header. It only
// reads; it never writes.
//
// # API
//
// Read reads a disk's table (ExampleRead shows it on the embedded demo;
// go doc lists the types).
//
// Read returns a *Table whose Partitions are listed and numbered the way Linux
// and sfdisk number them: MBR primaries keep their slot number 1..4, logical
// partitions inside the extended partition are numbered from 5 in chain order,
// and GPT partitions keep their entry-array slot number (index+1). The
// extended partition itself is listed too, with Container set, as sfdisk -d
// lists it. Type holds what sfdisk -J prints ("83", "5", "c" for MBR type
// bytes; the upper-case type GUID for GPT) and TypeName the name sfdisk gives
// it (sfdisk -T).
//
// Read returns an error wrapping ErrNoTable when the first sector carries
// neither a usable MBR nor a GPT: no 0x55AA signature, or a 0x55AA sector that
// is really the boot sector of a bare FAT/NTFS/exFAT filesystem, or entries
// whose boot flag is neither 0x00 nor 0x80 (the checks libblkid makes). Any
// other error means a table is there but cannot be read (for example a GPT
// whose primary and backup headers are both damaged); the error says what is
// wrong and at which byte offset.
//
// # Damage is reported, not fatal
//
// A table that is readable but odd comes back with Notes: on the Table for
// table-wide findings (primary GPT header damaged and the backup used, backup
// damaged, EBR chain loops, stale GPT behind an MBR, hybrid MBR, ...) and on
// each Partition for its own (extends past the end of the disk, overlaps
// another partition, lies outside the extended partition or outside the GPT's
// usable area). A partition whose range reaches past the end of the image has
// PastEnd set; its Start and Size are what the table says, so a reader must
// clamp to the image size.
//
// Every loop is bounded and every allocation is bounded by the image size and
// by fixed limits: at most MaxLogical logical partitions and MaxEBRs extended
// boot records are followed, and a GPT entry array larger than MaxEntryArray
// bytes is refused.
//
// # Sector size
//
// The logical sector size is detected from where the GPT header signature
// "EFI PART" is found: at byte 512 (LBA 1 of a 512-byte-sector disk) or at
// byte 4096 (LBA 1 of a 4096-byte-sector disk), or, when the primary header
// is gone, in the last 512- or 4096-byte sector (the backup header). A disk
// with only an MBR is taken to have 512-byte sectors unless Options.SectorSize
// says otherwise.
//
// # MBR and GPT together
//
// A GPT disk starts with a protective MBR: one entry of type 0xEE covering the
// disk. A hybrid MBR has the 0xEE entry plus ordinary entries that mirror some
// GPT partitions for legacy systems. Both are reported (Table.ProtectiveMBR,
// Table.HybridMBR, and the MBR entries in Table.MBR), and the GPT is the table
// that counts, as for sfdisk and the kernel. When a hybrid MBR's GPT cannot be
// read at all, the MBR entries are returned as a "dos" table with a note. An
// MBR without an 0xEE entry wins over a GPT header found behind it (a stale
// GPT left by an earlier label); a note says so.
package partition
