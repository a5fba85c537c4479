package lvm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The dm-raid superblock ("DmRd") that the kernel's dm-raid target keeps at
// the start of every rmeta sub-LV (drivers/md/dm-raid.c, struct
// dm_raid_superblock). lvm2 never writes it: it appears once a kernel has
// activated the LV. The write-intent bitmap follows it (not needed to read).

const dmRaidMagic = 0x64526d44 // "DmRd" little-endian

// dmRaidV190 in compat_features says the 1.9.0 fields (reshape, data
// offsets, extended failed-device bits) are present.
const dmRaidV190 = 0x1

// maxSector is md's MaxSector: "no recovery/resync pending".
const maxSector = ^uint64(0)

// RaidSuperblock is a parsed dm-raid superblock.
type RaidSuperblock struct {
	NumDevices    uint32 `json:"num_devices"`
	ArrayPosition uint32 `json:"array_position"` // this member's role
	Events        uint64 `json:"events"`
	// Failed has bit i set when member i was failed when this superblock
	// was written (up to 256 members with the 1.9.0 extension).
	Failed [4]uint64 `json:"failed"`
	// RecoveryOffset is how far (bytes into the member's data) a rebuild
	// of this member got; -1 when the member is fully in sync.
	RecoveryOffset int64 `json:"recovery_offset"`
	// ResyncOffset is how far (array bytes per member) the initial parity
	// sync got; -1 when done.
	ResyncOffset int64  `json:"resync_offset"`
	Level        uint32 `json:"level"`
	Layout       uint32 `json:"layout"`
	StripeBytes  int64  `json:"stripe_bytes"` // chunk size
	V190         bool   `json:"v190"`
	Flags        uint32 `json:"flags,omitempty"`
	// Reshape state (1.9.0): a reshape in progress when ReshapePosition
	// >= 0.
	ReshapePosition int64  `json:"reshape_position"`
	NewLevel        uint32 `json:"new_level,omitempty"`
	NewLayout       uint32 `json:"new_layout,omitempty"`
	DeltaDisks      int32  `json:"delta_disks,omitempty"`
	ArrayBytes      int64  `json:"array_bytes,omitempty"`
	DataOffset      int64  `json:"data_offset"` // bytes
	NewDataOffset   int64  `json:"new_data_offset"`
	MemberBytes     int64  `json:"member_bytes,omitempty"`
	Incompat        uint32 `json:"incompat,omitempty"`
}

// ErrNoRaidSuperblock: the rmeta holds no dm-raid superblock (the LV was
// never activated by a kernel, or the area is wiped).
var ErrNoRaidSuperblock = errors.New("no dm-raid superblock")

// ParseRaidSuperblock parses the first 512 bytes of an rmeta sub-LV.
func ParseRaidSuperblock(b []byte) (*RaidSuperblock, error) {
	if len(b) < 148 {
		return nil, fmt.Errorf("dm-raid superblock: %d bytes (148 needed)", len(b))
	}
	le := binary.LittleEndian
	if le.Uint32(b[0:]) != dmRaidMagic {
		return nil, ErrNoRaidSuperblock
	}
	sectors := func(v uint64) (int64, error) {
		if v == maxSector {
			return -1, nil
		}
		if v > 1<<53 {
			return 0, fmt.Errorf("dm-raid superblock: sector count %d is implausible", v)
		}
		return int64(v) * 512, nil
	}
	sb := &RaidSuperblock{
		NumDevices:    le.Uint32(b[8:]),
		ArrayPosition: le.Uint32(b[12:]),
		Events:        le.Uint64(b[16:]),
		Level:         le.Uint32(b[48:]),
		Layout:        le.Uint32(b[52:]),
		StripeBytes:   int64(le.Uint32(b[56:])) * 512,
	}
	sb.Failed[0] = le.Uint64(b[24:])
	var err error
	if sb.RecoveryOffset, err = sectors(le.Uint64(b[32:])); err != nil {
		return nil, err
	}
	if sb.ResyncOffset, err = sectors(le.Uint64(b[40:])); err != nil {
		return nil, err
	}
	if sb.NumDevices == 0 || sb.NumDevices > 253 {
		return nil, fmt.Errorf("dm-raid superblock: %d devices (1 to 253)", sb.NumDevices)
	}
	if sb.ArrayPosition >= sb.NumDevices && sb.ArrayPosition != ^uint32(0) {
		return nil, fmt.Errorf("dm-raid superblock: position %d in an array of %d", sb.ArrayPosition, sb.NumDevices)
	}
	sb.ReshapePosition = -1
	compat := le.Uint32(b[4:])
	if compat&dmRaidV190 != 0 {
		sb.V190 = true
		sb.Flags = le.Uint32(b[60:])
		if sb.ReshapePosition, err = sectors(le.Uint64(b[64:])); err != nil {
			return nil, err
		}
		sb.NewLevel = le.Uint32(b[72:])
		sb.NewLayout = le.Uint32(b[76:])
		sb.DeltaDisks = int32(le.Uint32(b[84:]))
		if sb.ArrayBytes, err = sectors(le.Uint64(b[88:])); err != nil {
			return nil, err
		}
		if sb.DataOffset, err = sectors(le.Uint64(b[96:])); err != nil {
			return nil, err
		}
		if sb.NewDataOffset, err = sectors(le.Uint64(b[104:])); err != nil {
			return nil, err
		}
		if sb.MemberBytes, err = sectors(le.Uint64(b[112:])); err != nil {
			return nil, err
		}
		for i := range 3 {
			sb.Failed[i+1] = le.Uint64(b[120+8*i:])
		}
		sb.Incompat = le.Uint32(b[144:])
		if sb.DataOffset < 0 || sb.NewDataOffset < 0 || sb.ArrayBytes < 0 || sb.MemberBytes < 0 {
			return nil, fmt.Errorf("dm-raid superblock: offset or size is MaxSector")
		}
	}
	return sb, nil
}

// IsFailed reports whether member i is marked failed.
func (sb *RaidSuperblock) IsFailed(i int) bool {
	if i < 0 || i >= 256 {
		return false
	}
	return sb.Failed[i/64]>>(i%64)&1 != 0
}

// Reshaping reports a reshape in progress (the layout changes part-way).
func (sb *RaidSuperblock) Reshaping() bool {
	return sb.V190 && sb.ReshapePosition >= 0 && (sb.DeltaDisks != 0 || sb.NewLayout != sb.Layout || sb.NewLevel != sb.Level || sb.NewDataOffset != sb.DataOffset)
}
