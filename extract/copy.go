package extract

import (
	"errors"
	"fmt"
	"io"

	"github.com/imgtool/imgtool/internal/zero"
	"github.com/imgtool/imgtool/vfs"
	"golang.org/x/sys/unix"
)

// chunkSize is the largest single read from the image and write to the
// destination. ext.File reads a physically contiguous run with one ReadAt,
// so a large chunk means few system calls for large files.
const chunkSize = 1 << 20

// copier copies file contents, one per worker (it owns a buffer).
type copier struct {
	x   *Extractor
	buf []byte
}

func newCopier(x *Extractor) *copier { return &copier{x: x} }

// copyFile writes f's content to fd with pwrite, skipping holes, unwritten
// extents and all-zero chunks, then sets the length with ftruncate (which
// makes the trailing hole). It returns the bytes written. A read error
// does not stop the copy: the unreadable range stays zeros and the first
// error is returned after the rest is copied.
func (c *copier) copyFile(fd int, f vfs.File) (int64, error) {
	if c.buf == nil {
		c.buf = make([]byte, chunkSize)
	}
	var written, done, end int64 // end: just past the last byte written
	var firstErr error
	for _, r := range f.DataRanges() {
		rEnd := r.Off + r.Len
		c.x.bytes.Add(r.Off - done) // the hole before this range
		done = r.Off
		for off := r.Off; off < rEnd; {
			n := int(min(int64(len(c.buf)), rEnd-off))
			b := c.buf[:n]
			m, err := f.ReadAt(b, off)
			if err != nil && !(errors.Is(err, io.EOF) && m == n) {
				if firstErr == nil {
					firstErr = fmt.Errorf("content at file offset %d: %w", off+int64(m), err)
				}
				if m == 0 {
					// Skip the rest of this chunk; it stays a hole (zeros).
					m = n
					b = b[:0]
				} else {
					b = b[:m]
				}
			}
			if !zero.Is(b) {
				if err := pwriteFull(fd, b, off); err != nil {
					return written, fmt.Errorf("write at offset %d: %w", off, err)
				}
				written += int64(len(b))
				end = off + int64(len(b))
			}
			off += int64(m)
			c.x.bytes.Add(int64(m))
			done = off
		}
	}
	c.x.bytes.Add(f.Size() - done)
	if end == f.Size() {
		return written, firstErr // the file already has its length
	}
	if err := unix.Ftruncate(fd, f.Size()); err != nil {
		return written, fmt.Errorf("truncate to %d: %w", f.Size(), err)
	}
	return written, firstErr
}

func pwriteFull(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		b = b[n:]
		off += int64(n)
	}
	return nil
}

// hostXattr maps an attribute as the filesystem gives it (getxattr(2)
// form, POSIX ACLs included) to what setxattr(2) takes: ok is false for
// names the host cannot take (none today; the readers leave their
// internal attributes out).
func hostXattr(a vfs.Xattr) (name string, val []byte, ok bool, err error) {
	return a.Name, a.Value, true, nil
}
