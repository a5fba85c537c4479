package md

import (
	"bytes"
	"fmt"
	"io"
	"sort"
)

// Member is one device found holding an MD superblock.
type Member struct {
	// Name says where the member is (an inspect address); notes and
	// errors use it.
	Name string
	R    io.ReaderAt
	Size int64
	SB   *Superblock
}

// Array is an array assembled from the members that were found.
type Array struct {
	UUID    [16]byte
	Name    string // v1 name ("host:name"), empty for 0.90
	Version string
	// PreferredMinor is the 0.90 md minor.
	PreferredMinor int
	Level          int
	Layout         int
	ChunkSize      int64
	RaidDisks      int
	// DevSize is the per-member size used by raid1/4/5/6/10.
	DevSize int64
	// Events is the freshest event count among the members.
	Events uint64
	// Slots holds the in-sync member of every role (nil when missing).
	Slots []*Member
	// Stale are members left out because their event count is behind the
	// freshest (or the freshest superblock no longer lists them in that
	// role); Spares are spare or faulty members; Duplicates are members
	// that claim a role another, fresher, member fills.
	Stale, Spares, Duplicates []*Member
	// Notes explain members left out, missing roles, unclean shutdown.
	Notes []string
	// Clean is the freshest superblock's clean flag.
	Clean bool
	// Reshaping is set when a reshape was in progress.
	Reshaping bool
}

// UUIDString is the array UUID as mdadm prints it.
func (a *Array) UUIDString() string { return mdUUID(a.UUID) }

// LevelName is mdadm's name of the level.
func (a *Array) LevelName() string { return LevelName(a.Level) }

// Missing lists the roles with no in-sync member.
func (a *Array) Missing() []int {
	var out []int
	for i, m := range a.Slots {
		if m == nil {
			out = append(out, i)
		}
	}
	return out
}

// Members returns every member seen, in-sync ones first by role.
func (a *Array) Members() []*Member {
	var out []*Member
	for _, m := range a.Slots {
		if m != nil {
			out = append(out, m)
		}
	}
	out = append(out, a.Stale...)
	out = append(out, a.Duplicates...)
	return append(out, a.Spares...)
}

// Assemble groups members into arrays by array UUID (in the order their
// first member was given). Within an array the member with the highest
// event count is the reference: its role table says which device holds
// which role. A member is in sync when that table gives it an active role
// and its own event count is at most one behind (as the kernel accepts at
// assembly); others are Stale. Assemble never fails: what is wrong is in
// each array's Notes, and Open says whether the data can be read.
func Assemble(members []*Member) []*Array {
	var order [][16]byte
	groups := map[[16]byte][]*Member{}
	for _, m := range members {
		if m == nil || m.SB == nil {
			continue
		}
		u := m.SB.UUID
		if _, ok := groups[u]; !ok {
			order = append(order, u)
		}
		groups[u] = append(groups[u], m)
	}
	var out []*Array
	for _, u := range order {
		out = append(out, assembleOne(groups[u]))
	}
	return out
}

func assembleOne(ms []*Member) *Array {
	// Freshest first; ties keep the given order.
	sorted := append([]*Member(nil), ms...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].SB.Events > sorted[j].SB.Events })
	ref := sorted[0].SB
	a := &Array{UUID: ref.UUID, Name: ref.Name, Version: ref.Version, PreferredMinor: ref.PreferredMinor,
		Level: ref.Level, Layout: ref.Layout, ChunkSize: ref.ChunkSize, RaidDisks: ref.RaidDisks,
		DevSize: ref.DevSize, Events: ref.Events, Clean: ref.Clean, Reshaping: ref.Reshaping}
	n := ref.RaidDisks
	if n < 0 || n > 4096 {
		n = 0
	}
	a.Slots = make([]*Member, n)
	for _, m := range sorted {
		sb := m.SB
		role := RoleSpare
		if sb.DevNumber >= 0 && sb.DevNumber < len(ref.Roles) {
			role = ref.Roles[sb.DevNumber]
		}
		switch {
		case sb.Level != ref.Level || sb.RaidDisks != ref.RaidDisks || sb.ChunkSize != ref.ChunkSize || sb.Layout != ref.Layout:
			if sb.Events+1 >= ref.Events {
				a.note("%s: its geometry (%s, %d devices, layout %d, chunk %d) differs from the freshest member's; left out",
					m.Name, LevelName(sb.Level), sb.RaidDisks, sb.Layout, sb.ChunkSize)
			} else {
				a.note("%s is stale (events %d, the freshest member has %d) and has an older geometry; left out", m.Name, sb.Events, ref.Events)
			}
			a.Stale = append(a.Stale, m)
		case sb.Events+1 < ref.Events:
			a.note("%s is stale: events %d, the freshest member has %d; left out (its data is older)", m.Name, sb.Events, ref.Events)
			a.Stale = append(a.Stale, m)
		case role >= 0 && role < n && sb.Role != role && sb != ref:
			a.note("%s says it is role %s but the freshest superblock gives it role %s; left out", m.Name, roleName(sb.Role), roleName(role))
			a.Stale = append(a.Stale, m)
		case role >= 0 && role < n:
			if sb.Features&featRecoveryOffset != 0 {
				if ref.Level == 1 || ref.Level == LevelLinear || ref.Level == 0 {
					a.note("%s was being rebuilt (recovered up to byte %d of its data); left out", m.Name, sb.RecoveryOffset)
					a.Stale = append(a.Stale, m)
					continue
				}
				a.note("%s was being rebuilt: only its first %d data bytes are used", m.Name, sb.RecoveryOffset)
			}
			if a.Slots[role] != nil {
				a.note("%s claims role %d, which %s already fills; left out", m.Name, role, a.Slots[role].Name)
				a.Duplicates = append(a.Duplicates, m)
				continue
			}
			a.Slots[role] = m
		case role == RoleFaulty:
			a.note("%s is marked faulty in the freshest superblock; left out", m.Name)
			a.Stale = append(a.Stale, m)
		default:
			a.Spares = append(a.Spares, m)
		}
	}
	if miss := a.Missing(); len(miss) > 0 {
		a.note("%d of %d members missing (role %s)", len(miss), n, joinInts(miss))
	}
	if !a.Clean {
		a.note("not stopped cleanly (resync pending): redundancy may disagree in recently written stripes")
	}
	if a.Reshaping {
		a.note("a reshape was in progress when the array stopped")
	}
	return a
}

func (a *Array) note(format string, args ...any) {
	a.Notes = append(a.Notes, fmt.Sprintf(format, args...))
}

func roleName(r int) string {
	switch r {
	case RoleSpare:
		return "spare"
	case RoleFaulty:
		return "faulty"
	case RoleJournal:
		return "journal"
	}
	return fmt.Sprint(r)
}

func joinInts(v []int) string {
	var b bytes.Buffer
	for i, x := range v {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprint(&b, x)
	}
	return b.String()
}
