package main

import (
	"encoding/hex"
	"fmt"
)

func sscan(line string, a *string, off, size *int64) (int, error) {
	return fmt.Sscanf(line, "== %s %d %d", a, off, size)
}

func hexs(b []byte) string { return hex.EncodeToString(b) }
