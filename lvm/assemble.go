package lvm

import (
	"bytes"
	"fmt"
	"sort"
)

// VG is an assembled volume group: the chosen metadata plus the PVs found
// for it.
type VG struct {
	Name       string
	UUID       string
	Seqno      uint64
	ExtentSize int64
	PVs        []*VGPV
	LVs        []*LV
	// Notes are non-fatal findings: damaged copies, fallbacks, copies
	// that disagree, missing PVs.
	Notes []string
	// Text is the chosen metadata text (what vgcfgbackup would save,
	// minus its comment header).
	Text []byte
	// Missing lists the UUIDs of PVs named by the metadata but not found.
	Missing []string
	Meta    *Metadata
	// Source is the on-disk copy the metadata came from; nil when it came
	// from AssembleOptions.Metadata (a backup file).
	Source *MetadataCopy
	// Copies are the current (raw_locn slot 0) copies of this VG's
	// metadata on its PVs, readable or not.
	Copies []*MetadataCopy
	// Inconsistent is set when the current copies on the PVs differ
	// (seqno or text) or some are damaged. Rename refuses such VGs
	// unless forced.
	Inconsistent bool

	pvByName map[string]*VGPV
	lvByName map[string]*LV
}

// VGPV is a physical_volumes entry of the VG joined with the PV found.
type VGPV struct {
	Name    string // "pv0"
	UUID    string
	Device  string // device hint recorded by LVM
	DevSize int64
	PEStart int64
	PECount int64
	Status  []string
	// PV is nil when the PV is missing.
	PV *PV
}

// AssembleOptions tune Assemble.
type AssembleOptions struct {
	// Metadata are VG metadata texts from elsewhere (an /etc/lvm/backup
	// file, parsed with ParseMetadata). One is used for a VG (matched by
	// VG UUID) when no on-disk copy of that VG is readable, or always
	// when PreferSupplied is set. A supplied VG that no PV has metadata
	// for is assembled too, from whichever of its PVs are present.
	Metadata       []*Metadata
	PreferSupplied bool
}

// Assemble groups PVs into VGs by VG UUID (not name: two VGs may share a
// name), picking for each VG the readable metadata copy with the highest
// seqno across all its PVs' metadata areas, and resolves LVs' references.
// VGs are returned sorted by name, then UUID. The steps: drop PVs whose
// UUID was seen already (uniquePVs), gather every metadata copy by VG UUID
// (groupCopies), then build each VG from its best copy or the supplied
// metadata and note what disagrees (assembleVG).
func Assemble(pvs []*PV, opts *AssembleOptions) ([]*VG, error) {
	if opts == nil {
		opts = &AssembleOptions{}
	}
	byUUID, dupNotes := uniquePVs(pvs)
	groups, order := groupCopies(pvs, byUUID)
	supplied := map[string]*Metadata{}
	for _, md := range opts.Metadata {
		if md != nil {
			supplied[md.ID] = md
			if groups[md.ID] == nil {
				groups[md.ID] = &copyGroup{}
				order = append(order, md.ID)
			}
		}
	}
	var vgs []*VG
	for _, id := range order {
		vg, err := assembleVG(groups[id], supplied[id], opts.PreferSupplied, byUUID)
		if err != nil {
			return nil, err
		}
		if vg == nil {
			continue
		}
		vg.Notes = append(vg.Notes, dupNotes...)
		vgs = append(vgs, vg)
	}
	sort.SliceStable(vgs, func(i, j int) bool {
		if vgs[i].Name != vgs[j].Name {
			return vgs[i].Name < vgs[j].Name
		}
		return vgs[i].UUID < vgs[j].UUID
	})
	return vgs, nil
}

// uniquePVs indexes pvs by UUID, keeping the first of duplicates (and a
// note saying so).
func uniquePVs(pvs []*PV) (map[string]*PV, []string) {
	byUUID := map[string]*PV{}
	var dupNotes []string
	for _, pv := range pvs {
		if pv == nil {
			continue
		}
		if prev, ok := byUUID[pv.UUID]; ok {
			dupNotes = append(dupNotes, fmt.Sprintf("PV UUID %s found twice (%s and %s); using the first", pv.UUID, prev, pv))
			continue
		}
		byUUID[pv.UUID] = pv
	}
	return byUUID, dupNotes
}

// copyGroup is every metadata copy of one VG: the best (highest seqno,
// current preferred), the current copies, and the damaged newest copies
// whose older copies were recovered from the ring.
type copyGroup struct {
	best    *MetadataCopy
	current []*MetadataCopy
	damaged []*MetadataCopy
}

