// Package undelete finds deleted files of an ext3/ext4 filesystem and
// recovers what can be recovered of them, without writing the volume.
//
// The kernel clears a deleted inode's block map (ext4 empties the extent
// tree in the inode, ext3 zeroes the block pointers), but the journal
// still holds copies of the inode-table blocks logged before the deletion,
// and of the directory blocks that named the file. This is the method of
// ext4magic and extundelete:
//
//  1. the current view (journal replayed) says which inodes are free now;
//  2. every copy of an inode-table block in the journal ring (current log
//     and older transactions the ring still holds) gives older versions of
//     those inodes; the newest one where the inode was live is the
//     candidate, with the transaction it came from;
//  3. its block map is read as it was then: the extent-tree or indirect
//     blocks from the journal copies no newer than that transaction, else
//     from the disk;
//  4. a data block is taken only if it is free now (the block bitmap of
//     the current view) and no newer deleted file claimed it; blocks
//     reused since are reported, never mixed in (they read as zeros and
//     the file is not intact);
//  5. names come from older copies of directory blocks in the journal and
//     from deleted entries still visible in directory blocks (the slack
//     of rec_len), else the file is #deleted/<ino>.
//
// On ext2 (no journal), deleted inodes keep their block pointers: the
// on-disk inode itself is the candidate.
package undelete

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/internal/zero"
	"github.com/imgtool/imgtool/journal"
)

// Confidence grades a candidate.
type Confidence string

const (
	// High: the block map is complete, every data block is free now and
	// claimed by no newer deleted file, the inode copy is from a committed
	// transaction, and a name was found.
	High Confidence = "high"
	// Medium: as High, but without a name, or from an uncommitted copy.
	Medium Confidence = "medium"
	// Low: part of the data is gone (blocks reused or claimed by a newer
	// deleted file, or the block map could not be read whole).
	Low Confidence = "low"
)

// Candidate is one deleted file.
type Candidate struct {
	Ino  uint32
	Path string // "/dir/name", or "#deleted/<ino>" when no name was found
	// NameFrom says where the name was found.
	NameFrom            string
	Mode                uint16
	UID, GID            uint32
	Size                int64
	Atime, Mtime, Ctime time.Time
	// TID is the journal transaction whose copy of the inode is used
	// (0 on ext2: the inode on disk).
	TID        uint32
	Committed  bool
	Blocks     int64 // data blocks in the map
	Reused     int64 // blocks in use now, or claimed by a newer deleted file
	Intact     bool
	Confidence Confidence
	Problems   []string

	data []ext.Extent
	bad  map[uint64]bool // physical blocks not to read
}

// IsDir and IsRegular test the mode.
func (c *Candidate) IsDir() bool     { return c.Mode&0xF000 == 0x4000 }
func (c *Candidate) IsRegular() bool { return c.Mode&0xF000 == 0x8000 }

// Result is a scan of one filesystem.
type Result struct {
	Candidates []*Candidate // regular files and symlinks, by path
	Dirs       []*Candidate // deleted directories (for their names)
	// Journal is false when the filesystem has no usable journal (ext2, or
	// a journal that cannot be read): only on-disk inodes were looked at.
	Journal bool
	Notes   []string

	vol  io.ReaderAt
	size int64
	bs   int64
}

// Scan looks for deleted files in the ext filesystem on vol.
func Scan(vol io.ReaderAt, size int64) (*Result, error) {
	v, err := journal.Open(vol, size, nil, nil)
	if err != nil {
		return nil, err
	}
	cur := v.FS
	s := &scanner{
		cur: cur, curR: v.ReaderAt, vol: vol, size: size, bs: cur.BlockSize(),
		sb: cur.Superblock(), live: map[uint32]string{},
		cands: map[uint32]*Candidate{}, raws: map[uint32][]byte{},
		byBlock: map[uint64][]journal.Copy{}, past: map[uint32]*ext.FS{},
	}
	res := &Result{vol: v.ReaderAt, size: v.Size, bs: s.bs}
	if v.ReplayErr != nil {
		res.Notes = append(res.Notes, fmt.Sprintf("journal not replayed (%v): \"free now\" is judged on the on-disk state", v.ReplayErr))
	}
	if err := s.walkLive(); err != nil {
		res.Notes = append(res.Notes, fmt.Sprintf("walking the live tree: %v", err))
	}
	if err := s.loadBitmaps(); err != nil {
		return nil, err
	}
	h, err := journal.ReadHistory(vol, size, v.FS, nil)
	switch {
	case err == nil:
		res.Journal = true
		s.hist = h
		for _, c := range h.Copies {
			s.byBlock[c.Block] = append(s.byBlock[c.Block], c)
		}
		s.fromJournal()
	case errors.Is(err, journal.ErrNoJournal):
	default:
		res.Notes = append(res.Notes, fmt.Sprintf("journal unreadable (%v): only on-disk inodes examined", err))
	}
	s.fromDisk()
	s.maps()
	s.names()
	for _, c := range s.cands {
		s.grade(c)
		if c.IsDir() {
			res.Dirs = append(res.Dirs, c)
		} else {
			res.Candidates = append(res.Candidates, c)
		}
	}
	for _, l := range [][]*Candidate{res.Candidates, res.Dirs} {
		sort.Slice(l, func(i, j int) bool {
			if l[i].Path != l[j].Path {
				return l[i].Path < l[j].Path
			}
			return l[i].Ino < l[j].Ino
		})
	}
	return res, nil
}

