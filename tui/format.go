package tui

import (
	"fmt"
	"github.com/imgtool/imgtool/termsafe"
	"io/fs"
	"strings"
	"time"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// humanSize formats n bytes like ls -h / lsblk: 0, 512, 1.5K, 20M, 3.2G.
func humanSize(n int64) string {
	if n < 0 {
		return "-"
	}
	if n < 1024 {
		return fmt.Sprintf("%d", n)
	}
	const units = "KMGTPE"
	f := float64(n)
	i := -1
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if f < 10 && f != float64(int64(f)) {
		return fmt.Sprintf("%.1f%c", f, units[i])
	}
	return fmt.Sprintf("%.0f%c", f, units[i])
}

// modeString is ls -l's mode column: drwxr-xr-x, lrwxrwxrwx, -rwsr-xr-x.
func modeString(m fs.FileMode) string {
	var b [10]byte
	switch {
	case m&fs.ModeDir != 0:
		b[0] = 'd'
	case m&fs.ModeSymlink != 0:
		b[0] = 'l'
	case m&fs.ModeNamedPipe != 0:
		b[0] = 'p'
	case m&fs.ModeSocket != 0:
		b[0] = 's'
	case m&fs.ModeCharDevice != 0:
		b[0] = 'c'
	case m&fs.ModeDevice != 0:
		b[0] = 'b'
	default:
		b[0] = '-'
	}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if m&(1<<uint(8-i)) != 0 {
			b[i+1] = rwx[i]
		} else {
			b[i+1] = '-'
		}
	}
	special := func(i int, set bool, lower, upper byte) {
		if !set {
			return
		}
		if b[i] == '-' {
			b[i] = upper
		} else {
			b[i] = lower
		}
	}
	special(3, m&fs.ModeSetuid != 0, 's', 'S')
	special(6, m&fs.ModeSetgid != 0, 's', 'S')
	special(9, m&fs.ModeSticky != 0, 't', 'T')
	return string(b[:])
}

// mtimeString formats a modification time in a fixed 22-column form:
// local, with the zone's offset shown ("2024-03-01 14:02 +0100"), as ls -l
// prints it (issue 13.8), or in UTC ("+0000") when utc is set (--utc).
func mtimeString(t time.Time, utc bool) string {
	if t.IsZero() {
		return ""
	}
	return zoned(t, utc).Format("2006-01-02 15:04 -0700")
}

// zoned is t in the zone times are shown in: the local zone, or UTC.
func zoned(t time.Time, utc bool) time.Time {
	if utc {
		return t.UTC()
	}
	return t.Local()
}

// fit truncates s to w cells (with an ellipsis) and pads it to exactly w.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if lipgloss.Width(s) > w {
		s = ansi.Truncate(s, w, "…")
	}
	if pad := w - lipgloss.Width(s); pad > 0 {
		s += strings.Repeat(" ", pad)
	}
	return s
}

// fitLeft right-aligns s in w cells, truncating if needed.
func fitLeft(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if lipgloss.Width(s) > w {
		s = ansi.Truncate(s, w, "…")
	}
	if pad := w - lipgloss.Width(s); pad > 0 {
		s = strings.Repeat(" ", pad) + s
	}
	return s
}

// safeName makes a file name printable on one terminal line: control
// characters (a damaged or hostile directory may hold any byte but / and
// NUL) are shown as Go escapes so they cannot move the cursor.
//
// It is termsafe.Quote, the rule the CLI, the reports and the errors use
// too: controls (C0, C1 with CSI), bidi and other format characters and
// invalid UTF-8 are escaped, and an escaped name is shown in quotes.
func safeName(s string) string { return termsafe.Quote(s) }
