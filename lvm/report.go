package lvm

import (
	"fmt"
	"strings"
)

// Report rows in the spirit of `pvs/vgs/lvs --reportformat json --units b
// --nosuffix`: the same field names, with numbers as JSON numbers.

// PVReport is one pvs row.
type PVReport struct {
	Name     string `json:"pv_name"`
	UUID     string `json:"pv_uuid"`
	Size     int64  `json:"pv_size"`
	DevSize  int64  `json:"dev_size"`
	PEStart  int64  `json:"pe_start"`
	PECount  int64  `json:"pv_pe_count"`
	MDACount int    `json:"pv_mda_count"`
	VGName   string `json:"vg_name"`
	VGUUID   string `json:"vg_uuid"`
	Missing  bool   `json:"pv_missing"`
}

// VGReport is one vgs row.
type VGReport struct {
	Name        string   `json:"vg_name"`
	UUID        string   `json:"vg_uuid"`
	Size        int64    `json:"vg_size"`
	ExtentSize  int64    `json:"vg_extent_size"`
	ExtentCount int64    `json:"vg_extent_count"`
	FreeCount   int64    `json:"vg_free_count"`
	Seqno       uint64   `json:"vg_seqno"`
	PVCount     int      `json:"pv_count"`
	LVCount     int      `json:"lv_count"`
	MissingPVs  []string `json:"missing_pvs"`
	Notes       []string `json:"notes"`
}

// LVReport is one lvs row (lvs -a: hidden LVs included, with Visible false).
type LVReport struct {
	VGName     string   `json:"vg_name"`
	Name       string   `json:"lv_name"`
	UUID       string   `json:"lv_uuid"`
	Size       int64    `json:"lv_size"`
	Segtype    string   `json:"segtype"`
	SegCount   int      `json:"seg_count"`
	Origin     string   `json:"origin"`
	PoolLV     string   `json:"pool_lv"`
	DataLV     string   `json:"data_lv"`
	MetadataLV string   `json:"metadata_lv"`
	Visible    bool     `json:"lv_visible"`
	Status     []string `json:"lv_status"`
	// OriginSize is the size of a snapshot's view (lvs origin_size);
	// Size is its COW store's, as lvs shows.
	OriginSize int64 `json:"origin_size,omitempty"`
	Readable   bool  `json:"readable"`
	// ReadError says why Open fails, when it does.
	ReadError string `json:"read_error,omitempty"`
}

// SegReport is one lvs --segments row.
type SegReport struct {
	VGName     string `json:"vg_name"`
	LVName     string `json:"lv_name"`
	Start      int64  `json:"seg_start"`
	Size       int64  `json:"seg_size"`
	Segtype    string `json:"segtype"`
	Stripes    int64  `json:"stripes"`
	StripeSize int64  `json:"stripe_size"`
	// PERanges is like seg_pe_ranges, with PV UUIDs for device names:
	// "UUID:first-last" per area (or "LV:first-last" for sub-LV areas).
	PERanges []string `json:"seg_pe_ranges"`
	// Devices is like devices: "UUID(first)" or "subLV(first)".
	Devices []string `json:"devices"`
}

// SegtypeName is the segtype lvs prints: "linear" for a one-stripe striped
// segment, the metadata type otherwise.
func (s *Segment) SegtypeName() string {
	if s.Type == "striped" && s.StripeCount == 1 {
		return "linear"
	}
	return s.Type
}

// Report returns the VG's vgs row.
func (vg *VG) Report() VGReport {
	r := VGReport{Name: vg.Name, UUID: vg.UUID, ExtentSize: vg.ExtentSize, Seqno: vg.Seqno, PVCount: len(vg.PVs),
		MissingPVs: append([]string{}, vg.Missing...), Notes: append([]string{}, vg.Notes...)}
	for _, p := range vg.PVs {
		r.ExtentCount += p.PECount
	}
	used := int64(0)
	for _, lv := range vg.LVs {
		if lv.Visible && !lv.snapshotHolder {
			r.LVCount++
		}
		for _, s := range lv.Segments {
			for _, a := range s.Areas {
				if a.PV != "" {
					used += s.ExtentCount / max(int64(len(s.Areas)), 1)
				}
			}
		}
	}
	r.Size = r.ExtentCount * vg.ExtentSize
	r.FreeCount = r.ExtentCount - used
	return r
}

