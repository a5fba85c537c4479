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
