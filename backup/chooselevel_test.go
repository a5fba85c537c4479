package backup

import (
	"testing"
	"time"
)

// TestChooseLevelSameSecond: a level 1 run in the same second as its level
// 0 (dates are whole seconds) is a level 1 on that base, not a new level 0
// (TestBackupS3CLI failed this way when the machine was fast enough).
func TestChooseLevelSameSecond(t *testing.T) {
	d := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	l0 := &Manifest{Guest: "g", Source: "/img", FSUUID: "u", Level: 0, Date: d, File: "g.L0"}
	level, base, why := ChooseLevel(Schedule{}, 1, d, l0.ID(), []*Manifest{l0})
	if level != 1 || base != l0 {
		t.Errorf("level %d base %v (%s), want 1 on the level 0 of the same second", level, base, why)
	}
	// A dump from the future is never a base.
	level, _, _ = ChooseLevel(Schedule{}, 1, d.Add(-time.Second), l0.ID(), []*Manifest{l0})
	if level != 0 {
		t.Errorf("a base dated after the run was used (level %d)", level)
	}
}
