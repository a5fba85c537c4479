package ext

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// Options tune Open. A nil *Options means the defaults.
type Options struct {
	// SuperblockOffset, when non-zero, is the byte offset of the superblock
	// to use (e.g. a backup's), instead of the primary at 1024.
	SuperblockOffset int64
	// GuessGroupDescriptors ignores the group descriptor table and
	// computes every group's bitmap and inode table locations from the
	// geometry (the standard mke2fs layout), for a table damaged in ways
	// the automatic checks miss. Without it, Open already replaces
	// descriptors that fail the sanity checks (or, when most fail their
	// checksum, those that do) by a backup copy or the computed layout;
	// FS.DescSource says which were replaced.
	GuessGroupDescriptors bool
	// Salvage reads what a strict reader refuses, as debugfs and e2fsck
	// would still get data out:
	//   - OpenInode (and Readlink) tolerate a damaged block map: the File
	//     reads what the readable part maps and zeros elsewhere, and the
	//     damage is a Note instead of an error (BlockMap still returns
	//     it, so a salvage tool can tell which files are incomplete);
	//   - an i_size beyond what the block map can address is cut at the
	//     end of the last mapped block (e2fsck's repair);
	//   - extent trees deeper than the kernel's 5 levels are read (up to
	//     32);
	//   - encrypted inodes are read raw: ciphertext content and names.
	Salvage bool
}

// FS is an opened ext2/3/4 filesystem. It is safe for concurrent use.
type FS struct {
	r       io.ReaderAt
	size    int64 // volume size in bytes
	sb      *Superblock
	sbGroup uint64 // group the superblock in use came from
	bs      int64  // block size
	// nblocks bounds every walk: the blocks that exist both in the
	// superblock's count and in the volume. A structure can never need
	// more distinct blocks than this.
	nblocks uint64
	groups  []GroupDesc
	// descSource says where each group's descriptor came from (Desc*).
	descSource []string
	csumSeed   uint32 // metadata_csum seed: crc32c(~0, uuid) or s_checksum_seed
	salvage    bool   // Options.Salvage

	itMu    sync.Mutex
	itCache map[int64][]byte // inode table chunks by byte offset
	itFree  [][]byte         // evicted chunks, for reuse

	// dirBufs holds scanDir's read buffers (dirReadBlocks blocks each):
	// a walk over many small directories allocated one per directory.
	dirBufs sync.Pool

	mu       sync.Mutex
	notes    []Note
	noteSeen map[noteKey]bool
}

// Open reads the superblock and group descriptors of the filesystem in r
// (size bytes). When the primary superblock is unreadable it falls back to a
// backup and records a Note.
func Open(r io.ReaderAt, size int64, opts *Options) (*FS, error) {
	if opts == nil {
		opts = &Options{}
	}
	fsys := &FS{r: r, size: size, salvage: opts.Salvage}
	sb, err := fsys.chooseSuperblock(opts)
	if err != nil {
		return nil, err
	}
	fsys.sb = sb
	fsys.bs = int64(sb.BlockSize)
	fsys.nblocks = min(sb.BlocksCount, uint64(size/fsys.bs)+1)
	if uint64(size/fsys.bs) < sb.BlocksCount {
		fsys.note(0, sb.Offset, fmt.Sprintf("volume is %d bytes, the superblock says %d blocks of %d: truncated image?", size, sb.BlocksCount, sb.BlockSize), nil)
	}
	if sb.FeatureIncompat&IncompatCsumSeed != 0 {
		fsys.csumSeed = sb.ChecksumSeed
	} else {
		fsys.csumSeed = crc32c(^uint32(0), sb.UUID[:])
	}
	csumBad, err := fsys.readGroups()
	if err != nil {
		return nil, err
	}
	fsys.repairGroups(csumBad, opts.GuessGroupDescriptors)
	return fsys, nil
}

