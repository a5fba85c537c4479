// Package human formats numbers for people: the one byte-size formatter of
// imgtool.
package human

import "fmt"

// Bytes prints n with a binary unit, one decimal ("512 B", "1.5 MiB"), up
// to EiB. extract and salvage reports and the extract progress line use it.
func Bytes(n int64) string { return BytesUpTo(n, 'E') }

// BytesUpTo is Bytes with the largest unit limited to top (one of
// "KMGTPE"): larger sizes are shown as a count of that unit ("2048.0 TiB").
// The backup listings cap at 'T', as they always have.
func BytesUpTo(n int64, top byte) string {
	const unit = 1024
	const units = "KMGTPE"
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	last := 0
	for last < len(units)-1 && units[last] != top {
		last++
	}
	f := float64(n)
	i := -1
	for f >= unit && i < last {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, units[i])
}
