package drbd

import (
	"fmt"
)

// uuidNewBMOffset: drbd adds this to the current UUID to make a new bitmap
// UUID when a resync starts (UUID_NEW_BM_OFFSET).
const uuidNewBMOffset = uint64(0x0001000000000000)

// Verdict is what DRBD would decide when A and B connect.
type Verdict struct {
	// Result is drbd_uuid_compare()'s value from A's side:
	//
	//	   2  A becomes SyncSource, full sync (all bits set)
	//	   1  A becomes SyncSource, bitmap-based resync
	//	   0  no resync: in sync
	//	  -1  A becomes SyncTarget (B is newer), bitmap-based
	//	  -2  A becomes SyncTarget, full sync
	//	 100  split brain detected, auto-recovery policies may resolve it
	//	-100  split brain (history overlap only), disconnect
	//	-1000 unrelated data
	Result int
	// Rule is drbd_uuid_compare()'s rule number (as in the kernel log
	// line "uuid_compare()=%d by rule %d").
	Rule int
	// Undecided is set when the outcome depends on connection state
	// that is not on disk (both crashed while primary).
	Undecided bool
	// Reasons explain the decision step by step.
	Reasons []string
	// DiskStateAdjusted is set when one side is Inconsistent and the
	// other not, which overrides the UUIDs (drbd_sync_handshake()).
	DiskStateAdjusted bool
}

// SplitBrain reports a split brain: both sides changed the data
// independently.
func (v Verdict) SplitBrain() bool { return v.Result == 100 || v.Result == -100 }

// Summary says in one sentence what drbd would do, in drbdadm's terms.
func (v Verdict) Summary() string {
	switch {
	case v.Undecided:
		return "both crashed while primary with the same data generation; drbd decides by the connection's resolve-conflicts role, which is not on disk"
	case v.Result == 0:
		return "in sync: same data generation (Connected, no resync)"
	case v.Result == 1:
		return "A is newer: A becomes SyncSource, B SyncTarget (bitmap-based resync)"
	case v.Result == 2:
		return "A is newer: A becomes SyncSource, B SyncTarget (full sync)"
	case v.Result == -1:
		return "B is newer: B becomes SyncSource, A SyncTarget (bitmap-based resync)"
	case v.Result == -2:
		return "B is newer: B becomes SyncSource, A SyncTarget (full sync)"
	case v.Result == 100:
		return "split brain: both sides changed the data since they were last connected (Split-Brain detected; after-sb policies or a manual --discard-my-data decide)"
	case v.Result == -100:
		return "split brain: the data generations share only history (Split-Brain detected but unresolved, dropping connection)"
	case v.Result == -1000:
		return "unrelated data: the UUIDs share nothing (Unrelated data, aborting!)"
	}
	return fmt.Sprintf("uuid_compare()=%d", v.Result)
}

func strip(u uint64) uint64 { return u &^ uuidFlagBit0 }

// Compare applies DRBD's UUID comparison to A (local) and B (peer).
func Compare(a, b *Metadata) Verdict {
	v := compareUUIDs(a, b)
	// drbd_sync_handshake(): an Inconsistent disk never becomes source.
	aCons, bCons := a.Flags&FlagConsistent != 0, b.Flags&FlagConsistent != 0
	if aCons != bCons && !v.Undecided && v.Result != -1000 {
		full := v.Result == -100 || v.Result == 2 || v.Result == -2
		r := -1
		if aCons {
			r = 1
		}
		if full {
			r *= 2
		}
		if r != v.Result {
			side := "B"
			if aCons {
				side = "A"
			}
			v.Reasons = append(v.Reasons, fmt.Sprintf("only %s is Consistent (the other's consistent flag is clear): drbd makes %s the SyncSource whatever the UUIDs say (\"Becoming sync source due to disk states\")", side, side))
			v.Result, v.DiskStateAdjusted = r, true
		}
	}
	return v
}

