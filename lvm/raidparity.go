package lvm

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/imgtool/imgtool/image"
	"github.com/imgtool/imgtool/raid"
)

// raid4/5/6 and raid10 segments (dm-raid over md's raid456 and raid10): the
// data and parity live in "rimage" sub-LVs, one per member, each with an
// "rmeta" sub-LV whose dm-raid superblock says which members failed and how
// far a rebuild got. The geometry and parity maths are package raid's.

// RaidMember is the state of one member of a raid segment.
type RaidMember struct {
	Image string `json:"image"` // rimage sub-LV
	Meta  string `json:"meta"`  // rmeta sub-LV ("" without one)
	// MissingPV is the UUID of a missing PV the rimage lies on.
	MissingPV string `json:"missing_pv,omitempty"`
	// Superblock is the member's dm-raid superblock (nil: none readable,
	// see SuperblockErr).
	Superblock    *RaidSuperblock `json:"superblock,omitempty"`
	SuperblockErr string          `json:"superblock_error,omitempty"`
	// Failed: the freshest superblock marks this member failed; its data
	// is not used.
	Failed bool `json:"failed"`
	// RebuildFrom >= 0: the member was being rebuilt and holds valid data
	// only below this byte of its data area.
	RebuildFrom int64 `json:"rebuild_from"`
	// Used: the reader takes data from this member (false: rebuilt from
	// the others).
	Used bool `json:"used"`
}

// RaidStatus is what the rmeta superblocks and the PVs say about a raid
// segment.
type RaidStatus struct {
	Segment   int          `json:"segment"` // 1-based
	Type      string       `json:"type"`
	Level     int          `json:"level"`
	Layout    string       `json:"layout,omitempty"`
	Disks     int          `json:"disks"`
	ChunkSize int64        `json:"chunk_size"`
	Members   []RaidMember `json:"members"`
	// Degraded: some member's data is missing, failed or stale and is
	// rebuilt from the others on read.
	Degraded bool `json:"degraded"`
	// ResyncOffset >= 0: the initial parity sync had reached this byte of
	// each member; parity above it may not match the data.
	ResyncOffset int64    `json:"resync_offset"`
	Events       uint64   `json:"events"` // of the freshest superblock
	Notes        []string `json:"notes,omitempty"`
}

// raidSeg is a raid4/5/6/10 segment reader.
type raidSeg struct {
	status  *RaidStatus
	r       io.ReaderAt // *raid.ParityReader or *raid.Raid10Reader
	par     *raid.ParityReader
	r10     *raid.Raid10Reader
	members []*area
	geom    raid.Parity
}

func isParityRaid(t string) bool {
	_, ok := raid.LVMLayouts[t]
	return ok
}

