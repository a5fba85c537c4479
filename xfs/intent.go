package xfs

import (
	"fmt"
	"sort"
)

// Unfinished bmap intents (BUI without its BUD). A BUI says that one
// extent is to be mapped into, or unmapped from, a file's fork; the
// transaction that did it (and logged the BUD) never reached the log.
// The kernel's recovery redoes it after replaying the log items
// (xfs_bmap_recover_work: xfs_bmapi_remap for a map, __xfs_bunmapi for an
// unmap), so a reader sees it: reflink and swapext leave them. After the
// replay, finishBmapIntents computes the fork each such intent leaves
// (bmapFix), which forkExtents returns instead of the fork's, and Inode
// adjusts the block count. That holds for the data fork and for the attr
// fork alike: the kernel logs attr-fork BUIs only when it exchanges
// mappings (xfs_exchmaps, kernel 6.10+, online repair of xattrs), and
// recovery redoes them the same way. Realtime intents and ones that do not
// decode or fit stay a stale note.

// bmapFix is one fork of an inode after its unfinished bmap intents.
type bmapFix struct {
	ext   []extent
	delta int64 // change of the block count (di_nblocks)
}

// forkKey names one fork of an inode.
type forkKey struct {
	ino  uint64
	attr bool
}

// pendingBUI is an unfinished BUI the replay can finish.
type pendingBUI struct {
	fork forkKey
	ops  []bmapOp
}

// blocksDelta is how much the finished bmap intents change inode ino's
// block count, over both forks.
func (f *FS) blocksDelta(ino uint64) (int64, bool) {
	d, ok := int64(0), false
	for _, attr := range []bool{false, true} {
		if fx := f.bmapFix[forkKey{ino, attr}]; fx != nil {
			d, ok = d+fx.delta, true
		}
	}
	return d, ok
}

// finishBmapIntents finishes bs in log order over the replayed view,
// as the kernel's recovery does after the log items. It returns the
// names of those it could not (for the stale note).
func (r *logReplay) finishBmapIntents(bs []pendingBUI) []string {
	f := r.f
	var left []string
	byFork := map[forkKey][]bmapOp{}
	var order []forkKey
	for _, b := range bs {
		if _, ok := byFork[b.fork]; !ok {
			order = append(order, b.fork)
		}
		byFork[b.fork] = append(byFork[b.fork], b.ops...)
	}
	for _, k := range order {
		ops := byFork[k]
		ext, in, err := f.intentFork(k)
		if err != nil {
			f.note(k.ino, -1, true, fmt.Sprintf("log: unfinished bmap intent for the %s fork of inode %d: %v; not applied", forkName(k.attr), k.ino, err))
			for range ops {
				left = append(left, "BUI")
			}
			continue
		}
		out, delta, done := f.applyBmapOps(in, ext, ops)
		if f.bmapFix == nil {
			f.bmapFix = map[forkKey]*bmapFix{}
		}
		f.bmapFix[k] = &bmapFix{ext: out, delta: delta}
		r.li.IntentsFinished += done
	}
	return left
}

func forkName(attr bool) string {
	if attr {
		return "attr"
	}
	return "data"
}

// intentFork returns the extents of the fork k names, as the replay left
// them, for finishing bmap intents: the fork must map blocks (extents or
// btree; an attr fork may also be absent or empty, which
// xfs_bmapi_remap's caller would have converted first: there is nothing
// to map into otherwise).
func (f *FS) intentFork(k forkKey) ([]extent, *Inode, error) {
	in, err := f.Inode(k.ino)
	if err != nil {
		return nil, nil, err
	}
	if in.Mode == 0 {
		return nil, nil, fmt.Errorf("inode is free")
	}
	format := in.Format
	if k.attr {
		format = in.AFormat
	}
	if format != fmtExtents && format != fmtBtree {
		return nil, nil, fmt.Errorf("fork of format %d", format)
	}
	ext, err := f.forkExtents(in, k.attr)
	return ext, in, err
}

