package md

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/imgtool/imgtool/raid"
)

// Check is what (*Reader).Check found: for raid4/5/6 the stripes whose
// stored parity disagrees with their data, for raid1 the ranges where the
// members' copies differ.
type Check struct {
	Level string `json:"level"`
	// Stripes/Checked: raid4/5/6 stripes in the array and how many could
	// be verified; Unverifiable ones had too many members missing.
	Stripes      int64  `json:"stripes,omitempty"`
	Checked      int64  `json:"checked,omitempty"`
	Unverifiable int64  `json:"unverifiable,omitempty"`
	FirstError   string `json:"first_error,omitempty"`
	// Bad lists the first bad stripes (up to the limit; MemberOff is
	// within each member's data area); BadCount counts them all.
	Bad      []raid.Mismatch `json:"bad,omitempty"`
	BadCount int64           `json:"bad_count"`
	// Differ lists raid1 array ranges where a member differs from the
	// first member present (merged, 512-byte sectors).
	Differ []Range `json:"differ,omitempty"`
	// Members names the member of each role ("" when missing).
	Members []string `json:"members"`
}

// Range is a byte range [Off, Off+Len).
type Range struct {
	Off int64 `json:"offset"`
	Len int64 `json:"length"`
}

// ErrNoRedundancy is returned by Check for levels without parity or
// copies to compare (linear, raid0).
var ErrNoRedundancy = errors.New("the level has no redundancy to check")

// Check verifies the array's redundancy: every stripe's P (and Q) for
// raid4/5/6, every member against the first for raid1. It lists at most
// limit bad stripes. raid10 is not checked yet.
func (r *Reader) Check(limit int) (*Check, error) {
	c := &Check{Level: r.a.LevelName()}
	for _, m := range r.a.Slots {
		name := ""
		if m != nil {
			name = m.Name
		}
		c.Members = append(c.Members, name)
	}
	switch lv := r.level.(type) {
	case *viaRaid:
		pr, ok := lv.r.(*raid.ParityReader)
		if !ok {
			return nil, fmt.Errorf("MD array %s (%s): %w", r.Name, c.Level, ErrNoRedundancy)
		}
		c.Stripes = pr.Stripes()
		for s := int64(0); s < c.Stripes; s++ {
			m, err := pr.CheckStripe(s)
			if err != nil {
				if errors.Is(err, raid.ErrUnverifiable) {
					c.Unverifiable++
					if c.FirstError == "" {
						c.FirstError = err.Error()
					}
					continue
				}
				return c, fmt.Errorf("MD array %s: stripe %d: %w", r.Name, s, err)
			}
			c.Checked++
			if m == nil {
				continue
			}
			c.BadCount++
			if len(c.Bad) < limit {
				c.Bad = append(c.Bad, *m)
			}
		}
		return c, nil
	case raid1:
		return c, r.checkRAID1(c)
	}
	return nil, fmt.Errorf("MD array %s (%s): %w", r.Name, c.Level, ErrNoRedundancy)
}

func (r *Reader) checkRAID1(c *Check) error {
	const chunk = 64 << 10
	var present []int
	for i, d := range r.devs {
		if d != nil {
			present = append(present, i)
		}
	}
	if len(present) < 2 {
		c.FirstError = "fewer than two members present: nothing to compare"
		return nil
	}
	bufs := make([][]byte, len(present))
	for i := range bufs {
		bufs[i] = make([]byte, chunk)
	}
	for off := int64(0); off < r.size; off += chunk {
		n := min(chunk, r.size-off)
		for i, slot := range present {
			if err := r.readDev(slot, bufs[i][:n], off, off); err != nil {
				return err
			}
		}
		for i := 1; i < len(present); i++ {
			if bytes.Equal(bufs[0][:n], bufs[i][:n]) {
				continue
			}
			for s := int64(0); s < n; s += 512 {
				e := min(s+512, n)
				if !bytes.Equal(bufs[0][s:e], bufs[i][s:e]) {
					c.Differ = addRange(c.Differ, off+s, e-s)
				}
			}
		}
	}
	c.BadCount = int64(len(c.Differ))
	return nil
}

func addRange(rs []Range, off, n int64) []Range {
	if k := len(rs); k > 0 && rs[k-1].Off+rs[k-1].Len >= off {
		if end := off + n; end > rs[k-1].Off+rs[k-1].Len {
			rs[k-1].Len = end - rs[k-1].Off
		}
		return rs
	}
	return append(rs, Range{off, n})
}
