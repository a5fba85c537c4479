package ext

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Extent trees (ext4, FlagExtents). i_block holds the root node: a 12-byte
// header followed by up to 4 12-byte entries. Interior nodes (depth > 0)
// hold index entries pointing to child blocks; leaves (depth 0) hold extents
// mapping a run of logical blocks to physical blocks. A tree block is one
// filesystem block: header, eh_max entries, then (metadata_csum) a 4-byte
// crc32c tail over everything before it, seeded with the inode seed.
const (
	extentMagic      = 0xF30A
	extentHeaderSize = 12
	extentEntrySize  = 12
	// maxExtentDepth bounds the tree: the kernel never builds more than 5
	// levels (ext4's EXT4_MAX_EXTENT_DEPTH).
	maxExtentDepth = 5
	// maxSalvageDepth is the depth Options.Salvage reads (the format's
	// 16-bit eh_depth allows more; nothing real comes close).
	maxSalvageDepth = 32
	// An ee_len above 32768 marks an unwritten (preallocated) extent of
	// ee_len-32768 blocks; exactly 32768 is an initialised one.
	extentInitMaxLen = 32768

	ehMagic   = 0
	ehEntries = 2
	ehMax     = 4
	ehDepth   = 6
	// index entry
	eiBlock  = 0
	eiLeafLo = 4
	eiLeafHi = 8
	// leaf entry
	eeBlock   = 0
	eeLen     = 4
	eeStartHi = 6
	eeStartLo = 8
)

// Extent maps Len logical blocks starting at Logical to the physical blocks
// starting at Physical. Unwritten extents are allocated but read as zeros.
// Block numbers are in filesystem blocks (FS.BlockSize bytes).
type Extent struct {
	Logical   uint64
	Physical  uint64
	Len       uint64
	Unwritten bool
}

// extentWalk carries the bounds of one tree walk.
type extentWalk struct {
	fsys    *FS
	in      *Inode
	out     []Extent
	visited map[uint64]bool
	meta    []uint64 // tree blocks, in walk order
	buf     [][]byte // one block buffer per level
	// err is the first damage met. The walk goes on past a bad extent or
	// an unreadable subtree, so that salvage gets every extent that can
	// be read.
	err error
}

func (w *extentWalk) keep(err error) {
	if err != nil && w.err == nil {
		w.err = err
	}
}

// extentTree returns the leaf extents of in's extent tree, in logical order.
// On damage it returns every extent it could read (skipping bad extents and
// unreadable subtrees) and the first *CorruptError.
func (fsys *FS) extentTree(in *Inode) ([]Extent, []uint64, error) {
	w := &extentWalk{fsys: fsys, in: in}
	w.keep(w.node(in.Block[:], in.Offset+inBlock, -1))
	err := w.err
	if !slices.IsSortedFunc(w.out, cmpExtent) {
		slices.SortFunc(w.out, cmpExtent)
	}
	return w.out, w.meta, err
}

func cmpExtent(a, b Extent) int {
	switch {
	case a.Logical < b.Logical:
		return -1
	case a.Logical > b.Logical:
		return 1
	}
	return 0
}

