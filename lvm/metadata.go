package lvm

import (
	"errors"
	"fmt"
)

// Metadata is one parsed copy of VG metadata text (what a metadata area's
// ring holds, or an /etc/lvm/backup file). Sizes are converted from LVM's
// 512-byte sectors to bytes.
type Metadata struct {
	VGName       string
	ID           string // VG UUID, dashed
	Seqno        uint64
	Format       string
	Status       []string
	Flags        []string
	ExtentSize   int64 // bytes
	MaxLV, MaxPV int64
	PVs          []*MetaPV
	LVs          []*MetaLV
	// Top-level fields written after the VG section.
	Contents     string
	Version      int64
	Description  string
	CreationHost string
	CreationTime int64

	// Root is the parse tree; VG is the VG's section within it.
	Root *Section
	VG   *Section
	// Text is the text the tree was parsed from (without the NUL).
	Text []byte
}

// MetaPV is a physical_volumes entry.
type MetaPV struct {
	Name    string // "pv0"
	ID      string // PV UUID, dashed
	Device  string // hint only
	Status  []string
	Flags   []string
	DevSize int64 // bytes
	PEStart int64 // bytes
	PECount int64
	Section *Section
}

// MetaLV is a logical_volumes entry.
type MetaLV struct {
	Name         string
	ID           string
	Status       []string
	Flags        []string
	CreationHost string
	CreationTime int64
	Segments     []*Segment
	Section      *Section
}

// Area is one area of a segment: extents on a PV or on another LV.
type Area struct {
	PV     string `json:"pv,omitempty"` // PV name in the metadata ("pv0")
	LV     string `json:"lv,omitempty"` // sub-LV name
	Extent int64  `json:"extent"`       // first extent in the PV or LV
}

// Segment is one segmentN section of an LV.
type Segment struct {
	StartExtent int64  `json:"start_extent"`
	ExtentCount int64  `json:"extent_count"`
	Type        string `json:"type"`
	// striped / raid0 / raid
	StripeCount int64  `json:"stripe_count,omitempty"`
	StripeSize  int64  `json:"stripe_size,omitempty"` // bytes
	Areas       []Area `json:"areas,omitempty"`
	// raid rmeta sub-LVs (raid1, raid0_meta, ...)
	MetaAreas  []Area `json:"meta_areas,omitempty"`
	RegionSize int64  `json:"region_size,omitempty"` // bytes
	MirrorLog  string `json:"mirror_log,omitempty"`
	DataOffset int64  `json:"data_offset,omitempty"` // bytes, raid reshape
	// snapshot
	Origin    string `json:"origin,omitempty"`
	COWStore  string `json:"cow_store,omitempty"`
	ChunkSize int64  `json:"chunk_size,omitempty"` // bytes (snapshot, thin-pool)
	// thin-pool
	PoolMetadata  string `json:"metadata,omitempty"`
	PoolData      string `json:"pool,omitempty"`
	TransactionID int64  `json:"transaction_id,omitempty"`
	// thin
	ThinPool   string `json:"thin_pool,omitempty"`
	DeviceID   int64  `json:"device_id,omitempty"`
	ThinOrigin string `json:"thin_origin,omitempty"`

	Section *Section `json:"-"`
}

// ErrMetadata is wrapped by ParseMetadata errors about content (rather than
// syntax).
var ErrMetadata = errors.New("bad VG metadata")

func merr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMetadata, fmt.Sprintf(format, a...))
}

const sector = 512

// ParseMetadata parses VG metadata text: the content of a metadata area copy
// or an /etc/lvm/backup (vgcfgbackup) file. The text must hold exactly one VG
// section.
func ParseMetadata(text []byte) (*Metadata, error) {
	root, err := ParseConfig(text)
	if err != nil {
		return nil, err
	}
	return metadataFromTree(root, text)
}

// parseMetadataLenient accepts text whose VG section is complete but which
// is followed by garbage (an old copy in a ring partly overwritten).
func parseMetadataLenient(text []byte) (*Metadata, error) {
	root, err := ParseConfig(text)
	if err == nil {
		return metadataFromTree(root, text)
	}
	for _, it := range root.Items {
		if it.Section != nil && it.Section.End > it.Section.Start {
			end := it.Section.End
			return ParseMetadata(text[:end])
		}
	}
	return nil, err
}

