package xfs

import (
	"io"
	"sync"
)

const bbSize = 512

// overlay is the volume with replayed log items on top, in 512-byte
// basic blocks. The volume itself is never written.
type overlay struct {
	base   io.ReaderAt
	mu     sync.RWMutex
	bbs    map[int64][]byte
	lo, hi int64 // range of BB numbers present
}

func newOverlay(base io.ReaderAt) *overlay {
	return &overlay{base: base, bbs: map[int64][]byte{}, lo: 1<<62 - 1, hi: -1}
}

func (o *overlay) ReadAt(p []byte, off int64) (int, error) {
	n, err := o.base.ReadAt(p, off)
	o.mu.RLock()
	defer o.mu.RUnlock()
	if len(o.bbs) == 0 {
		return n, err
	}
	first, last := off/bbSize, (off+int64(len(p))-1)/bbSize
	if last < o.lo || first > o.hi {
		return n, err
	}
	for bb := max(first, o.lo); bb <= min(last, o.hi); bb++ {
		d, ok := o.bbs[bb]
		if !ok {
			continue
		}
		s := bb * bbSize
		src := d
		dst := s - off
		if dst < 0 {
			src = src[-dst:]
			dst = 0
		}
		copy(p[dst:], src)
	}
	return n, err
}

// replayed reports whether any basic block of [off, off+n) was written by
// the log replay.
func (o *overlay) replayed(off, n int64) bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	first, last := off/bbSize, (off+n-1)/bbSize
	if len(o.bbs) == 0 || last < o.lo || first > o.hi {
		return false
	}
	for bb := max(first, o.lo); bb <= min(last, o.hi); bb++ {
		if _, ok := o.bbs[bb]; ok {
			return true
		}
	}
	return false
}

// write puts b at byte offset off (read-modify-write of partial BBs).
func (o *overlay) write(off int64, b []byte) error {
	for len(b) > 0 {
		bb := off / bbSize
		in := off % bbSize
		o.mu.RLock()
		d, ok := o.bbs[bb]
		o.mu.RUnlock()
		if !ok {
			d = make([]byte, bbSize)
			if in != 0 || len(b) < bbSize {
				if _, err := o.ReadAt(d, bb*bbSize); err != nil && err != io.EOF {
					return err
				}
			}
		}
		n := copy(d[in:], b)
		o.mu.Lock()
		o.bbs[bb] = d
		o.lo, o.hi = min(o.lo, bb), max(o.hi, bb)
		o.mu.Unlock()
		b, off = b[n:], off+int64(n)
	}
	return nil
}

// read returns a copy of n bytes at off as the overlay shows them.
func (o *overlay) read(off int64, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := o.ReadAt(b, off); err != nil && err != io.EOF {
		return nil, err
	}
	return b, nil
}
