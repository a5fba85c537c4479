package xfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"

	"github.com/imgtool/imgtool/vfs"
)

// Driver opens XFS for the registration table in package inspect.
var Driver = vfs.Driver{
	Name:  "xfs",
	Types: []string{"xfs"},
	Open: func(vol vfs.Volume, name string, opts vfs.OpenOptions) (vfs.FS, error) {
		return Open(vol, name, opts)
	},
	Salvage: true,
}

// DamageError is on-disk damage: the volume, the inode (0 for none) and
// the byte offset on the volume of the structure.
type DamageError struct {
	Volume string
	Ino    uint64
	Offset int64
	Msg    string
}

func (e *DamageError) Error() string {
	s := "xfs"
	if e.Volume != "" {
		s += " on " + e.Volume
	}
	if e.Ino != 0 {
		s += fmt.Sprintf(": inode %d", e.Ino)
	}
	if e.Offset >= 0 {
		s += fmt.Sprintf(": offset %d", e.Offset)
	}
	return s + ": " + e.Msg
}

// FS is an opened XFS filesystem. It is safe for concurrent use.
type FS struct {
	vol  io.ReaderAt // the volume, or the log-replay overlay above it
	disk vfs.Volume  // the volume as it is
	size int64
	name string
	sb   *Superblock
	opts vfs.OpenOptions

	// SBOffset is the byte offset of the superblock in use (0 unless a
	// secondary one replaced a bad primary).
	SBOffset int64
	// Log describes the log and what the in-memory replay did.
	Log LogInfo

	mu    sync.Mutex
	notes []vfs.Note
	seen  map[string]bool

	// icache holds recently read inode blocks (whole fs blocks, so the
	// inodes of one directory or chunk cost one read).
	icmu   sync.Mutex
	icache map[int64][]byte

	// bmapFix holds the forks unfinished bmap intents change, set
	// by the log replay (intent.go) and read-only after Open.
	bmapFix map[forkKey]*bmapFix
}

const icacheMax = 2048 // blocks

// inodeBytes returns a copy of the inode at byte offset off, through the
// block cache.
func (f *FS) inodeBytes(off int64) ([]byte, error) {
	bs := int64(f.sb.BlockSize)
	blk := off / bs * bs
	f.icmu.Lock()
	b, ok := f.icache[blk]
	f.icmu.Unlock()
	if !ok {
		var err error
		if b, err = f.readMeta(blk, int(bs)); err != nil {
			return nil, err
		}
		f.icmu.Lock()
		if f.icache == nil || len(f.icache) >= icacheMax {
			f.icache = map[int64][]byte{}
		}
		f.icache[blk] = b
		f.icmu.Unlock()
	}
	return append([]byte(nil), b[off-blk:off-blk+int64(f.sb.InodeSize)]...), nil
}

var _ vfs.FS = (*FS)(nil)

