package otherfs

import (
	"encoding/binary"
	"io/fs"
	"slices"
	"strings"
	"time"
)

// ISO 9660 directory records (ECMA-119 9.1) and the Rock Ridge NM entry.
//
// go-diskfs returns Rock Ridge names but then strips a leading and a
// trailing '.' and a ";1" from every file name, so ".hidden" comes back
// as "hidden". fixISONames reads the directory's records itself, takes
// the Rock Ridge NM name of each file, and puts it back where go-diskfs's
// name is the stripped form of it (matched by data extent and size). The
// go-diskfs name is kept to open the file through go-diskfs.
const (
	drLength    = 0  // u8: length of the record, 0 = padding to the next sector
	drExtent    = 2  // u32 LE (then BE): first sector of the data
	drSize      = 10 // u32 LE (then BE): data length
	drFlags     = 25 // u8: bit 1 directory
	drNameLen   = 32 // u8
	drName      = 33
	drFlagDir   = 0x02
	pvdRootDR   = 156 // the root directory record inside the primary volume descriptor
	rrNM        = "NM"
	nmContinue  = 0x01
	nmCurrent   = 0x02
	nmParent    = 0x04
	maxISODirSz = 64 << 20
)

type isoRecord struct {
	extent, size uint32
	name         string // Rock Ridge name, "" if none
	dir          bool
}

func (fsys *FS) fixISONames(key string, dst *Stat, ents []*Stat) error {
	var extent, size uint32
	if key == "." || dst == nil {
		var pvd [2048]byte
		if _, err := fsys.raw.ReadAt(pvd[:], isoVDStart); err != nil {
			return nil
		}
		extent = binary.LittleEndian.Uint32(pvd[pvdRootDR+drExtent:])
		size = binary.LittleEndian.Uint32(pvd[pvdRootDR+drSize:])
	} else {
		extent, size = dst.isoLoc, uint32(dst.isoSize)
	}
	if size == 0 || int64(extent)*isoSectorSize+int64(size) > fsys.size || size > maxISODirSz {
		return nil // leave go-diskfs's names
	}
	buf := make([]byte, size)
	if _, err := fsys.raw.ReadAt(buf, int64(extent)*isoSectorSize); err != nil {
		return nil
	}
	var recs []isoRecord
	eachISORecord(buf, func(_ int, r []byte) bool {
		n := len(r)
		nl := int(r[drNameLen])
		if drName+nl > n {
			return false
		}
		rec := isoRecord{
			extent: binary.LittleEndian.Uint32(r[drExtent:]),
			size:   binary.LittleEndian.Uint32(r[drSize:]),
			dir:    r[drFlags]&drFlagDir != 0,
		}
		sua := drName + nl
		if nl%2 == 0 {
			sua++
		}
		rec.name = rrName(r[min(sua, n):])
		recs = append(recs, rec)
		return true
	})
	for _, st := range ents {
		if st.Mode.IsDir() {
			continue
		}
		for _, r := range recs {
			if r.dir || r.name == "" || r.extent != st.isoLoc || int64(r.size) != st.Size {
				continue
			}
			if r.name != st.Name && stripISO(r.name) == st.dname {
				st.Name = r.name
				break
			}
			if r.name == st.Name {
				break
			}
		}
	}
	return nil
}

// eachISORecord calls fn with each directory record of a directory's data
// and its offset, skipping the zero padding at sector ends, until fn
// returns false or a record is malformed (shorter than its fixed part or
// running past the data).
func eachISORecord(buf []byte, fn func(off int, rec []byte) bool) {
	for off := 0; off < len(buf); {
		n := int(buf[off+drLength])
		if n == 0 {
			off = (off/isoSectorSize + 1) * isoSectorSize
			continue
		}
		if n < drName || off+n > len(buf) {
			return
		}
		if !fn(off, buf[off:off+n]) {
			return
		}
		off += n
	}
}

// stripISO is what go-diskfs does to a file name.
func stripISO(n string) string {
	n = strings.TrimSuffix(n, ";1")
	n = strings.TrimSuffix(n, ".")
	return strings.TrimPrefix(n, ".")
}

// rrName collects the Rock Ridge NM entries of a system use area (SUSP
// entries: 2-byte signature, length, version, data), ignoring
// continuation areas (CE): names longer than one record are left to
// go-diskfs.
func rrName(sua []byte) string {
	var name []byte
	found := false
	for len(sua) >= 4 {
		l := int(sua[2])
		if l < 4 || l > len(sua) {
			break
		}
		if string(sua[:2]) == rrNM && l >= 5 {
			flags := sua[4]
			if flags&(nmCurrent|nmParent) == 0 {
				name = append(name, sua[5:l]...)
				found = true
			}
		}
		sua = sua[l:]
	}
	if !found {
		return ""
	}
	return string(name)
}

func sortDirEntries(d []fs.DirEntry) {
	slices.SortFunc(d, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
}

// Rock Ridge PX (POSIX attributes): mode, links, uid, gid as both-endian
// u32s (little-endian half first) after the 4-byte SUSP header.
const (
	rrPX       = "PX"
	pxMode     = 4
	pxLinks    = 12
	pxUID      = 20
	pxGID      = 28
	pxMinLen   = 36
	drRecorded = 18 // 7 bytes: years since 1900, month, day, h, m, s, GMT offset in 15 min
)

// isoRootStat reads the root directory's own "." record, whose system use
// area holds the root's Rock Ridge attributes (go-diskfs does not return
// them for the root).
func (fsys *FS) isoRootStat() *Stat {
	var pvd [256]byte
	if _, err := fsys.raw.ReadAt(pvd[:], isoVDStart); err != nil {
		return nil
	}
	extent := binary.LittleEndian.Uint32(pvd[pvdRootDR+drExtent:])
	size := binary.LittleEndian.Uint32(pvd[pvdRootDR+drSize:])
	var rec [255]byte
	if n, _ := fsys.raw.ReadAt(rec[:], int64(extent)*isoSectorSize); n < len(rec) {
		return nil
	}
	n := int(rec[drLength])
	if n < drName+1 || rec[drFlags]&drFlagDir == 0 {
		return nil
	}
	r := rec[:n]
	st := &Stat{Name: ".", dname: ".", Mode: fs.ModeDir | 0o755, isoLoc: extent, isoSize: int64(size), dirID: uint64(extent)}
	t := r[drRecorded:]
	st.ModTime = time.Date(1900+int(t[0]), time.Month(t[1]), int(t[2]), int(t[3]), int(t[4]), int(t[5]), 0,
		time.FixedZone("", int(int8(t[6]))*15*60)).UTC()
	sua := r[drName+int(r[drNameLen])+1-int(r[drNameLen])%2:]
	for len(sua) >= 4 {
		l := int(sua[2])
		if l < 4 || l > len(sua) {
			break
		}
		if string(sua[:2]) == rrPX && l >= pxMinLen {
			le := binary.LittleEndian
			st.Mode = fs.ModeDir | fs.FileMode(le.Uint32(sua[pxMode:])&0o777)
			st.Nlink = le.Uint32(sua[pxLinks:])
			st.UID, st.GID = le.Uint32(sua[pxUID:]), le.Uint32(sua[pxGID:])
			st.HasPerm, st.HasOwner = true, true
		}
		sua = sua[l:]
	}
	return st
}