func metadataFromTree(root *Section, text []byte) (*Metadata, error) {
	md := &Metadata{Root: root, Text: text[:min(len(text), root.End)]}
	for i := range root.Items {
		it := &root.Items[i]
		if it.Section != nil {
			if md.VG != nil {
				return nil, merr("more than one VG section (%q and %q)", md.VGName, it.Key)
			}
			md.VGName, md.VG = it.Key, it.Section
		}
	}
	if md.VG == nil {
		return nil, merr("no VG section")
	}
	md.Contents = str(root, "contents")
	md.Version = num(root, "version")
	md.Description = str(root, "description")
	md.CreationHost = str(root, "creation_host")
	md.CreationTime = num(root, "creation_time")

	vg := md.VG
	md.ID = str(vg, "id")
	if md.ID == "" {
		return nil, merr("VG %s has no id", md.VGName)
	}
	sq := vg.Get("seqno")
	if sq == nil || sq.Kind != KindInt || sq.Int < 0 || sq.Int > 1<<32 {
		return nil, merr("VG %s has no valid seqno", md.VGName)
	}
	md.Seqno = uint64(sq.Int)
	md.Format = str(vg, "format")
	md.Status = strs(vg, "status")
	md.Flags = strs(vg, "flags")
	es := num(vg, "extent_size")
	if es <= 0 || es > 1<<32 {
		return nil, merr("VG %s has invalid extent_size %d", md.VGName, es)
	}
	md.ExtentSize = es * sector
	md.MaxLV, md.MaxPV = num(vg, "max_lv"), num(vg, "max_pv")

	for _, it := range vg.Sub("physical_volumes").Sections() {
		s := it.Section
		pv := &MetaPV{Name: it.Key, ID: str(s, "id"), Device: str(s, "device"), Status: strs(s, "status"),
			Flags: strs(s, "flags"), DevSize: num(s, "dev_size") * sector, PEStart: num(s, "pe_start") * sector,
			PECount: num(s, "pe_count"), Section: s}
		if pv.ID == "" {
			return nil, merr("PV %s has no id", pv.Name)
		}
		if pv.PEStart < 0 || pv.PECount < 0 || pv.DevSize < 0 {
			return nil, merr("PV %s has negative sizes", pv.Name)
		}
		md.PVs = append(md.PVs, pv)
	}
	for _, it := range vg.Sub("logical_volumes").Sections() {
		s := it.Section
		lv := &MetaLV{Name: it.Key, ID: str(s, "id"), Status: strs(s, "status"), Flags: strs(s, "flags"),
			CreationHost: str(s, "creation_host"), CreationTime: num(s, "creation_time"), Section: s}
		n := num(s, "segment_count")
		if n < 0 || n > 1<<20 {
			return nil, merr("LV %s has invalid segment_count %d", lv.Name, n)
		}
		var next int64
		for i := int64(1); i <= n; i++ {
			ss := s.Sub(fmt.Sprintf("segment%d", i))
			if ss == nil {
				return nil, merr("LV %s: segment%d missing", lv.Name, i)
			}
			seg, err := parseSegment(ss, md.ExtentSize)
			if err != nil {
				return nil, fmt.Errorf("LV %s segment%d: %w", lv.Name, i, err)
			}
			if seg.StartExtent != next {
				return nil, merr("LV %s segment%d starts at extent %d, expected %d", lv.Name, i, seg.StartExtent, next)
			}
			next += seg.ExtentCount
			lv.Segments = append(lv.Segments, seg)
		}
		md.LVs = append(md.LVs, lv)
	}
	return md, nil
}