// Open opens the XFS filesystem on vol; name is the volume's address, for
// errors and notes.
func Open(vol vfs.Volume, name string, opts vfs.OpenOptions) (*FS, error) {
	f := &FS{vol: vol, disk: vol, size: vol.Size(), name: name, opts: opts, seen: map[string]bool{}}
	if err := f.loadSuperblock(); err != nil {
		return nil, err
	}
	if err := f.openLog(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *FS) loadSuperblock() error {
	buf := make([]byte, 512)
	var perr error
	if err := f.readFullRaw(f.disk, buf, 0); err != nil {
		perr = err
	} else {
		sb, crcBad, err := ParseSuperblock(f.sectorAt(0, buf))
		if err == nil {
			f.sb = sb
			if crcBad {
				f.noteCRC(0, 0, "primary superblock checksum mismatch")
			}
			if sb.InProgress != 0 {
				f.note(0, 0, false, "superblock says mkfs did not finish (sb_inprogress)")
			}
			return f.checkUsable()
		}
		perr = err
	}
	sb, off, err := f.findSecondary()
	if err != nil {
		return &DamageError{Volume: f.name, Offset: 0, Msg: fmt.Sprintf("%v; no usable secondary superblock: %v", perr, err)}
	}
	f.sb, f.SBOffset = sb, off
	f.note(0, 0, false, fmt.Sprintf("primary superblock unusable (%v); using the secondary at offset %d", perr, off))
	if _, err := f.inodeOff(sb.RootIno); err != nil || sb.RootIno == 0 {
		// mkfs.xfs writes the secondaries before the root directory
		// exists (rootino is NULLFSINO there): the root is the first
		// inode of AG 0's first inode chunk, as xfs_repair computes it.
		if root, err := f.firstInode(); err == nil {
			sb.RootIno = root
			f.note(0, off, false, fmt.Sprintf("secondary superblock has no root inode; using inode %d, the first of AG 0", root))
		}
	}
	if _, err := f.inodeOff(sb.RbmIno); err != nil && sb.Incompat&sbInMetadir == 0 && sb.RootIno != 0 {
		// Nor the realtime bitmap and summary inodes, which mkfs.xfs
		// allocates right after the root (xfs_repair computes them so):
		// without them they would be taken for lost files.
		sb.RbmIno, sb.RsumIno = sb.RootIno+1, sb.RootIno+2
		f.note(0, off, false, fmt.Sprintf("secondary superblock has no realtime inodes; using inodes %d and %d, after the root", sb.RbmIno, sb.RsumIno))
	}
	return f.checkUsable()
}

// sectorAt re-reads a full sector when the superblock says sectors are
// larger than 512 bytes (the CRC covers the whole sector).
func (f *FS) sectorAt(off int64, b []byte) []byte {
	if len(b) < 104 {
		return b
	}
	ss := int(be.Uint16(b[102:]))
	if ss > 512 && ss <= 32768 && ss&(ss-1) == 0 {
		nb := make([]byte, ss)
		if f.readFullRaw(f.disk, nb, off) == nil {
			return nb
		}
	}
	return b
}

func (f *FS) checkUsable() error {
	s := f.sb
	if int64(s.DBlocks)<<s.BlockLog > f.size {
		f.note(0, 0, true, fmt.Sprintf("volume (%d bytes) is shorter than the filesystem (%d blocks of %d)", f.size, s.DBlocks, s.BlockSize))
	}
	if s.Incompat&^sbInKnown != 0 {
		return &DamageError{Volume: f.name, Offset: 0, Msg: fmt.Sprintf("unknown incompatible features %#x", s.Incompat&^sbInKnown)}
	}
	if s.Incompat&sbInMetadir != 0 {
		f.note(0, 0, false, "metadir filesystem: the metadata directory tree is not shown")
	}
	return nil
}

// findSecondary searches for the superblock of AG 1..3: a copy whose AG
// size puts it exactly where it was found. It probes the likely AG sizes
// (the volume split in 1..64 AGs, as mkfs.xfs does) and then scans the
// first 4 GiB.
func (f *FS) findSecondary() (*Superblock, int64, error) {
	buf := make([]byte, 512)
	try := func(off int64) *Superblock {
		if off <= 0 || off+512 > f.size || f.readFullRaw(f.disk, buf, off) != nil || be.Uint32(buf) != sbMagic {
			return nil
		}
		sb, _, err := ParseSuperblock(f.sectorAt(off, buf))
		if err != nil {
			return nil
		}
		agsz := int64(sb.AGBlocks) << sb.BlockLog
		if off%agsz != 0 || off/agsz >= int64(sb.AGCount) {
			return nil
		}
		return sb
	}
	for agc := int64(2); agc <= 64; agc++ {
		for _, blk := range []int64{4096, 1024, 512, 65536} {
			base := f.size / agc / blk * blk
			for d := int64(-8); d <= 8; d++ {
				if sb := try(base + d*blk); sb != nil {
					return sb, base + d*blk, nil
				}
			}
		}
	}
	chunk := make([]byte, 1<<20)
	lim := f.size
	if lim > 4<<30 {
		lim = 4 << 30
	}
	for off := int64(1 << 20); off < lim; off += int64(len(chunk)) {
		n, _ := f.disk.ReadAt(chunk, off)
		for i := 0; i+512 <= n; i += 512 {
			if be.Uint32(chunk[i:]) == sbMagic {
				if sb := try(off + int64(i)); sb != nil {
					return sb, off + int64(i), nil
				}
			}
		}
	}
	return nil, 0, errors.New("none found")
}

// SuperblockOffset is the byte offset of the superblock in use: 0, or a
// secondary's when the primary was unusable (for salvage's report).
func (f *FS) SuperblockOffset() int64 { return f.SBOffset }

// LogReplay says whether a log that needed recovery was replayed into
// memory and, when it was not, why (for salvage's report; "" when the log
// was clean or not examined).
func (f *FS) LogReplay() (replayed bool, problem string) {
	return f.Log.Replayed, f.Log.Problem
}

// Superblock returns the superblock in use.
func (f *FS) Superblock() *Superblock { return f.sb }

// Info implements vfs.FS.
func (f *FS) Info() vfs.Info {
	s := f.sb
	return vfs.Info{
		Type:      "xfs",
		Label:     s.FName,
		UUID:      s.UUIDString(),
		BlockSize: int64(s.BlockSize),
		MaxIno:    vfs.Ino(uint64(s.AGCount) << (s.AGBlkLog + s.InoPBLog)),
		Caps: vfs.Caps{HardLinks: true, Xattrs: true, NsTimes: true, Owners: true, Perms: true,
			Inodes: true, Generation: true, Devices: true},
	}
}

// Root implements vfs.FS.
func (f *FS) Root() vfs.Ino { return vfs.Ino(f.sb.RootIno) }

// Notes implements vfs.FS.
func (f *FS) Notes() []vfs.Note {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]vfs.Note(nil), f.notes...)
}

