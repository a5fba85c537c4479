package lvm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/imgtool/imgtool/internal/where"
)

// The LVM2 label (lib/label/label.h, lib/format_text/layout.h).
//
// One of the first four 512-byte sectors of a PV holds a label:
//
//	offset size
//	0      8    id        "LABELONE"
//	8      8    sector_xl  number of the sector holding this label
//	16     4    crc_xl     LVM CRC of bytes 20..511 of this sector
//	20     4    offset_xl  offset of the label contents (the PV header) from the sector start
//	24     8    type       "LVM2 001"
//
// The PV header follows at offset_xl (normally 32) in the same sector:
//
//	0      32   pv_uuid    32 characters, printed 6-4-4-4-4-4-6 with dashes
//	32     8    device_size_xl (bytes)
//	40     16*n disk_locn {offset, size} data areas, ended by an all-zero entry
//	       16*m disk_locn metadata areas, ended by an all-zero entry
//
// LVM 2.02.116 and later append the PV header extension:
//
//	4    version    (2)
//	4    flags      PV_EXT_USED (1) when the PV belongs to a VG
//	16*k disk_locn bootloader areas, ended by an all-zero entry
//
// All integers are little-endian.
const (
	SectorSize       = 512
	labelScanSectors = 4 // LABEL_SCAN_SECTORS
	labelID          = "LABELONE"
	labelType        = "LVM2 001"
	labelCRCStart    = 20 // the CRC covers the sector from offset_xl on
	pvUUIDLen        = 32 // ID_LEN
	diskLocnSize     = 16

	// PVExtUsed is the PV header extension flag for a PV in a VG.
	PVExtUsed = 0x1
)

// ErrNoLabel is returned by ReadPV when none of the first four sectors holds
// an LVM2 label.
var ErrNoLabel = errors.New("no LVM2 label")

// LabelHeader mirrors struct label_header.
type LabelHeader struct {
	ID     [8]byte
	Sector uint64
	CRC    uint32
	Offset uint32
	Type   [8]byte
}

// DiskLocn mirrors struct disk_locn: a byte range on the PV.
type DiskLocn struct {
	Offset uint64 `json:"offset"`
	Size   uint64 `json:"size"`
}

// PVHeader is the decoded struct pv_header plus its extension.
type PVHeader struct {
	// UUID is the raw 32-character PV UUID (see FormatUUID).
	UUID          string
	DeviceSize    uint64
	DataAreas     []DiskLocn
	MetadataAreas []DiskLocn
	// ExtVersion is 0 when the header has no extension.
	ExtVersion      uint32
	ExtFlags        uint32
	BootloaderAreas []DiskLocn
}

// FormatUUID prints a 32-character LVM UUID in LVM's 6-4-4-4-4-4-6 form.
// Anything that is not 32 characters is returned unchanged.
func FormatUUID(raw string) string {
	if len(raw) != pvUUIDLen {
		return raw
	}
	var b strings.Builder
	start := 0
	for i, n := range []int{6, 4, 4, 4, 4, 4, 6} {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(raw[start : start+n])
		start += n
	}
	return b.String()
}

// readLabel looks for the label in sectors 0-3 of r. It returns the sector
// number, the sector's bytes and the decoded header.
func readLabel(r io.ReaderAt, size int64) (int, []byte, *LabelHeader, error) {
	var bad []string
	badAt := int64(-1)
	for s := 0; s < labelScanSectors; s++ {
		off := int64(s) * SectorSize
		if off+SectorSize > size {
			break
		}
		buf := make([]byte, SectorSize)
		if _, err := r.ReadAt(buf, off); err != nil {
			return 0, nil, nil, where.At("lvm", off, fmt.Sprintf("reading sector %d at byte %d", s, off), err)
		}
		if string(buf[:8]) != labelID {
			continue
		}
		var h LabelHeader
		copy(h.ID[:], buf[0:8])
		h.Sector = binary.LittleEndian.Uint64(buf[8:])
		h.CRC = binary.LittleEndian.Uint32(buf[16:])
		h.Offset = binary.LittleEndian.Uint32(buf[20:])
		copy(h.Type[:], buf[24:32])
		if badAt < 0 {
			badAt = off
		}
		if h.Sector != uint64(s) {
			bad = append(bad, fmt.Sprintf("label at byte %d says it is in sector %d", off, h.Sector))
			continue
		}
		if c := lvmCRC(initialCRC, buf[labelCRCStart:]); c != h.CRC {
			bad = append(bad, fmt.Sprintf("label at byte %d has checksum %#08x, computed %#08x", off, h.CRC, c))
			continue
		}
		if string(h.Type[:]) != labelType {
			bad = append(bad, fmt.Sprintf("label at byte %d has type %q, not %q", off, h.Type[:], labelType))
			continue
		}
		return s, buf, &h, nil
	}
	if len(bad) > 0 {
		return 0, nil, nil, where.At("lvm", badAt, "", fmt.Errorf("%w: %s", ErrNoLabel, strings.Join(bad, "; ")))
	}
	return 0, nil, nil, ErrNoLabel
}

// parsePVHeader decodes the PV header found at hdrOff in the label sector
// buf (sector number sector, for error offsets).
func parsePVHeader(buf []byte, hdrOff uint32, sector int) (*PVHeader, error) {
	base := int64(sector) * SectorSize
	if hdrOff < 32 || int(hdrOff)+pvUUIDLen+8 > len(buf) {
		return nil, located(base+20, "PV header offset %d in label at byte %d is outside the sector", hdrOff, base)
	}
	p := int(hdrOff)
	h := &PVHeader{}
	uuid := buf[p : p+pvUUIDLen]
	for i, c := range uuid {
		if c < 0x21 || c > 0x7e {
			return nil, located(base+int64(p), "PV UUID at byte %d has a non-printable byte %#02x at position %d", base+int64(p), c, i)
		}
	}
	h.UUID = string(uuid)
	p += pvUUIDLen
	h.DeviceSize = binary.LittleEndian.Uint64(buf[p:])
	p += 8
	list := func(what string) ([]DiskLocn, error) {
		var out []DiskLocn
		for {
			if p+diskLocnSize > len(buf) {
				return nil, located(base+int64(p), "%s list runs past the label sector (byte %d)", what, base+int64(p))
			}
			d := DiskLocn{binary.LittleEndian.Uint64(buf[p:]), binary.LittleEndian.Uint64(buf[p+8:])}
			p += diskLocnSize
			if d.Offset == 0 {
				// LVM ends a list at the first entry with offset 0.
				return out, nil
			}
			out = append(out, d)
		}
	}
	var err error
	if h.DataAreas, err = list("data area"); err != nil {
		return nil, err
	}
	if h.MetadataAreas, err = list("metadata area"); err != nil {
		return nil, err
	}
	if p+8 <= len(buf) {
		h.ExtVersion = binary.LittleEndian.Uint32(buf[p:])
		h.ExtFlags = binary.LittleEndian.Uint32(buf[p+4:])
		p += 8
		if h.ExtVersion != 0 {
			if h.BootloaderAreas, err = list("bootloader area"); err != nil {
				return nil, err
			}
		}
	}
	return h, nil
}

// located is damage at byte off of the PV (internal/where): callers find
// the offset with VolumeOffset and place it in the image.
func located(off int64, format string, a ...any) error {
	return where.At("lvm", off, fmt.Sprintf(format, a...), nil)
}
