package ext

import (
	"context"
	"fmt"
	"sync"

	"github.com/imgtool/imgtool/vfs"
)

// VFS is an ext filesystem as a vfs.FS. Inode numbers are ext's own
// (stable, shared by hard links), the root is inode 2, xattrs come in
// getxattr(2) form (POSIX ACLs converted to posix_acl_xattr, the
// inline-data area "system.data" left out), and holes and unwritten
// extents are outside DataRanges. It also implements vfs.BlockMapper.
//
// Notes added with AddNote (the journal replay's) come before the
// filesystem's own.
type VFS struct {
	fs  *FS
	typ string

	mu    sync.Mutex
	extra []vfs.Note
}

var (
	_ vfs.FS          = (*VFS)(nil)
	_ vfs.BlockMapper = (*VFS)(nil)
)

// NewVFS wraps fsys.
func NewVFS(fsys *FS) *VFS { return &VFS{fs: fsys, typ: fsys.sb.TypeName()} }

// TypeName is blkid's name for the filesystem: "ext2" (no journal, no
// ext4 feature), "ext3" (a journal, no ext4 feature) or "ext4".
func (s *Superblock) TypeName() string {
	const ext3Incompat = IncompatFiletype | IncompatRecover | IncompatMetaBG
	const ext2ROCompat = ROCompatSparseSuper | ROCompatLargeFile | ROCompatBtreeDir
	if s.FeatureIncompat&^ext3Incompat != 0 || s.FeatureROCompat&^ext2ROCompat != 0 {
		return "ext4"
	}
	if s.HasJournal() {
		return "ext3"
	}
	return "ext2"
}

// Ext returns the ext filesystem behind the view, for ext's own tools
// (salvage's group-descriptor rebuild, e2fsck-like checks).
func (v *VFS) Ext() *FS { return v.fs }

// AddNote adds a volume-level note (a journal replay's) to Notes.
func (v *VFS) AddNote(n vfs.Note) {
	v.mu.Lock()
	v.extra = append(v.extra, n)
	v.mu.Unlock()
}

// Info implements vfs.FS.
func (v *VFS) Info() vfs.Info {
	sb := v.fs.sb
	return vfs.Info{
		Type: v.typ, Label: sb.VolumeName, UUID: formatUUID(sb.UUID),
		BlockSize: v.fs.bs, MaxIno: vfs.Ino(sb.InodesCount),
		Caps: vfs.Caps{HardLinks: true, Xattrs: true, NsTimes: sb.InodeSize > 128, Owners: true,
			Perms: true, Inodes: true, Generation: true, Devices: true},
	}
}

