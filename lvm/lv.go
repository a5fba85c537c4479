package lvm

import (
	"errors"
	"fmt"
	"io"

	"github.com/imgtool/imgtool/image"
	"github.com/imgtool/imgtool/internal/readat"
	"github.com/imgtool/imgtool/internal/where"
)

// LV is a logical volume of an assembled VG.
type LV struct {
	Name     string
	UUID     string
	Size     int64 // bytes
	Extents  int64
	Segments []*Segment
	Visible  bool
	Status   []string
	Flags    []string
	// Type is the first segment's type ("striped", "raid1", "thin"...).
	Type string
	VG   *VG
	Meta *MetaLV

	snapshot       *snapshotRef // set on the COW LV of a snapshot
	snapshotHolder bool         // the hidden snapshotN LV
}

// ErrNotReadable is wrapped by Open for segment types imgtool cannot read
// (yet): vdo, integrity, ...
var ErrNotReadable = errors.New("segment type not readable")

// MissingPVError is returned by reads that touch extents on a missing PV.
type MissingPVError struct {
	VG, LV string
	PV     string // UUID of the missing PV
	Offset int64  // byte offset within the LV
}

func (e *MissingPVError) Error() string {
	return fmt.Sprintf("VG %s LV %s: byte %d is on missing PV %s", e.VG, e.LV, e.Offset, e.PV)
}

// maxLVDepth bounds LV-on-LV references (raid images, pool data, COW
// stores), which also stops reference cycles in bad metadata.
const maxLVDepth = 8

// Open returns a reader of the LV's content as a user of /dev/VG/LV sees it:
// linear, striped, raid0 and raid1/mirror LVs read their data; raid4/5/6/10
// LVs read their data chunks and rebuild those of missing or failed members
// from parity or a copy; the visible
// LV of a snapshot reads the snapshot's point-in-time view (origin plus COW
// exceptions); a thin LV reads through its pool's mappings, with unmapped
// blocks as zeros. Readers of linear/striped/raid0 LVs implement
// image.Mapper. Other segment types fail with an error wrapping
// ErrNotReadable.
func (lv *LV) Open() (image.ReaderAtSize, error) {
	if lv.snapshot != nil {
		return lv.openSnapshot()
	}
	return lv.open(0)
}

// OpenRaw returns the LV's own segments without snapshot semantics (for a
// snapshot's visible LV: the raw COW store).
func (lv *LV) OpenRaw() (image.ReaderAtSize, error) { return lv.open(0) }

func (lv *LV) open(depth int) (*lvReader, error) {
	if depth > maxLVDepth {
		return nil, fmt.Errorf("VG %s LV %s: LVs nested deeper than %d (reference cycle?)", lv.VG.Name, lv.Name, maxLVDepth)
	}
	r := &lvReader{lv: lv, size: lv.Size}
	var off int64
	for i, s := range lv.Segments {
		sr, err := lv.segReader(s, depth)
		if err != nil {
			return nil, fmt.Errorf("VG %s LV %s segment%d (%s): %w", lv.VG.Name, lv.Name, i+1, s.Type, err)
		}
		n := s.ExtentCount * lv.VG.ExtentSize
		r.segs = append(r.segs, segEntry{start: off, len: n, r: sr})
		off += n
	}
	return r, nil
}

// MetadataError is an inconsistency in the VG's metadata text (a segment
// whose extents lie past its PV's pe_count): it is located (VolumeOffset)
// at the byte of the metadata copy the VG was assembled from, on the PV
// MetadataPV names, which the caller maps to its volume (issue 12.5).
type MetadataError struct {
	// PV is the UUID of the PV holding the metadata copy.
	PV  string
	err *where.Error
}

func (e *MetadataError) Error() string { return e.err.Error() }

// Unwrap returns the located error.
func (e *MetadataError) Unwrap() error { return e.err }

// MetadataPV is the UUID of the PV the offset is on.
func (e *MetadataError) MetadataPV() string { return e.PV }

// metadataErr locates err at the VG's source metadata copy; err as is when
// the metadata came from a backup file.
func (vg *VG) metadataErr(err error) error {
	c := vg.Source
	if c == nil {
		return err
	}
	return &MetadataError{PV: c.PV, err: where.At("lvm", int64(c.AbsOffset),
		fmt.Sprintf("metadata at byte %d of PV %s", c.AbsOffset, c.PV), err)}
}

// segReader reads one segment; offsets are relative to the segment.
type segReader interface {
	readAt(p []byte, off int64) (int, error)
	// mapOffset: see image.Mapper.
	mapOffset(off int64) (io.ReaderAt, int64, int64, error)
}

type segEntry struct {
	start, len int64
	r          segReader
}

// lvReader reads an LV through its segments.
type lvReader struct {
	lv   *LV
	size int64
	segs []segEntry
}

func (r *lvReader) Size() int64 { return r.size }

