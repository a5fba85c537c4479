package lvm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// raid1 and mirror segments keep a full copy of the data on every leg: the
// raid1 legs are "rimage" sub-LVs (each with an "rmeta" sub-LV holding the
// md superblock and write-intent bitmap, which we do not need for reading),
// the old "mirror" legs are "mimage" sub-LVs with a separate log LV.

type mirrorSeg struct {
	legs  []*area
	names []string
}

func (lv *LV) mirrorReader(s *Segment, depth int) (segReader, error) {
	if len(s.Areas) < 1 {
		return nil, fmt.Errorf("no legs")
	}
	if s.StartExtent != 0 && s.Type == "raid1" {
		return nil, fmt.Errorf("%w: raid1 segment starting at extent %d", ErrNotReadable, s.StartExtent)
	}
	m := &mirrorSeg{}
	for _, a := range s.Areas {
		ar, err := lv.resolveArea(a, s.ExtentCount, s.DataOffset, depth)
		if err != nil {
			return nil, err
		}
		m.legs = append(m.legs, ar)
		m.names = append(m.names, a.LV)
	}
	return m, nil
}

// readAt reads from the first leg that can serve the range: a leg whose
// extents are on a missing PV is skipped.
func (m *mirrorSeg) readAt(p []byte, off int64) (int, error) {
	var firstErr error
	for _, leg := range m.legs {
		n, err := leg.readAt(p, off)
		if err == nil {
			return n, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		var mp *MissingPVError
		if !errors.As(err, &mp) {
			return n, err
		}
	}
	return 0, firstErr
}

func (m *mirrorSeg) mapOffset(int64) (io.ReaderAt, int64, int64, error) {
	return nil, 0, 0, fmt.Errorf("a mirrored segment has no single backing location")
}

// Range is a byte range [Off, Off+Len).
type Range struct {
	Off int64 `json:"offset"`
	Len int64 `json:"length"`
}

// MirrorDiff is what Check found for one mirrored segment.
type MirrorDiff struct {
	Segment int      `json:"segment"` // 1-based segment number
	Legs    []string `json:"legs"`
	// Differ are LV byte ranges where some legs disagree with leg 0.
	Differ []Range `json:"differ"`
	// Unreadable are ranges some leg could not be read (missing PV...).
	Unreadable []Range `json:"unreadable"`
}

// Check compares the legs of a raid1 or mirror LV, chunk by chunk, and
// reports the LV byte ranges where they differ. It returns an error for LVs
// that have no mirrored segment.
func (lv *LV) Check() ([]MirrorDiff, error) {
	r, err := lv.open(0)
	if err != nil {
		return nil, err
	}
	var out []MirrorDiff
	const chunk = 64 << 10
	for i, se := range r.segs {
		m, ok := se.r.(*mirrorSeg)
		if !ok {
			continue
		}
		d := MirrorDiff{Segment: i + 1, Legs: m.names, Differ: []Range{}, Unreadable: []Range{}}
		bufs := make([][]byte, len(m.legs))
		for j := range bufs {
			bufs[j] = make([]byte, chunk)
		}
		for off := int64(0); off < se.len; off += chunk {
			n := min(chunk, se.len-off)
			bad, differ := false, false
			for j, leg := range m.legs {
				if _, err := leg.readAt(bufs[j][:n], off); err != nil {
					bad = true
				}
			}
			if !bad {
				for j := 1; j < len(m.legs); j++ {
					if !bytes.Equal(bufs[0][:n], bufs[j][:n]) {
						differ = true
					}
				}
			}
			if bad {
				d.Unreadable = addRange(d.Unreadable, se.start+off, n)
			} else if differ {
				// Narrow to 512-byte sectors.
				for s := int64(0); s < n; s += 512 {
					e := min(s+512, n)
					for j := 1; j < len(m.legs); j++ {
						if !bytes.Equal(bufs[0][s:e], bufs[j][s:e]) {
							d.Differ = addRange(d.Differ, se.start+off+s, e-s)
							break
						}
					}
				}
			}
		}
		out = append(out, d)
	}
	if out == nil {
		return nil, fmt.Errorf("VG %s LV %s has no raid1 or mirror segment", lv.VG.Name, lv.Name)
	}
	return out, nil
}

func addRange(rs []Range, off, n int64) []Range {
	if k := len(rs); k > 0 && rs[k-1].Off+rs[k-1].Len == off {
		rs[k-1].Len += n
		return rs
	}
	return append(rs, Range{off, n})
}
