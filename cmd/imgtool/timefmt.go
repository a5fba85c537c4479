package main

import "time"

// shownTime is how ls -l and stat print a time (issue 13.8): in the local
// zone with the zone's offset shown, "2024-03-01 14:02:11 +0100", as GNU
// ls --time-style='+%Y-%m-%d %H:%M:%S %z' does, or in UTC ("+0000") with
// --utc. nanos adds the nanoseconds, as GNU stat's %y. JSON keeps RFC 3339
// in UTC (timeJSON): it carries its zone.
func shownTime(t time.Time, utc, nanos bool) string {
	if utc {
		t = t.UTC()
	} else {
		t = t.Local()
	}
	if nanos {
		return t.Format("2006-01-02 15:04:05.000000000 -0700")
	}
	return t.Format("2006-01-02 15:04:05 -0700")
}
