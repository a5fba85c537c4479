package otherfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/fat12"
	"github.com/diskfs/go-diskfs/filesystem/fat16"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
	"github.com/diskfs/go-diskfs/filesystem/squashfs"
)

// Kind names a filesystem format.
type Kind string

// The formats read here.
const (
	FAT12    Kind = "fat12"
	FAT16    Kind = "fat16"
	FAT32    Kind = "fat32"
	Squashfs Kind = "squashfs"
	ISO9660  Kind = "iso9660"
)

// IsFAT reports whether k is one of the FAT variants.
func (k Kind) IsFAT() bool { return k == FAT12 || k == FAT16 || k == FAT32 }

// FAT boot sector (BIOS parameter block) fields, little-endian, at these
// byte offsets of the first sector. Only what sizes the filesystem is
// decoded here: go-diskfs reads the rest.
const (
	bpbBytesPerSector    = 0x0B // u16: 512, 1024, 2048 or 4096
	bpbSectorsPerCluster = 0x0D // u8: a power of two, 1..128
	bpbReservedSectors   = 0x0E // u16: sectors before the first FAT, >= 1
	bpbNumFATs           = 0x10 // u8: copies of the FAT, usually 2
	bpbRootEntries       = 0x11 // u16: 32-byte entries of the fixed root dir (0 on FAT32)
	bpbTotalSectors16    = 0x13 // u16: volume size in sectors, or 0 (then the u32 below)
	bpbSectorsPerFAT16   = 0x16 // u16: FAT size in sectors, or 0 on FAT32
	maxFATCopies         = 4
	bpbTotalSectors32    = 0x20 // u32
	bpbSectorsPerFAT32   = 0x24 // u32 (FAT32's extended BPB)
	bpbRootCluster32     = 0x2C // u32: first cluster of FAT32's root directory
	bootSignatureOffset  = 0x1FE
	bootSignature        = 0xAA55

	// The cluster counts that decide the FAT type (Microsoft's FAT
	// specification: the type follows from the count alone, whatever the
	// label or the BPB layout say).
	maxFAT12Clusters = 4084
	maxFAT16Clusters = 65524
)

// Squashfs superblock (little-endian, 96 bytes at offset 0).
const (
	sqMagic            = 0x73717368 // "hsqs"
	sqSuperblockSize   = 96
	sqInodeCount       = 4  // u32
	sqBlockSize        = 12 // u32: data block size, 4 KiB..1 MiB
	sqFragmentCount    = 16 // u32
	sqCompression      = 20 // u16: 1 gzip, 2 lzma, 3 lzo, 4 xz, 5 lz4, 6 zstd
	sqBlockLog         = 22 // u16: log2(block size)
	sqIDCount          = 26 // u16: entries of the uid/gid table
	sqVersionMajor     = 28 // u16: 4
	sqBytesUsed        = 40 // u64: length of the filesystem
	sqIDTableStart     = 48 // u64
	sqXattrTableStart  = 56 // u64, all ones when absent
	sqInodeTableStart  = 64 // u64
	sqDirTableStart    = 72 // u64
	sqFragTableStart   = 80 // u64, all ones when absent
	sqExportTableStart = 88 // u64, all ones when absent
	sqNone             = ^uint64(0)
)

// ISO 9660: volume descriptors start at sector 16 (2048-byte sectors);
// each begins with a type byte and "CD001".
const (
	isoSectorSize  = 2048
	isoVDStart     = 16 * isoSectorSize
	isoStdIDOffset = 1
)

// CorruptError is a panic inside go-diskfs, or a header that fails the
// checks made before handing the volume to it.
type CorruptError struct {
	Volume string // the volume's address
	Kind   Kind
	Op     string // what was being done ("open", "read directory x", ...)
	Detail string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s: %s filesystem is corrupt: %s: %s", e.vol(), e.Kind, e.Op, e.Detail)
}

func (e *CorruptError) vol() string {
	if e.Volume == "" {
		return "volume"
	}
	return "volume " + e.Volume
}

// Detect returns the format of the filesystem at the start of r, or ""
// when none of the formats read here is found.
func Detect(r io.ReaderAt, size int64) Kind {
	var b [512]byte
	if n, _ := r.ReadAt(b[:], 0); n == len(b) {
		if binary.LittleEndian.Uint32(b[0:]) == sqMagic {
			return Squashfs
		}
		if k, err := fatKind(b[:], size); err == nil {
			return k
		}
	}
	var vd [6]byte
	if n, _ := r.ReadAt(vd[:], isoVDStart); n == len(vd) && string(vd[isoStdIDOffset:]) == "CD001" {
		return ISO9660
	}
	return ""
}