func parseSegment(s *Section, extentSize int64) (*Segment, error) {
	seg := &Segment{Section: s, StartExtent: num(s, "start_extent"), ExtentCount: num(s, "extent_count"), Type: str(s, "type")}
	if seg.StartExtent < 0 || seg.ExtentCount <= 0 || seg.StartExtent > 1<<40 || seg.ExtentCount > 1<<40 {
		return nil, merr("bad extent range start %d count %d", seg.StartExtent, seg.ExtentCount)
	}
	if seg.Type == "" {
		return nil, merr("no segment type")
	}
	seg.StripeCount = num(s, "stripe_count")
	seg.StripeSize = num(s, "stripe_size") * sector
	seg.RegionSize = num(s, "region_size") * sector
	seg.MirrorLog = str(s, "mirror_log")
	seg.DataOffset = num(s, "data_offset") * sector
	seg.Origin = str(s, "origin")
	seg.COWStore = str(s, "cow_store")
	seg.ChunkSize = num(s, "chunk_size") * sector
	seg.PoolMetadata = str(s, "metadata")
	seg.PoolData = str(s, "pool")
	seg.TransactionID = num(s, "transaction_id")
	seg.ThinPool = str(s, "thin_pool")
	seg.DeviceID = num(s, "device_id")
	seg.ThinOrigin = str(s, "origin")
	if seg.Type != "thin" {
		seg.ThinOrigin = ""
	}
	if seg.Type == "thin" {
		seg.Origin = ""
	}
	pairs := func(key string, isPV bool) ([]Area, error) {
		v := s.Get(key)
		if v == nil {
			return nil, nil
		}
		if v.Kind != KindList || len(v.List)%2 != 0 {
			return nil, merr("%s is not a list of name, extent pairs", key)
		}
		var out []Area
		for i := 0; i < len(v.List); i += 2 {
			n, e := v.List[i], v.List[i+1]
			if n.Kind != KindString || e.Kind != KindInt || e.Int < 0 {
				return nil, merr("%s entry %d is not a name, extent pair", key, i/2)
			}
			a := Area{Extent: e.Int}
			if isPV {
				a.PV = n.Str
			} else {
				a.LV = n.Str
			}
			out = append(out, a)
		}
		return out, nil
	}
	var err error
	switch seg.Type {
	case "striped":
		if seg.Areas, err = pairs("stripes", true); err != nil {
			return nil, err
		}
		if seg.StripeCount == 0 {
			seg.StripeCount = 1
		}
		if int64(len(seg.Areas)) != seg.StripeCount {
			return nil, merr("stripe_count %d but %d stripes", seg.StripeCount, len(seg.Areas))
		}
	case "mirror":
		if seg.Areas, err = pairs("mirrors", false); err != nil {
			return nil, err
		}
	default:
		// raid*: raids = [ "rmeta_0", "rimage_0", ... ] or, without
		// metadata sub-LVs (raid0), [ "rimage_0", "rimage_1" ].
		// raid0 writes raid0_lvs = [ "rimage_0", ... ] and stripe_count.
		key := "raids"
		if s.Get(key) == nil {
			key = "raid0_lvs"
		}
		if v := s.Get(key); v != nil {
			if v.Kind != KindList {
				return nil, merr("raids is not a list")
			}
			names := make([]string, 0, len(v.List))
			for _, e := range v.List {
				if e.Kind != KindString {
					return nil, merr("raids has a non-string entry")
				}
				names = append(names, e.Str)
			}
			dc := num(s, "device_count")
			if dc == 0 {
				dc = seg.StripeCount
			}
			switch {
			case dc > 0 && int64(len(names)) == 2*dc:
				for i := 0; i < len(names); i += 2 {
					seg.MetaAreas = append(seg.MetaAreas, Area{LV: names[i]})
					seg.Areas = append(seg.Areas, Area{LV: names[i+1]})
				}
			case dc > 0 && int64(len(names)) == dc:
				for _, n := range names {
					seg.Areas = append(seg.Areas, Area{LV: n})
				}
			default:
				return nil, merr("device count %d does not match %d %s entries", dc, len(names), key)
			}
			seg.StripeCount = dc
		}
	}
	if seg.ChunkSize < 0 || seg.StripeSize < 0 || seg.RegionSize < 0 || seg.DataOffset < 0 {
		return nil, merr("negative size in segment")
	}
	return seg, nil
}

func str(s *Section, key string) string {
	if v := s.Get(key); v != nil && v.Kind == KindString {
		return v.Str
	}
	return ""
}

// num returns an integer field, 0 when absent. Values are clamped to
// [-2^50, 2^50] so that sector-to-byte conversions cannot overflow; real
// metadata never comes near (2^50 sectors is 512 PiB).
func num(s *Section, key string) int64 {
	if v := s.Get(key); v != nil && v.Kind == KindInt {
		return max(-maxField, min(v.Int, maxField))
	}
	return 0
}

const maxField = 1 << 50

func strs(s *Section, key string) []string {
	v := s.Get(key)
	if v == nil || v.Kind != KindList {
		return nil
	}
	out := []string{}
	for _, e := range v.List {
		if e.Kind == KindString {
			out = append(out, e.Str)
		}
	}
	return out
}

// hasStatus reports whether list contains flag.
func hasFlag(list []string, flag string) bool {
	for _, s := range list {
		if s == flag {
			return true
		}
	}
	return false
}