// node decodes one tree node b found at byte offset off. wantDepth is the
// depth the parent says this node has (-1 for the root).
func (w *extentWalk) node(b []byte, off int64, wantDepth int) error {
	le := binary.LittleEndian
	ino := w.in.Ino
	if len(b) < extentHeaderSize {
		return corrupt(ino, off, "extent header", "node of %d bytes too small", len(b))
	}
	if m := le.Uint16(b[ehMagic:]); m != extentMagic {
		return corrupt(ino, off, "extent header", "bad magic %#04x", m)
	}
	entries := int(le.Uint16(b[ehEntries:]))
	maxEnt := int(le.Uint16(b[ehMax:]))
	depth := int(le.Uint16(b[ehDepth:]))
	if depth > maxExtentDepth {
		// e2fsck accepts a tree deeper than the kernel builds (and
		// rebuilds it); salvage reads it, the visited set bounds the walk.
		if !w.fsys.salvage || depth > maxSalvageDepth {
			return corrupt(ino, off, "extent header", "depth %d exceeds %d", depth, maxExtentDepth)
		}
		if wantDepth < 0 {
			w.fsys.note(ino, off, fmt.Sprintf("extent tree depth %d exceeds %d; read anyway", depth, maxExtentDepth), nil)
		}
	}
	if wantDepth >= 0 && depth != wantDepth {
		return corrupt(ino, off, "extent header", "depth %d, parent expects %d", depth, wantDepth)
	}
	if entries > maxEnt || extentHeaderSize+maxEnt*extentEntrySize > len(b) {
		return corrupt(ino, off, "extent header", "%d entries, max %d, do not fit in %d bytes", entries, maxEnt, len(b))
	}
	if depth == 0 {
		for i := range entries {
			e := b[extentHeaderSize+i*extentEntrySize:]
			n := uint64(le.Uint16(e[eeLen:]))
			x := Extent{
				Logical:  uint64(le.Uint32(e[eeBlock:])),
				Physical: uint64(le.Uint16(e[eeStartHi:]))<<32 | uint64(le.Uint32(e[eeStartLo:])),
			}
			if n > extentInitMaxLen {
				n -= extentInitMaxLen
				x.Unwritten = true
			}
			x.Len = n
			if n == 0 {
				continue
			}
			if x.Physical+n > w.fsys.sb.BlocksCount || x.Physical+n < x.Physical {
				w.keep(corrupt(ino, off+int64(extentHeaderSize+i*extentEntrySize), "extent", "blocks %d+%d beyond the block count %d", x.Physical, n, w.fsys.sb.BlocksCount))
				continue
			}
			w.out = append(w.out, x)
		}
		return nil
	}
	for i := range entries {
		e := b[extentHeaderSize+i*extentEntrySize:]
		child := uint64(le.Uint16(e[eiLeafHi:]))<<32 | uint64(le.Uint32(e[eiLeafLo:]))
		coff := int64(child) * w.fsys.bs
		if w.visited == nil {
			w.visited = make(map[uint64]bool)
		}
		if w.visited[child] {
			w.keep(corrupt(ino, off+int64(extentHeaderSize+i*extentEntrySize), "extent index", "block %d visited twice (loop)", child))
			continue
		}
		if uint64(len(w.visited)) >= w.fsys.nblocks {
			return corrupt(ino, off, "extent index", "more tree blocks than the filesystem has")
		}
		w.visited[child] = true
		w.meta = append(w.meta, child)
		level := depth - 1
		for len(w.buf) <= level {
			w.buf = append(w.buf, make([]byte, w.fsys.bs))
		}
		cb := w.buf[level]
		if err := w.fsys.readBlock(ino, "extent block", child, cb); err != nil {
			w.keep(err)
			continue
		}
		w.checkTail(cb, coff)
		w.keep(w.node(cb, coff, depth-1))
	}
	return nil
}

// checkTail verifies an extent block's crc32c tail (metadata_csum).
func (w *extentWalk) checkTail(b []byte, off int64) {
	if !w.fsys.sb.hasMetadataCsum() || len(b) < extentHeaderSize {
		return
	}
	maxEnt := int(binary.LittleEndian.Uint16(b[ehMax:]))
	end := extentHeaderSize + maxEnt*extentEntrySize
	if end+4 > len(b) {
		return
	}
	stored := binary.LittleEndian.Uint32(b[end:])
	c := crc32c(w.fsys.inodeSeed(w.in.Ino, w.in.Generation), b[:end])
	if c != stored {
		w.fsys.note(w.in.Ino, off, "", &ChecksumError{Ino: w.in.Ino, Offset: off, What: "extent block", Stored: stored, Computed: c})
	}
}
