package backup

import (
	"fmt"
	"time"
)

// Schedule chooses a dump level by date, in the modified Tower-of-Hanoi
// order of dump(8)'s manual: a level 0 on FullDay of each month, then the
// daily levels of Sequence, repeated:
//
//	day of month  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15 16 17 18 19 20 ...
//	level         0  3  2  5  4  7  6  9  8  9  3  2  5  4  7  6  9  8  9  3 ...
//
// Each dump contains what changed since the most recent dump of a lower
// level, so a restore needs at most one dump per level below it: on day 9
// (level 8) the chain is day 1 (0), day 3 (2), day 5 (4), day 7 (6), day 9
// (8). The Hanoi order keeps both the chains short and each day's dump
// small, and an older copy of most changes survives in a second dump.
//
// Whatever the schedule says, a level 0 is taken when no usable base exists
// (first run, a missing or damaged lower-level backup, a reformatted
// filesystem with a new UUID), and --level N overrides the schedule.
type Schedule struct {
	// FullDay is the day of the month of the level 0 (1-28); 0 means 1.
	FullDay int `toml:"full_day"`
	// Sequence is the cycle of levels of the other days (1-9 each).
	Sequence []int `toml:"sequence"`
}

// DefaultSequence is the sequence dump(8)'s manual suggests.
var DefaultSequence = []int{3, 2, 5, 4, 7, 6, 9, 8, 9}

func (s *Schedule) check() error {
	if s.FullDay == 0 {
		s.FullDay = 1
	}
	if s.FullDay < 1 || s.FullDay > 28 {
		return fmt.Errorf("schedule.full_day %d: want 1-28", s.FullDay)
	}
	if len(s.Sequence) == 0 {
		s.Sequence = DefaultSequence
	}
	for _, l := range s.Sequence {
		if l < 1 || l > 9 {
			return fmt.Errorf("schedule.sequence: level %d out of range 1-9", l)
		}
	}
	return nil
}

// LevelFor returns the scheduled level of date (in its own time zone).
func (s Schedule) LevelFor(date time.Time) int {
	_ = s.check()
	y, m, d := date.Date()
	full := time.Date(y, m, s.FullDay, 0, 0, 0, 0, date.Location())
	if d < s.FullDay {
		full = time.Date(y, m-1, s.FullDay, 0, 0, 0, 0, date.Location())
	}
	day := time.Date(y, m, d, 0, 0, 0, 0, date.Location())
	k := int(day.Sub(full).Hours()/24 + 0.5)
	if k == 0 {
		return 0
	}
	return s.Sequence[(k-1)%len(s.Sequence)]
}
