package lvm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/imgtool/imgtool/image"
)

// A (non-thin) LVM snapshot is two LVs in the metadata: the visible COW LV,
// which carries the name the user gave the snapshot, and a hidden
// "snapshotN" LV whose one segment has type "snapshot", naming the origin
// LV, the COW store LV and the chunk size. lvs shows only the COW LV.
//
// The COW LV holds dm-snapshot's persistent exception store
// (drivers/md/dm-snap-persistent.c), in chunks of chunk_size sectors:
//
//	chunk 0   header: magic u32 0x70416e53 ("SnAp"), valid u32 (0 once the
//	          snapshot overflowed or failed), version u32 (1), chunk_size
//	          u32 in sectors; all little-endian
//	chunk 1   metadata area 0: chunk_size/16 exceptions {old_chunk u64,
//	          new_chunk u64}: origin chunk old_chunk's point-in-time data
//	          is in COW chunk new_chunk
//	chunks 2.. the data chunks of area 0 (one per exception slot)
//	then metadata area 1, its data chunks, and so on.
//
// The list ends at the first exception whose new_chunk is 0 (chunk 0 is the
// header, so 0 is never a valid data chunk).
const (
	SnapMagic       = 0x70416e53
	snapDiskVersion = 1
	exceptionSize   = 16
	maxSnapChunk    = 1 << 21 // sectors (1 GiB): far beyond dm's limits
)

// COWHeader mirrors struct disk_header.
type COWHeader struct {
	Magic     uint32
	Valid     uint32
	Version   uint32
	ChunkSize uint32 // sectors
}

// COWException mirrors struct disk_exception.
type COWException struct {
	Old uint64 // chunk in the origin
	New uint64 // chunk in the COW store
}

// COWStore is a decoded persistent exception store.
type COWStore struct {
	Header COWHeader
	// ChunkSize in bytes.
	ChunkSize int64
	// Exceptions sorted by Old; a later entry for the same origin chunk
	// replaces an earlier one, as in dm-snapshot.
	Exceptions []COWException
}

// ErrSnapshotInvalid is returned when opening a snapshot whose COW header
// has the valid flag cleared (dm dropped it: overflow or I/O error).
var ErrSnapshotInvalid = errors.New("snapshot is marked invalid in its COW header")

// ReadCOW decodes the exception store in r (size bytes). originChunks, when
// positive, bounds old_chunk values.
func ReadCOW(r io.ReaderAt, size int64, originChunks int64) (*COWStore, error) {
	hb := make([]byte, 16)
	if size < 16 {
		return nil, fmt.Errorf("COW store of %d bytes has no room for a header", size)
	}
	if _, err := r.ReadAt(hb, 0); err != nil {
		return nil, fmt.Errorf("reading COW header: %w", err)
	}
	s := &COWStore{Header: COWHeader{
		Magic:     binary.LittleEndian.Uint32(hb),
		Valid:     binary.LittleEndian.Uint32(hb[4:]),
		Version:   binary.LittleEndian.Uint32(hb[8:]),
		ChunkSize: binary.LittleEndian.Uint32(hb[12:]),
	}}
	h := s.Header
	if h.Magic != SnapMagic {
		return nil, fmt.Errorf("COW header at byte 0: magic %#08x, want %#08x", h.Magic, SnapMagic)
	}
	if h.Version != snapDiskVersion {
		return nil, fmt.Errorf("COW header at byte 8: version %d, want %d", h.Version, snapDiskVersion)
	}
	cs := h.ChunkSize
	if cs == 0 || cs > maxSnapChunk || cs&(cs-1) != 0 || cs*sector < exceptionSize {
		return nil, fmt.Errorf("COW header at byte 12: bad chunk size %d sectors", cs)
	}
	s.ChunkSize = int64(cs) * sector
	chunks := size / s.ChunkSize
	per := s.ChunkSize / exceptionSize
	buf := make([]byte, s.ChunkSize)
	var ex []COWException
area:
	for a := int64(0); ; a++ {
		mchunk := 1 + a*(per+1)
		if mchunk >= chunks {
			break // the store is full
		}
		off := mchunk * s.ChunkSize
		if _, err := r.ReadAt(buf, off); err != nil {
			return nil, fmt.Errorf("reading COW metadata area %d at byte %d: %w", a, off, err)
		}
		for i := int64(0); i < per; i++ {
			e := COWException{binary.LittleEndian.Uint64(buf[i*16:]), binary.LittleEndian.Uint64(buf[i*16+8:])}
			if e.New == 0 {
				break area
			}
			eoff := off + i*16
			if e.New >= uint64(chunks) {
				return nil, fmt.Errorf("COW exception at byte %d: new chunk %d beyond the %d-chunk store", eoff, e.New, chunks)
			}
			if originChunks > 0 && e.Old >= uint64(originChunks) {
				return nil, fmt.Errorf("COW exception at byte %d: old chunk %d beyond the %d-chunk origin", eoff, e.Old, originChunks)
			}
			ex = append(ex, e)
		}
	}
	// Stable sort keeps file order among equal Old; keep the last.
	sort.SliceStable(ex, func(i, j int) bool { return ex[i].Old < ex[j].Old })
	for i, e := range ex {
		if i+1 < len(ex) && ex[i+1].Old == e.Old {
			continue
		}
		s.Exceptions = append(s.Exceptions, e)
	}
	return s, nil
}

