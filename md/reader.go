package md

import (
	"errors"
	"fmt"
	"github.com/imgtool/imgtool/internal/readat"
	"io"
)

// ErrNotReadable marks arrays imgtool cannot read (a level or layout it
// does not support, a reshape in progress, too many members missing).
var ErrNotReadable = errors.New("MD array not readable")

// MissingError is returned by a read that needs a member that is missing
// (or a range no redundancy can rebuild).
type MissingError struct {
	Array  string // the array's name, as set in Reader.Name
	Offset int64  // the array byte that could not be read
	Role   int
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("MD array %s: byte %d is on member role %d, which is missing", e.Array, e.Offset, e.Role)
}

// Reader reads an assembled array's data.
type Reader struct {
	// Name names the array in errors (inspect sets its address).
	Name  string
	a     *Array
	size  int64
	devs  []io.ReaderAt // data area of each slot (nil when missing)
	level levelReader
}

// levelReader maps and reads one level's layout.
type levelReader interface {
	// readAt fills p from array offset off, which lies within the array,
	// without crossing the end.
	readAt(r *Reader, p []byte, off int64) error
}

// Size is the array's size in bytes.
func (r *Reader) Size() int64 { return r.size }

// Array returns the assembled array the reader reads.
func (r *Reader) Array() *Array { return r.a }

// ReadAt implements io.ReaderAt.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	p, clipped, err := readat.Clip(p, off, r.size, "MD array "+r.Name)
	if err != nil {
		return 0, err
	}
	if err := r.level.readAt(r, p, off); err != nil {
		return 0, err
	}
	if clipped {
		return len(p), io.EOF
	}
	return len(p), nil
}

// readDev reads exactly len(p) bytes of slot's data area at devOff.
func (r *Reader) readDev(slot int, p []byte, devOff, arrayOff int64) error {
	d := r.devs[slot]
	if d == nil {
		return &MissingError{Array: r.Name, Offset: arrayOff, Role: slot}
	}
	m := r.a.Slots[slot]
	k, err := d.ReadAt(p, devOff)
	if k == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("MD array %s: member %s (role %d): reading %d bytes at byte %d of its data area (array byte %d): %w",
		r.Name, m.Name, slot, len(p), devOff, arrayOff, err)
}

// dataArea is the part of a member that holds array data: from its data
// offset, n bytes.
type dataArea struct {
	r   io.ReaderAt
	off int64
	n   int64
}

func (d *dataArea) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= d.n {
		return 0, io.EOF
	}
	short := false
	if int64(len(p)) > d.n-off {
		p = p[:d.n-off]
		short = true
	}
	k, err := d.r.ReadAt(p, d.off+off)
	if err == nil && short {
		err = io.EOF
	}
	return k, err
}

