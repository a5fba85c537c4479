package journal

import (
	"fmt"
	"io"
	"sort"

	"github.com/imgtool/imgtool/ext"
)

// History is every copy of a filesystem block the journal still holds:
// the transactions of the current log and the older ones its ring has not
// overwritten yet. A deleted file's inode and block map are usually there:
// the kernel clears them on disk, but the journal keeps the copies logged
// before the deletion (the method of ext4magic and extundelete).
type History struct {
	dev    *device
	bs     int64
	Copies []Copy // newest transaction first, then in log order
}

// Copy is one logged copy of filesystem block Block, written by
// transaction TID. Committed is false when no commit block of that
// transaction was found in the ring (the copy may never have been
// meant).
type Copy struct {
	Block     uint64
	TID       uint32
	Offset    int64 // byte offset of the copy on the journal's device
	Committed bool
	escaped   bool
}

// ReadHistory scans the whole journal of fsys (opened on vol) for
// descriptor blocks, current or stale, and lists the copies they describe.
// Nothing is replayed.
func ReadHistory(vol io.ReaderAt, size int64, fsys *ext.FS, opts *Options) (*History, error) {
	if opts == nil {
		opts = &Options{}
	}
	if !fsys.Superblock().HasJournal() {
		return nil, ErrNoJournal
	}
	dev, sbBlock, err := openDevice(vol, size, fsys, opts)
	if err != nil {
		return nil, err
	}
	bs := fsys.BlockSize()
	buf := make([]byte, bs)
	sbOff, err := dev.read(sbBlock, buf)
	if err != nil {
		return nil, err
	}
	jsb, err := ParseSuperblock(buf, sbOff)
	if err != nil {
		return nil, err
	}
	first, last, err := geometry(jsb, dev, bs, sbOff)
	if err != nil {
		return nil, err
	}
	h := &History{dev: dev, bs: bs}
	committed := map[uint32]bool{}
	ring := last - first
	wrap := func(b uint64) uint64 {
		if b >= last {
			b -= ring
		}
		return b
	}
	for j := first; j < last; j++ {
		off, err := dev.read(j, buf)
		if err != nil || be.Uint32(buf) != Magic {
			continue
		}
		seq := be.Uint32(buf[8:])
		switch be.Uint32(buf[4:]) {
		case BlockCommit:
			committed[seq] = true
		case BlockDescriptor:
			_ = off
			tags := jsb.tags(buf)
			if uint64(len(tags)) >= ring {
				continue
			}
			for i, t := range tags {
				dj := wrap(j + 1 + uint64(i))
				doff, err := dev.offset(dj)
				if err != nil || t.block >= fsys.Superblock().BlocksCount {
					continue
				}
				h.Copies = append(h.Copies, Copy{Block: t.block, TID: seq, Offset: doff, escaped: t.flags&TagEscape != 0})
			}
		}
	}
	for i := range h.Copies {
		h.Copies[i].Committed = committed[h.Copies[i].TID]
	}
	// Newest first; tids compare modulo 2^32 around the superblock's
	// sequence (the oldest possible transaction in the ring).
	base := jsb.Sequence - uint32(ring)
	sort.SliceStable(h.Copies, func(a, b int) bool {
		return h.Copies[a].TID-base > h.Copies[b].TID-base
	})
	return h, nil
}

// Read reads copy c into b (one filesystem block).
func (h *History) Read(c Copy, b []byte) error {
	if int64(len(b)) != h.bs {
		return fmt.Errorf("journal: history read of %d bytes, block size %d", len(b), h.bs)
	}
	n, err := h.dev.r.ReadAt(b, c.Offset)
	if n < len(b) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("journal: reading the copy of block %d (transaction %d) at offset %#x: %w", c.Block, c.TID, c.Offset, err)
	}
	if c.escaped {
		be.PutUint32(b, Magic)
	}
	return nil
}

// BlockSize is the filesystem block size.
func (h *History) BlockSize() int64 { return h.bs }