// BUI extent flags (xfs_log_format.h, struct xfs_map_extent me_flags).
const (
	bmapTypeMask   = 0xff
	bmapMap        = 1
	bmapUnmap      = 2
	bmapAttrFork   = 1 << 31
	bmapUnwritten  = 1 << 30
	bmapRealtime   = 1 << 29
	bmapKnownFlags = bmapTypeMask | bmapAttrFork | bmapUnwritten | bmapRealtime
	mapExtentSize  = 32
)

// bmapOp is one extent of an unfinished BUI, in log order.
type bmapOp struct {
	unmap bool
	e     extent
}

// parseBUI decodes a BUI's format region (struct xfs_bui_log_format) into
// the operations on one fork the replay can finish; ok is false when it
// holds anything else (realtime, unknown flags) or does not decode.
func (f *FS) parseBUI(b []byte) (fork forkKey, ops []bmapOp, ok bool) {
	if len(b) < 16 {
		return fork, nil, false
	}
	n := int(le.Uint32(b[4:]))
	if n != 1 || len(b) < 16+n*mapExtentSize {
		return fork, nil, false // the kernel logs one extent per BUI
	}
	x := b[16:]
	owner := le.Uint64(x)
	start, off := le.Uint64(x[8:]), le.Uint64(x[16:])
	cnt, flags := uint64(le.Uint32(x[24:])), le.Uint32(x[28:])
	if flags&^bmapKnownFlags != 0 || flags&bmapRealtime != 0 || cnt == 0 {
		return fork, nil, false
	}
	typ := flags & bmapTypeMask
	if typ != bmapMap && typ != bmapUnmap {
		return fork, nil, false
	}
	if _, err := f.inodeOff(owner); err != nil {
		return fork, nil, false
	}
	if _, err := f.fsbOff(start); err != nil {
		return fork, nil, false
	}
	if _, err := f.fsbOff(start + cnt - 1); err != nil {
		return fork, nil, false
	}
	if off+cnt > 1<<54 {
		return fork, nil, false
	}
	return forkKey{owner, flags&bmapAttrFork != 0}, []bmapOp{{unmap: typ == bmapUnmap, e: extent{off: off, fsb: start, len: cnt, unwritten: flags&bmapUnwritten != 0}}}, true
}

// applyBmapOps finishes the unfinished bmap intents of inode in over ext
// (the extents of the fork they name, sorted, not overlapping): a map fills a hole
// (xfs_bmapi_remap maps only into one; otherwise the intent is not
// applied, with a stale note), an unmap punches one. It returns the new
// extents, the change of the block count and how many ops it applied.
func (f *FS) applyBmapOps(in *Inode, ext []extent, ops []bmapOp) ([]extent, int64, int) {
	out := append([]extent(nil), ext...)
	var delta int64
	done := 0
	for _, op := range ops {
		e := op.e
		end := e.off + e.len
		if !op.unmap {
			hole := true
			for _, x := range out {
				if x.off < end && e.off < x.off+x.len {
					hole = false
				}
			}
			if !hole {
				f.note(in.Ino, in.Off, true, fmt.Sprintf("log: unfinished bmap intent maps file blocks %d-%d, not a hole; not applied", e.off, end-1))
				continue
			}
			out = append(out, e)
			sort.Slice(out, func(i, j int) bool { return out[i].off < out[j].off })
			delta += int64(e.len)
			done++
			continue
		}
		var kept []extent
		for _, x := range out {
			xend := x.off + x.len
			if xend <= e.off || x.off >= end {
				kept = append(kept, x)
				continue
			}
			if x.off < e.off {
				kept = append(kept, extent{off: x.off, fsb: x.fsb, len: e.off - x.off, unwritten: x.unwritten})
			}
			if xend > end {
				kept = append(kept, extent{off: end, fsb: x.fsb + (end - x.off), len: xend - end, unwritten: x.unwritten})
			}
			delta -= int64(min(xend, end) - max(x.off, e.off))
		}
		out = kept
		done++
	}
	return out, delta, done
}
