package md

import (
	"errors"
	"fmt"
	"io"

	"github.com/imgtool/imgtool/raid"
)

// parity reads raid4/5/6 through package raid, which holds the layouts
// (the kernel's ALGORITHM_* numbers, as the MD superblock stores them),
// the P/Q maths and the rebuild of missing members.
type parity struct {
	pr *raid.ParityReader
}

func newParity(a *Array, r *Reader) (levelReader, int64, error) {
	g := raid.Parity{Level: a.Level, Layout: raid.Layout(a.Layout), Disks: a.RaidDisks, ChunkSize: a.ChunkSize}
	if err := g.Validate(); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrNotReadable, err)
	}
	size := g.Size(a.DevSize)
	pr, err := raid.NewParityReader(g, r.devs, size)
	if err != nil {
		if errors.Is(err, raid.ErrTooManyMissing) {
			return nil, 0, fmt.Errorf("%w: %v", ErrNotReadable, err)
		}
		return nil, 0, err
	}
	return &parity{pr: pr}, size, nil
}

func (p *parity) readAt(r *Reader, b []byte, off int64) error {
	n, err := p.pr.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	var me *raid.MemberError
	if errors.As(err, &me) && me.Member >= 0 && me.Member < len(r.a.Slots) {
		who := fmt.Sprintf("role %d (missing)", me.Member)
		if m := r.a.Slots[me.Member]; m != nil {
			who = fmt.Sprintf("%s (role %d)", m.Name, me.Member)
		}
		return fmt.Errorf("MD array %s: reading array byte %d needs member %s at data byte %d: %w", r.Name, off+int64(n), who, me.Off, err)
	}
	return fmt.Errorf("MD array %s: reading array byte %d: %w", r.Name, off+int64(n), err)
}