// sameCurrent applies rules 34 to 40 of drbd_uuid_compare: the two sides
// have the same current UUID.
func sameCurrent(v *Verdict, a, b *Metadata, aBM, bBM uint64, aH, bH [2]uint64, say func(string, ...any)) {
	if bBM == 0 && aBM != 0 {
		if strip(aBM) == strip(bH[0]) && strip(aH[0]) == strip(bH[1]) {
			v.Rule = 34
			say("rule 34: same current UUID; A still has a bitmap UUID that B already moved to its history: A was SyncSource and missed the end of the resync")
		} else {
			v.Rule = 36
			say("rule 36: same current UUID; A has a bitmap UUID and B none: A was SyncSource (B failed to write the sync UUID)")
		}
		v.Result = 1
		return
	}
	if aBM == 0 && bBM != 0 {
		if strip(aH[0]) == strip(bBM) && strip(aH[1]) == strip(bH[0]) {
			v.Rule = 35
			say("rule 35: same current UUID; B still has a bitmap UUID that A already moved to its history: B was SyncSource and missed the end of the resync")
		} else {
			v.Rule = 37
			say("rule 37: same current UUID; B has a bitmap UUID and A none: A was SyncTarget (failed to write the sync UUID)")
		}
		v.Result = -1
		return
	}
	v.Rule = 40
	aCrash, bCrash := a.Flags&FlagCrashedPrimary != 0, b.Flags&FlagCrashedPrimary != 0
	switch {
	case !aCrash && !bCrash:
		say("rule 40: same current UUID %016X and neither crashed as primary: in sync", a.Current)
		v.Result = 0
	case aCrash && !bCrash:
		say("rule 40: same current UUID, but A crashed while primary: its last writes may be missing on B; A becomes SyncSource for the blocks in its bitmap")
		v.Result = 1
	case !aCrash && bCrash:
		say("rule 40: same current UUID, but B crashed while primary: B becomes SyncSource for the blocks in its bitmap")
		v.Result = -1
	default:
		say("rule 40: same current UUID and both crashed while primary")
		v.Undecided = true
	}
}

func compareUUIDs(a, b *Metadata) Verdict {
	var v Verdict
	say := func(format string, args ...any) { v.Reasons = append(v.Reasons, fmt.Sprintf(format, args...)) }
	aBM, bBM := a.BitmapUUIDFor(b), b.BitmapUUIDFor(a)
	hist := func(m *Metadata) [2]uint64 {
		var h [2]uint64
		copy(h[:], m.History)
		return h
	}
	aH, bH := hist(a), hist(b)

	self, peer := strip(a.Current), strip(b.Current)
	say("A: current %016X, bitmap %016X, history %016X %016X", a.Current, aBM, aH[0], aH[1])
	say("B: current %016X, bitmap %016X, history %016X %016X", b.Current, bBM, bH[0], bH[1])

	v.Rule = 10
	if self == UUIDJustCreated && peer == UUIDJustCreated {
		say("rule 10: both are freshly created (current UUID 4): nothing to sync")
		return v
	}
	v.Rule = 20
	if (self == UUIDJustCreated || self == 0) && peer != UUIDJustCreated {
		say("rule 20: A is freshly created and B is not: B has all the data")
		v.Result = -2
		return v
	}
	v.Rule = 30
	if self != UUIDJustCreated && (peer == UUIDJustCreated || peer == 0) {
		say("rule 30: B is freshly created and A is not: A has all the data")
		v.Result = 2
		return v
	}
	if self == peer {
		sameCurrent(&v, a, b, aBM, bBM, aH, bH, say)
		return v
	}
	v.Rule = 50
	if self == strip(bBM) {
		say("rule 50: A's current UUID %016X is B's bitmap UUID: B changed the data since they parted, A did not; B is newer", a.Current)
		v.Result = -1
		return v
	}
	v.Rule = 51
	if self == strip(bH[0]) && strip(bH[0])+uuidNewBMOffset == strip(bBM) {
		say("rule 51: A's current UUID is B's first history UUID and B's bitmap UUID is the one drbd derives when starting a resync: B started a resync as SyncSource and A missed the sync UUID; B is newer")
		v.Result = -1
		return v
	}
	v.Rule = 60
	for _, h := range bH {
		if self == strip(h) {
			say("rule 60: A's current UUID %016X is in B's history: B moved on by more than one generation; A needs a full sync from B", a.Current)
			v.Result = -2
			return v
		}
	}
	v.Rule = 70
	if strip(aBM) == peer {
		say("rule 70: A's bitmap UUID %016X is B's current UUID: A changed the data since they parted, B did not; A is newer", aBM)
		v.Result = 1
		return v
	}
	v.Rule = 71
	if strip(aH[0]) == peer && strip(aH[0])+uuidNewBMOffset == strip(aBM) {
		say("rule 71: B's current UUID is A's first history UUID and A's bitmap UUID is the one drbd derives when starting a resync: A is newer (the last sync UUID did not get through)")
		v.Result = 1
		return v
	}
	v.Rule = 80
	for _, h := range aH {
		if strip(h) == peer {
			say("rule 80: B's current UUID %016X is in A's history: A moved on by more than one generation; B needs a full sync from A", b.Current)
			v.Result = 2
			return v
		}
	}
	v.Rule = 90
	if strip(aBM) == strip(bBM) && strip(aBM) != 0 {
		say("rule 90: different current UUIDs but the same bitmap UUID %016X: both changed the data since they parted from the same generation", aBM)
		v.Result = 100
		return v
	}
	v.Rule = 100
	for _, x := range aH {
		for _, y := range bH {
			// The kernel does not skip empty (0) slots here.
			if strip(x) == strip(y) {
				say("rule 100: the only common UUID is history %016X: both went separate ways long ago", x)
				v.Result = -100
				return v
			}
		}
	}
	say("no rule matched: no UUID in common")
	v.Result = -1000
	return v
}