// fatKind checks a FAT boot sector against the volume size and returns
// the FAT type from the cluster count.
func fatKind(b []byte, size int64) (Kind, error) {
	le := binary.LittleEndian
	if le.Uint16(b[bootSignatureOffset:]) != bootSignature {
		return "", fmt.Errorf("no boot signature 0x55AA at byte %#x", bootSignatureOffset)
	}
	if b[0] != 0xEB && b[0] != 0xE9 {
		return "", fmt.Errorf("no x86 jump at byte 0 (%#x)", b[0])
	}
	bps := int64(le.Uint16(b[bpbBytesPerSector:]))
	if bps != 512 && bps != 1024 && bps != 2048 && bps != 4096 {
		return "", fmt.Errorf("bytes per sector %d at byte %#x", bps, bpbBytesPerSector)
	}
	spc := int64(b[bpbSectorsPerCluster])
	if spc == 0 || bits.OnesCount64(uint64(spc)) != 1 {
		return "", fmt.Errorf("sectors per cluster %d at byte %#x", spc, bpbSectorsPerCluster)
	}
	rsvd := int64(le.Uint16(b[bpbReservedSectors:]))
	nfats := int64(b[bpbNumFATs])
	if rsvd == 0 || nfats == 0 {
		return "", fmt.Errorf("reserved sectors %d, FAT copies %d", rsvd, nfats)
	}
	rootSecs := (int64(le.Uint16(b[bpbRootEntries:]))*32 + bps - 1) / bps
	fatSz := int64(le.Uint16(b[bpbSectorsPerFAT16:]))
	if fatSz == 0 {
		fatSz = int64(le.Uint32(b[bpbSectorsPerFAT32:]))
	}
	tot := int64(le.Uint16(b[bpbTotalSectors16:]))
	if tot == 0 {
		tot = int64(le.Uint32(b[bpbTotalSectors32:]))
	}
	meta := rsvd + nfats*fatSz + rootSecs
	if fatSz == 0 || meta*bps > size || meta >= tot {
		return "", fmt.Errorf("FAT layout (%d reserved + %d FATs of %d sectors + %d root sectors) does not fit the %d-sector filesystem or the %d-byte volume", rsvd, nfats, fatSz, rootSecs, tot, size)
	}
	if nfats > maxFATCopies {
		return "", fmt.Errorf("%d FAT copies at byte %#x (at most %d)", nfats, bpbNumFATs, maxFATCopies)
	}
	clusters := (tot - meta) / spc
	kind, entryBits := FAT32, int64(32)
	switch {
	case clusters <= maxFAT12Clusters:
		kind, entryBits = FAT12, 12
	case clusters <= maxFAT16Clusters:
		kind, entryBits = FAT16, 16
	default:
		if le.Uint16(b[bpbRootEntries:]) != 0 {
			return "", errors.New("FAT32 cluster count with a fixed root directory")
		}
		// FAT32 keeps its FAT size in the 32-bit field only (go-diskfs
		// reads that one); a 16-bit size besides is damage.
		if v := le.Uint16(b[bpbSectorsPerFAT16:]); v != 0 {
			return "", fmt.Errorf("FAT32 cluster count with a 16-bit FAT size (%d at byte %#x)", v, bpbSectorsPerFAT16)
		}
	}
	// go-diskfs reads and compares every copy of the FAT whole: a FAT
	// far larger than the clusters need (mkfs rounds up a little) is
	// damage, and would cost time and memory in proportion.
	need := ((clusters+2)*entryBits/8 + bps - 1) / bps
	if fatSz > 2*need+16 {
		return "", fmt.Errorf("FAT of %d sectors at byte %#x for %d clusters (which need %d)", fatSz, bpbSectorsPerFAT16, clusters, need)
	}
	return kind, nil
}

