// Package drbd reads DRBD internal meta data from the end of a backing
// device (or an image of one), tells where the replicated data ends, and
// compares the generation UUIDs of two halves of a resource the way the
// DRBD kernel module does when they connect.
//
// # On-disk layout followed
//
// With "internal" meta data (drbd 8.4 "flexible" layout, also used by drbd
// 9), the meta data superblock is the last 4 KiB-aligned 4 KiB block of the
// backing device: md_offset = (size &^ 4095) - 4096 (drbd_md_ss() for
// DRBD_MD_INDEX_FLEX_INT). Below it lie the activity log (al_offset, in
// 512-byte sectors relative to md_offset, negative) and below that the
// bitmap (bm_offset, negative, one bit per bm_bytes_per_bit = 4 KiB of
// data). The data area is everything before the bitmap: it ends at
// md_offset + bm_offset*512 (drbd_md_first_sector()). All fields are
// big-endian.
//
// v08 (struct meta_data_on_disk in drbd 8.4 drbd_main.c; drbdmeta's
// md_cpu_to_on_disk_08):
//
//	0   u64 la_size_sect        last agreed device size, sectors
//	8   u64 uuid[4]             current, bitmap, history[0], history[1]
//	40  u64 device_uuid
//	48  u64 reserved
//	56  u32 flags               MDF_* below
//	60  u32 magic               0x8374026b (DRBD_MD_MAGIC_08), or
//	                            0x8374026c (DRBD_MD_MAGIC_84_UNCLEAN: what
//	                            the 8.4+ kernel writes while it has the
//	                            meta data attached; found offline it means
//	                            no clean detach, and drbdmeta asks for
//	                            apply-al first). Not a v09 magic.
//	64  u32 md_size_sect
//	68  s32 al_offset           sectors from md_offset
//	72  u32 al_nr_extents
//	76  s32 bm_offset           sectors from md_offset
//	80  u32 bm_bytes_per_bit    4096
//	84  u32 la_peer_max_bio_size
//	88  u32 al_stripes
//	92  u32 al_stripe_size_4k
//
// v09 (struct meta_data_on_disk_9 in drbd 9 drbd_main.c / drbdmeta):
//
//	0   u64 effective_size      (la_size_sect)
//	8   u64 current_uuid
//	16  u64 reserved[4]         keeps flags/magic where v08 has them
//	48  u64 device_uuid
//	56  u32 flags
//	60  u32 magic               0x8374026d (DRBD_MD_MAGIC_09)
//	64  u32 md_size_sect        68 s32 al_offset     72 u32 al_nr_extents
//	76  s32 bm_offset           80 u32 bm_bytes_per_bit
//	84  u32 la_peer_max_bio_size
//	88  u32 bm_max_peers        92 s32 node_id
//	96  u32 al_stripes          100 u32 al_stripe_size_4k
//	104 u32 reserved[2]
//	112 peers[32]: u64 bitmap_uuid, u64 bitmap_dagtag, u32 flags,
//	    s32 bitmap_index, u32 reserved[2]  (32 bytes each)
//	1136 u64 history_uuids[32]
//
// Flags (MDF_*): v08 bit 0 consistent, 1 primary-ind (was primary), 2
// connected-ind, 3 full-sync, 4 was-up-to-date, 5 peer-out-dated, 6
// crashed-primary, 7 al-clean, 8 al-disabled. v09 keeps 0, 1, 4, 6, 7, 8,
// adds 10 primary-lost-quorum and 11 have-quorum, and moves the per-peer
// ones into peers[].flags (0 connected, 1 outdated, 2 fencing, 3 full-sync,
// 4 device-seen, 16 node-exists).
//
// The UUID comparison (Compare) follows drbd_uuid_compare() of drbd 8.4
// (drbd_receiver.c) for a connection of protocol version >= 96, plus the
// disk-state adjustment of drbd_sync_handshake(). For v09 meta data, the
// same rules are applied to the current UUID, the bitmap UUID kept for the
// peer's node id, and the first two history UUIDs; drbd 9's own function
// has more rules (for more than two nodes), which are not followed.
package drbd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strings"
)

var be = binary.BigEndian