// lookup returns the COW chunk holding origin chunk c.
func (s *COWStore) lookup(c uint64) (uint64, bool) {
	i := sort.Search(len(s.Exceptions), func(i int) bool { return s.Exceptions[i].Old >= c })
	if i < len(s.Exceptions) && s.Exceptions[i].Old == c {
		return s.Exceptions[i].New, true
	}
	return 0, false
}

type snapshotRef struct {
	seg    *Segment
	holder *LV // the hidden snapshotN LV
	origin *LV
}

// SnapshotInfo describes a snapshot LV (the visible COW LV).
type SnapshotInfo struct {
	Origin     string `json:"origin"`
	COW        string `json:"cow_store"`
	ChunkSize  int64  `json:"chunk_size"` // bytes, from the metadata
	Valid      bool   `json:"valid"`      // the COW header's valid flag
	Exceptions int    `json:"exceptions"`
	// Err is set when the COW store cannot be read.
	Err error `json:"-"`
}

// IsSnapshot reports whether lv is the visible LV of an old-style snapshot.
func (lv *LV) IsSnapshot() bool { return lv.snapshot != nil }

// Snapshot returns facts about a snapshot LV (nil for other LVs). The
// backup pipeline checks Valid before trusting a snapshot.
func (lv *LV) Snapshot() *SnapshotInfo {
	if lv.snapshot == nil {
		return nil
	}
	info := &SnapshotInfo{Origin: lv.snapshot.origin.Name, COW: lv.Name, ChunkSize: lv.snapshot.seg.ChunkSize}
	cow, err := lv.readCOW()
	if err != nil {
		info.Err = err
		return info
	}
	info.Valid = cow.Header.Valid != 0
	info.Exceptions = len(cow.Exceptions)
	return info
}

func (lv *LV) readCOW() (*COWStore, error) {
	raw, err := lv.open(0)
	if err != nil {
		return nil, err
	}
	ref := lv.snapshot
	cs := ref.seg.ChunkSize
	originChunks := int64(0)
	if cs > 0 {
		originChunks = (ref.origin.Size + cs - 1) / cs
	}
	cow, err := ReadCOW(raw, raw.Size(), originChunks)
	if err != nil {
		return nil, fmt.Errorf("VG %s snapshot %s: %w", lv.VG.Name, lv.Name, err)
	}
	if cs != cow.ChunkSize {
		return nil, fmt.Errorf("VG %s snapshot %s: metadata chunk_size %d bytes, COW header says %d", lv.VG.Name, lv.Name, cs, cow.ChunkSize)
	}
	return cow, nil
}

// openSnapshot returns the point-in-time view: the COW chunk where an
// exception exists, else the origin.
func (lv *LV) openSnapshot() (image.ReaderAtSize, error) {
	cow, err := lv.readCOW()
	if err != nil {
		return nil, err
	}
	if cow.Header.Valid == 0 {
		return nil, fmt.Errorf("VG %s snapshot %s: %w", lv.VG.Name, lv.Name, ErrSnapshotInvalid)
	}
	origin, err := lv.snapshot.origin.open(0)
	if err != nil {
		return nil, err
	}
	raw, err := lv.open(0)
	if err != nil {
		return nil, err
	}
	return &snapshotReader{lv: lv, origin: origin, cowR: raw, cow: cow}, nil
}

type snapshotReader struct {
	lv     *LV
	origin *lvReader
	cowR   *lvReader
	cow    *COWStore
}

func (r *snapshotReader) Size() int64 { return r.origin.size }

// ReadAt implements io.ReaderAt.
func (r *snapshotReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("VG %s snapshot %s: read at negative offset %d", r.lv.VG.Name, r.lv.Name, off)
	}
	size := r.origin.size
	if off >= size {
		return 0, io.EOF
	}
	var eof error
	if int64(len(p)) > size-off {
		p = p[:size-off]
		eof = io.EOF
	}
	cs := r.cow.ChunkSize
	done := 0
	for done < len(p) {
		c := off / cs
		in := off % cs
		n := int(min(int64(len(p)-done), cs-in))
		var err error
		if nc, ok := r.cow.lookup(uint64(c)); ok {
			_, err = r.cowR.ReadAt(p[done:done+n], int64(nc)*cs+in)
		} else {
			_, err = r.origin.ReadAt(p[done:done+n], off)
		}
		if err != nil && err != io.EOF {
			return done, err
		}
		done += n
		off += int64(n)
	}
	return done, eof
}
