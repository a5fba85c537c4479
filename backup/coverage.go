package backup

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/imgtool/imgtool/inspect"
)

// Never silent: every volume of every configured disk is either dumped,
// or an accepted skip (swap, all zeros, or listed in the guest's
// skip = [...]), or LEFT OUT. A run that leaves a volume out still dumps
// everything else, then fails with IncompleteError (the CLI exits 6) and
// names each volume left out; plan says the same.

// Verdict is what a run does with one volume of the tree.
type Verdict int

const (
	// Container: a node whose bytes are read through its children (a
	// disk with a table, an extended partition, a VG, a PV, an MD member).
	Container Verdict = iota
	// Dump: the volume is dumped.
	Dump
	// Skip: not dumped, and that is fine: swap, all zeros, or listed in
	// the guest's skip list.
	Skip
	// LeftOut: the volume holds data and is not backed up.
	LeftOut
)

func (v Verdict) String() string {
	return [...]string{"container", "dump", "skip", "LEFT OUT"}[v]
}

// classify says what a run does with v, and why when it is not dumped.
// skip holds the guest's skip list (see Config.Skip).
func classify(v *inspect.Volume, source string, skip []string) (Verdict, string) {
	verdict, reason := classifyContent(v)
	if verdict == Dump || verdict == LeftOut {
		if e := skipEntry(v, source, skip); e != "" {
			return Skip, fmt.Sprintf("listed in skip (%q)", e)
		}
	}
	return verdict, reason
}

func classifyContent(v *inspect.Volume) (Verdict, string) {
	if v.Kind == inspect.KindVG || len(v.Children) > 0 || (v.Partition != nil && v.Partition.Container) {
		return Container, ""
	}
	if v.LV != nil && !v.LV.Readable {
		return LeftOut, "LV not readable: " + strings.Join(v.Notes, "; ")
	}
	if v.Content == nil {
		if v.Reader() == nil {
			return LeftOut, "unreadable: " + strings.Join(v.Notes, "; ")
		}
		empty, err := allZeros(v.Reader(), v.Size)
		switch {
		case err != nil:
			return LeftOut, fmt.Sprintf("no signature recognised, and reading it failed: %v", err)
		case empty:
			return Skip, "empty (all zeros)"
		}
		return LeftOut, "unknown signature: holds data but no filesystem imgtool recognises"
	}
	switch t := v.Content.Type; {
	case t == "swap":
		return Skip, "swap"
	case t == "LVM2_member":
		// Read through its VG, when the VG was assembled.
		if hasNotePrefix(v, "PV of VG ") {
			return Container, ""
		}
		return LeftOut, "LVM PV whose VG could not be assembled: " + strings.Join(v.Notes, "; ")
	case t == "linux_raid_member":
		if hasNotePrefix(v, "MD member of ") {
			return Container, ""
		}
		return LeftOut, "MD member whose array could not be assembled: " + strings.Join(v.Notes, "; ")
	case t == "crypto_LUKS":
		// Opened (key_files), it has a child and is a Container above.
		if len(v.Notes) > 0 {
			return LeftOut, "LUKS encrypted, not opened: " + strings.Join(v.Notes, "; ")
		}
		return LeftOut, "LUKS encrypted, no key to open it"
	case v.Readable():
		// A registered reader opens it (ext, FAT, squashfs, ISO 9660, ...).
		return Dump, ""
	case v.IsFilesystem() && v.Reader() == nil:
		return LeftOut, t + ": unreadable: " + strings.Join(v.Notes, "; ")
	case v.IsFilesystem():
		return LeftOut, t + ": imgtool cannot dump this filesystem type"
	}
	return LeftOut, "content " + v.Content.Type + " is not a filesystem imgtool can dump"
}

func hasNotePrefix(v *inspect.Volume, p string) bool {
	for _, n := range v.Notes {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}

// skipEntry returns the entry of skip that names v: its address, its
// displayed address, or either prefixed with "SOURCE#".
func skipEntry(v *inspect.Volume, source string, skip []string) string {
	for _, e := range skip {
		for _, a := range []string{v.Address, v.DisplayAddress()} {
			if e == a || e == source+"#"+a {
				return e
			}
		}
	}
	return ""
}

// allZeros reads the volume until a non-zero byte.
func allZeros(r io.ReaderAt, size int64) (bool, error) {
	buf := make([]byte, 1<<20)
	zero := make([]byte, len(buf))
	for off := int64(0); off < size; {
		n := int(min(int64(len(buf)), size-off))
		m, err := r.ReadAt(buf[:n], off)
		if !bytes.Equal(buf[:m], zero[:m]) {
			return false, nil
		}
		if err != nil && !(err == io.EOF && m == n) {
			return false, fmt.Errorf("at byte %d: %w", off+int64(m), err)
		}
		off += int64(n)
	}
	return true, nil
}

// IncompleteError reports volumes that hold data and were not backed up
// (the CLI exits 6). Everything else of the guest was backed up.
type IncompleteError struct {
	Guest   string
	LeftOut []Skipped
	// Partial volumes are backed up without what could not be read.
	Partial []Skipped
}

func (e *IncompleteError) Error() string {
	var parts []string
	for _, g := range []struct {
		what string
		vols []Skipped
	}{{"NOT backed up", e.LeftOut}, {"backed up INCOMPLETE", e.Partial}} {
		if len(g.vols) == 0 {
			continue
		}
		lines := make([]string, len(g.vols))
		for i, s := range g.vols {
			lines[i] = s.Line()
		}
		parts = append(parts, fmt.Sprintf("%d volume(s) %s: %s", len(g.vols), g.what, strings.Join(lines, "; ")))
	}
	return fmt.Sprintf("guest %s: %s", e.Guest, strings.Join(parts, "; "))
}

// Lines is one line per volume left out or incomplete, for logs and cron
// mail.
func (e *IncompleteError) Lines() []string {
	var out []string
	for _, s := range e.LeftOut {
		out = append(out, fmt.Sprintf("guest %s: NOT backed up: %s", e.Guest, s.Line()))
	}
	for _, s := range e.Partial {
		out = append(out, fmt.Sprintf("guest %s: backed up INCOMPLETE: %s", e.Guest, s.Line()))
	}
	return out
}

// Line names a skipped volume and why.
func (s Skipped) Line() string {
	return fmt.Sprintf("%s#%s: %s", s.Source, s.Volume, s.Reason)
}
