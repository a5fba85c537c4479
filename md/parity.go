package md

import (
	"errors"
	"fmt"
	"io"

	"github.com/imgtool/imgtool/raid"
)

// raid4/5/6 and raid10 are read through package raid, which holds the
// layouts (the kernel's numbers, as the MD superblock stores them), the
// P/Q maths, the rebuild of missing members and raid10's near/far/offset
// copies (shared with LVM's dm-raid segments).
type viaRaid struct {
	r io.ReaderAt
}

// stale tells package raid which members were part-way through a rebuild.
type staler interface{ MarkStale(i int, from int64) }

func markRecovering(a *Array, s staler) {
	for i, m := range a.Slots {
		if m != nil && m.SB.Features&featRecoveryOffset != 0 {
			s.MarkStale(i, m.SB.RecoveryOffset)
		}
	}
}

func newParity(a *Array, r *Reader) (levelReader, int64, error) {
	g := raid.Parity{Level: a.Level, Layout: raid.Layout(a.Layout), Disks: a.RaidDisks, ChunkSize: a.ChunkSize}
	if err := g.Validate(); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrNotReadable, err)
	}
	size := g.Size(a.DevSize)
	pr, err := raid.NewParityReader(g, r.devs, size)
	if err != nil {
		return nil, 0, notReadable(err)
	}
	markRecovering(a, pr)
	return &viaRaid{r: pr}, size, nil
}

func newRAID10(a *Array, r *Reader) (levelReader, int64, error) {
	g, err := raid.Raid10FromLayout(uint32(a.Layout), a.RaidDisks, a.ChunkSize, a.DevSize)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrNotReadable, err)
	}
	size := g.Size()
	rr, err := raid.NewRaid10Reader(g, r.devs, size)
	if err != nil {
		return nil, 0, notReadable(err)
	}
	markRecovering(a, rr)
	return &viaRaid{r: rr}, size, nil
}

func notReadable(err error) error {
	if errors.Is(err, raid.ErrTooManyMissing) {
		return fmt.Errorf("%w: %v", ErrNotReadable, err)
	}
	return err
}

// readAt reads through package raid and names the array, the array byte
// and the member in errors.
func (v *viaRaid) readAt(r *Reader, b []byte, off int64) error {
	n, err := v.r.ReadAt(b, off)
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