func (lv *LV) raidReader(s *Segment, depth int) (*raidSeg, error) {
	vg := lv.VG
	n := len(s.Areas)
	if n < 2 {
		return nil, fmt.Errorf("%d raid images", n)
	}
	if len(s.MetaAreas) != 0 && len(s.MetaAreas) != n {
		return nil, fmt.Errorf("%d rmeta for %d rimage sub-LVs", len(s.MetaAreas), n)
	}
	if s.StartExtent != 0 {
		return nil, fmt.Errorf("%w: %s segment starting at extent %d", ErrNotReadable, s.Type, s.StartExtent)
	}
	segBytes := s.ExtentCount * vg.ExtentSize
	st := &RaidStatus{Type: s.Type, Disks: n, ChunkSize: s.StripeSize, ResyncOffset: -1}
	geom, g10, perMember, err := raidGeometry(s, n, segBytes, st)
	if err != nil {
		return nil, err
	}
	sbs, fresh, err := lv.raidSuperblocks(s, n, perMember, depth, st)
	if err != nil {
		return nil, err
	}

	readers := make([]io.ReaderAt, n)
	seg := &raidSeg{status: st, geom: geom}
	for i := range n {
		m := &st.Members[i]
		dataOff := s.DataOffset
		if sb := sbs[i]; sb != nil && sb.V190 {
			dataOff = sb.DataOffset
		}
		if fresh != nil && fresh.IsFailed(i) {
			m.Failed = true
		}
		if sb := sbs[i]; sb != nil && !m.Failed && sb.RecoveryOffset >= 0 && sb.RecoveryOffset < perMember {
			m.RebuildFrom = sb.RecoveryOffset
		}
		if fresh != nil && sbs[i] != nil && sbs[i].Events < fresh.Events && !m.Failed {
			st.Notes = append(st.Notes, fmt.Sprintf("member %d (%s) has %d events, the freshest superblock %d", i, m.Image, sbs[i].Events, fresh.Events))
		}
		ar, err := lv.resolveArea(Area{LV: m.Image}, 0, dataOff, depth)
		if err != nil {
			return nil, fmt.Errorf("member %d (%s): %w", i, m.Image, err)
		}
		ar.n = perMember
		if sub := vg.lvByName[m.Image]; sub != nil && dataOff+perMember > sub.Size {
			return nil, fmt.Errorf("member %d (%s) of %d bytes is too small for %d data bytes at offset %d", i, m.Image, sub.Size, perMember, dataOff)
		}
		seg.members = append(seg.members, ar)
		if m.MissingPV == "" && !m.Failed {
			readers[i] = io.NewSectionReader(ar.r, ar.off, ar.n)
			m.Used = true
		}
		if !m.Used || m.RebuildFrom >= 0 {
			st.Degraded = true
		}
	}
	if geom.Level != 0 {
		seg.par, err = raid.NewParityReader(geom, readers, segBytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", memberSummary(st), err)
		}
		for i, m := range st.Members {
			if m.RebuildFrom >= 0 {
				seg.par.MarkStale(i, m.RebuildFrom)
			}
		}
		seg.r = seg.par
	} else {
		seg.r10, err = raid.NewRaid10Reader(g10, readers, segBytes)
		if err != nil {
			return nil, err
		}
		for i, m := range st.Members {
			if m.RebuildFrom >= 0 {
				seg.r10.MarkStale(i, m.RebuildFrom)
			}
		}
		seg.r = seg.r10
	}
	return seg, nil
}

// raidGeometry is the RAID geometry of segment s (n images, segBytes of
// data): parity layouts (raid4/5/6) or lvm2's raid10 near-2, and the data
// bytes per member. It sets st.Level and st.Layout.
func raidGeometry(s *Segment, n int, segBytes int64, st *RaidStatus) (geom raid.Parity, g10 raid.Raid10, perMember int64, err error) {
	if l, ok := raid.LVMLayouts[s.Type]; ok {
		geom = raid.Parity{Level: l.Level, Layout: l.Layout, Disks: n, ChunkSize: s.StripeSize}
		if err := geom.Validate(); err != nil {
			return geom, g10, 0, err
		}
		dd := int64(geom.DataDisks())
		if s.ExtentCount%dd != 0 {
			return geom, g10, 0, fmt.Errorf("%d extents do not divide into %d data stripes", s.ExtentCount, dd)
		}
		perMember = segBytes / dd
		st.Level, st.Layout = l.Level, l.Layout.String()
	} else if s.Type == "raid10" {
		// lvm2 creates raid10 "near" with 2 copies (dm-raid's default;
		// lvm2 cannot ask for more or for far/offset).
		g10 = raid.Raid10{Disks: n, Near: 2, Far: 1, ChunkSize: s.StripeSize}
		if n%2 != 0 || segBytes%int64(n/2) != 0 {
			return geom, g10, 0, fmt.Errorf("%w: raid10 with %d images (lvm2 makes an even number)", ErrNotReadable, n)
		}
		perMember = segBytes / int64(n/2)
		g10.DevSize = perMember
		if err := g10.Validate(); err != nil {
			return geom, g10, 0, err
		}
		st.Level, st.Layout = 10, "near-2"
	} else {
		return geom, g10, 0, fmt.Errorf("%w: %s", ErrNotReadable, s.Type)
	}

	return geom, g10, perMember, nil
}

