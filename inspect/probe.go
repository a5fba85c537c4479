package inspect

import (
	"bytes"
	"github.com/imgtool/imgtool/internal/zero"
	"github.com/imgtool/imgtool/xfs"

	"encoding/binary"
	"fmt"
	"github.com/imgtool/imgtool/drbd"
	"io"
	"strings"
	"unicode/utf16"
)

// Signature is what a probe found at the start of a volume. Type uses
// blkid's names (ext4, LVM2_member, swap, vfat, ...), so output can be
// compared with `blkid -p`.
type Signature struct {
	Type    string            `json:"type"`
	Version string            `json:"version,omitempty"`
	Label   string            `json:"label,omitempty"`
	UUID    string            `json:"uuid,omitempty"`
	Info    map[string]string `json:"info,omitempty"`
	Notes   []string          `json:"notes,omitempty"`
}

// probeFunc looks for one signature; it returns nil when absent.
type probeFunc func(r io.ReaderAt, size int64) *Signature

// probes run in order; the first match wins. Container and RAID
// signatures come first (they wrap other content), then filesystems, then
// swap. Partition tables are tried by the caller only when none match.
var probes = []struct {
	name string
	fn   probeFunc
}{
	// MD first: a 0.90/1.0 member of a raid1 also shows its content
	// (an LVM label, a filesystem) at its start, as blkid knows.
	{"linux_raid_member", probeMD},
	{"LVM2_member", probeLVM},
	{"crypto_LUKS", probeLUKS},
	{"drbd", probeDRBD},
	{"ext", probeExt},
	{"xfs", probeXFS},
	{"btrfs", probeBtrfs},
	{"squashfs", probeSquashfs},
	{"iso9660", probeISO},
	{"exfat", probeExFAT},
	{"ntfs", probeNTFS},
	{"vfat", probeFAT},
	{"swap", probeSwap},
}

// Probe identifies the content of a volume, or returns nil.
func Probe(r io.ReaderAt, size int64) *Signature {
	for _, p := range probes {
		if s := p.fn(r, size); s != nil {
			return s
		}
	}
	return nil
}

// readAt reads n bytes at off, or returns nil if the volume is too short
// or the read fails (a probe treats that as "not this type").
func readAt(r io.ReaderAt, size, off int64, n int) []byte {
	if off < 0 || off+int64(n) > size {
		return nil
	}
	b := make([]byte, n)
	if _, err := r.ReadAt(b, off); err != nil && err != io.EOF {
		return nil
	}
	return b
}

func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimRight(string(b), " ")
}

