package image

import (
	"fmt"
	"io"
)

// ReaderAtSize is the shape every reader in imgtool consumes: random access
// plus a size. Partitions, LVs, overlays and whole images all satisfy it.
type ReaderAtSize interface {
	io.ReaderAt
	Size() int64
}

// Section is a window [Off, Off+N) of an underlying ReaderAt. Reads past N
// return io.EOF, as io.SectionReader does; unlike it, a Section knows which
// volume it is so errors can name it.
type Section struct {
	R   io.ReaderAt
	Off int64
	N   int64
}

// NewSection returns a Section of r.
func NewSection(r io.ReaderAt, off, n int64) *Section { return &Section{R: r, Off: off, N: n} }

// Size returns the section length.
func (s *Section) Size() int64 { return s.N }

// ReadAt implements io.ReaderAt.
func (s *Section) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at negative offset %d", off)
	}
	if off >= s.N {
		return 0, io.EOF
	}
	var short bool
	if int64(len(p)) > s.N-off {
		p = p[:s.N-off]
		short = true
	}
	n, err := s.R.ReadAt(p, s.Off+off)
	if err == nil && short {
		err = io.EOF
	}
	return n, err
}

// Sized pairs a ReaderAt with its size.
type Sized struct {
	io.ReaderAt
	N int64
}

// Size returns N.
func (s Sized) Size() int64 { return s.N }

// Mapper is implemented by volumes that are windows onto another reader
// (partitions, LVs). MapOffset says where byte off of the volume lives:
// in under at underOff, for at least run contiguous bytes. Writers (lvm
// rename) use it to turn a nested volume's offset into an offset in the
// outermost image file, so that undo files record absolute image offsets.
type Mapper interface {
	MapOffset(off int64) (under io.ReaderAt, underOff int64, run int64, err error)
}

// MapOffset implements Mapper.
func (s *Section) MapOffset(off int64) (io.ReaderAt, int64, int64, error) {
	if off < 0 || off >= s.N {
		return nil, 0, 0, fmt.Errorf("offset %d outside section of %d bytes", off, s.N)
	}
	return s.R, s.Off + off, s.N - off, nil
}

// Resolve follows Mappers from r down to the innermost reader that is not a
// Mapper (normally the *Image), returning it and the absolute offset of
// byte off of r within it, and how many bytes from there are contiguous.
func Resolve(r io.ReaderAt, off int64) (io.ReaderAt, int64, int64, error) {
	return resolve(r, off, false)
}

// ResolveBeyond is Resolve for locating damage: a Section (a partition
// cut short by the end of the image) maps offsets past its end too, so
// that a read of a truncated image is located at the byte of the file it
// needed.
func ResolveBeyond(r io.ReaderAt, off int64) (io.ReaderAt, int64, int64, error) {
	return resolve(r, off, true)
}

func resolve(r io.ReaderAt, off int64, beyond bool) (io.ReaderAt, int64, int64, error) {
	run := int64(1 << 62)
	for depth := 0; depth < 64; depth++ {
		if s, ok := r.(*Section); ok && beyond && off >= s.N {
			r, off = s.R, s.Off+off
			continue
		}
		m, ok := r.(Mapper)
		if !ok {
			return r, off, run, nil
		}
		under, uoff, n, err := m.MapOffset(off)
		if err != nil {
			return nil, 0, 0, err
		}
		if n < run {
			run = n
		}
		r, off = under, uoff
	}
	return nil, 0, 0, fmt.Errorf("volume nesting deeper than 64 levels")
}