func (f *FS) note(ino uint64, off int64, stale bool, msg string) {
	f.addNote(vfs.Note{Ino: vfs.Ino(ino), Offset: off, Msg: msg, Stale: stale})
}

// noteCRC notes a checksum mismatch of the structure at off (of inode
// ino, or 0), which was read anyway.
func (f *FS) noteCRC(ino uint64, off int64, msg string) {
	f.addNote(vfs.Note{Ino: vfs.Ino(ino), Offset: off, Msg: msg, Checksum: true})
}

func (f *FS) addNote(n vfs.Note) {
	ino, off, msg := uint64(n.Ino), n.Offset, n.Msg
	f.mu.Lock()
	defer f.mu.Unlock()
	key := fmt.Sprint(ino, off, msg)
	if f.seen[key] || len(f.notes) > 10000 {
		return
	}
	f.seen[key] = true
	n.Msg = f.name + ": " + msg
	f.notes = append(f.notes, n)
}

func (f *FS) checkCRC(ino uint64, off int64, b []byte, crcOff int, what string) {
	if ov, ok := f.vol.(*overlay); ok && ov.replayed(off, int64(len(b))) {
		// A block the log replay wrote: the kernel's recovery recomputes
		// its CRC when it writes the buffer back (the write verifier), so
		// the logged copy's stale CRC is not damage. The log records
		// themselves were checked (record CRCs).
		return
	}
	if !crcOK(b, crcOff) {
		f.noteCRC(ino, off, what+": checksum mismatch")
	}
}

func (f *FS) damage(ino uint64, off int64, format string, a ...any) error {
	return &DamageError{Volume: f.name, Ino: ino, Offset: off, Msg: fmt.Sprintf(format, a...)}
}

func (f *FS) inoErr(in *Inode, err error) error {
	var de *DamageError
	if errors.As(err, &de) {
		return err
	}
	return &DamageError{Volume: f.name, Ino: in.Ino, Offset: in.Off, Msg: err.Error()}
}

func (f *FS) readFullRaw(r io.ReaderAt, p []byte, off int64) error {
	if off < 0 || off+int64(len(p)) > f.size {
		return &DamageError{Volume: f.name, Offset: off, Msg: fmt.Sprintf("read of %d bytes beyond the end of the volume (%d bytes)", len(p), f.size)}
	}
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%s: read at offset %d: %w", f.name, off, err)
}