// groupCopies gathers the readable metadata copies of the unique PVs by
// VG UUID, in the order the VGs are first met.
func groupCopies(pvs []*PV, byUUID map[string]*PV) (map[string]*copyGroup, []string) {
	groups := map[string]*copyGroup{}
	var order []string
	get := func(id string) *copyGroup {
		g := groups[id]
		if g == nil {
			g = &copyGroup{}
			groups[id] = g
			order = append(order, id)
		}
		return g
	}
	for _, pv := range pvs {
		if pv == nil || byUUID[pv.UUID] != pv {
			continue
		}
		for _, m := range pv.MDAs {
			var damagedCurrent *MetadataCopy
			for _, c := range m.Copies {
				if c.Err != nil || c.Meta == nil {
					if c.Current {
						damagedCurrent = c
					}
					continue
				}
				g := get(c.Meta.ID)
				if c.Current {
					g.current = append(g.current, c)
				}
				if damagedCurrent != nil && !c.Current {
					g.damaged = append(g.damaged, damagedCurrent)
					damagedCurrent = nil
				}
				if g.best == nil || c.Meta.Seqno > g.best.Meta.Seqno ||
					c.Meta.Seqno == g.best.Meta.Seqno && c.Current && !g.best.Current {
					g.best = c
				}
			}
		}
	}
	return groups, order
}

// assembleVG builds one VG from its best on-disk copy, or from supplied
// metadata when there is none (or preferSupplied), and notes copies that
// disagree or are damaged. It returns nil when there is no metadata.
func assembleVG(g *copyGroup, supplied *Metadata, preferSupplied bool, byUUID map[string]*PV) (*VG, error) {
	vg := &VG{}
	md := (*Metadata)(nil)
	if g.best != nil {
		md = g.best.Meta
		vg.Source = g.best
	}
	if s := supplied; s != nil && (md == nil || preferSupplied) {
		if md != nil {
			vg.Notes = append(vg.Notes, fmt.Sprintf("using supplied metadata (seqno %d) instead of on-disk seqno %d", s.Seqno, md.Seqno))
		} else {
			vg.Notes = append(vg.Notes, fmt.Sprintf("no readable on-disk metadata; using supplied metadata (seqno %d)", s.Seqno))
		}
		md, vg.Source = s, nil
	}
	if md == nil {
		return nil, nil
	}
	vg.Copies = g.current
	for _, c := range g.damaged {
		vg.Copies = append(vg.Copies, c)
		vg.Inconsistent = true
		vg.Notes = append(vg.Notes, fmt.Sprintf("PV %s metadata area %d: newest copy at byte %d is damaged (%v); older copies were recovered from the ring", c.PV, c.MDA, c.AbsOffset, c.Err))
	}
	if vg.Source != nil && !vg.Source.Current {
		vg.Notes = append(vg.Notes, fmt.Sprintf("using metadata seqno %d recovered from the ring of PV %s metadata area %d at byte %d", md.Seqno, vg.Source.PV, vg.Source.MDA, vg.Source.AbsOffset))
	}
	for _, c := range g.current {
		if c.Meta.Seqno != md.Seqno {
			vg.Inconsistent = true
			vg.Notes = append(vg.Notes, fmt.Sprintf("PV %s metadata area %d has seqno %d, newest is %d", c.PV, c.MDA, c.Meta.Seqno, md.Seqno))
		} else if !bytes.Equal(c.Text, md.Text) && !bytes.Equal(trimNUL(c.Text), trimNUL(md.Text)) {
			vg.Inconsistent = true
			vg.Notes = append(vg.Notes, fmt.Sprintf("PV %s metadata area %d has seqno %d but different text", c.PV, c.MDA, md.Seqno))
		}
	}
	if err := vg.build(md, byUUID); err != nil {
		// Located at the copy it came from (issue 12.5).
		return nil, fmt.Errorf("VG %s (%s): %w", md.VGName, md.ID, vg.metadataErr(err))
	}
	noteUnattributedDamage(vg, g)
	return vg, nil
}

// noteUnattributedDamage notes damaged metadata areas on the VG's PVs whose
// copies could not be attributed to the VG (nothing recoverable in the
// ring).
func noteUnattributedDamage(vg *VG, g *copyGroup) {
	noted := map[*MetadataCopy]bool{}
	for _, c := range g.damaged {
		noted[c] = true
	}
	for _, p := range vg.PVs {
		if p.PV == nil {
			continue
		}
		for i, m := range p.PV.MDAs {
			switch {
			case m.Err != nil:
				vg.Inconsistent = true
				vg.Notes = append(vg.Notes, fmt.Sprintf("PV %s metadata area %d is unreadable: %v", p.UUID, i, m.Err))
			case len(m.Copies) > 0 && m.Copies[0].Current && m.Copies[0].Err != nil && !noted[m.Copies[0]]:
				vg.Inconsistent = true
				vg.Notes = append(vg.Notes, fmt.Sprintf("PV %s metadata area %d: newest copy is damaged (%v) and no older copy was found", p.UUID, i, m.Copies[0].Err))
			}
		}
	}
}

func trimNUL(b []byte) []byte { return bytes.TrimRight(b, "\x00") }