// raidSuperblocks reads the dm-raid superblock of every member's rmeta
// (they carry each member's data offset and state), fills st.Members, and
// returns them with the freshest (most events); a reshape in progress is
// not readable.
func (lv *LV) raidSuperblocks(s *Segment, n int, perMember int64, depth int, st *RaidStatus) ([]*RaidSuperblock, *RaidSuperblock, error) {
	// Superblocks first: they carry each member's data offset and state.
	sbs := make([]*RaidSuperblock, n)
	for i := range n {
		m := RaidMember{Image: s.Areas[i].LV, RebuildFrom: -1}
		if len(s.MetaAreas) > 0 {
			m.Meta = s.MetaAreas[i].LV
			sb, err := lv.readRaidSuperblock(m.Meta, depth)
			if err != nil {
				m.SuperblockErr = err.Error()
			} else if sb.NumDevices != uint32(n) {
				m.SuperblockErr = fmt.Sprintf("superblock is for %d devices, the segment has %d", sb.NumDevices, n)
			} else {
				m.Superblock, sbs[i] = sb, sb
			}
		}
		m.MissingPV = lv.missingPVOf(m.Image)
		st.Members = append(st.Members, m)
	}
	var fresh *RaidSuperblock
	for _, sb := range sbs {
		if sb != nil && (fresh == nil || sb.Events > fresh.Events) {
			fresh = sb
		}
	}
	if fresh != nil {
		st.Events = fresh.Events
		st.ResyncOffset = fresh.ResyncOffset
		if fresh.Reshaping() {
			return nil, nil, fmt.Errorf("%w: a reshape is in progress (level %d layout %d -> level %d layout %d, %+d disks)",
				ErrNotReadable, fresh.Level, fresh.Layout, fresh.NewLevel, fresh.NewLayout, fresh.DeltaDisks)
		}
		if fresh.StripeBytes != 0 && fresh.StripeBytes != s.StripeSize {
			st.Notes = append(st.Notes, fmt.Sprintf("rmeta superblock chunk size %d differs from the metadata's stripe_size %d; using the metadata's", fresh.StripeBytes, s.StripeSize))
		}
		if st.ResyncOffset >= 0 && st.ResyncOffset < perMember {
			st.Notes = append(st.Notes, fmt.Sprintf("initial sync incomplete: parity is trustworthy only below member byte %d", st.ResyncOffset))
		}
	} else if len(s.MetaAreas) > 0 {
		st.Notes = append(st.Notes, "no rmeta sub-LV holds a dm-raid superblock (never activated by a kernel?): all members trusted")
	}

	return sbs, fresh, nil
}

func memberSummary(st *RaidStatus) string {
	var parts []string
	for i, m := range st.Members {
		switch {
		case m.MissingPV != "":
			parts = append(parts, fmt.Sprintf("member %d (%s) on missing PV %s", i, m.Image, m.MissingPV))
		case m.Failed:
			parts = append(parts, fmt.Sprintf("member %d (%s) marked failed", i, m.Image))
		}
	}
	return strings.Join(parts, ", ")
}

// readRaidSuperblock reads the dm-raid superblock at the start of an rmeta
// sub-LV.
func (lv *LV) readRaidSuperblock(name string, depth int) (*RaidSuperblock, error) {
	sub := lv.VG.lvByName[name]
	if sub == nil {
		return nil, fmt.Errorf("unknown rmeta LV %q", name)
	}
	r, err := sub.open(depth + 1)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 512)
	if _, err := r.ReadAt(buf, 0); err != nil {
		return nil, err
	}
	sb, err := ParseRaidSuperblock(buf)
	if err != nil {
		return nil, fmt.Errorf("VG %s LV %s byte 0: %w", lv.VG.Name, name, err)
	}
	return sb, nil
}

// missingPVOf returns the UUID of a missing PV that sub-LV name (or an LV
// it is built on) lies on, or "".
func (lv *LV) missingPVOf(name string) string {
	seen := map[string]bool{}
	var walk func(string, int) string
	walk = func(n string, depth int) string {
		sub := lv.VG.lvByName[n]
		if sub == nil || seen[n] || depth > maxLVDepth {
			return ""
		}
		seen[n] = true
		for _, s := range sub.Segments {
			for _, a := range append(append([]Area{}, s.Areas...), s.MetaAreas...) {
				if a.LV != "" {
					if u := walk(a.LV, depth+1); u != "" {
						return u
					}
					continue
				}
				if p := lv.VG.pvByName[a.PV]; p != nil && p.PV == nil {
					return p.UUID
				}
			}
		}
		return ""
	}
	return walk(name, 0)
}