func (f *FS) readFull(p []byte, off int64) error { return f.readFullRaw(f.vol, p, off) }

// readMeta reads a metadata block of n bytes at off.
func (f *FS) readMeta(off int64, n int) ([]byte, error) {
	b := make([]byte, n)
	if err := f.readFull(b, off); err != nil {
		return nil, err
	}
	return b, nil
}

// inodeOff returns the byte offset of inode ino.
func (f *FS) inodeOff(ino uint64) (int64, error) {
	s := f.sb
	agno := ino >> (s.AGBlkLog + s.InoPBLog)
	agino := ino & (1<<(s.AGBlkLog+s.InoPBLog) - 1)
	agbno := agino >> s.InoPBLog
	if ino == 0 || agno >= uint64(s.AGCount) || agbno >= uint64(s.AGBlocks) {
		return 0, fmt.Errorf("inode number %d outside the filesystem", ino)
	}
	off := (int64(agno)*int64(s.AGBlocks)+int64(agbno))<<s.BlockLog + int64(agino&(1<<s.InoPBLog-1))<<s.InodeLog
	return off, nil
}

// Inode reads and decodes inode ino.
func (f *FS) Inode(ino uint64) (*Inode, error) {
	off, err := f.inodeOff(ino)
	if err != nil {
		return nil, &DamageError{Volume: f.name, Ino: ino, Offset: -1, Msg: err.Error()}
	}
	b, err := f.inodeBytes(off)
	if err != nil {
		return nil, err
	}
	in, err := f.sb.parseInode(b, ino)
	if err != nil {
		return nil, &DamageError{Volume: f.name, Ino: ino, Offset: off, Msg: err.Error()}
	}
	in.Off = off
	if d, ok := f.blocksDelta(ino); ok {
		in.NBlocks = uint64(max(int64(in.NBlocks)+d, 0))
	}
	if in.CRCBad {
		f.noteCRC(ino, off, "inode checksum mismatch")
	}
	return in, nil
}

func (f *FS) inode(ino vfs.Ino) (*Inode, error) { return f.Inode(uint64(ino)) }

// Stat implements vfs.FS.
func (f *FS) Stat(ino vfs.Ino) (*vfs.Stat, error) {
	in, err := f.inode(ino)
	if err != nil {
		return nil, err
	}
	if in.Mode == 0 {
		return nil, f.damage(in.Ino, in.Off, "inode is free")
	}
	return in.stat(f.sb), nil
}

// Readlink implements vfs.FS.
func (f *FS) Readlink(ino vfs.Ino) (string, error) {
	in, err := f.inode(ino)
	if err != nil {
		return "", err
	}
	if in.typ() != vfs.ModeLink {
		return "", f.damage(in.Ino, in.Off, "not a symlink")
	}
	return f.readlink(in)
}

const symlinkMaxLen = 1024

func (f *FS) readlink(in *Inode) (string, error) {
	if in.Size <= 0 || in.Size > symlinkMaxLen {
		return "", f.damage(in.Ino, in.Off, "symlink length %d", in.Size)
	}
	switch in.Format {
	case fmtLocal:
		if in.Size > int64(len(in.DataFork)) {
			return "", f.damage(in.Ino, in.Off, "local symlink of %d bytes in a %d-byte fork", in.Size, len(in.DataFork))
		}
		return string(in.DataFork[:in.Size]), nil
	case fmtExtents, fmtBtree:
	default:
		return "", f.damage(in.Ino, in.Off, "symlink in fork format %d", in.Format)
	}
	ext, err := f.forkExtents(in, false)
	if err != nil {
		return "", err
	}
	var out []byte
	bs := int64(f.sb.BlockSize)
	hdr := 0
	if f.sb.HasCRC() {
		hdr = 56
	}
	for _, e := range ext {
		for i := uint64(0); i < e.len && int64(len(out)) < in.Size; i++ {
			off, err := f.fsbOff(e.fsb + i)
			if err != nil {
				return "", f.inoErr(in, err)
			}
			b, err := f.readMeta(off, int(bs))
			if err != nil {
				return "", err
			}
			if hdr != 0 {
				if be.Uint32(b) != 0x58534c4d { // "XSLM"
					return "", f.damage(in.Ino, off, "remote symlink block: bad magic %#x", be.Uint32(b))
				}
				n := int(be.Uint32(b[8:]))
				if be.Uint32(b[4:]) != uint32(len(out)) || n > len(b)-hdr {
					return "", f.damage(in.Ino, off, "remote symlink block: bad offset/length")
				}
				f.checkCRC(in.Ino, off, b, 12, "remote symlink block")
				b = b[hdr : hdr+n]
			}
			out = append(out, b...)
		}
	}
	if int64(len(out)) < in.Size {
		return "", f.damage(in.Ino, in.Off, "remote symlink: %d of %d bytes mapped", len(out), in.Size)
	}
	return string(out[:in.Size]), nil
}