// Open returns a reader of the array's data. It fails with ErrNotReadable
// when the level is not supported or too many members are missing to
// read anything.
func (a *Array) Open() (*Reader, error) {
	name := a.Name
	if name == "" {
		name = fmt.Sprintf("md%d", a.PreferredMinor)
	}
	r := &Reader{Name: name, a: a, devs: make([]io.ReaderAt, len(a.Slots))}
	if a.Reshaping {
		return nil, fmt.Errorf("%w: a reshape was in progress", ErrNotReadable)
	}
	if len(a.Slots) == 0 {
		return nil, fmt.Errorf("%w: no raid disks", ErrNotReadable)
	}
	for i, m := range a.Slots {
		if m == nil {
			continue
		}
		sb := m.SB
		n := sb.DataSize
		if a.Level != LevelLinear && a.Level != 0 {
			n = a.DevSize
		}
		if sb.DataOffset < 0 || n < 0 || sb.DataOffset+n > m.Size {
			return nil, fmt.Errorf("MD array %s: member %s: data area of %d bytes at byte %d is past its end (%d bytes)",
				name, m.Name, n, sb.DataOffset, m.Size)
		}
		r.devs[i] = &dataArea{r: m.R, off: sb.DataOffset, n: n}
	}
	missing := len(a.Missing())
	chunk := a.ChunkSize
	var err error
	switch a.Level {
	case LevelLinear:
		r.level, r.size, err = newLinear(a, chunk)
	case 0:
		r.level, r.size, err = newRAID0(a, chunk)
	case 1:
		if missing == len(a.Slots) {
			return nil, fmt.Errorf("%w: all %d members missing", ErrNotReadable, len(a.Slots))
		}
		r.level, r.size = raid1{}, a.DevSize
	case 10:
		r.level, r.size, err = newRAID10(a, r)
	case 4, 5, 6:
		r.level, r.size, err = newParity(a, r)
	default:
		return nil, fmt.Errorf("%w: level %s", ErrNotReadable, a.LevelName())
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// --- linear --------------------------------------------------------------

type linear struct {
	starts []int64 // array offset where each slot's data begins
	sizes  []int64
}

func newLinear(a *Array, chunk int64) (levelReader, int64, error) {
	l := &linear{}
	var total int64
	for i, m := range a.Slots {
		if m == nil {
			// A missing member's size is unknown: everything after it
			// would land at unknown offsets.
			return nil, 0, fmt.Errorf("%w: linear member role %d is missing, so the offsets of everything after it are unknown", ErrNotReadable, i)
		}
		n := m.SB.DataSize
		if chunk > 0 {
			n -= n % chunk
		}
		l.starts = append(l.starts, total)
		l.sizes = append(l.sizes, n)
		total += n
	}
	return l, total, nil
}

func (l *linear) readAt(r *Reader, p []byte, off int64) error {
	for len(p) > 0 {
		i := len(l.starts) - 1
		for i > 0 && l.starts[i] > off {
			i--
		}
		rel := off - l.starts[i]
		n := min(int64(len(p)), l.sizes[i]-rel)
		if n <= 0 {
			return fmt.Errorf("MD array %s: byte %d maps past member role %d", r.Name, off, i)
		}
		if err := r.readDev(i, p[:n], rel, off); err != nil {
			return err
		}
		p, off = p[n:], off+n
	}
	return nil
}

// --- raid0 ---------------------------------------------------------------

// RAID0 zone layouts (the superblock's layout field for raid0).
const (
	raid0OrigLayout = 1 // RAID0_ORIG_LAYOUT: kernels before 3.14 and after 5.4 with layout=original
	raid0AltLayout  = 2 // RAID0_ALT_MULTIZONE_LAYOUT
)

type zone struct {
	end      int64 // array offset where the zone ends
	devStart int64 // offset within each member where the zone starts
	devs     []int // slots in the zone, by role
}

type raid0 struct {
	chunk int64
	zones []zone
	alt   bool
}

func newRAID0(a *Array, chunk int64) (levelReader, int64, error) {
	if chunk <= 0 {
		return nil, 0, fmt.Errorf("%w: raid0 with chunk size %d", ErrNotReadable, chunk)
	}
	sizes := make([]int64, len(a.Slots))
	for i, m := range a.Slots {
		if m == nil {
			continue
		}
		sizes[i] = m.SB.DataSize - m.SB.DataSize%chunk
	}
	// A missing member's size is unknown; assume the others' most common
	// (the usual equal-size case). Reads from it fail anyway.
	known := int64(0)
	for _, s := range sizes {
		known = max(known, s)
	}
	for i, m := range a.Slots {
		if m == nil {
			sizes[i] = known
			a.note("raid0 without role %d: the chunks on it cannot be read, and its size is taken as the largest member's (%d bytes), so the array size is a guess", i, known)
		}
	}
	z := &raid0{chunk: chunk}
	var start, end int64
	for {
		var devs []int
		smallest := int64(-1)
		for i, s := range sizes {
			if s > start {
				devs = append(devs, i)
				if smallest < 0 || s < smallest {
					smallest = s
				}
			}
		}
		if len(devs) == 0 {
			break
		}
		end += (smallest - start) * int64(len(devs))
		z.zones = append(z.zones, zone{end: end, devStart: start, devs: devs})
		start = smallest
	}
	if len(z.zones) == 0 {
		return nil, 0, fmt.Errorf("%w: raid0 members hold no data", ErrNotReadable)
	}
	if len(z.zones) > 1 {
		switch {
		case a.Layout == raid0AltLayout:
			z.alt = true
		case a.Layout == raid0OrigLayout:
		default:
			a.note("raid0 with members of different sizes and no recorded zone layout (%d): read with the original layout", a.Layout)
		}
	}
	return z, end, nil
}

func (z *raid0) readAt(r *Reader, p []byte, off int64) error {
	for len(p) > 0 {
		zi := 0
		for zi < len(z.zones)-1 && off >= z.zones[zi].end {
			zi++
		}
		zn := &z.zones[zi]
		zoneStart := int64(0)
		if zi > 0 {
			zoneStart = z.zones[zi-1].end
		}
		inZone := off - zoneStart
		nd := int64(len(zn.devs))
		chunkNo := inZone / z.chunk
		inChunk := inZone % z.chunk
		// Which device: by the chunk number within the zone (alternate
		// layout) or within the whole array (original layout).
		sel := chunkNo
		if !z.alt {
			sel = off / z.chunk
		}
		slot := zn.devs[sel%nd]
		devOff := zn.devStart + (chunkNo/nd)*z.chunk + inChunk
		n := min(int64(len(p)), z.chunk-inChunk, zn.end-off)
		if err := r.readDev(slot, p[:n], devOff, off); err != nil {
			return err
		}
		p, off = p[n:], off+n
	}
	return nil
}

// --- raid1 ---------------------------------------------------------------

type raid1 struct{}

// readAt reads from the first member present; a member that fails to
// read is skipped for the next.
func (raid1) readAt(r *Reader, p []byte, off int64) error {
	var first error
	for i := range r.devs {
		if r.devs[i] == nil {
			continue
		}
		err := r.readDev(i, p, off, off)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	if first == nil {
		first = &MissingError{Array: r.Name, Offset: off}
	}
	return first
}

// MapOffset implements image.Mapper: where array byte off lives on a
// member, and for how many bytes from there the array continues on that
// member contiguously. Redundant levels answer with the first member
// present.
func (r *Reader) MapOffset(off int64) (io.ReaderAt, int64, int64, error) {
	if off < 0 || off >= r.size {
		return nil, 0, 0, fmt.Errorf("MD array %s: offset %d outside the array of %d bytes", r.Name, off, r.size)
	}
	m, ok := r.level.(mapper)
	if !ok {
		return nil, 0, 0, fmt.Errorf("MD array %s (%s): no single backing location", r.Name, r.a.LevelName())
	}
	slot, devOff, run := m.mapOne(r, off)
	if slot < 0 || r.devs[slot] == nil {
		return nil, 0, 0, &MissingError{Array: r.Name, Offset: off, Role: slot}
	}
	d := r.devs[slot].(*dataArea)
	return d.r, d.off + devOff, min(run, r.size-off, d.n-devOff), nil
}

// mapper is implemented by levels that can name one location for a byte.
type mapper interface {
	mapOne(r *Reader, off int64) (slot int, devOff, run int64)
}

func (raid1) mapOne(r *Reader, off int64) (int, int64, int64) {
	for i, d := range r.devs {
		if d != nil {
			return i, off, r.size - off
		}
	}
	return -1, 0, 0
}

func (l *linear) mapOne(r *Reader, off int64) (int, int64, int64) {
	i := len(l.starts) - 1
	for i > 0 && l.starts[i] > off {
		i--
	}
	return i, off - l.starts[i], l.sizes[i] - (off - l.starts[i])
}
