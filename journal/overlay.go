package journal

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sort"

	"github.com/imgtool/imgtool/ext"
)

// Overlay is the volume as it reads after the journal replay: an
// io.ReaderAt (safe for concurrent use) of the same size, serving replayed
// blocks from their copies in the journal and everything else from the
// volume. Nothing is ever written.
type Overlay struct {
	vol  io.ReaderAt
	size int64
	bs   int64
	dev  io.ReaderAt // where the journal copies are (vol, or the external device)

	refs map[uint64]ref // replayed filesystem block -> its copy
	keys []uint64       // sorted keys of refs

	// mem are blocks built in memory by the fast-commit replay (whole
	// blocks, served over the replayed ones), memKeys their sorted keys.
	mem     map[uint64][]byte
	memKeys []uint64

	// patches are byte ranges rewritten after the blocks (superblocks),
	// applied in order.
	patches []patch
}

type patch struct {
	off  int64
	data []byte
}

// Size returns the volume size in bytes.
func (o *Overlay) Size() int64 { return o.size }

// Blocks returns the filesystem blocks replayed from the journal, sorted.
func (o *Overlay) Blocks() []uint64 { return slices.Clone(o.keys) }

// BlockSize returns the filesystem block size.
func (o *Overlay) BlockSize() int64 { return o.bs }

// Patched returns the byte ranges the overlay rewrites besides the replayed
// blocks (the filesystem and journal superblocks), as [offset, length]
// pairs.
func (o *Overlay) Patched() [][2]int64 {
	var out [][2]int64
	for _, p := range o.patches {
		out = append(out, [2]int64{p.off, int64(len(p.data))})
	}
	return out
}

// ReadAt implements io.ReaderAt.
func (o *Overlay) ReadAt(p []byte, off int64) (int, error) {
	n, err := o.readBlocks(p, off)
	if n > 0 {
		o.applyPatches(p[:n], off)
	}
	return n, err
}

// readBlocks reads the volume with the replayed blocks, without patches.
func (o *Overlay) readBlocks(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("journal: overlay: negative offset %d", off)
	}
	if off >= o.size {
		return 0, io.EOF
	}
	want := len(p)
	var eof error
	if int64(want) > o.size-off {
		want = int(o.size - off)
		eof = io.EOF
	}
	p = p[:want]
	n, err := o.vol.ReadAt(p, off)
	if n < want {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		// The volume failed part way: still serve what it gave.
		want = n
		p = p[:n]
		eof = err
	}
	if len(o.keys) > 0 && want > 0 {
		first := uint64(off / o.bs)
		end := uint64((off + int64(want) + o.bs - 1) / o.bs)
		i := sort.Search(len(o.keys), func(i int) bool { return o.keys[i] >= first })
		var blk []byte
		for ; i < len(o.keys) && o.keys[i] < end; i++ {
			b := o.keys[i]
			if blk == nil {
				blk = make([]byte, o.bs)
			}
			if err := o.readCopy(b, blk); err != nil {
				return 0, err
			}
			bOff := int64(b) * o.bs
			lo, hi := max(bOff, off), min(bOff+o.bs, off+int64(want))
			copy(p[lo-off:hi-off], blk[lo-bOff:hi-bOff])
		}
	}
	if len(o.memKeys) > 0 && want > 0 {
		first := uint64(off / o.bs)
		end := uint64((off + int64(want) + o.bs - 1) / o.bs)
		i := sort.Search(len(o.memKeys), func(i int) bool { return o.memKeys[i] >= first })
		for ; i < len(o.memKeys) && o.memKeys[i] < end; i++ {
			b := o.memKeys[i]
			blk := o.mem[b]
			bOff := int64(b) * o.bs
			lo, hi := max(bOff, off), min(bOff+o.bs, off+int64(want))
			copy(p[lo-off:hi-off], blk[lo-bOff:hi-bOff])
		}
	}
	return want, eof
}

// readCopy reads the replayed content of filesystem block b.
func (o *Overlay) readCopy(b uint64, blk []byte) error {
	r := o.refs[b]
	n, err := o.dev.ReadAt(blk, r.off)
	if n < len(blk) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("journal: reading the journal copy of block %d at offset %#x: %w", b, r.off, err)
	}
	if r.escape {
		be.PutUint32(blk, Magic)
	}
	return nil
}

func (o *Overlay) applyPatches(p []byte, off int64) {
	end := off + int64(len(p))
	for _, pt := range o.patches {
		pend := pt.off + int64(len(pt.data))
		if pend <= off || pt.off >= end {
			continue
		}
		lo, hi := max(pt.off, off), min(pend, end)
		copy(p[lo-off:hi-off], pt.data[lo-pt.off:hi-pt.off])
	}
}

// patchSuperblock presents the primary filesystem superblock (after the
// replayed blocks) with needs_recovery cleared and s_state adjusted, and
// its metadata_csum checksum recomputed.
func (o *Overlay) patchSuperblock(fsb *ext.Superblock, setState, clearState uint16) error {
	le := binary.LittleEndian
	off := fsb.Offset
	if off <= 0 {
		off = extSBOffset
	}
	b := make([]byte, extSuperblockSize)
	if n, err := o.readBlocks(b, off); n < len(b) {
		return fmt.Errorf("journal: reading the filesystem superblock at offset %#x through the replay: %w", off, err)
	}
	if le.Uint16(b[extMagicOff:]) != extMagic {
		// A replayed block overwrote the superblock with garbage: show
		// what the journal says, untouched.
		return nil
	}
	inc := le.Uint32(b[extIncompat:])
	state := le.Uint16(b[extState:])
	newState := state&^clearState | setState
	if inc&extIncompatRecov == 0 && newState == state {
		return nil
	}
	le.PutUint32(b[extIncompat:], inc&^extIncompatRecov)
	le.PutUint16(b[extState:], newState)
	if le.Uint32(b[extROCompat:])&extROCompatMCsum != 0 {
		le.PutUint32(b[extChecksum:], crc32c(^uint32(0), b[:extChecksum]))
	}
	o.patches = append(o.patches, patch{off: off, data: b})
	return nil
}

// patchJournalSuperblock presents an internal journal as e2fsck leaves it
// after recovery: empty (s_start 0), s_sequence the next transaction,
// s_errno 0, checksum recomputed.
func (o *Overlay) patchJournalSuperblock(off int64, seq uint32) {
	b := make([]byte, superblockSize)
	if n, _ := o.readBlocks(b, off); n < len(b) {
		return
	}
	if be.Uint32(b) != Magic {
		return
	}
	be.PutUint32(b[jsStart:], 0)
	be.PutUint32(b[jsSequence:], seq)
	be.PutUint32(b[jsErrno:], 0)
	if be.Uint32(b[4:]) == BlockSuperblockV2 && be.Uint32(b[jsFeatureIncompt:])&(IncompatCsumV2|IncompatCsumV3) != 0 {
		be.PutUint32(b[jsChecksum:], superblockChecksum(b))
	}
	o.patches = append(o.patches, patch{off: off, data: b})
}