type scanner struct {
	cur  *ext.FS
	curR io.ReaderAt
	vol  io.ReaderAt
	size int64
	bs   int64
	sb   *ext.Superblock

	live     map[uint32]string // live directory inode -> path
	liveDirs []uint32
	inodeBM  map[uint64][]byte
	blockBM  map[uint64][]byte

	hist    *journal.History
	byBlock map[uint64][]journal.Copy // newest first
	past    map[uint32]*ext.FS

	cands map[uint32]*Candidate
	raws  map[uint32][]byte
}

func (s *scanner) walkLive() error {
	root := uint32(2)
	s.live[root] = ""
	queue := []uint32{root}
	for len(queue) > 0 && len(s.live) < 1<<22 {
		d := queue[0]
		queue = queue[1:]
		s.liveDirs = append(s.liveDirs, d)
		ents, err := s.cur.ReadDirInode(d)
		if err != nil && len(ents) == 0 {
			continue
		}
		for _, e := range ents {
			if e.Name == "." || e.Name == ".." || e.FileType != ext.FTDir {
				continue
			}
			if _, seen := s.live[e.Ino]; seen {
				continue
			}
			s.live[e.Ino] = s.live[d] + "/" + e.Name
			queue = append(queue, e.Ino)
		}
	}
	return nil
}

func (s *scanner) loadBitmaps() error {
	s.inodeBM, s.blockBM = map[uint64][]byte{}, map[uint64][]byte{}
	for g := range uint64(len(s.cur.Groups())) {
		ib, err := s.cur.InodeBitmap(g)
		if err != nil {
			return fmt.Errorf("undelete: inode bitmap of group %d: %w", g, err)
		}
		s.inodeBM[g] = ib
		bb, err := s.cur.BlockBitmap(g)
		if err != nil {
			return fmt.Errorf("undelete: block bitmap of group %d: %w", g, err)
		}
		s.blockBM[g] = bb
	}
	return nil
}

// inodeFree reports whether ino is free in the current view.
func (s *scanner) inodeFree(ino uint32) bool {
	g := uint64(ino-1) / uint64(s.sb.InodesPerGroup)
	i := uint64(ino-1) % uint64(s.sb.InodesPerGroup)
	bm := s.inodeBM[g]
	if bm == nil {
		return true // INODE_UNINIT: nothing in use
	}
	return bm[i/8]&(1<<(i%8)) == 0
}

// blockFree reports whether block b is free in the current view.
func (s *scanner) blockFree(b uint64) bool {
	first := uint64(s.sb.FirstDataBlock)
	if b < first || b >= s.sb.BlocksCount {
		return false
	}
	g := (b - first) / uint64(s.sb.BlocksPerGroup)
	i := (b - first) % uint64(s.sb.BlocksPerGroup)
	bm, ok := s.blockBM[g]
	if !ok {
		return false
	}
	if bm == nil {
		return false // BLOCK_UNINIT: treat as unknown, never read
	}
	return bm[i/8]&(1<<(i%8)) == 0
}

const (
	oMode    = 0x00
	oLinks   = 0x1A
	oDtime   = 0x14
	oFlags   = 0x20
	oBlock   = 0x28
	modeMask = 0xF000
)

// plausible reports an inode copy of a live regular file, symlink or
// directory.
func plausible(raw []byte) bool {
	le := binary.LittleEndian
	mode := le.Uint16(raw[oMode:])
	t := mode & modeMask
	if t != 0x8000 && t != 0x4000 && t != 0xA000 {
		return false
	}
	return le.Uint16(raw[oLinks:]) > 0 && le.Uint32(raw[oDtime:]) == 0
}

