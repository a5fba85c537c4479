package otherfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/diskfs/go-diskfs/backend"
)

// storage adapts an io.ReaderAt of a known size (offset 0 = the start of
// the filesystem) to go-diskfs's backend.Storage, read-only. go-diskfs
// takes a "file" it may Seek and Read, ReadAt, stat, and ask for a
// writable handle; only reading is served.
type storage struct {
	r    io.ReaderAt
	size int64
	pos  int64
	// While metered (inside FS.safe: one go-diskfs operation, under the
	// FS mutex), every read spends one unit of budget; an operation that
	// runs out gets errReadBudget from then on. go-diskfs has loops that
	// damaged metadata can make endless (a squashfs metadata chain of
	// empty blocks); a read error is what ends them.
	metered bool
	budget  int64
}

// maxReadsPerOp bounds the reads of one go-diskfs operation: far above
// what opening, listing a directory or reading a buffer takes.
const maxReadsPerOp = 1 << 20

// errReadBudget is what reads get once an operation used up its budget.
var errReadBudget = fmt.Errorf("otherfs: more than %d reads in one operation (a loop in damaged metadata?)", maxReadsPerOp)

var _ backend.Storage = (*storage)(nil)

// errReadOnly is what any attempt of go-diskfs to write gets.
var errReadOnly = errors.New("otherfs: the volume is read-only")

// ReadAt reads within the volume: a read past its end is short, with
// io.EOF, never served from beyond the volume.
func (s *storage) ReadAt(p []byte, off int64) (int, error) {
	if s.metered {
		if s.budget <= 0 {
			return 0, errReadBudget
		}
		s.budget--
	}
	if off < 0 {
		return 0, errors.New("otherfs: negative offset")
	}
	if off >= s.size {
		return 0, io.EOF
	}
	if rem := s.size - off; int64(len(p)) > rem {
		n, err := s.r.ReadAt(p[:rem], off)
		if err == nil {
			err = io.EOF
		}
		return n, err
	}
	return s.r.ReadAt(p, off)
}

func (s *storage) Read(p []byte) (int, error) {
	n, err := s.ReadAt(p, s.pos)
	s.pos += int64(n)
	return n, err
}

func (s *storage) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += s.pos
	case io.SeekEnd:
		off += s.size
	default:
		return 0, errors.New("otherfs: bad whence")
	}
	if off < 0 {
		return 0, errors.New("otherfs: negative position")
	}
	s.pos = off
	return off, nil
}

func (s *storage) Close() error                            { return nil }
func (s *storage) Stat() (fs.FileInfo, error)              { return storageInfo{s.size}, nil }
func (s *storage) Sys() (*os.File, error)                  { return nil, backend.ErrNotSuitable }
func (s *storage) Writable() (backend.WritableFile, error) { return nil, errReadOnly }
func (s *storage) Path() string                            { return "" }

// storageInfo is the volume as a FileInfo (go-diskfs asks for its size).
type storageInfo struct{ size int64 }

func (i storageInfo) Name() string       { return "volume" }
func (i storageInfo) Size() int64        { return i.size }
func (i storageInfo) Mode() fs.FileMode  { return 0o444 }
func (i storageInfo) ModTime() time.Time { return time.Time{} }
func (i storageInfo) IsDir() bool        { return false }
func (i storageInfo) Sys() any           { return nil }