// Lookup implements vfs.FS.
func (f *FS) Lookup(path string) (vfs.Ino, error) { return f.lookup(path, false) }

// LookupFollow implements vfs.FS.
func (f *FS) LookupFollow(path string) (vfs.Ino, error) { return f.lookup(path, true) }

func (f *FS) lookup(path string, follow bool) (vfs.Ino, error) {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	links := 0
	cur := f.Root()
	parts := strings.Split(path, "/")
	for i := 0; i < len(parts); i++ {
		name := parts[i]
		if name == "" || name == "." {
			continue
		}
		st, err := f.Stat(cur)
		if err != nil {
			return 0, err
		}
		if !st.IsDir() {
			return 0, &fs.PathError{Op: "lookup", Path: path, Err: errors.New("not a directory")}
		}
		next, err := f.find(cur, name)
		if err != nil {
			return 0, err
		}
		if next == 0 {
			return 0, &fs.PathError{Op: "lookup", Path: path, Err: fs.ErrNotExist}
		}
		last := true
		for _, p := range parts[i+1:] {
			if p != "" && p != "." {
				last = false
			}
		}
		if !last || follow {
			nst, err := f.Stat(next)
			if err != nil {
				return 0, err
			}
			if nst.IsSymlink() {
				if links++; links > 40 {
					return 0, &fs.PathError{Op: "lookup", Path: path, Err: errors.New("too many levels of symbolic links")}
				}
				t, err := f.Readlink(next)
				if err != nil {
					return 0, err
				}
				rest := parts[i+1:]
				if strings.HasPrefix(t, "/") {
					cur = f.Root()
				}
				parts = append(strings.Split(t, "/"), rest...)
				i = -1
				continue
			}
		}
		cur = next
	}
	return cur, nil
}

// find looks a name up in directory dir ("..": the parent).
func (f *FS) find(dir vfs.Ino, name string) (vfs.Ino, error) {
	if name == ".." {
		p, err := f.parent(dir)
		return p, err
	}
	ents, err := f.ReadDir(dir)
	for _, e := range ents {
		if e.Name == name {
			return e.Ino, nil
		}
	}
	return 0, err
}

// Open implements vfs.FS.
func (f *FS) Open(ino vfs.Ino) (vfs.File, error) {
	in, err := f.inode(ino)
	if err != nil {
		return nil, err
	}
	if in.typ() != vfs.ModeReg {
		return nil, f.damage(in.Ino, in.Off, "not a regular file")
	}
	if in.Flags&diflagRealtime != 0 {
		return nil, f.damage(in.Ino, in.Off, "realtime file: its data is on the realtime device, which is not read")
	}
	ext, err := f.forkExtents(in, false)
	if err != nil {
		return nil, err
	}
	if in.Format == fmtLocal {
		return nil, f.damage(in.Ino, in.Off, "regular file in local format")
	}
	return &file{r: forkReader{f: f, ext: ext, zero: true}, size: in.Size}, nil
}

