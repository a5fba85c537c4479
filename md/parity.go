package md

import "fmt"

// newParity reads raid4/5/6 through package raid.
func newParity(a *Array, r *Reader) (levelReader, int64, error) {
	return nil, 0, fmt.Errorf("%w: %s (parity levels are read through package raid, not there yet)", ErrNotReadable, a.LevelName())
}