// chooseSuperblock picks the superblock to use: the one asked for, the
// primary, a backup, or, when no backup is usable, a primary that only
// failed its checksum. It sets fsys.sbGroup.
func (fsys *FS) chooseSuperblock(opts *Options) (*Superblock, error) {
	if opts.SuperblockOffset != 0 {
		sb, err := fsys.readSuperblock(opts.SuperblockOffset)
		if err != nil {
			return nil, err
		}
		blk := uint64(opts.SuperblockOffset) / uint64(sb.BlockSize)
		if blk >= uint64(sb.FirstDataBlock) {
			blk -= uint64(sb.FirstDataBlock)
		}
		fsys.sbGroup = blk / uint64(sb.BlocksPerGroup)
		return sb, nil
	}
	sb, primaryErr := fsys.readSuperblock(superblockOffset)
	if primaryErr == nil {
		return sb, nil
	}
	sb, g, err := fsys.findBackup()
	if err == nil {
		fsys.sbGroup = g
		fsys.note(0, sb.Offset, fmt.Sprintf("primary superblock unusable (%v); using backup superblock in group %d at offset %#x", primaryErr, g, sb.Offset), nil)
		return sb, nil
	}
	var ce *ChecksumError
	if errors.As(primaryErr, &ce) {
		// No usable backup, but the primary only failed its checksum:
		// read on with it rather than not at all.
		if sb, err := fsys.parsePrimaryAnyway(); err == nil {
			fsys.note(0, superblockOffset, "no usable backup superblock; using the primary despite its checksum", ce)
			return sb, nil
		}
	}
	return nil, fmt.Errorf("%w (primary: %v)", ErrNotExt, primaryErr)
}

// readSuperblock reads and checks the superblock at off.
func (fsys *FS) readSuperblock(off int64) (*Superblock, error) {
	if off < 0 || off+superblockSize > fsys.size {
		return nil, corrupt(0, off, "superblock", "beyond the end of the volume (%d bytes)", fsys.size)
	}
	b := make([]byte, superblockSize)
	if _, err := fsys.r.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("ext: reading superblock at offset %#x: %w", off, err)
	}
	sb, err := parseSuperblock(b, off, fsys.size)
	if err != nil {
		return nil, err
	}
	if sb.hasMetadataCsum() {
		if c := superblockChecksum(b); c != sb.Checksum {
			if off == superblockOffset {
				// A primary with a bad checksum may be half-written:
				// prefer a backup that checks out.
				return nil, &ChecksumError{Offset: off, What: "superblock", Stored: sb.Checksum, Computed: c}
			}
			fsys.note(0, off, "", &ChecksumError{Offset: off, What: "superblock", Stored: sb.Checksum, Computed: c})
		}
	}
	return sb, nil
}

// parsePrimaryAnyway parses the primary superblock without its checksum.
func (fsys *FS) parsePrimaryAnyway() (*Superblock, error) {
	b := make([]byte, superblockSize)
	if err := fsys.readFull(b, superblockOffset); err != nil {
		return nil, err
	}
	return parseSuperblock(b, superblockOffset, fsys.size)
}

// backupGroups are the groups that hold superblock backups with
// sparse_super: 1 and the powers of 3, 5 and 7, in increasing order.
func backupGroups(limit uint64) []uint64 {
	gs := []uint64{1}
	for _, p := range []uint64{3, 5, 7} {
		for n := p; n < limit; n *= p {
			gs = append(gs, n)
		}
	}
	// small insertion sort; the list is short
	for i := 1; i < len(gs); i++ {
		for j := i; j > 0 && gs[j] < gs[j-1]; j-- {
			gs[j], gs[j-1] = gs[j-1], gs[j]
		}
	}
	return gs
}

// findBackup searches for a usable backup superblock. First with the
// default geometry (8 * block size blocks per group) in every backup group,
// for each block size 1K..64K; then in group 1 for any other group size (a
// multiple of 8 blocks, as mke2fs -g requires).
func (fsys *FS) findBackup() (*Superblock, uint64, error) {
	var lastErr error = ErrNotExt
	try := func(bs, bpg int64, g uint64) *Superblock {
		first := int64(0)
		if bs == 1024 {
			first = 1
		}
		off := (first + int64(g)*bpg) * bs
		if off+superblockSize > fsys.size {
			return nil
		}
		sb, err := fsys.readSuperblock(off)
		if err != nil {
			lastErr = err
			return nil
		}
		if int64(sb.BlockSize) != bs || int64(sb.BlocksPerGroup) != bpg || (sb.BlockGroupNr != 0 && uint64(sb.BlockGroupNr) != g) {
			return nil
		}
		return sb
	}
	for bs := int64(1024); bs <= 65536; bs <<= 1 {
		for _, g := range backupGroups(1 << 20) {
			if (int64(g)*8*bs+1)*bs > fsys.size {
				break
			}
			if sb := try(bs, 8*bs, g); sb != nil {
				return sb, g, nil
			}
		}
	}
	for bs := int64(1024); bs <= 65536; bs <<= 1 {
		for bpg := int64(256); bpg < 8*bs; bpg += 8 {
			if (bpg+1)*bs > fsys.size {
				break
			}
			if sb := try(bs, bpg, 1); sb != nil {
				return sb, 1, nil
			}
		}
	}
	return nil, 0, lastErr
}