func (s *raidSeg) readAt(p []byte, off int64) (int, error) {
	n, err := s.r.ReadAt(p, off)
	if err == io.EOF && n == len(p) {
		err = nil
	}
	return n, err
}

// mapOffset maps to the member holding the byte when that member is in
// use (a healthy data chunk); rebuilt bytes have no single location.
func (s *raidSeg) mapOffset(off int64) (io.ReaderAt, int64, int64, error) {
	var mem int
	var moff, run int64
	if s.par != nil {
		mem, moff, run = s.geom.Locate(off)
	} else {
		locs, r := s.r10.Geometry().Locate(off)
		mem, moff, run = locs[0].Member, locs[0].Off, r
		for _, l := range locs {
			if s.status.Members[l.Member].Used {
				mem, moff = l.Member, l.Off
				break
			}
		}
	}
	m := s.status.Members[mem]
	if !m.Used || (m.RebuildFrom >= 0 && moff+run > m.RebuildFrom) {
		return nil, 0, 0, fmt.Errorf("%s segment byte %d is rebuilt from parity (member %s not in use)", s.status.Type, off, m.Image)
	}
	a := s.members[mem]
	return a.r, a.off + moff, run, nil
}

// RaidStatus reports the state of the LV's raid4/5/6/10 segments: members,
// superblock state, degraded or not. It returns an error for LVs without
// such segments.
func (lv *LV) RaidStatus() ([]*RaidStatus, error) {
	var out []*RaidStatus
	for i, s := range lv.Segments {
		if !isParityRaid(s.Type) && s.Type != "raid10" {
			continue
		}
		rs, err := lv.raidReader(s, 0)
		if err != nil {
			return nil, fmt.Errorf("VG %s LV %s segment%d (%s): %w", lv.VG.Name, lv.Name, i+1, s.Type, err)
		}
		rs.status.Segment = i + 1
		out = append(out, rs.status)
	}
	if out == nil {
		return nil, fmt.Errorf("VG %s LV %s has no raid4/5/6/10 segment", lv.VG.Name, lv.Name)
	}
	return out, nil
}

// ParityLocation is where one chunk of a bad stripe lies.
type ParityLocation struct {
	Member int    `json:"member"`
	Image  string `json:"image"`
	Role   string `json:"role"` // "data N", "P" or "Q"
	// PV and PVOffset: the PV (name in the VG and its device label) and
	// the byte offset within the PV device; ImageOffset is the offset in
	// the innermost image file (through partitions, nested LVs...). Empty
	// when the PV is missing.
	PV          string `json:"pv,omitempty"`
	PVDevice    string `json:"pv_device,omitempty"`
	PVOffset    int64  `json:"pv_offset"`
	ImageOffset int64  `json:"image_offset"`
}

// BadStripe is a stripe whose parity disagrees with its data.
type BadStripe struct {
	Stripe int64 `json:"stripe"`
	// LVOff, LVLen: the LV bytes whose data the stripe holds.
	LVOff int64 `json:"lv_offset"`
	LVLen int64 `json:"lv_length"`
	// MemberOff, Len: the first to last disagreeing 512-byte sector, as a
	// byte range of each member's data area.
	MemberOff int64            `json:"member_offset"`
	Len       int64            `json:"length"`
	PBad      bool             `json:"p_bad"`
	QBad      bool             `json:"q_bad"`
	Locations []ParityLocation `json:"locations"`
}

// ParityCheck is what CheckParity found in one segment.
type ParityCheck struct {
	Status  *RaidStatus `json:"status"`
	Stripes int64       `json:"stripes"`
	Checked int64       `json:"checked"`
	// Bad lists bad stripes in order (at most the limit asked for);
	// BadCount counts them all.
	Bad      []BadStripe `json:"bad"`
	BadCount int64       `json:"bad_count"`
	// Unverifiable counts stripes that could not be checked (members
	// missing) and Unsynced those above the initial-sync point (checked,
	// but a mismatch there is expected).
	Unverifiable int64  `json:"unverifiable"`
	FirstError   string `json:"first_error,omitempty"`
}