// checkSquashfs checks the superblock fields that size go-diskfs's
// reads and allocations.
func checkSquashfs(b []byte, size int64) error {
	le := binary.LittleEndian
	if le.Uint32(b) != sqMagic {
		return errors.New("no squashfs magic at byte 0")
	}
	if v := le.Uint16(b[sqVersionMajor:]); v != 4 {
		return fmt.Errorf("squashfs version %d at byte %#x (only 4 is read)", v, sqVersionMajor)
	}
	// go-diskfs reads gzip, xz, lz4 and zstd. Its LZO decoder loops
	// forever on some damaged blocks (FuzzOtherFS found one with an empty
	// metadata block), and it has no lzma: both are refused here.
	switch c := le.Uint16(b[sqCompression:]); c {
	case 1, 4, 5, 6:
	case 2, 3:
		return fmt.Errorf("%s-compressed squashfs (compression %d at byte %#x) is not read", map[uint16]string{2: "lzma", 3: "LZO"}[c], c, sqCompression)
	default:
		return fmt.Errorf("unknown squashfs compression %d at byte %#x", c, sqCompression)
	}
	bs := le.Uint32(b[sqBlockSize:])
	if bs < 4096 || bs > 1<<20 || bits.OnesCount32(bs) != 1 || 1<<le.Uint16(b[sqBlockLog:]) != bs {
		return fmt.Errorf("block size %d / log %d at byte %#x", bs, le.Uint16(b[sqBlockLog:]), sqBlockSize)
	}
	used := le.Uint64(b[sqBytesUsed:])
	if used < sqSuperblockSize || used > uint64(size) {
		return fmt.Errorf("bytes_used %d at byte %#x is beyond the %d-byte volume", used, sqBytesUsed, size)
	}
	for _, f := range []struct {
		off      int
		optional bool
	}{{sqIDTableStart, false}, {sqInodeTableStart, false}, {sqDirTableStart, false}, {sqXattrTableStart, true}, {sqFragTableStart, true}, {sqExportTableStart, true}} {
		v := le.Uint64(b[f.off:])
		if f.optional && v == sqNone {
			continue
		}
		if v >= used {
			return fmt.Errorf("table start %d at byte %#x is past bytes_used %d", v, f.off, used)
		}
	}
	// Each fragment entry is 16 bytes of the fragment table, each id 4
	// bytes: neither table can be larger than the filesystem.
	if fc := uint64(le.Uint32(b[sqFragmentCount:])); fc*16 > used {
		return fmt.Errorf("fragment count %d at byte %#x does not fit in %d bytes", fc, sqFragmentCount, used)
	}
	if ic := le.Uint16(b[sqIDCount:]); ic == 0 {
		return fmt.Errorf("no uid/gid table entries (byte %#x)", sqIDCount)
	}
	if n := uint64(le.Uint32(b[sqInodeCount:])); n == 0 || n > used {
		return fmt.Errorf("inode count %d at byte %#x", n, sqInodeCount)
	}
	return nil
}

// Open opens the filesystem on r (size bytes; offset 0 is the start of
// the filesystem). volume is the volume's address, used in errors.
func Open(r io.ReaderAt, size int64, volume string) (*FS, error) {
	k := Detect(r, size)
	if k == "" {
		return nil, fmt.Errorf("%s: no FAT, squashfs or ISO 9660 filesystem found", volName(volume))
	}
	return OpenKind(r, size, k, volume)
}

func volName(v string) string {
	if v == "" {
		return "volume"
	}
	return "volume " + v
}

// OpenKind opens the filesystem on r as format k.
func OpenKind(r io.ReaderAt, size int64, k Kind, volume string) (fsys *FS, err error) {
	st := &storage{r: r, size: size}
	fsys = &FS{kind: k, volume: volume, size: size, raw: st, cache: map[string]*dirCache{}}
	var head [512]byte
	if n, _ := r.ReadAt(head[:], 0); n < len(head) && k != ISO9660 {
		return nil, fsys.corrupt("open", fmt.Sprintf("volume too small (%d bytes)", size))
	}
	switch {
	case k.IsFAT():
		got, err := fatKind(head[:], size)
		if err != nil {
			return nil, fsys.corrupt("open", err.Error())
		}
		if got != k {
			return nil, fsys.corrupt("open", fmt.Sprintf("cluster count says %s, not %s", got, k))
		}
		fsys.rootID = 1 // FAT12/16: the fixed root, "cluster 0"
		if k == FAT32 {
			fsys.rootID = uint64(binary.LittleEndian.Uint32(head[bpbRootCluster32:])) + 1
		}
	case k == Squashfs:
		if err := checkSquashfs(head[:], size); err != nil {
			return nil, fsys.corrupt("open", err.Error())
		}
	case k == ISO9660:
		if err := checkISO(r, size); err != nil {
			return nil, fsys.corrupt("open", err.Error())
		}
	default:
		return nil, fmt.Errorf("%s: unknown filesystem kind %q", volName(volume), k)
	}
	err = fsys.safe("open", func() error {
		var (
			d   filesystem.FileSystem
			err error
		)
		switch k {
		case FAT12:
			d, err = fat12.Read(st, size, 0, 0)
		case FAT16:
			d, err = fat16.Read(st, size, 0, 0)
		case FAT32:
			d, err = fat32.Read(st, min(size, fat32.Fat32MaxSize), 0, 512)
		case Squashfs:
			d, err = squashfs.Read(st, size, 0, 0)
		case ISO9660:
			d, err = iso9660.Read(st, size, 0, isoSectorSize)
		}
		if err != nil {
			return err
		}
		fsys.d = d
		return nil
	})
	if err != nil {
		return nil, err
	}
	return fsys, nil
}
