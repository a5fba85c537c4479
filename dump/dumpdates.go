package dump

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DumpDate is one line of dump bookkeeping: when a filesystem was last
// dumped at a level. Unlike /var/lib/dumpdates, which dump keys by device
// path, entries are keyed by a stable identity (see DumpID), because the
// device path of an LV snapshot changes from night to night. Keeping the
// list is the backup pipeline's job; this type only fixes the format and
// the rule for picking the base of an incremental dump.
type DumpDate struct {
	ID    string    // DumpID(name, volume address, fs UUID)
	Level int       // 0-9
	Date  time.Time // the c_date of that dump
}

// DumpID builds the identity of a dumped filesystem from the configured
// name, the volume address (e.g. "VolGroup00/domu1/p1") and the
// filesystem UUID. None of them may contain a tab or newline.
func DumpID(name, volume, fsUUID string) string {
	return name + "|" + volume + "|" + strings.ToLower(fsUUID)
}

// String formats the entry as one line: ID, level and RFC 3339 date
// separated by tabs.
func (d DumpDate) String() string {
	return fmt.Sprintf("%s\t%d\t%s", d.ID, d.Level, d.Date.UTC().Format(time.RFC3339))
}

// ParseDumpDate parses a line written by DumpDate.String.
func ParseDumpDate(line string) (DumpDate, error) {
	f := strings.Split(strings.TrimRight(line, "\r\n"), "\t")
	if len(f) != 3 || f[0] == "" {
		return DumpDate{}, fmt.Errorf("dumpdates: %q: want ID<TAB>level<TAB>date", line)
	}
	lvl, err := strconv.Atoi(f[1])
	if err != nil || lvl < 0 || lvl > 9 {
		return DumpDate{}, fmt.Errorf("dumpdates: %q: bad level", line)
	}
	t, err := time.Parse(time.RFC3339, f[2])
	if err != nil {
		return DumpDate{}, fmt.Errorf("dumpdates: %q: %v", line, err)
	}
	return DumpDate{ID: f[0], Level: lvl, Date: t}, nil
}

// ErrNoBase is returned by BaseFor when an incremental dump has no base.
var ErrNoBase = errors.New("dumpdates: no lower-level dump to base on")

// BaseFor picks the base of a level-N dump of id the way dump does: the
// most recent dump of id at a level below N. Level 0 has no base (the zero
// DumpDate, nil error).
func BaseFor(entries []DumpDate, id string, level int) (DumpDate, error) {
	if level == 0 {
		return DumpDate{}, nil
	}
	var best DumpDate
	found := false
	for _, e := range entries {
		if e.ID == id && e.Level < level && (!found || e.Date.After(best.Date)) {
			best, found = e, true
		}
	}
	if !found {
		return DumpDate{}, ErrNoBase
	}
	return best, nil
}

// Update records a finished dump: it replaces id's entry at that level (dump
// keeps one line per filesystem and level) and returns the new list.
func Update(entries []DumpDate, d DumpDate) []DumpDate {
	out := entries[:0:0]
	for _, e := range entries {
		if e.ID == d.ID && e.Level == d.Level {
			continue
		}
		out = append(out, e)
	}
	return append(out, d)
}