// Magic numbers (DRBD_MAGIC = 0x83740267 plus a version offset).
const (
	MagicV08        = 0x8374026b // DRBD_MD_MAGIC_08
	MagicV84Unclean = 0x8374026c // DRBD_MD_MAGIC_84_UNCLEAN
	MagicV09        = 0x8374026d // DRBD_MD_MAGIC_09

	// SuperblockSize is the meta data superblock (one 4 KiB block).
	SuperblockSize = 4096
	sector         = 512

	// UUIDJustCreated is the current UUID of fresh meta data.
	UUIDJustCreated = 4

	peersMax     = 32 // DRBD_PEERS_MAX (v09)
	historyV09   = 32 // HISTORY_UUIDS (v09)
	v09PeersOff  = 112
	v09PeerSize  = 32
	v09HistOff   = v09PeersOff + peersMax*v09PeerSize
	uuidFlagBit0 = 1 // the lowest UUID bit marks "was primary"; compared without it
)

// Flags (MDF_*), see the package doc.
const (
	FlagConsistent        = 1 << 0
	FlagPrimaryInd        = 1 << 1
	FlagConnectedInd      = 1 << 2 // v08
	FlagFullSync          = 1 << 3 // v08
	FlagWasUpToDate       = 1 << 4
	FlagPeerOutDated      = 1 << 5 // v08
	FlagCrashedPrimary    = 1 << 6
	FlagALClean           = 1 << 7
	FlagALDisabled        = 1 << 8
	FlagPrimaryLostQuorum = 1 << 10 // v09
	FlagHaveQuorum        = 1 << 11 // v09
)

var flagNames = []struct {
	bit  uint32
	name string
	v08  bool // only meaningful in v08
}{
	{FlagConsistent, "consistent", false},
	{FlagPrimaryInd, "was-primary", false},
	{FlagConnectedInd, "connected-ind", true},
	{FlagFullSync, "full-sync", true},
	{FlagWasUpToDate, "was-up-to-date", false},
	{FlagPeerOutDated, "peer-out-dated", true},
	{FlagCrashedPrimary, "crashed-primary", false},
	{FlagALClean, "al-clean", false},
	{FlagALDisabled, "al-disabled", false},
	{FlagPrimaryLostQuorum, "primary-lost-quorum", false},
	{FlagHaveQuorum, "have-quorum", false},
}

// Errors; test with errors.Is.
var (
	ErrNoMetadata = errors.New("no DRBD internal meta data at the end of the device")
	ErrLayout     = errors.New("DRBD meta data layout is not internal (flexible)")
)

// Peer is one v09 peer slot.
type Peer struct {
	BitmapUUID   uint64
	BitmapDagtag uint64
	Flags        uint32
	BitmapIndex  int32
}

// Metadata is a decoded meta data superblock.
type Metadata struct {
	Version string // "v08" or "v09"
	Magic   uint32
	// Offset is the byte offset of the superblock in the device.
	Offset int64

	LaSizeSect   uint64 // last agreed size, sectors
	Current      uint64 // current data generation UUID
	Bitmap       uint64 // v08: bitmap UUID; v09: see Peers
	History      []uint64
	DeviceUUID   uint64
	Flags        uint32
	MdSizeSect   uint32
	ALOffset     int32 // sectors from Offset
	ALNrExtents  uint32
	BMOffset     int32 // sectors from Offset
	BMBytesPer   uint32
	LaPeerMaxBio uint32
	ALStripes    uint32
	ALStripe4k   uint32
	// v09 only:
	MaxPeers uint32
	NodeID   int32
	Peers    []Peer
}

// Read finds and decodes internal meta data in r, a backing device of size
// bytes.
func Read(r io.ReaderAt, size int64) (*Metadata, error) {
	if size < 2*SuperblockSize {
		return nil, fmt.Errorf("%w: device of %d bytes is too small", ErrNoMetadata, size)
	}
	off := (size &^ (SuperblockSize - 1)) - SuperblockSize
	b := make([]byte, SuperblockSize)
	if _, err := r.ReadAt(b, off); err != nil && err != io.EOF {
		return nil, fmt.Errorf("drbd: reading meta data block at byte %d: %w", off, err)
	}
	return Parse(b, off)
}

