// Package zero holds the one all-zero test of imgtool (holes in sparse
// copies, empty inodes, unused table entries).
package zero

import "bytes"

// block is compared against in chunks: bytes.Equal is the runtime's
// vectorised memequal, several times faster than a byte loop.
var block [64 << 10]byte

// Is reports whether b holds only zero bytes (true for an empty b).
func Is(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(block))
		if !bytes.Equal(b[:n], block[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}