func formatUUID(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Root implements vfs.FS.
func (v *VFS) Root() vfs.Ino { return RootIno }

// ino32 checks that ino fits ext's 32-bit inode numbers.
func ino32(ino vfs.Ino) (uint32, error) {
	if ino == 0 || ino > 0xFFFFFFFF {
		return 0, fmt.Errorf("ext: no inode %d", ino)
	}
	return uint32(ino), nil
}

// Lookup implements vfs.FS.
func (v *VFS) Lookup(p string) (vfs.Ino, error) {
	ino, err := v.fs.Lookup(p)
	return vfs.Ino(ino), err
}

// LookupFollow implements vfs.FS.
func (v *VFS) LookupFollow(p string) (vfs.Ino, error) {
	ino, err := v.fs.LookupFollow(p)
	return vfs.Ino(ino), err
}

// Stat implements vfs.FS. An inode without a valid file type (zeroed,
// unused) is an error naming its offset.
func (v *VFS) Stat(ino vfs.Ino) (*vfs.Stat, error) {
	i, err := ino32(ino)
	if err != nil {
		return nil, err
	}
	in, err := v.fs.Inode(i)
	if err != nil {
		return nil, err
	}
	if modeToFT(in.Mode) == FTUnknown {
		return nil, corrupt(i, in.Offset, "inode", "unknown file type %#o in i_mode %#o (zeroed or unused inode?)", in.Mode&ModeType, in.Mode)
	}
	return StatOf(in), nil
}

// StatOf converts a decoded inode to a vfs.Stat.
func StatOf(in *Inode) *vfs.Stat {
	st := new(vfs.Stat)
	statInto(st, in)
	return st
}

func statInto(st *vfs.Stat, in *Inode) {
	*st = vfs.Stat{
		Ino: vfs.Ino(in.Ino), Mode: uint32(in.Mode), Nlink: uint32(in.Links), UID: in.UID, GID: in.GID,
		Size: int64(min(in.Size, 1<<63-1)), Blocks: int64(min(in.Blocks, 1<<63-1)),
		Atime: in.Atime, Mtime: in.Mtime, Ctime: in.Ctime,
		Generation: in.Generation, Flags: in.Flags,
	}
	if in.HasCrtime {
		st.Btime = in.Crtime
	}
	if st.IsDevice() {
		st.RdevMajor, st.RdevMinor = in.Rdev()
	}
}

// ftToDT maps ext's directory-entry file types (EXT2_FT_*) to d_type.
var ftToDT = [...]uint8{
	FTReg: vfs.DTReg, FTDir: vfs.DTDir, FTChr: vfs.DTChar, FTBlk: vfs.DTBlock,
	FTFIFO: vfs.DTFIFO, FTSock: vfs.DTSocket, FTSymlink: vfs.DTLink,
}

// ReadDir implements vfs.FS.
func (v *VFS) ReadDir(ino vfs.Ino) ([]vfs.DirEntry, error) {
	i, err := ino32(ino)
	if err != nil {
		return nil, err
	}
	in, err := v.fs.Inode(i)
	if err != nil {
		return []vfs.DirEntry{}, err
	}
	l, err := v.fs.listDir(in)
	defer l.release()
	out := make([]vfs.DirEntry, 0, len(l.ents))
	var dot, dotdot bool
	l.each(func(e DirEntry) {
		// A directory starts with "." and ".."; only those two are left
		// out. Any other "." or ".." entry is damage or an attack, passed
		// on for consumers to refuse.
		if e.Name == "." && !dot {
			dot = true
			return
		}
		if e.Name == ".." && !dotdot {
			dotdot = true
			return
		}
		var dt uint8
		if int(e.FileType) < len(ftToDT) {
			dt = ftToDT[e.FileType]
		}
		out = append(out, vfs.DirEntry{Name: e.Name, Ino: vfs.Ino(e.Ino), Type: dt})
	})
	return out, err
}

// Readlink implements vfs.FS.
func (v *VFS) Readlink(ino vfs.Ino) (string, error) {
	i, err := ino32(ino)
	if err != nil {
		return "", err
	}
	return v.fs.Readlink(i)
}

// Xattrs implements vfs.FS. An ACL that cannot be converted is left out
// and named in the error, with the other attributes returned.
func (v *VFS) Xattrs(ino vfs.Ino) ([]vfs.Xattr, error) {
	i, err := ino32(ino)
	if err != nil {
		return nil, err
	}
	xs, err := v.fs.Xattrs(i)
	var out []vfs.Xattr
	for _, x := range xs {
		val := x.Value
		switch x.Name {
		case "system.data":
			continue
		case "system.posix_acl_access", "system.posix_acl_default":
			c, cerr := ACLToXattr(val)
			if cerr != nil {
				if err == nil {
					err = fmt.Errorf("ext: inode %d: %s: %w", i, x.Name, cerr)
				}
				continue
			}
			val = c
		}
		out = append(out, vfs.Xattr{Name: x.Name, Value: val})
	}
	return out, err
}

// Open implements vfs.FS.
func (v *VFS) Open(ino vfs.Ino) (vfs.File, error) {
	i, err := ino32(ino)
	if err != nil {
		return nil, err
	}
	f, err := v.fs.OpenInode(i)
	if err != nil {
		return nil, err
	}
	return vfsFile{f}, nil
}

type vfsFile struct{ *File }

func (f vfsFile) DataRanges() []vfs.Range {
	rs := f.File.DataRanges()
	out := make([]vfs.Range, len(rs))
	for i, r := range rs {
		out[i] = vfs.Range{Off: r.Off, Len: r.Len}
	}
	return out
}

// WalkInodes implements vfs.FS: every inode the inode bitmaps mark in use
// with a non-zero mode and link count, from the first non-reserved inode
// on (and the root). A group whose bitmap is uninitialised holds none;
// one whose bitmap cannot be read is scanned inode by inode.
//
// The inode table is read in runs of up to walkRun bytes, one ReadAt each,
// and only as far as the group's last in-use inode: groups whose table is
// not initialised (INODE_UNINIT) and the unused tail of the others
// (bg_itable_unused, or simply free in the bitmap) are never read. A run
// that cannot be read is retried inode by inode, so the errors passed to
// fn are the ones Stat would give.
func (v *VFS) WalkInodes(ctx context.Context, fn func(vfs.Ino, *vfs.Stat, error) error) error {
	return v.walkInodes(ctx, &inodeWalk{v: v, fn: fn})
}

// ScanInodes is WalkInodes for a caller that keeps nothing: one Stat is
// reused for every inode (valid only during fn), and inodes that cannot
// be read are left out. dump's pass I reads 1M inodes with it without
// allocating a Stat for each. When some were left out, it still visits
// all the others and then returns an error matching ErrScanIncomplete.
func (v *VFS) ScanInodes(ctx context.Context, fn func(vfs.Ino, *vfs.Stat) error) error {
	w := &inodeWalk{v: v, reuse: true}
	var skipped int
	w.fn = func(ino vfs.Ino, st *vfs.Stat, err error) error {
		if err != nil {
			skipped++
			return nil
		}
		return fn(ino, st)
	}
	if err := v.walkInodes(ctx, w); err != nil {
		return err
	}
	if skipped > 0 {
		return fmt.Errorf("ext: %d inodes could not be read: %w", skipped, ErrScanIncomplete)
	}
	return nil
}

// Parent returns the inode that directory ino's ".." entry names; it
// reads only as far as that entry (the first block, or i_block of an
// inline directory).
func (v *VFS) Parent(ino vfs.Ino) (vfs.Ino, error) {
	i, err := ino32(ino)
	if err != nil {
		return 0, err
	}
	in, err := v.fs.Inode(i)
	if err != nil {
		return 0, err
	}
	var parent uint32
	n := 0
	err = v.fs.scanDir(in, func(name []byte, e uint32, _ uint8) bool {
		n++
		if string(name) == ".." {
			parent = e
			return false
		}
		return n < 2 // ".." is the second entry
	})
	if parent == 0 {
		if err == nil {
			err = corrupt(i, in.Offset, "directory", "no \"..\" entry")
		}
		return 0, err
	}
	return vfs.Ino(parent), nil
}

// Consistent reports whether the view is of a consistent filesystem: the
// superblock says it was left consistent (cleanly unmounted, or journaled)
// with no errors recorded, no journal replay was needed and missed (a
// Stale note), it is not opened for salvage, and reading it has met no
// damage so far. A live snapshot of a mounted ext4 qualifies: the kernel
// keeps EXT2_VALID_FS set on a journaled filesystem, and the journal is
// replayed into memory.
func (v *VFS) Consistent() bool {
	if !v.fs.sb.Clean() || v.fs.salvage || len(v.fs.Notes()) > 0 {
		return false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, n := range v.extra {
		if n.Stale {
			return false
		}
	}
	return true
}

func (v *VFS) walkInodes(ctx context.Context, w *inodeWalk) error {
	sb := v.fs.sb
	w.first = max(sb.FirstIno, RootIno+1)
	if err := w.visit(RootIno); err != nil {
		return err
	}
	w.start()
	defer close(w.jobs)
	for g := range uint64(len(v.fs.groups)) {
		if err := ctx.Err(); err != nil {
			return err
		}
		bm, berr := v.fs.InodeBitmap(g)
		if berr == nil && bm == nil {
			continue
		}
		if berr != nil {
			bm = nil // unreadable bitmap: every inode of the group
		}
		if done, err := w.group(g, bm); done || err != nil {
			if err == nil {
				err = w.flush(0)
			}
			return err
		}
	}
	return w.flush(0)
}

// anyInUse reports whether bm (nil: all in use) marks any of the n
// inodes from index i.
func anyInUse(bm []byte, i, n uint64) bool {
	if bm == nil {
		return true
	}
	for k := i; k < i+n; k++ {
		if k/8 >= uint64(len(bm)) {
			return false
		}
		if k%8 == 0 && k+8 <= i+n && bm[k/8] == 0 {
			k += 7
			continue
		}
		if bm[k/8]&(1<<(k%8)) != 0 {
			return true
		}
	}
	return false
}

// walkRun is the most inode-table bytes WalkInodes reads at once.
const walkRun = 1 << 20

// walkWorkers read and decode runs side by side (inode checksums and
// decoding were half of a level-9 dump's CPU); walkAhead bounds the runs
// in flight (each holds walkRun bytes and its Stats).
const (
	walkWorkers = 2
	walkAhead   = 4
)

// inodeWalk is the state of one WalkInodes. Runs of the inode table go to
// workers, which read and decode them; the walking goroutine hands their
// inodes to fn in order.
type inodeWalk struct {
	v     *VFS
	fn    func(vfs.Ino, *vfs.Stat, error) error
	first uint32
	reuse bool // hand fn one reused Stat (ScanInodes)

	jobs  chan *walkJob
	queue []*walkJob // sent, in inode order
	spare []*walkJob
}

// walkJob is one run: n inodes from ino0, those bm marks in use.
type walkJob struct {
	i, n  uint64
	bm    []byte
	ino0  uint32
	buf   []byte
	in    Inode
	inos  []uint32
	stats []vfs.Stat
	notes []Note // recorded when the run is delivered, in order
	rerr  error  // the run could not be read: its inodes are visited one by one
	done  chan struct{}
}

func (w *inodeWalk) start() {
	w.jobs = make(chan *walkJob)
	for range walkWorkers {
		go func() {
			for j := range w.jobs {
				w.decode(j)
				close(j.done)
			}
		}()
	}
}

// use reports whether an inode is a file fn should see.
func (w *inodeWalk) use(in *Inode) bool {
	return in.Mode != 0 && in.Links != 0 && in.Flags&FlagEAInode == 0 && !w.v.internal(in.Ino)
}

// visit reads one inode on its own (the root, or a run that failed).
func (w *inodeWalk) visit(ino uint32) error {
	in, err := w.v.fs.Inode(ino)
	if err != nil {
		return w.fn(vfs.Ino(ino), nil, err)
	}
	if !w.use(in) {
		return nil
	}
	return w.fn(vfs.Ino(ino), StatOf(in), nil)
}

func inUse(bm []byte, i uint64) bool {
	return bm == nil || i/8 < uint64(len(bm)) && bm[i/8]&(1<<(i%8)) != 0
}

// decode reads run j and decodes its inodes in use (on a worker).
func (w *inodeWalk) decode(j *walkJob) {
	fsys := w.v.fs
	isz := uint64(fsys.sb.InodeSize)
	j.inos, j.stats, j.notes = j.inos[:0], j.stats[:0], j.notes[:0]
	off, err := fsys.inodeOffset(j.ino0)
	if err == nil {
		if uint64(cap(j.buf)) < j.n*isz {
			j.buf = make([]byte, j.n*isz)
		}
		err = fsys.readFull(j.buf[:j.n*isz], off)
	}
	if j.rerr = err; err != nil {
		return
	}
	for k := range j.n {
		ino := j.ino0 + uint32(k)
		if ino < w.first || !inUse(j.bm, j.i+k) {
			continue
		}
		fsys.decodeInode(&j.in, ino, off+int64(k*isz), j.buf[k*isz:(k+1)*isz], &j.notes)
		if w.use(&j.in) {
			j.inos = append(j.inos, ino)
			j.stats = append(j.stats, vfs.Stat{})
			statInto(&j.stats[len(j.stats)-1], &j.in)
		}
	}
	j.in.raw = nil
}

// deliver hands run j's inodes to fn (on the walking goroutine).
func (w *inodeWalk) deliver(j *walkJob) error {
	if j.rerr != nil {
		for k := range j.n {
			ino := j.ino0 + uint32(k)
			if ino >= w.first && inUse(j.bm, j.i+k) {
				if err := w.visit(ino); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, n := range j.notes {
		w.v.fs.note(n.Ino, n.Offset, n.Msg, n.Err)
	}
	for k, ino := range j.inos {
		st := &j.stats[k]
		if !w.reuse {
			c := *st
			st = &c
		}
		if err := w.fn(vfs.Ino(ino), st, nil); err != nil {
			return err
		}
	}
	return nil
}

// flush delivers finished runs, in order, until at most limit are in
// flight.
func (w *inodeWalk) flush(limit int) error {
	for len(w.queue) > limit {
		j := w.queue[0]
		<-j.done
		w.queue = w.queue[1:]
		if err := w.deliver(j); err != nil {
			return err
		}
		w.spare = append(w.spare, j)
	}
	return nil
}

// group sends the runs of group g (bm nil: every inode in use) to the
// workers. done is true past the last inode of the filesystem.
func (w *inodeWalk) group(g uint64, bm []byte) (done bool, err error) {
	sb := w.v.fs.sb
	ipg := uint64(sb.InodesPerGroup)
	if g*ipg >= uint64(sb.InodesCount) {
		return true, nil
	}
	// The table is read up to the last inode in use.
	end := ipg
	if bm != nil {
		for end > 0 && !inUse(bm, end-1) {
			end--
		}
	}
	if last := uint64(sb.InodesCount) - g*ipg; last < end {
		end, done = last, true
	}
	per := max(uint64(walkRun)/uint64(sb.InodeSize), 1)
	for i := uint64(0); i < end; i += per {
		n := min(per, end-i)
		if !anyInUse(bm, i, n) {
			continue
		}
		if err := w.flush(walkAhead - 1); err != nil {
			return true, err
		}
		var j *walkJob
		if k := len(w.spare); k > 0 {
			j, w.spare = w.spare[k-1], w.spare[:k-1]
		} else {
			j = new(walkJob)
		}
		j.i, j.n, j.bm, j.ino0, j.done = i, n, bm, uint32(g*ipg+i+1), make(chan struct{})
		w.jobs <- j
		w.queue = append(w.queue, j)
	}
	return done, nil
}

// internal reports inodes that hold the format's own data: quota files,
// the orphan file, the journal (xattr value inodes are told by their
// flag).
func (v *VFS) internal(ino uint32) bool {
	sb := v.fs.sb
	switch ino {
	case sb.UsrQuotaInum, sb.GrpQuotaInum, sb.PrjQuotaInum, sb.OrphanFileInum, sb.JournalInum:
		return true
	}
	return false
}

// Notes implements vfs.FS.
func (v *VFS) Notes() []vfs.Note {
	v.mu.Lock()
	out := append([]vfs.Note(nil), v.extra...)
	v.mu.Unlock()
	for _, n := range v.fs.Notes() {
		msg := n.Msg
		if n.Err != nil {
			msg = n.Err.Error()
		}
		out = append(out, vfs.Note{Ino: vfs.Ino(n.Ino), Offset: n.Offset, Msg: msg})
	}
	return out
}

// BlockMap implements vfs.BlockMapper: the data extents (unwritten ones
// too: the blocks are owned) and the extent-tree or indirect blocks plus
// the external xattr block.
func (v *VFS) BlockMap(ino vfs.Ino) (data, meta []vfs.PhysRange, err error) {
	i, err := ino32(ino)
	if err != nil {
		return nil, nil, err
	}
	in, err := v.fs.Inode(i)
	if err != nil {
		return nil, nil, err
	}
	bs := v.fs.bs
	mapped := in.IsRegular() || in.IsDir() || (in.IsSymlink() && !v.fs.isFastSymlink(in))
	if mapped && in.Flags&FlagInlineData == 0 {
		var ext []Extent
		var blks []uint64
		ext, blks, err = v.fs.MapInode(in)
		for _, e := range ext {
			data = append(data, vfs.PhysRange{Off: int64(e.Physical) * bs, Len: int64(e.Len) * bs})
		}
		for _, b := range blks {
			meta = append(meta, vfs.PhysRange{Off: int64(b) * bs, Len: bs})
		}
	}
	if in.FileACL != 0 {
		meta = append(meta, vfs.PhysRange{Off: int64(in.FileACL) * bs, Len: bs})
	}
	return data, meta, err
}

var (
	_ vfs.ExtentMapper = (*VFS)(nil)
	_ vfs.Detailer     = (*VFS)(nil)
)

// Extents implements vfs.ExtentMapper: the block map in bytes (none for
// inline data, fast symlinks and device nodes).
func (v *VFS) Extents(ino vfs.Ino) ([]vfs.Extent, error) {
	i, err := ino32(ino)
	if err != nil {
		return nil, err
	}
	in, err := v.fs.Inode(i)
	if err != nil {
		return nil, err
	}
	if !(in.IsRegular() || in.IsDir() || (in.IsSymlink() && !v.fs.isFastSymlink(in))) || in.Flags&FlagInlineData != 0 {
		return nil, nil
	}
	m, err := v.fs.blockMap(in)
	bs := v.fs.bs
	out := make([]vfs.Extent, 0, len(m))
	for _, e := range m {
		out = append(out, vfs.Extent{Logical: int64(e.Logical) * bs, Physical: int64(e.Physical) * bs,
			Len: int64(e.Len) * bs, Unwritten: e.Unwritten})
	}
	return out, err
}

// Details implements vfs.Detailer: the inode's offset and xattr block.
func (v *VFS) Details(ino vfs.Ino) (vfs.Details, error) {
	i, err := ino32(ino)
	if err != nil {
		return vfs.Details{Offset: -1}, err
	}
	in, err := v.fs.Inode(i)
	if err != nil {
		return vfs.Details{Offset: -1}, err
	}
	return vfs.Details{Format: v.typ, Offset: in.Offset, XattrBlock: in.FileACL}, nil
}
