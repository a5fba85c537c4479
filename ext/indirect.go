package ext

import "encoding/binary"

// The ext2/ext3 block map: i_block holds 15 little-endian block numbers.
// The first 12 map logical blocks 0..11 directly; entry 12 points to an
// indirect block of block numbers, 13 to a double-indirect block (a block of
// indirect blocks), 14 to a triple-indirect block. Block number 0 is a hole.
const (
	nDirect       = 12
	indIndirect   = 12
	indDouble     = 13
	indTriple     = 14
	iBlockEntries = 15
)

type indirectWalk struct {
	fsys   *FS
	in     *Inode
	limit  uint64 // logical blocks past this are ignored (i_size)
	budget uint64 // indirect blocks left to read (bounded by the block count)
	out    []Extent
	meta   []uint64 // indirect blocks, in walk order
	// visited: an indirect block appears once in a valid map; a repeat is
	// a loop (or cross-link) and would multiply the work.
	visited map[uint64]bool
	buf     [3][]byte
	// err is the first damage met; the walk goes on past it.
	err error
}

func (w *indirectWalk) keep(err error) {
	if err != nil && w.err == nil {
		w.err = err
	}
}

// add appends one mapped block, merging it into the previous run.
func (w *indirectWalk) add(logical, phys uint64) {
	if n := len(w.out); n > 0 {
		last := &w.out[n-1]
		if last.Logical+last.Len == logical && last.Physical+last.Len == phys {
			last.Len++
			return
		}
	}
	w.out = append(w.out, Extent{Logical: logical, Physical: phys, Len: 1})
}

// indirectMap returns the block map of an inode using indirect blocks, as
// runs of contiguous blocks. On damage it returns every block it could map
// (bad pointers and unreadable indirect blocks are skipped) and the first
// *CorruptError.
func (fsys *FS) indirectMap(in *Inode) ([]Extent, []uint64, error) {
	bs := uint64(fsys.bs)
	w := &indirectWalk{fsys: fsys, in: in, budget: fsys.nblocks, visited: make(map[uint64]bool)}
	w.limit = (in.Size + bs - 1) / bs
	if in.Size > 1<<62 {
		w.limit = 1 << 50
	}
	le := binary.LittleEndian
	per := bs / 4
	for i := range nDirect {
		if uint64(i) >= w.limit {
			return w.out, w.meta, w.err
		}
		if p := uint64(le.Uint32(in.Block[4*i:])); p != 0 {
			if err := w.check(p, in.Offset+inBlock+int64(4*i)); err != nil {
				w.keep(err)
				continue
			}
			w.add(uint64(i), p)
		}
	}
	start := uint64(nDirect)
	span := per
	for level := 1; level <= 3; level++ {
		if start >= w.limit {
			break
		}
		slot := nDirect + level - 1
		if p := uint64(le.Uint32(in.Block[4*slot:])); p != 0 {
			if err := w.walk(p, level, start, in.Offset+inBlock+int64(4*slot)); err != nil {
				if w.budget == 0 {
					return w.out, w.meta, err
				}
				w.keep(err)
			}
		}
		start += span
		span *= per
	}
	return w.out, w.meta, w.err
}

func (w *indirectWalk) check(p uint64, where int64) error {
	if p >= w.fsys.sb.BlocksCount {
		return corrupt(w.in.Ino, where, "block pointer", "block %d beyond the block count %d", p, w.fsys.sb.BlocksCount)
	}
	return nil
}

// walk reads indirect block blk at the given level (1 = it holds data block
// numbers) covering logical blocks from start.
func (w *indirectWalk) walk(blk uint64, level int, start uint64, where int64) error {
	if err := w.check(blk, where); err != nil {
		return err
	}
	if w.budget == 0 {
		return corrupt(w.in.Ino, where, "indirect block", "more indirect blocks than the filesystem has")
	}
	if w.visited[blk] {
		return corrupt(w.in.Ino, where, "indirect block", "block %d referenced twice (loop)", blk)
	}
	w.visited[blk] = true
	w.budget--
	w.meta = append(w.meta, blk)
	if w.buf[level-1] == nil {
		w.buf[level-1] = make([]byte, w.fsys.bs)
	}
	b := w.buf[level-1]
	if err := w.fsys.readBlock(w.in.Ino, "indirect block", blk, b); err != nil {
		return err
	}
	per := uint64(len(b) / 4)
	span := uint64(1)
	for range level - 1 {
		span *= per
	}
	base := int64(blk) * w.fsys.bs
	for i := uint64(0); i < per; i++ {
		lb := start + i*span
		if lb >= w.limit {
			break
		}
		p := uint64(binary.LittleEndian.Uint32(b[4*i:]))
		if p == 0 {
			continue
		}
		if level == 1 {
			if err := w.check(p, base+int64(4*i)); err != nil {
				w.keep(err)
				continue
			}
			w.add(lb, p)
			continue
		}
		if err := w.walk(p, level-1, lb, base+int64(4*i)); err != nil {
			if w.budget == 0 {
				return err
			}
			w.keep(err)
		}
		// the recursive call reused lower buffers; ours is intact
	}
	return nil
}