func (r *lvReader) find(off int64) int {
	lo, hi := 0, len(r.segs)
	for lo < hi {
		m := (lo + hi) / 2
		if r.segs[m].start+r.segs[m].len <= off {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// ReadAt implements io.ReaderAt.
func (r *lvReader) ReadAt(p []byte, off int64) (int, error) {
	p, clipped, err := readat.Clip(p, off, r.size, "VG "+r.lv.VG.Name+" LV "+r.lv.Name)
	if err != nil {
		return 0, err
	}
	var eof error
	if clipped {
		eof = io.EOF
	}
	done := 0
	for done < len(p) {
		i := r.find(off)
		if i >= len(r.segs) {
			return done, io.EOF
		}
		s := r.segs[i]
		rel := off - s.start
		n := min(int64(len(p)-done), s.len-rel)
		m, err := s.r.readAt(p[done:done+int(n)], rel)
		done += m
		off += int64(m)
		if err != nil {
			var mp *MissingPVError
			if errors.As(err, &mp) {
				mp.VG, mp.LV, mp.Offset = r.lv.VG.Name, r.lv.Name, mp.Offset+s.start
				return done, mp
			}
			var se *pvShortError
			if errors.As(err, &se) {
				// The PV's image ends inside the LV: locate the LV's byte,
				// which the CLI maps to the image file's.
				return done, where.At("lvm", off, fmt.Sprintf("VG %s LV %s at byte %d", r.lv.VG.Name, r.lv.Name, off), err)
			}
			return done, fmt.Errorf("VG %s LV %s at byte %d: %w", r.lv.VG.Name, r.lv.Name, off, err)
		}
	}
	return done, eof
}

// pvShortError is a read of a PV area that ends early: the PV's image is
// shorter than its extents.
type pvShortError struct {
	pv  string // name and UUID
	off int64  // byte of the PV the read stopped at
}

func (e *pvShortError) Error() string {
	return fmt.Sprintf("PV %s ends before its byte %d (the image is truncated)", e.pv, e.off)
}

func (e *pvShortError) Unwrap() error { return io.ErrUnexpectedEOF }

// MapOffset implements image.Mapper for linear, striped and raid0 LVs.
func (r *lvReader) MapOffset(off int64) (io.ReaderAt, int64, int64, error) {
	if off < 0 || off >= r.size {
		return nil, 0, 0, fmt.Errorf("VG %s LV %s: offset %d outside the LV of %d bytes", r.lv.VG.Name, r.lv.Name, off, r.size)
	}
	s := r.segs[r.find(off)]
	under, uoff, run, err := s.r.mapOffset(off - s.start)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("VG %s LV %s at byte %d: %w", r.lv.VG.Name, r.lv.Name, off, err)
	}
	return under, uoff, min(run, s.start+s.len-off), nil
}

// area is a resolved segment area: n bytes of reader r from byte off, or a
// missing PV.
type area struct {
	r         io.ReaderAt
	off, n    int64
	missingPV string
	pv        string // the PV's name and UUID, for a PV area
}

func (a *area) readAt(p []byte, off int64) (int, error) {
	if a.missingPV != "" {
		return 0, &MissingPVError{PV: a.missingPV, Offset: 0}
	}
	if off < 0 || off+int64(len(p)) > a.n {
		return 0, fmt.Errorf("read of %d bytes at %d outside an area of %d bytes", len(p), off, a.n)
	}
	n, err := a.r.ReadAt(p, a.off+off)
	if err == io.EOF && n == len(p) {
		err = nil
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
		if a.pv != "" {
			err = &pvShortError{a.pv, a.off + off + int64(n)}
		}
	}
	return n, err
}

// resolveArea turns a PV or LV area of extents extents into an area.
func (lv *LV) resolveArea(a Area, extents int64, extra int64, depth int) (*area, error) {
	vg := lv.VG
	n := extents * vg.ExtentSize
	if a.PV != "" || a.LV == "" {
		p := vg.pvByName[a.PV]
		if p == nil {
			return nil, vg.metadataErr(fmt.Errorf("area names unknown PV %q", a.PV))
		}
		if p.PV == nil {
			return &area{n: n, missingPV: p.UUID}, nil
		}
		if a.Extent+extents > p.PECount {
			return nil, vg.metadataErr(fmt.Errorf("extents %d-%d lie beyond the %d extents of PV %s", a.Extent, a.Extent+extents-1, p.PECount, p.UUID))
		}
		off := p.PEStart + a.Extent*vg.ExtentSize
		return &area{r: p.PV.R, off: off, n: n, pv: a.PV + " (" + p.UUID + ")"}, nil
	}
	sub := vg.lvByName[a.LV]
	if sub == nil {
		return nil, fmt.Errorf("area names unknown LV %q", a.LV)
	}
	sr, err := sub.open(depth + 1)
	if err != nil {
		return nil, err
	}
	off := a.Extent*vg.ExtentSize + extra
	if off+n > sr.size {
		return nil, fmt.Errorf("area of %d bytes at byte %d lies beyond the %d bytes of sub-LV %s", n, off, sr.size, sub.Name)
	}
	return &area{r: sr, off: off, n: n}, nil
}

func (lv *LV) segReader(s *Segment, depth int) (segReader, error) {
	switch s.Type {
	case "striped":
		if s.StripeCount < 1 || int64(len(s.Areas)) != s.StripeCount {
			return nil, fmt.Errorf("bad stripe_count %d", s.StripeCount)
		}
		return lv.stripedReader(s, depth, 0)
	case "raid0", "raid0_meta":
		if len(s.Areas) < 1 {
			return nil, fmt.Errorf("no raid images")
		}
		if s.StartExtent != 0 {
			return nil, fmt.Errorf("%w: raid0 segment starting at extent %d", ErrNotReadable, s.StartExtent)
		}
		return lv.stripedReader(s, depth, s.DataOffset)
	case "raid1", "mirror":
		return lv.mirrorReader(s, depth)
	case "raid10":
		return lv.raidReader(s, depth)
	case "zero":
		return zeroSeg{}, nil
	case "error":
		return errSeg{}, nil
	case "thin":
		return lv.thinReader(s, depth)
	case "snapshot":
		return nil, fmt.Errorf("%w: the snapshot segment is read through the snapshot's visible LV %s", ErrNotReadable, s.COWStore)
	case "thin-pool":
		return nil, fmt.Errorf("%w: a thin pool has no content of its own; read its thin LVs", ErrNotReadable)
	default:
		if r, ok, err := lv.cacheSegReader(s, depth); ok {
			return r, err
		}
		if isParityRaid(s.Type) {
			return lv.raidReader(s, depth)
		}
		return nil, fmt.Errorf("%w: %s", ErrNotReadable, s.Type)
	}
}

// stripedSeg maps a segment striped over n areas in chunks of ss bytes
// (dm-stripe): chunk c of the segment is chunk c/n of area c%n.
type stripedSeg struct {
	areas []*area
	ss    int64
}

func (lv *LV) stripedReader(s *Segment, depth int, extra int64) (segReader, error) {
	n := int64(len(s.Areas))
	if s.ExtentCount%n != 0 {
		return nil, fmt.Errorf("%d extents do not divide into %d stripes", s.ExtentCount, n)
	}
	per := s.ExtentCount / n
	st := &stripedSeg{ss: s.StripeSize}
	if n > 1 {
		if st.ss <= 0 || (per*lv.VG.ExtentSize)%st.ss != 0 {
			return nil, fmt.Errorf("stripe size %d does not divide the %d-byte stripe areas", st.ss, per*lv.VG.ExtentSize)
		}
	}
	for _, a := range s.Areas {
		ar, err := lv.resolveArea(a, per, extra, depth)
		if err != nil {
			return nil, err
		}
		st.areas = append(st.areas, ar)
	}
	return st, nil
}

func (st *stripedSeg) locate(off int64) (*area, int64, int64) {
	n := int64(len(st.areas))
	if n == 1 {
		return st.areas[0], off, st.areas[0].n - off
	}
	chunk := off / st.ss
	in := off % st.ss
	return st.areas[chunk%n], (chunk/n)*st.ss + in, st.ss - in
}

func (st *stripedSeg) readAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		a, aoff, run := st.locate(off)
		k := int(min(int64(len(p)-done), run))
		m, err := a.readAt(p[done:done+k], aoff)
		done += m
		if err != nil {
			var mp *MissingPVError
			if errors.As(err, &mp) {
				mp.Offset = off
			}
			return done, err
		}
		off += int64(m)
	}
	return done, nil
}

func (st *stripedSeg) mapOffset(off int64) (io.ReaderAt, int64, int64, error) {
	a, aoff, run := st.locate(off)
	if a.missingPV != "" {
		return nil, 0, 0, &MissingPVError{PV: a.missingPV, Offset: off}
	}
	return a.r, a.off + aoff, run, nil
}

type zeroSeg struct{}

func (zeroSeg) readAt(p []byte, off int64) (int, error) {
	clear(p)
	return len(p), nil
}
func (zeroSeg) mapOffset(int64) (io.ReaderAt, int64, int64, error) {
	return nil, 0, 0, fmt.Errorf("a zero segment has no backing bytes")
}

type errSeg struct{}

func (errSeg) readAt(p []byte, off int64) (int, error) {
	return 0, fmt.Errorf("read of an \"error\" segment at segment byte %d", off)
}
func (errSeg) mapOffset(int64) (io.ReaderAt, int64, int64, error) {
	return nil, 0, 0, fmt.Errorf("an error segment has no backing bytes")
}
