// Package readat holds the bounds prologue every io.ReaderAt of a fixed
// size shares (images, LVs, MD arrays): one copy of the rules.
package readat

import (
	"fmt"
	"io"
)

// Clip bounds a read of len(p) bytes at off from something of size bytes.
// A negative offset is an error naming what; an offset at or past the end
// is io.EOF. Otherwise it returns p cut at the end, and eof tells the
// caller to return io.EOF with the bytes it reads (as io.ReaderAt asks
// when fewer than len(p) bytes are returned).
func Clip(p []byte, off, size int64, what string) (q []byte, eof bool, err error) {
	if off < 0 {
		return nil, false, fmt.Errorf("%s: read at negative offset %d", what, off)
	}
	if off >= size {
		return nil, false, io.EOF
	}
	if int64(len(p)) > size-off {
		return p[:size-off], true, nil
	}
	return p, false, nil
}