// Parse decodes a 4 KiB superblock found at byte offset off.
func Parse(b []byte, off int64) (*Metadata, error) {
	if len(b) < SuperblockSize {
		return nil, fmt.Errorf("drbd: meta data block at byte %d is short (%d bytes)", off, len(b))
	}
	m := &Metadata{Offset: off, Magic: be.Uint32(b[60:])}
	switch m.Magic {
	case MagicV08, MagicV84Unclean:
		m.Version = "v08"
		m.LaSizeSect = be.Uint64(b[0:])
		m.Current = be.Uint64(b[8:])
		m.Bitmap = be.Uint64(b[16:])
		m.History = []uint64{be.Uint64(b[24:]), be.Uint64(b[32:])}
		m.DeviceUUID = be.Uint64(b[40:])
		m.ALStripes = be.Uint32(b[88:])
		m.ALStripe4k = be.Uint32(b[92:])
	case MagicV09:
		m.Version = "v09"
		m.LaSizeSect = be.Uint64(b[0:])
		m.Current = be.Uint64(b[8:])
		m.DeviceUUID = be.Uint64(b[48:])
		m.MaxPeers = be.Uint32(b[88:])
		m.NodeID = int32(be.Uint32(b[92:]))
		m.ALStripes = be.Uint32(b[96:])
		m.ALStripe4k = be.Uint32(b[100:])
		for i := 0; i < peersMax; i++ {
			p := b[v09PeersOff+i*v09PeerSize:]
			m.Peers = append(m.Peers, Peer{
				BitmapUUID:   be.Uint64(p[0:]),
				BitmapDagtag: be.Uint64(p[8:]),
				Flags:        be.Uint32(p[16:]),
				BitmapIndex:  int32(be.Uint32(p[20:])),
			})
		}
		for i := 0; i < historyV09; i++ {
			m.History = append(m.History, be.Uint64(b[v09HistOff+8*i:]))
		}
		if m.MaxPeers == 0 || m.MaxPeers > peersMax {
			return nil, fmt.Errorf("drbd v09 meta data at byte %d: bm_max_peers %d (byte %d) outside 1..%d", off, m.MaxPeers, off+88, peersMax)
		}
	default:
		return nil, fmt.Errorf("%w (magic %#08x at byte %d)", ErrNoMetadata, m.Magic, off+60)
	}
	m.Flags = be.Uint32(b[56:])
	m.MdSizeSect = be.Uint32(b[64:])
	m.ALOffset = int32(be.Uint32(b[68:]))
	m.ALNrExtents = be.Uint32(b[72:])
	m.BMOffset = int32(be.Uint32(b[76:]))
	m.BMBytesPer = be.Uint32(b[80:])
	m.LaPeerMaxBio = be.Uint32(b[84:])
	if m.ALOffset >= 0 || m.BMOffset >= 0 || m.BMOffset >= m.ALOffset {
		return nil, fmt.Errorf("%w: al_offset %d, bm_offset %d sectors (bytes %d, %d): internal meta data has the bitmap below the activity log below the superblock",
			ErrLayout, m.ALOffset, m.BMOffset, off+68, off+76)
	}
	if start := off + int64(m.BMOffset)*sector; start < 0 {
		return nil, fmt.Errorf("drbd meta data at byte %d: bitmap offset %d sectors (byte %d) points before the start of the device", off, m.BMOffset, off+76)
	}
	if m.BMBytesPer != 4096 {
		return nil, fmt.Errorf("drbd meta data at byte %d: bm_bytes_per_bit %d (byte %d); DRBD always uses 4096", off, m.BMBytesPer, off+80)
	}
	if got, want := int64(m.MdSizeSect), int64(-m.BMOffset)+SuperblockSize/sector; got != want {
		// drbdmeta computes md_size_sect = bitmap + AL + superblock.
		return nil, fmt.Errorf("drbd meta data at byte %d: md_size_sect %d (byte %d) does not match bm_offset %d (want %d)", off, m.MdSizeSect, off+64, m.BMOffset, want)
	}
	return m, nil
}

// DataSize returns the usable data size: the bytes before the meta data
// area (bitmap, activity log, superblock).
func (m *Metadata) DataSize() int64 { return m.Offset + int64(m.BMOffset)*sector }