// CheckParity recomputes P (and Q) of every stripe of the LV's raid4/5/6
// segments and lists the stripes that disagree (at most limit of them in
// Bad; all are counted), with the absolute location of every chunk.
func (lv *LV) CheckParity(limit int) ([]ParityCheck, error) {
	var out []ParityCheck
	var start int64
	for i, s := range lv.Segments {
		segStart := start
		start += s.ExtentCount * lv.VG.ExtentSize
		if !isParityRaid(s.Type) {
			continue
		}
		rs, err := lv.raidReader(s, 0)
		if err != nil {
			return nil, fmt.Errorf("VG %s LV %s segment%d (%s): %w", lv.VG.Name, lv.Name, i+1, s.Type, err)
		}
		rs.status.Segment = i + 1
		pc := ParityCheck{Status: rs.status, Stripes: rs.par.Stripes(), Bad: []BadStripe{}}
		for st := range pc.Stripes {
			m, err := rs.par.CheckStripe(st)
			if err != nil {
				if errors.Is(err, raid.ErrUnverifiable) {
					pc.Unverifiable++
					if pc.FirstError == "" {
						pc.FirstError = err.Error()
					}
					continue
				}
				return nil, fmt.Errorf("VG %s LV %s segment%d: %w", lv.VG.Name, lv.Name, i+1, err)
			}
			pc.Checked++
			if m == nil {
				continue
			}
			pc.BadCount++
			if len(pc.Bad) >= limit {
				continue
			}
			b := BadStripe{Stripe: st, LVOff: segStart + m.ArrayOff, LVLen: m.ArrayLen,
				MemberOff: m.MemberOff, Len: m.Len, PBad: m.P, QBad: m.Q}
			geo := rs.par.Geometry().Stripe(st)
			role := make(map[int]string)
			for k, d := range geo.Data {
				role[d] = fmt.Sprintf("data %d", k)
			}
			role[geo.P] = "P"
			if geo.Q >= 0 {
				role[geo.Q] = "Q"
			}
			for mi := range rs.members {
				b.Locations = append(b.Locations, lv.locate(rs, mi, role[mi], m.MemberOff))
			}
			pc.Bad = append(pc.Bad, b)
		}
		out = append(out, pc)
	}
	if out == nil {
		return nil, fmt.Errorf("VG %s LV %s has no raid4/5/6 segment", lv.VG.Name, lv.Name)
	}
	return out, nil
}

// locate finds where member mi's data byte moff lies on its PV and image.
func (lv *LV) locate(rs *raidSeg, mi int, role string, moff int64) ParityLocation {
	a := rs.members[mi]
	loc := ParityLocation{Member: mi, Image: rs.status.Members[mi].Image, Role: role, PVOffset: -1, ImageOffset: -1}
	m, ok := a.r.(image.Mapper)
	if !ok {
		return loc
	}
	under, uoff, _, err := m.MapOffset(a.off + moff)
	if err != nil {
		return loc
	}
	for _, p := range lv.VG.PVs {
		if p.PV != nil && p.PV.R == under {
			loc.PV, loc.PVDevice, loc.PVOffset = p.Name, p.PV.String(), uoff
			if _, io, _, err := image.Resolve(under, uoff); err == nil {
				loc.ImageOffset = io
			}
			break
		}
	}
	return loc
}

// Summary is one line per finding worth showing a user: members whose data
// is rebuilt and why, plus the notes.
func (st *RaidStatus) Summary() []string {
	var out []string
	how := "from parity"
	if st.Level == 10 {
		how = "from the other copy"
	}
	for i, m := range st.Members {
		switch {
		case m.MissingPV != "":
			out = append(out, fmt.Sprintf("%s degraded: member %d (%s) is on missing PV %s; its chunks are rebuilt %s", st.Type, i, m.Image, m.MissingPV, how))
		case m.Failed:
			out = append(out, fmt.Sprintf("%s degraded: member %d (%s) is marked failed in the rmeta superblocks (stale data); its chunks are rebuilt %s", st.Type, i, m.Image, how))
		case m.RebuildFrom >= 0:
			out = append(out, fmt.Sprintf("%s degraded: member %d (%s) was being rebuilt, valid below its byte %d; above it chunks are rebuilt %s", st.Type, i, m.Image, m.RebuildFrom, how))
		}
	}
	for _, n := range st.Notes {
		out = append(out, st.Type+": "+n)
	}
	return out
}