// fromJournal picks, for every inode free now, the newest copy of it in
// the journal where it was live.
func (s *scanner) fromJournal() {
	isz := int64(s.sb.InodeSize)
	perBlock := s.bs / isz
	itBlocks := (int64(s.sb.InodesPerGroup)*isz + s.bs - 1) / s.bs
	itable := map[uint64]uint64{} // inode-table block -> first inode in it
	for g, gd := range s.cur.Groups() {
		for k := range itBlocks {
			itable[gd.InodeTable+uint64(k)] = uint64(g)*uint64(s.sb.InodesPerGroup) + uint64(k*perBlock) + 1
		}
	}
	buf := make([]byte, s.bs)
	for _, c := range s.hist.Copies {
		firstIno, ok := itable[c.Block]
		if !ok {
			continue
		}
		if err := s.hist.Read(c, buf); err != nil {
			continue
		}
		for k := range perBlock {
			ino := uint32(firstIno + uint64(k))
			if ino > s.sb.InodesCount || ino < 11 && ino != 2 {
				continue
			}
			if _, done := s.cands[ino]; done || !s.inodeFree(ino) {
				continue
			}
			raw := buf[k*isz : (k+1)*isz]
			if !plausible(raw) {
				continue
			}
			s.add(ino, raw, c.TID, c.Committed)
		}
	}
}

// fromDisk adds inodes free now whose on-disk copy still looks live (ext2
// keeps the block pointers of deleted inodes; a crash can leave others).
func (s *scanner) fromDisk() {
	isz := int64(s.sb.InodeSize)
	raw := make([]byte, isz)
	for g := range uint64(len(s.cur.Groups())) {
		if s.inodeBM[g] == nil {
			continue
		}
		for i := range uint64(s.sb.InodesPerGroup) {
			ino := uint32(g*uint64(s.sb.InodesPerGroup) + i + 1)
			if ino < 11 || !s.inodeFree(ino) {
				continue
			}
			if _, done := s.cands[ino]; done {
				continue
			}
			off, err := s.cur.InodeOffset(ino)
			if err != nil {
				continue
			}
			if n, _ := s.curR.ReadAt(raw, off); n < len(raw) {
				continue
			}
			le := binary.LittleEndian
			mode := le.Uint16(raw[oMode:])
			if t := mode & modeMask; t != 0x8000 && t != 0x4000 && t != 0xA000 {
				continue
			}
			// ext2's deleted inodes have links 0 and dtime set, but
			// their block pointers are intact: a non-empty map is the
			// sign.
			if zero.Is(raw[oBlock : oBlock+60]) {
				continue
			}
			if le.Uint32(raw[oFlags:])&ext.FlagExtents != 0 && le.Uint16(raw[oBlock+2:]) == 0 {
				continue // an emptied extent tree: nothing left on disk
			}
			s.add(ino, raw, 0, true)
		}
	}
}

func (s *scanner) add(ino uint32, raw []byte, tid uint32, committed bool) {
	off, _ := s.cur.InodeOffset(ino)
	in, err := s.cur.ParseInode(ino, off, slices.Clone(raw))
	if err != nil {
		return
	}
	c := &Candidate{
		Ino: ino, Mode: in.Mode, UID: in.UID, GID: in.GID, Size: int64(in.Size),
		Atime: in.Atime, Mtime: in.Mtime, Ctime: in.Ctime, TID: tid, Committed: committed,
		Path: fmt.Sprintf("#deleted/%d", ino),
	}
	s.cands[ino] = c
	s.raws[ino] = slices.Clone(raw)
}

// pastFS is the filesystem as of transaction tid: each block from the
// newest journal copy no newer than tid, else from the disk.
func (s *scanner) pastFS(tid uint32) (*ext.FS, error) {
	if f, ok := s.past[tid]; ok {
		return f, nil
	}
	r := &pastReader{s: s, tid: tid}
	f, err := ext.Open(r, s.size, nil)
	if err != nil {
		return nil, err
	}
	s.past[tid] = f
	return f, nil
}

type pastReader struct {
	s   *scanner
	tid uint32
}

func (p *pastReader) ReadAt(b []byte, off int64) (int, error) {
	n, err := p.s.vol.ReadAt(b, off)
	if n == 0 || p.s.hist == nil {
		return n, err
	}
	bs := p.s.bs
	blk := make([]byte, bs)
	for i := off / bs; i*bs < off+int64(n); i++ {
		for _, c := range p.s.byBlock[uint64(i)] {
			if int32(c.TID-p.tid) > 0 || !c.Committed {
				continue
			}
			if p.s.hist.Read(c, blk) != nil {
				break
			}
			lo, hi := max(i*bs, off), min((i+1)*bs, off+int64(n))
			copy(b[lo-off:hi-off], blk[lo-i*bs:hi-i*bs])
			break
		}
	}
	return n, err
}