// build fills the VG from metadata md, joining PVs by UUID.
func (vg *VG) build(md *Metadata, byUUID map[string]*PV) error {
	vg.Meta = md
	vg.Name, vg.UUID, vg.Seqno, vg.ExtentSize = md.VGName, md.ID, md.Seqno, md.ExtentSize
	vg.Text = trimNUL(md.Text)
	pvByName := map[string]*VGPV{}
	for _, mp := range md.PVs {
		p := &VGPV{Name: mp.Name, UUID: mp.ID, Device: mp.Device, DevSize: mp.DevSize, PEStart: mp.PEStart,
			PECount: mp.PECount, Status: mp.Status}
		if pv := byUUID[mp.ID]; pv != nil {
			p.PV = pv
			if end := mp.PEStart + mp.PECount*md.ExtentSize; end > pv.Size {
				vg.Notes = append(vg.Notes, fmt.Sprintf("PV %s (%s) has %d bytes but its extents end at byte %d", mp.ID, pv, pv.Size, end))
			}
		} else {
			vg.Missing = append(vg.Missing, mp.ID)
			vg.Notes = append(vg.Notes, fmt.Sprintf("PV %s (%s, last seen as %s) is missing", mp.ID, mp.Name, mp.Device))
		}
		if pvByName[mp.Name] != nil {
			return merr("PV name %s appears twice", mp.Name)
		}
		pvByName[mp.Name] = p
		vg.PVs = append(vg.PVs, p)
	}
	lvByName := map[string]*LV{}
	for _, ml := range md.LVs {
		lv := &LV{Name: ml.Name, UUID: ml.ID, Status: ml.Status, Flags: ml.Flags, Segments: ml.Segments,
			Visible: hasFlag(ml.Status, "VISIBLE"), VG: vg, Meta: ml}
		for _, s := range ml.Segments {
			lv.Extents += s.ExtentCount
		}
		lv.Size = lv.Extents * md.ExtentSize
		if len(ml.Segments) > 0 {
			lv.Type = ml.Segments[0].Type
		}
		if lvByName[lv.Name] != nil {
			return merr("LV name %s appears twice", lv.Name)
		}
		lvByName[lv.Name] = lv
		vg.LVs = append(vg.LVs, lv)
	}
	// Check references so readers can trust them.
	for _, lv := range vg.LVs {
		for i, s := range lv.Segments {
			for _, a := range append(append([]Area(nil), s.Areas...), s.MetaAreas...) {
				if a.PV == "" && a.LV == "" {
					return merr("LV %s segment%d has an area with no PV or LV name", lv.Name, i+1)
				}
				if a.PV != "" && pvByName[a.PV] == nil {
					return merr("LV %s segment%d refers to unknown PV %s", lv.Name, i+1, a.PV)
				}
				if a.LV != "" && lvByName[a.LV] == nil {
					return merr("LV %s segment%d refers to unknown LV %s", lv.Name, i+1, a.LV)
				}
			}
			for _, ref := range []string{s.Origin, s.COWStore, s.PoolMetadata, s.PoolData, s.ThinPool, s.MirrorLog, s.ThinOrigin} {
				if ref != "" && lvByName[ref] == nil {
					return merr("LV %s segment%d refers to unknown LV %s", lv.Name, i+1, ref)
				}
			}
		}
	}
	vg.pvByName, vg.lvByName = pvByName, lvByName
	// Snapshot relations: the visible COW LV carries the user's snapshot
	// name; a hidden "snapshotN" LV holds the snapshot segment.
	for _, lv := range vg.LVs {
		for _, s := range lv.Segments {
			if s.Type == "snapshot" {
				cow, origin := lvByName[s.COWStore], lvByName[s.Origin]
				if cow == nil || origin == nil {
					return merr("snapshot LV %s does not name its origin and COW store", lv.Name)
				}
				if cow.snapshot != nil || cow == lv || origin == cow {
					return merr("snapshot LV %s: COW store %s used twice or by itself", lv.Name, cow.Name)
				}
				cow.snapshot = &snapshotRef{seg: s, holder: lv, origin: origin}
				// LVM stores VISIBLE on the snapshotN LV; the user
				// sees it under the COW LV's name.
				cow.Visible = cow.Visible || lv.Visible
				lv.snapshotHolder = true
				lv.Visible = false
			}
		}
	}
	return nil
}

// LV returns the LV called name, or nil.
func (vg *VG) LV(name string) *LV { return vg.lvByName[name] }

// PVByName returns the physical_volumes entry called name ("pv0"), or nil.
func (vg *VG) PVByName(name string) *VGPV { return vg.pvByName[name] }

// Orphans returns the PVs that belong to none of vgs (freshly pvcreated
// PVs, or PVs whose VG metadata could not be read).
func Orphans(pvs []*PV, vgs []*VG) []*PV {
	used := map[*PV]bool{}
	for _, vg := range vgs {
		for _, p := range vg.PVs {
			if p.PV != nil {
				used[p.PV] = true
			}
		}
	}
	var out []*PV
	for _, pv := range pvs {
		if pv != nil && !used[pv] {
			out = append(out, pv)
		}
	}
	return out
}
