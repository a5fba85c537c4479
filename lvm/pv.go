package lvm

import (
	"fmt"
	"io"
)

// PV is a physical volume as read from its label: where it is, its header,
// and the metadata found in its metadata areas.
type PV struct {
	// R reads the PV device (a whole image, a partition, an LV...); Size
	// is its size in bytes. Writers resolve R with image.Resolve.
	R    io.ReaderAt
	Size int64
	// Name is a caller-chosen label for messages (e.g. "disk.img/p2").
	Name string

	LabelSector int
	Label       LabelHeader
	Header      PVHeader
	// UUID is the PV UUID in dashed form.
	UUID string
	MDAs []*MDA
	// Notes are non-fatal problems (a damaged metadata area...).
	Notes []string
	// Damage holds the errors behind the notes about damaged metadata
	// areas and copies, each with the byte offset on the PV of what is
	// damaged (VolumeOffset); each one's text is part of its note.
	Damage []error
}

// ReadPV reads the label, PV header and metadata areas of the PV in r
// (size bytes). It returns an error wrapping ErrNoLabel when there is no
// LVM2 label. Damaged metadata areas are not fatal: they are recorded in
// MDAs[i].Err and Notes.
func ReadPV(r io.ReaderAt, size int64) (*PV, error) {
	if size < labelScanSectors*SectorSize {
		return nil, fmt.Errorf("%w: device of %d bytes is too small", ErrNoLabel, size)
	}
	s, buf, lh, err := readLabel(r, size)
	if err != nil {
		return nil, err
	}
	h, err := parsePVHeader(buf, lh.Offset, s)
	if err != nil {
		return nil, err
	}
	pv := &PV{R: r, Size: size, LabelSector: s, Label: *lh, Header: *h, UUID: FormatUUID(h.UUID)}
	if h.DeviceSize != uint64(size) {
		pv.Notes = append(pv.Notes, fmt.Sprintf("PV %s: header says the device has %d bytes, it has %d", pv.UUID, h.DeviceSize, size))
	}
	if len(h.MetadataAreas) > 8 {
		return nil, located(int64(s)*SectorSize+int64(lh.Offset), "PV %s: %d metadata areas (at most 2 expected)", pv.UUID, len(h.MetadataAreas))
	}
	for i, l := range h.MetadataAreas {
		m := readMDA(r, size, h.UUID, i, l)
		if m.Err != nil {
			pv.Damage = append(pv.Damage, m.Err)
			pv.Notes = append(pv.Notes, fmt.Sprintf("PV %s metadata area %d: %v", pv.UUID, i, m.Err))
		}
		for _, c := range m.Copies {
			if c.Current && c.Err != nil {
				pv.Damage = append(pv.Damage, c.Err)
				pv.Notes = append(pv.Notes, fmt.Sprintf("PV %s metadata area %d: current copy damaged: %v", pv.UUID, i, c.Err))
			}
		}
		pv.MDAs = append(pv.MDAs, m)
	}
	return pv, nil
}

// Copies returns all readable metadata copies of the PV, current first.
func (pv *PV) Copies() []*MetadataCopy {
	var out []*MetadataCopy
	for _, m := range pv.MDAs {
		for _, c := range m.Copies {
			if c.Err == nil && c.Meta != nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// VGName returns the VG name of the PV's newest readable metadata, or "".
func (pv *PV) VGName() string {
	var best *MetadataCopy
	for _, c := range pv.Copies() {
		if best == nil || c.Meta.Seqno > best.Meta.Seqno {
			best = c
		}
	}
	if best == nil {
		return ""
	}
	return best.Meta.VGName
}

func (pv *PV) String() string {
	if pv.Name != "" {
		return pv.Name
	}
	return pv.UUID
}