// maps reads every candidate's block map as it was.
func (s *scanner) maps() {
	for ino, c := range s.cands {
		f := s.cur
		if c.TID != 0 {
			pf, err := s.pastFS(c.TID)
			if err != nil {
				c.Problems = append(c.Problems, fmt.Sprintf("filesystem as of transaction %d: %v", c.TID, err))
				continue
			}
			f = pf
		}
		off, _ := f.InodeOffset(ino)
		in, err := f.ParseInode(ino, off, slices.Clone(s.raws[ino]))
		if err != nil {
			c.Problems = append(c.Problems, err.Error())
			continue
		}
		data, _, err := f.MapInode(in)
		if err != nil {
			c.Problems = append(c.Problems, fmt.Sprintf("block map incomplete: %v", err))
		}
		c.data = data
		for _, e := range data {
			c.Blocks += int64(e.Len)
		}
	}
}

// grade checks each candidate's blocks and sets Intact and Confidence.
func (s *scanner) grade(c *Candidate) {
	if c.bad == nil {
		c.bad = map[uint64]bool{}
	}
	for _, e := range c.data {
		for i := uint64(0); i < e.Len; i++ {
			b := e.Physical + i
			if !s.blockFree(b) {
				c.bad[b] = true
			}
		}
	}
	// A block claimed by a newer deleted file was overwritten by it.
	for _, o := range s.cands {
		if o == c || o.TID == 0 || c.TID == 0 || int32(o.TID-c.TID) <= 0 {
			continue
		}
		for _, e := range c.data {
			for _, f := range o.data {
				lo, hi := max(e.Physical, f.Physical), min(e.Physical+e.Len, f.Physical+f.Len)
				for b := lo; b < hi; b++ {
					c.bad[b] = true
				}
			}
		}
	}
	c.Reused = int64(len(c.bad))
	blocksNeeded := (c.Size + s.bs - 1) / s.bs
	complete := len(c.Problems) == 0
	if c.IsRegular() && c.Blocks == 0 && c.Size > 0 {
		complete = false
		c.Problems = append(c.Problems, "no block map survives")
	}
	if c.Blocks > blocksNeeded+1 && c.IsRegular() {
		// more blocks than the size needs: preallocation, or a map
		// from another life of the inode
		c.Problems = append(c.Problems, fmt.Sprintf("block map has %d blocks for %d bytes", c.Blocks, c.Size))
	}
	if c.Reused > 0 {
		c.Problems = append(c.Problems, fmt.Sprintf("%d of %d blocks reused since the deletion (read as zeros)", c.Reused, c.Blocks))
	}
	c.Intact = complete && c.Reused == 0
	switch {
	case !c.Intact:
		c.Confidence = Low
	case !c.Committed || strings.HasPrefix(c.Path, "#deleted/"):
		c.Confidence = Medium
	default:
		c.Confidence = High
	}
}

// Open returns the candidate's recovered content: its data blocks as the
// map gives them, holes and bad blocks as zeros.
func (r *Result) Open(c *Candidate) io.ReaderAt {
	return &content{r: r, c: c}
}

type content struct {
	r *Result
	c *Candidate
}

func (f *content) ReadAt(p []byte, off int64) (int, error) {
	if off >= f.c.Size {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > f.c.Size-off {
		n = int(f.c.Size - off)
	}
	clear(p[:n])
	bs := f.r.bs
	for _, e := range f.c.data {
		if e.Unwritten {
			continue
		}
		eOff, eEnd := int64(e.Logical)*bs, int64(e.Logical+e.Len)*bs
		lo, hi := max(eOff, off), min(eEnd, off+int64(n))
		for pos := lo; pos < hi; {
			lblk := uint64(pos / bs)
			pb := e.Physical + (lblk - e.Logical)
			end := min(int64(lblk+1)*bs, hi)
			if !f.c.bad[pb] {
				src := int64(pb)*bs + pos%bs
				if _, err := f.r.vol.ReadAt(p[pos-off:end-off], src); err != nil && !errors.Is(err, io.EOF) {
					return 0, fmt.Errorf("undelete: inode %d: reading block %d at offset %#x: %w", f.c.Ino, pb, src, err)
				}
			}
			pos = end
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Readlink returns a deleted symlink's target (fast symlinks only keep it
// in the inode copy; others in their data block).
func (r *Result) Readlink(c *Candidate) (string, error) {
	b := make([]byte, c.Size)
	if len(c.data) == 0 {
		return "", fmt.Errorf("undelete: inode %d: symlink target not recoverable from the inode copy", c.Ino)
	}
	if _, err := r.Open(c).ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return string(b), nil
}

// cleanName is a path component that extraction may create.
func cleanName(n string) bool {
	return n != "" && n != "." && n != ".." && !strings.ContainsAny(n, "/\x00") && path.Clean(n) == n
}