func uuidString(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

var le = binary.LittleEndian
var be = binary.BigEndian

// --- LVM2 ------------------------------------------------------------------

// probeLVM finds "LABELONE" in one of the first four sectors with type
// "LVM2 001" (lib/label/label.h); the PV UUID follows the label header.
func probeLVM(r io.ReaderAt, size int64) *Signature {
	b := readAt(r, size, 0, 4*512)
	if b == nil {
		return nil
	}
	for s := 0; s < 4; s++ {
		sec := b[s*512 : (s+1)*512]
		if string(sec[0:8]) != "LABELONE" || string(sec[24:32]) != "LVM2 001" {
			continue
		}
		if le.Uint64(sec[8:16]) != uint64(s) {
			continue
		}
		off := le.Uint32(sec[20:24]) // offset of the pv_header within the sector
		if off < 32 || off+32 > 512 {
			continue
		}
		id := string(sec[off : off+32])
		return &Signature{Type: "LVM2_member", Version: "LVM2 001", UUID: lvmUUID(id)}
	}
	return nil
}

// lvmUUID formats a 32-character LVM id as LVM prints it: 6-4-4-4-4-4-6.
func lvmUUID(id string) string {
	if len(id) != 32 {
		return id
	}
	parts := []int{6, 4, 4, 4, 4, 4, 6}
	var sb strings.Builder
	i := 0
	for n, p := range parts {
		if n > 0 {
			sb.WriteByte('-')
		}
		sb.WriteString(id[i : i+p])
		i += p
	}
	return sb.String()
}

// --- LUKS ------------------------------------------------------------------

func probeLUKS(r io.ReaderAt, size int64) *Signature {
	b := readAt(r, size, 0, 512)
	if b == nil || string(b[0:6]) != "LUKS\xba\xbe" {
		return nil
	}
	v := be.Uint16(b[6:8])
	s := &Signature{Type: "crypto_LUKS", Version: fmt.Sprint(v), UUID: cstr(b[168:208])}
	if v == 2 {
		s.Label = cstr(b[24:72])
	}
	s.Notes = []string{"encrypted: not readable without the key"}
	return s
}

// --- MD RAID ---------------------------------------------------------------

const mdMagic = 0xa92b4efc

func probeMD(r io.ReaderAt, size int64) *Signature {
	// v1.1 at 0, v1.2 at 4 KiB, v1.0 at the end (8 KiB from the end,
	// 4 KiB aligned).
	for _, c := range []struct {
		off int64
		ver string
	}{{0, "1.1"}, {4096, "1.2"}, {((size - 8192) &^ 4095), "1.0"}} {
		b := readAt(r, size, c.off, 256)
		if b == nil || le.Uint32(b[0:4]) != mdMagic || le.Uint32(b[4:8]) != 1 {
			continue
		}
		return &Signature{Type: "linux_raid_member", Version: c.ver, UUID: uuidString(b[16:32]),
			Label: cstr(b[32:64]), Info: map[string]string{"level": fmt.Sprint(int32(le.Uint32(b[72:76])))}}
	}
	// v0.90: 64 KiB aligned, 64 KiB from the end.
	if size >= 128<<10 {
		off := (size &^ (64<<10 - 1)) - 64<<10
		if b := readAt(r, size, off, 256); b != nil && le.Uint32(b[0:4]) == mdMagic && le.Uint32(b[4:8]) == 0 {
			// blkid prints the four set_uuid words as host-order numbers.
			u := make([]byte, 16)
			for i, w := range []int{5, 13, 14, 15} {
				be.PutUint32(u[4*i:], le.Uint32(b[4*w:]))
			}
			return &Signature{Type: "linux_raid_member", Version: "0.90.0", UUID: uuidString(u)}
		}
	}
	return nil
}

// --- DRBD ------------------------------------------------------------------

// probeDRBD finds DRBD internal metadata (v08/v09) in the last 4 KiB block
// of the backing device, through the drbd package.
func probeDRBD(r io.ReaderAt, size int64) *Signature {
	m, err := drbd.Read(r, size)
	if err != nil {
		return nil
	}
	return &Signature{Type: "drbd", Version: m.Version, UUID: fmt.Sprintf("%016X", m.DeviceUUID)}
}

// --- ext2/3/4 ----------------------------------------------------------------

const (
	extMagic = 0xEF53

	extCompatHasJournal    = 0x0004
	extIncompatFiletype    = 0x0002
	extIncompatRecover     = 0x0004
	extIncompatJournalDev  = 0x0008
	extIncompatMetaBG      = 0x0010
	extROCompatSparseSuper = 0x0001
	extROCompatLargeFile   = 0x0002
	extROCompatBtreeDir    = 0x0004
	ext2ROCompatSupported  = extROCompatSparseSuper | extROCompatLargeFile | extROCompatBtreeDir
	ext2IncompatSupported  = extIncompatFiletype | extIncompatMetaBG
	ext3IncompatSupported  = extIncompatFiletype | extIncompatRecover | extIncompatMetaBG
	extFlagsTestFilesys    = 0x0004
)

// probeExt follows blkid's classification: jbd for an external journal,
// ext2 without a journal and without features ext2 lacks, ext3 with a
// journal and nothing newer, otherwise ext4.
func probeExt(r io.ReaderAt, size int64) *Signature {
	sb := readAt(r, size, 1024, 1024)
	if sb == nil || le.Uint16(sb[56:58]) != extMagic {
		return nil
	}
	compat := le.Uint32(sb[92:96])
	incompat := le.Uint32(sb[96:100])
	rocompat := le.Uint32(sb[100:104])
	var typ, sec string
	switch {
	case incompat&extIncompatJournalDev != 0:
		typ = "jbd"
	case compat&extCompatHasJournal == 0 && rocompat&^ext2ROCompatSupported == 0 && incompat&^ext2IncompatSupported == 0:
		typ = "ext2"
	case compat&extCompatHasJournal != 0 && rocompat&^ext2ROCompatSupported == 0 && incompat&^ext3IncompatSupported == 0:
		typ, sec = "ext3", "ext2"
	default:
		typ = "ext4"
		if le.Uint32(sb[352:356])&extFlagsTestFilesys != 0 {
			typ = "ext4dev"
		}
	}
	rev := le.Uint32(sb[76:80])
	minor := le.Uint16(sb[62:64])
	s := &Signature{
		Type:    typ,
		Version: fmt.Sprintf("%d.%d", rev, minor),
		Label:   cstr(sb[120:136]),
		UUID:    uuidString(sb[104:120]),
		Info:    map[string]string{},
	}
	if sec != "" {
		s.Info["sec_type"] = sec
	}
	s.Info["features"] = strings.Join(extFeatureNames(compat, incompat, rocompat), " ")
	state := le.Uint16(sb[58:60])
	switch {
	case incompat&extIncompatRecover != 0:
		s.Info["state"] = "needs_recovery"
		s.Notes = append(s.Notes, "journal needs recovery (not cleanly unmounted)")
	case state&0x2 != 0:
		s.Info["state"] = "errors"
		s.Notes = append(s.Notes, "filesystem has errors recorded")
	case state&0x1 != 0:
		s.Info["state"] = "clean"
	default:
		s.Info["state"] = "not clean"
	}
	if lm := cstr(sb[136:200]); lm != "" {
		s.Info["last_mounted"] = lm
	}
	return s
}

var extCompatNames = map[uint32]string{0x1: "dir_prealloc", 0x2: "imagic_inodes", 0x4: "has_journal", 0x8: "ext_attr", 0x10: "resize_inode", 0x20: "dir_index", 0x200: "sparse_super2", 0x400: "fast_commit", 0x1000: "orphan_file"}
var extIncompatNames = map[uint32]string{0x1: "compression", 0x2: "filetype", 0x4: "needs_recovery", 0x8: "journal_dev", 0x10: "meta_bg", 0x40: "extent", 0x80: "64bit", 0x100: "mmp", 0x200: "flex_bg", 0x400: "ea_inode", 0x1000: "dirdata", 0x2000: "metadata_csum_seed", 0x4000: "large_dir", 0x8000: "inline_data", 0x10000: "encrypt", 0x20000: "casefold"}
var extROCompatNames = map[uint32]string{0x1: "sparse_super", 0x2: "large_file", 0x4: "btree_dir", 0x8: "huge_file", 0x10: "uninit_bg", 0x20: "dir_nlink", 0x40: "extra_isize", 0x100: "quota", 0x200: "bigalloc", 0x400: "metadata_csum", 0x800: "replica", 0x1000: "read-only", 0x2000: "project", 0x4000: "shared_blocks", 0x8000: "verity", 0x10000: "orphan_present"}

// extFeatureNames lists feature names in dumpe2fs order (compat, incompat,
// ro_compat; ascending bits).
func extFeatureNames(compat, incompat, rocompat uint32) []string {
	var out []string
	add := func(v uint32, names map[uint32]string) {
		for bit := uint32(1); bit != 0; bit <<= 1 {
			if v&bit == 0 {
				continue
			}
			if n, ok := names[bit]; ok {
				out = append(out, n)
			} else {
				out = append(out, fmt.Sprintf("FEATURE_%#x", bit))
			}
		}
	}
	add(compat, extCompatNames)
	add(incompat, extIncompatNames)
	add(rocompat, extROCompatNames)
	return out
}

// --- XFS, btrfs, squashfs, ISO9660 --------------------------------------------

func probeXFS(r io.ReaderAt, size int64) *Signature {
	b := readAt(r, size, 0, 512)
	if b == nil || string(b[0:4]) != "XFSB" {
		return nil
	}
	s := &Signature{Type: "xfs", Label: cstr(b[108:120]), UUID: uuidString(b[32:48])}
	// Version, features and whether the log needs recovery, as for ext
	// (the log's head and tail are found, nothing is replayed).
	if d := xfs.Describe(r, size); d != nil {
		s.Version = d["version"]
		s.Info = map[string]string{"features": d["features"], "state": d["state"]}
		if d["state"] == "needs_recovery" {
			s.Notes = append(s.Notes, "log needs recovery (not cleanly unmounted)")
		}
	}
	return s
}

func probeBtrfs(r io.ReaderAt, size int64) *Signature {
	b := readAt(r, size, 65536, 4096)
	if b == nil || string(b[64:72]) != "_BHRfS_M" {
		return nil
	}
	return &Signature{Type: "btrfs", Label: cstr(b[299 : 299+256]), UUID: uuidString(b[32:48]),
		Info: map[string]string{"uuid_sub": uuidString(b[201+16 : 201+32])}}
}

func probeSquashfs(r io.ReaderAt, size int64) *Signature {
	b := readAt(r, size, 0, 96)
	if b == nil || string(b[0:4]) != "hsqs" {
		return nil
	}
	return &Signature{Type: "squashfs", Version: fmt.Sprintf("%d.%d", le.Uint16(b[28:30]), le.Uint16(b[30:32]))}
}

func probeISO(r io.ReaderAt, size int64) *Signature {
	b := readAt(r, size, 32768, 2048)
	if b == nil || b[0] != 1 || string(b[1:6]) != "CD001" {
		return nil
	}
	s := &Signature{Type: "iso9660", Label: cstr(b[40:72])}
	// blkid's UUID for ISO9660 is the volume creation date digits.
	if d := b[813:829]; !zero.Is(d) && d[0] != '0' {
		s.UUID = fmt.Sprintf("%s-%s-%s-%s-%s-%s-%s", d[0:4], d[4:6], d[6:8], d[8:10], d[10:12], d[12:14], d[14:16])
	}
	// A Joliet supplementary descriptor carries a UCS-2 label blkid prefers.
	for i := int64(1); i < 16; i++ {
		v := readAt(r, size, 32768+i*2048, 2048)
		if v == nil || string(v[1:6]) != "CD001" || v[0] == 255 {
			break
		}
		if v[0] == 2 && v[88] == 0x25 && v[89] == 0x2f {
			u := make([]uint16, 16)
			for k := range u {
				u[k] = be.Uint16(v[40+2*k:])
			}
			if l := strings.TrimRight(string(utf16.Decode(u)), " \x00"); l != "" {
				s.Label = l
			}
		}
	}
	return s
}

// --- FAT, exFAT, NTFS --------------------------------------------------------

func probeExFAT(r io.ReaderAt, size int64) *Signature {
	b := readAt(r, size, 0, 512)
	if b == nil || string(b[3:11]) != "EXFAT   " {
		return nil
	}
	id := le.Uint32(b[100:104])
	s := &Signature{Type: "exfat", Version: "1.0", UUID: fmt.Sprintf("%04X-%04X", id>>16, id&0xffff)}
	s.Label = exfatLabel(r, size, b)
	return s
}

// exfatLabel finds the volume-label entry (type 0x83) in the first cluster
// of the root directory.
func exfatLabel(r io.ReaderAt, size int64, b []byte) string {
	secShift, clusShift := uint(b[108]), uint(b[109])
	if secShift < 9 || secShift > 12 || secShift+clusShift > 25 {
		return ""
	}
	heap := int64(le.Uint32(b[88:92])) << secShift
	root := int64(le.Uint32(b[96:100]))
	if root < 2 {
		return ""
	}
	clus := int64(1) << (secShift + clusShift)
	d := readAt(r, size, heap+(root-2)*clus, int(min(clus, 64<<10)))
	for i := 0; i+32 <= len(d); i += 32 {
		e := d[i : i+32]
		if e[0] == 0 {
			break
		}
		if e[0] == 0x83 {
			n := min(int(e[1]), 11)
			return utf16le(e[2 : 2+2*n])
		}
	}
	return ""
}

func utf16le(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = le.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

func probeNTFS(r io.ReaderAt, size int64) *Signature {
	b := readAt(r, size, 0, 512)
	if b == nil || string(b[3:11]) != "NTFS    " {
		return nil
	}
	s := &Signature{Type: "ntfs", UUID: fmt.Sprintf("%016X", le.Uint64(b[0x48:0x50]))}
	s.Label = ntfsLabel(r, size, b)
	return s
}

// ntfsLabel reads the $VOLUME_NAME attribute (0x60) of MFT record 3
// ($Volume), applying the record's update-sequence fixups.
func ntfsLabel(r io.ReaderAt, size int64, b []byte) string {
	bps := int64(le.Uint16(b[11:13]))
	spc := int64(b[13])
	if bps < 256 || bps > 4096 || spc == 0 {
		return ""
	}
	clus := bps * spc
	mft := int64(le.Uint64(b[0x30:0x38]))
	var rec int64
	if c := int8(b[0x40]); c < 0 {
		if -c > 20 {
			return ""
		}
		rec = 1 << uint(-c)
	} else {
		rec = int64(c) * clus
	}
	if rec < 512 || rec > 64<<10 || mft <= 0 || mft > size/clus {
		return ""
	}
	d := readAt(r, size, mft*clus+3*rec, int(rec))
	if d == nil || string(d[0:4]) != "FILE" {
		return ""
	}
	usaOff, usaCount := int(le.Uint16(d[4:6])), int(le.Uint16(d[6:8]))
	if usaCount < 1 || usaOff+2*usaCount > len(d) {
		return ""
	}
	for i := 1; i < usaCount; i++ {
		end := i*int(bps) - 2
		if end+2 > len(d) || int(bps)*i > len(d) {
			break
		}
		copy(d[end:end+2], d[usaOff+2*i:usaOff+2*i+2])
	}
	off := int(le.Uint16(d[0x14:0x16]))
	for n := 0; n < 64 && off+16 <= len(d); n++ {
		typ, alen := le.Uint32(d[off:]), int(le.Uint32(d[off+4:]))
		if typ == 0xFFFFFFFF || alen < 16 || off+alen > len(d) {
			break
		}
		if typ == 0x60 && d[off+8] == 0 {
			vlen, voff := int(le.Uint32(d[off+16:])), int(le.Uint16(d[off+20:]))
			if voff+vlen <= alen {
				return utf16le(d[off+voff : off+voff+vlen])
			}
		}
		off += alen
	}
	return ""
}

// probeFAT checks the BIOS parameter block and tells FAT12/16/32 apart by
// cluster count, as the FAT specification does.
func probeFAT(r io.ReaderAt, size int64) *Signature {
	b := readAt(r, size, 0, 512)
	if b == nil || b[510] != 0x55 || b[511] != 0xAA {
		return nil
	}
	if b[0] != 0xEB && b[0] != 0xE9 {
		return nil
	}
	bps := int64(le.Uint16(b[11:13]))
	spc := int64(b[13])
	reserved := int64(le.Uint16(b[14:16]))
	nfats := int64(b[16])
	rootEnts := int64(le.Uint16(b[17:19]))
	total := int64(le.Uint16(b[19:21]))
	if total == 0 {
		total = int64(le.Uint32(b[32:36]))
	}
	fatSz := int64(le.Uint16(b[22:24]))
	if fatSz == 0 {
		fatSz = int64(le.Uint32(b[36:40]))
	}
	if bps < 512 || bps > 4096 || bps&(bps-1) != 0 || spc == 0 || spc&(spc-1) != 0 || nfats == 0 || nfats > 4 || reserved == 0 || fatSz == 0 || total == 0 {
		return nil
	}
	rootSecs := (rootEnts*32 + bps - 1) / bps
	dataSecs := total - reserved - nfats*fatSz - rootSecs
	if dataSecs <= 0 {
		return nil
	}
	clusters := dataSecs / spc
	var ver string
	var labelOff, idOff int
	switch {
	case clusters < 4085:
		ver, labelOff, idOff = "FAT12", 43, 39
	case clusters < 65525:
		ver, labelOff, idOff = "FAT16", 43, 39
	default:
		ver, labelOff, idOff = "FAT32", 71, 67
	}
	s := &Signature{Type: "vfat", Version: ver}
	id := le.Uint32(b[idOff : idOff+4])
	s.UUID = fmt.Sprintf("%04X-%04X", id>>16, id&0xffff)
	if l := cstr(b[labelOff : labelOff+11]); l != "" && l != "NO NAME" {
		s.Label = l
	}
	// blkid prefers the volume-label entry in the root directory.
	if l, ok := fatRootLabel(r, size, b, ver, bps, spc, reserved, nfats, fatSz); ok {
		s.Label = l
	}
	return s
}

func fatRootLabel(r io.ReaderAt, size int64, b []byte, ver string, bps, spc, reserved, nfats, fatSz int64) (string, bool) {
	var off, n int64
	if ver == "FAT32" {
		rootClus := int64(le.Uint32(b[44:48]))
		if rootClus < 2 {
			return "", false
		}
		off = (reserved + nfats*fatSz + (rootClus-2)*spc) * bps
		n = spc * bps
	} else {
		off = (reserved + nfats*fatSz) * bps
		n = int64(le.Uint16(b[17:19])) * 32
	}
	if n > 64<<10 {
		n = 64 << 10
	}
	d := readAt(r, size, off, int(n))
	for i := 0; i+32 <= len(d); i += 32 {
		e := d[i : i+32]
		if e[0] == 0 {
			break
		}
		if e[0] == 0xE5 || e[11] == 0x0F {
			continue
		}
		if e[11]&0x08 != 0 {
			return strings.TrimRight(string(e[0:11]), " "), true
		}
	}
	return "", false
}

// --- swap --------------------------------------------------------------------

// probeSwap looks for the swap signature at the end of the first page, for
// the page sizes Linux uses. Label and UUID are in the version-1 header.
func probeSwap(r io.ReaderAt, size int64) *Signature {
	for _, page := range []int64{4096, 8192, 16384, 65536} {
		b := readAt(r, size, page-10, 10)
		if b == nil {
			return nil
		}
		switch string(b) {
		case "SWAPSPACE2":
			h := readAt(r, size, 1024, 48)
			if h == nil {
				return nil
			}
			s := &Signature{Type: "swap", Version: fmt.Sprint(le.Uint32(h[0:4])), Label: cstr(h[28:44])}
			if u := h[12:28]; !zero.Is(u) {
				s.UUID = uuidString(u)
			}
			return s
		case "SWAP-SPACE":
			return &Signature{Type: "swap", Version: "0"}
		case "S1SUSPEND\x00", "S2SUSPEND\x00", "ULSUSPEND\x00", "LINHIB0001":
			return &Signature{Type: "swsuspend"}
		}
	}
	return nil
}