// readGroups reads and checks the whole group descriptor table. It returns
// which descriptors failed their checksum. A descriptor block that cannot
// be read leaves its groups zeroed (repairGroups then replaces them).
func (fsys *FS) readGroups() ([]bool, error) {
	sb := fsys.sb
	n := sb.groupCount()
	ds := int64(sb.DescSize)
	// Every group holds at least one block, and the table must fit in
	// the volume: this bounds the allocation below by the volume size.
	if int64(n)*ds > fsys.size || n > uint64(fsys.size/fsys.bs)+1 || n > 1<<32 {
		return nil, corrupt(0, sb.Offset, "superblock", "%d groups of %d-byte descriptors cannot fit in a %d-byte volume", n, ds, fsys.size)
	}
	perBlock := uint64(fsys.bs / ds)
	fsys.groups = make([]GroupDesc, n)
	csumBad := make([]bool, n)
	buf := make([]byte, fsys.bs)
	for blk := uint64(0); blk*perBlock < n; blk++ {
		pb := sb.gdtBlock(blk, fsys.sbGroup)
		off := int64(pb) * fsys.bs
		if err := fsys.readFull(buf, off); err != nil {
			fsys.note(0, off, fmt.Sprintf("group descriptor block %d unreadable: %v", blk, err), nil)
			for i := uint64(0); i < perBlock && blk*perBlock+i < n; i++ {
				fsys.groups[blk*perBlock+i].Offset = off + int64(i)*ds
			}
			continue
		}
		for i := uint64(0); i < perBlock && blk*perBlock+i < n; i++ {
			g := blk*perBlock + i
			d := buf[int64(i)*ds : int64(i+1)*ds]
			gd := parseGroupDesc(d, sb.has64Bit())
			gd.Offset = off + int64(i)*ds
			if c, ok := fsys.groupDescChecksum(uint32(g), d); ok && c != gd.Checksum {
				fsys.note(0, gd.Offset, "", &ChecksumError{Offset: gd.Offset, What: fmt.Sprintf("group descriptor %d", g), Stored: uint32(gd.Checksum), Computed: uint32(c)})
				csumBad[g] = true
			}
			fsys.groups[g] = gd
		}
	}
	return csumBad, nil
}

// readFull reads len(b) bytes at off, failing with a CorruptError when the
// range lies outside the volume.
func (fsys *FS) readFull(b []byte, off int64) error {
	if off < 0 || off+int64(len(b)) > fsys.size {
		return corrupt(0, off, "block", "range of %d bytes outside the %d-byte volume", len(b), fsys.size)
	}
	n, err := fsys.r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// readBlock reads block number blk into b (len(b) must be the block size).
func (fsys *FS) readBlock(ino uint32, what string, blk uint64, b []byte) error {
	if blk >= fsys.sb.BlocksCount {
		return corrupt(ino, int64(blk)*fsys.bs, what, "block %d beyond the block count %d", blk, fsys.sb.BlocksCount)
	}
	if err := fsys.readFull(b, int64(blk)*fsys.bs); err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) {
			ce.Ino, ce.What = ino, what
			return ce
		}
		return fmt.Errorf("ext: inode %d: %s at offset %#x: %w", ino, what, int64(blk)*fsys.bs, err)
	}
	return nil
}

// noteKey identifies a note, so that re-reading the same damaged
// structure does not repeat it.
type noteKey struct {
	ino uint32
	off int64
	msg string
}

func (fsys *FS) note(ino uint32, off int64, msg string, err error) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	k := noteKey{ino, off, msg}
	if err != nil {
		k.msg = err.Error()
	}
	if fsys.noteSeen == nil {
		fsys.noteSeen = make(map[noteKey]bool)
	}
	if fsys.noteSeen[k] {
		return
	}
	if len(fsys.notes) < maxNotes {
		fsys.noteSeen[k] = true
		fsys.notes = append(fsys.notes, Note{Ino: ino, Offset: off, Msg: msg, Err: err})
	}
}

// Notes returns what was noticed so far while reading: checksum mismatches,
// the use of a backup superblock. The list grows as more is read.
func (fsys *FS) Notes() []Note {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	return append([]Note(nil), fsys.notes...)
}

// Superblock returns the superblock in use.
func (fsys *FS) Superblock() *Superblock { return fsys.sb }

// Groups returns the block group descriptors.
func (fsys *FS) Groups() []GroupDesc { return append([]GroupDesc(nil), fsys.groups...) }

// BlockSize returns the block size in bytes.
func (fsys *FS) BlockSize() int64 { return fsys.bs }

// VolumeSize returns the size in bytes of the volume the filesystem is
// read from (which may be less than the superblock's block count says).
func (fsys *FS) VolumeSize() int64 { return fsys.size }