type file struct {
	r    forkReader
	size int64
}

func (fl *file) Size() int64 { return fl.size }

func (fl *file) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= fl.size {
		return 0, io.EOF
	}
	n := len(p)
	var eof error
	if int64(n) > fl.size-off {
		n, eof = int(fl.size-off), io.EOF
	}
	if err := fl.r.ReadAt(p[:n], off); err != nil {
		return 0, err
	}
	return n, eof
}

func (fl *file) DataRanges() []vfs.Range {
	var out []vfs.Range
	bl := fl.r.f.sb.BlockLog
	for _, e := range fl.r.ext {
		if e.unwritten {
			continue
		}
		s, l := int64(e.off)<<bl, int64(e.len)<<bl
		if s >= fl.size {
			break
		}
		if s+l > fl.size {
			l = fl.size - s
		}
		if n := len(out); n > 0 && out[n-1].Off+out[n-1].Len == s {
			out[n-1].Len += l
			continue
		}
		out = append(out, vfs.Range{Off: s, Len: l})
	}
	return out
}

// BlockMap implements vfs.BlockMapper.
func (f *FS) BlockMap(ino vfs.Ino) (data, meta []vfs.PhysRange, err error) {
	in, err := f.inode(ino)
	if err != nil {
		return nil, nil, err
	}
	for _, attr := range []bool{false, true} {
		ext, err := f.forkExtents(in, attr)
		for _, e := range ext {
			off, _ := f.fsbOff(e.fsb)
			r := vfs.PhysRange{Off: off, Len: int64(e.len) << f.sb.BlockLog}
			if attr || in.typ() == vfs.ModeDir {
				meta = append(meta, r)
			} else {
				data = append(data, r)
			}
		}
		if err != nil {
			return data, meta, err
		}
	}
	return data, meta, nil
}

// WalkInodes implements vfs.FS.
func (f *FS) WalkInodes(ctx context.Context, fn func(ino vfs.Ino, st *vfs.Stat, err error) error) error {
	internal := map[uint64]bool{f.sb.RbmIno: true, f.sb.RsumIno: true, f.sb.UQuotIno: true, f.sb.GQuotIno: true, f.sb.PQuotIno: true}
	return f.walkInobt(ctx, func(ino uint64) error {
		if internal[ino] && ino != f.sb.RootIno {
			return nil
		}
		in, err := f.Inode(ino)
		if err != nil {
			return fn(vfs.Ino(ino), nil, err)
		}
		if in.Mode == 0 {
			return nil
		}
		return fn(vfs.Ino(ino), in.stat(f.sb), nil)
	})
}

var (
	_ vfs.ExtentMapper = (*FS)(nil)
	_ vfs.Detailer     = (*FS)(nil)
	_ vfs.BlockMapper  = (*FS)(nil)
)

// Extents implements vfs.ExtentMapper: the data fork's map in bytes (none
// for local-format files, symlinks and directories, and device nodes).
func (f *FS) Extents(ino vfs.Ino) ([]vfs.Extent, error) {
	in, err := f.inode(ino)
	if err != nil {
		return nil, err
	}
	ext, err := f.forkExtents(in, false)
	bl := f.sb.BlockLog
	out := make([]vfs.Extent, 0, len(ext))
	for _, e := range ext {
		p, perr := f.fsbOff(e.fsb)
		if perr != nil {
			continue
		}
		out = append(out, vfs.Extent{Logical: int64(e.off) << bl, Physical: p, Len: int64(e.len) << bl, Unwritten: e.unwritten})
	}
	return out, err
}

// Details implements vfs.Detailer: "xfs v4"/"xfs v5" and the inode's
// byte offset on the volume.
func (f *FS) Details(ino vfs.Ino) (vfs.Details, error) {
	d := vfs.Details{Format: fmt.Sprintf("xfs v%d", f.sb.Version()), Offset: -1}
	off, err := f.inodeOff(uint64(ino))
	if err != nil {
		return d, f.damage(uint64(ino), -1, "%v", err)
	}
	d.Offset = off
	return d, nil
}