// Data returns the data area of the backing device r as a reader.
func (m *Metadata) Data(r io.ReaderAt) *io.SectionReader {
	return io.NewSectionReader(r, 0, m.DataSize())
}

// Unclean reports the 8.4 "unclean" magic: the kernel had the meta data
// attached and did not detach cleanly (crash, or still in use); drbdmeta
// wants apply-al before trusting the bitmap.
func (m *Metadata) Unclean() bool { return m.Magic == MagicV84Unclean }

// FlagNames lists the set flags by name.
func (m *Metadata) FlagNames() []string {
	var out []string
	for _, f := range flagNames {
		if m.Flags&f.bit != 0 && (m.Version == "v08" || !f.v08) {
			out = append(out, f.name)
		}
	}
	return out
}

// BitmapUUIDFor returns the bitmap UUID relevant when comparing with peer:
// for v08 the single bitmap UUID; for v09 the one kept in the slot of the
// peer's node id (or, if node ids are not set, the only non-zero one).
func (m *Metadata) BitmapUUIDFor(peer *Metadata) uint64 {
	if m.Version == "v08" {
		return m.Bitmap
	}
	if peer != nil && peer.NodeID >= 0 && peer.NodeID < int32(len(m.Peers)) {
		return m.Peers[peer.NodeID].BitmapUUID
	}
	var found uint64
	n := 0
	for _, p := range m.Peers {
		if p.BitmapUUID != 0 {
			found = p.BitmapUUID
			n++
		}
	}
	if n == 1 {
		return found
	}
	return 0
}

// BitsSet counts the set bits of the bitmap (out-of-sync 4 KiB blocks)
// covering la_size_sect; for v09, of the bitmap slot idx (0 for v08).
// v09 bitmaps interleave the slots word by word.
func (m *Metadata) BitsSet(r io.ReaderAt, idx int) (int64, error) {
	nbits := (int64(m.LaSizeSect)*sector + int64(m.BMBytesPer) - 1) / int64(m.BMBytesPer)
	words := (nbits + 63) / 64
	peers := int64(1)
	if m.Version == "v09" {
		peers = int64(m.MaxPeers)
	}
	if idx < 0 || int64(idx) >= peers {
		return 0, fmt.Errorf("drbd: bitmap slot %d outside 0..%d", idx, peers-1)
	}
	start := m.DataSize()
	avail := (m.Offset + int64(m.ALOffset)*sector) - start
	if words*8*peers > avail {
		return 0, fmt.Errorf("drbd: bitmap for %d sectors needs %d bytes; the area at byte %d holds %d", m.LaSizeSect, words*8*peers, start, avail)
	}
	buf := make([]byte, 64<<10)
	var count, w int64
	total := words * peers
	for w < total {
		n := min(int64(len(buf))/8, total-w)
		if _, err := r.ReadAt(buf[:n*8], start+w*8); err != nil {
			return count, fmt.Errorf("drbd: reading bitmap at byte %d: %w", start+w*8, err)
		}
		for i := int64(0); i < n; i++ {
			if (w+i)%peers != int64(idx) {
				continue
			}
			word := binary.LittleEndian.Uint64(buf[i*8:])
			// The last word may cover bits beyond the device.
			if (w+i)/peers == words-1 && nbits%64 != 0 {
				word &= 1<<(nbits%64) - 1
			}
			count += int64(bits.OnesCount64(word))
		}
		w += n
	}
	return count, nil
}

// GI renders the generation identifiers as drbdmeta get-gi does for v08:
// CURRENT:BITMAP:HISTORY1:HISTORY2 (without the flags).
func (m *Metadata) GI(peer *Metadata) string {
	h := m.History
	var h0, h1 uint64
	if len(h) > 0 {
		h0 = h[0]
	}
	if len(h) > 1 {
		h1 = h[1]
	}
	return fmt.Sprintf("%016X:%016X:%016X:%016X", m.Current, m.BitmapUUIDFor(peer), h0, h1)
}

// String is a one-line summary.
func (m *Metadata) String() string {
	return fmt.Sprintf("DRBD %s meta data at byte %d: data %d bytes, la-size %d sectors, GI %s, flags %s",
		m.Version, m.Offset, m.DataSize(), m.LaSizeSect, m.GI(nil), strings.Join(m.FlagNames(), ","))
}