// PVReports returns the VG's pvs rows.
func (vg *VG) PVReports() []PVReport {
	var out []PVReport
	for _, p := range vg.PVs {
		r := PVReport{UUID: p.UUID, Size: p.PECount * vg.ExtentSize, DevSize: p.DevSize, PEStart: p.PEStart,
			PECount: p.PECount, VGName: vg.Name, VGUUID: vg.UUID, Missing: p.PV == nil, Name: p.Device}
		if p.PV != nil {
			r.Name = p.PV.String()
			r.DevSize = p.PV.Size
			r.MDACount = len(p.PV.Header.MetadataAreas)
		}
		out = append(out, r)
	}
	return out
}

// OrphanReport is the pvs row of a PV that belongs to no VG found.
func (pv *PV) OrphanReport() PVReport {
	return PVReport{Name: pv.String(), UUID: pv.UUID, Size: pv.Size, DevSize: pv.Size,
		MDACount: len(pv.Header.MetadataAreas), PEStart: firstDataArea(pv)}
}

func firstDataArea(pv *PV) int64 {
	if len(pv.Header.DataAreas) > 0 {
		return int64(pv.Header.DataAreas[0].Offset)
	}
	return 0
}

// LVReports returns the VG's lvs -a rows.
func (vg *VG) LVReports() []LVReport {
	var out []LVReport
	for _, lv := range vg.LVs {
		if lv.snapshotHolder {
			continue // lvs never shows the internal snapshotN LV
		}
		r := LVReport{VGName: vg.Name, Name: lv.Name, UUID: lv.UUID, Size: lv.Size, SegCount: len(lv.Segments),
			Visible: lv.Visible, Status: append([]string{}, lv.Status...)}
		if len(lv.Segments) > 0 {
			s := lv.Segments[0]
			r.Segtype = s.SegtypeName()
			switch s.Type {
			case "thin":
				r.PoolLV = s.ThinPool
				r.Origin = s.ThinOrigin
			case "thin-pool":
				r.DataLV, r.MetadataLV = s.PoolData, s.PoolMetadata
			}
		}
		if lv.snapshot != nil {
			r.Origin = lv.snapshot.origin.Name
			r.OriginSize = lv.snapshot.origin.Size
		}
		if rd, err := lv.Open(); err != nil {
			r.ReadError = err.Error()
		} else {
			r.Readable = rd != nil
		}
		out = append(out, r)
	}
	return out
}

// SegReports returns the VG's lvs -a --segments rows.
func (vg *VG) SegReports() []SegReport {
	var out []SegReport
	for _, lv := range vg.LVs {
		if lv.snapshotHolder {
			continue
		}
		for _, s := range lv.Segments {
			r := SegReport{VGName: vg.Name, LVName: lv.Name, Start: s.StartExtent * vg.ExtentSize,
				Size: s.ExtentCount * vg.ExtentSize, Segtype: s.SegtypeName(), StripeSize: s.StripeSize,
				PERanges: []string{}, Devices: []string{}}
			areas := s.Areas
			if s.Type == "thin-pool" {
				// lvs shows the data sub-LV as the pool's area.
				areas = []Area{{LV: s.PoolData}}
			}
			r.Stripes = int64(len(areas))
			per := s.ExtentCount / max(int64(len(areas)), 1)
			if s.Type == "mirror" || s.Type == "raid1" {
				per = s.ExtentCount
			}
			for _, a := range areas {
				name := a.LV
				if a.PV != "" {
					name = vg.pvByName[a.PV].UUID
				}
				r.PERanges = append(r.PERanges, fmt.Sprintf("%s:%d-%d", name, a.Extent, a.Extent+per-1))
				r.Devices = append(r.Devices, fmt.Sprintf("%s(%d)", name, a.Extent))
			}
			out = append(out, r)
		}
	}
	return out
}

// BackupText returns the chosen metadata as vgcfgbackup would write it: a
// comment line, then the text.
func (vg *VG) BackupText() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# VG %s (%s) seqno %d, metadata text as read by imgtool\n\n", vg.Name, vg.UUID, vg.Seqno)
	b.Write(vg.Text)
	if len(vg.Text) > 0 && vg.Text[len(vg.Text)-1] != '\n' {
		b.WriteByte('\n')
	}
	return []byte(b.String())
}
