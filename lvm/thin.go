package lvm

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"sort"
)

// Thin provisioning metadata (Linux drivers/md/dm-thin-metadata.c and
// drivers/md/persistent-data/), stored in the pool's "_tmeta" LV in 4 KiB
// blocks. Block 0 is the superblock:
//
//	offset size
//	0      4    csum                crc32c(bytes 4..4095) ^ 160774
//	4      4    flags
//	8      8    blocknr             0
//	16     16   uuid
//	32     8    magic               27022010
//	40     4    version             1 or 2
//	44     4    time
//	48     8    trans_id
//	56     8    held_root           metadata snapshot (unused here)
//	64     128  data_space_map_root
//	192    128  metadata_space_map_root
//	320    8    data_mapping_root   two-level btree, see below
//	328    8    device_details_root btree: dev id -> details
//	336    4    data_block_size     sectors
//	340    4    metadata_block_size sectors (8)
//	344    8    metadata_nr_blocks
//
// Every btree node is one block: a 32-byte header (csum u32 =
// crc32c(bytes 4..4095) ^ 121107, flags u32 (1 internal, 2 leaf), blocknr
// u64, nr_entries u32, max_entries u32, value_size u32, padding u32), then
// max_entries u64 keys, then max_entries values of value_size bytes.
// Internal nodes' values are u64 child block numbers.
//
// The data mapping tree maps a thin device id to the root of that device's
// own btree, which maps a virtual block to u64 (data block << 24 | time).
const (
	thinBlockSize      = 4096
	thinMagic          = 27022010
	thinSuperCSumXOR   = 160774
	thinBtreeCSumXOR   = 121107
	btreeInternal      = 1
	btreeLeaf          = 2
	btreeHeaderSize    = 32
	maxThinBtreeDepth  = 16
	thinDataBlockShift = 24
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// dmChecksum is dm_bm_checksum: crc32c seeded with ~0, not inverted at the
// end, xored with a per-structure constant.
func dmChecksum(b []byte, xor uint32) uint32 {
	return ^crc32.Checksum(b, castagnoli) ^ xor
}

// ThinSuperblock is the decoded thin metadata superblock.
type ThinSuperblock struct {
	Flags             uint32
	Magic             uint64
	Version           uint32
	Time              uint32
	TransactionID     uint64
	DataMappingRoot   uint64
	DeviceDetailsRoot uint64
	DataBlockSize     uint32 // sectors
	MetadataBlockSize uint32 // sectors
	MetadataNrBlocks  uint64
}

// ThinMapping is one mapped block of a thin device.
type ThinMapping struct {
	Virtual uint64 // block in the thin device
	Data    uint64 // block in the pool's data LV
	Time    uint32
}

// ThinDevice is a device_details entry.
type ThinDevice struct {
	ID            uint64
	MappedBlocks  uint64
	TransactionID uint64
	CreationTime  uint32
	SnapshotTime  uint32
}

// ThinMetadata reads a pool's metadata device.
type ThinMetadata struct {
	Super  ThinSuperblock
	r      io.ReaderAt
	blocks uint64
}

// ReadThinMetadata reads and checks the superblock of thin pool metadata in
// r (size bytes).
func ReadThinMetadata(r io.ReaderAt, size int64) (*ThinMetadata, error) {
	b := make([]byte, thinBlockSize)
	if size < thinBlockSize {
		return nil, fmt.Errorf("thin metadata of %d bytes has no room for a superblock", size)
	}
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("reading thin superblock: %w", err)
	}
	le := binary.LittleEndian
	s := ThinSuperblock{
		Flags: le.Uint32(b[4:]), Magic: le.Uint64(b[32:]), Version: le.Uint32(b[40:]), Time: le.Uint32(b[44:]),
		TransactionID: le.Uint64(b[48:]), DataMappingRoot: le.Uint64(b[320:]), DeviceDetailsRoot: le.Uint64(b[328:]),
		DataBlockSize: le.Uint32(b[336:]), MetadataBlockSize: le.Uint32(b[340:]), MetadataNrBlocks: le.Uint64(b[344:]),
	}
	if s.Magic != thinMagic {
		return nil, fmt.Errorf("thin superblock at byte 32: magic %d, want %d", s.Magic, thinMagic)
	}
	if c := dmChecksum(b[4:], thinSuperCSumXOR); c != le.Uint32(b) {
		return nil, fmt.Errorf("thin superblock at byte 0: checksum %#08x, computed %#08x", le.Uint32(b), c)
	}
	if le.Uint64(b[8:]) != 0 {
		return nil, fmt.Errorf("thin superblock at byte 8: blocknr %d, want 0", le.Uint64(b[8:]))
	}
	if s.MetadataBlockSize != thinBlockSize/sector {
		return nil, fmt.Errorf("thin superblock at byte 340: metadata block size %d sectors, only 8 is supported", s.MetadataBlockSize)
	}
	if s.DataBlockSize == 0 || s.DataBlockSize > 1<<21 {
		return nil, fmt.Errorf("thin superblock at byte 336: bad data block size %d sectors", s.DataBlockSize)
	}
	return &ThinMetadata{Super: s, r: r, blocks: uint64(size) / thinBlockSize}, nil
}

// node reads btree node blk and checks it.
func (m *ThinMetadata) node(blk uint64, b []byte) (flags uint32, keys []uint64, vals []byte, vsize int, err error) {
	if blk == 0 || blk >= m.blocks {
		return 0, nil, nil, 0, fmt.Errorf("btree block %d outside the %d-block metadata device", blk, m.blocks)
	}
	off := int64(blk) * thinBlockSize
	if _, err := m.r.ReadAt(b, off); err != nil {
		return 0, nil, nil, 0, fmt.Errorf("reading btree node at byte %d: %w", off, err)
	}
	le := binary.LittleEndian
	if c := dmChecksum(b[4:], thinBtreeCSumXOR); c != le.Uint32(b) {
		return 0, nil, nil, 0, fmt.Errorf("btree node at byte %d: checksum %#08x, computed %#08x", off, le.Uint32(b), c)
	}
	if le.Uint64(b[8:]) != blk {
		return 0, nil, nil, 0, fmt.Errorf("btree node at byte %d says it is block %d", off, le.Uint64(b[8:]))
	}
	flags = le.Uint32(b[4:])
	n, maxE, vs := le.Uint32(b[16:]), le.Uint32(b[20:]), le.Uint32(b[24:])
	if flags != btreeInternal && flags != btreeLeaf {
		return 0, nil, nil, 0, fmt.Errorf("btree node at byte %d: flags %#x", off, flags)
	}
	if vs == 0 || vs > 64 || n > maxE || btreeHeaderSize+uint64(maxE)*(8+uint64(vs)) > thinBlockSize {
		return 0, nil, nil, 0, fmt.Errorf("btree node at byte %d: %d of %d entries of %d-byte values do not fit", off, n, maxE, vs)
	}
	if flags == btreeInternal && vs != 8 {
		return 0, nil, nil, 0, fmt.Errorf("btree internal node at byte %d: value size %d", off, vs)
	}
	keys = make([]uint64, n)
	for i := range keys {
		keys[i] = le.Uint64(b[btreeHeaderSize+8*i:])
	}
	vstart := btreeHeaderSize + 8*int(maxE)
	return flags, keys, b[vstart : vstart+int(n)*int(vs)], int(vs), nil
}

// walk visits every leaf entry of the btree at root, in key order, with
// leaf values of want bytes. visited guards against cycles.
func (m *ThinMetadata) walk(root uint64, want int, visited map[uint64]bool, depth int, fn func(key uint64, val []byte) error) error {
	if depth > maxThinBtreeDepth {
		return fmt.Errorf("btree deeper than %d levels", maxThinBtreeDepth)
	}
	if visited[root] {
		return fmt.Errorf("btree block %d reached twice (cycle)", root)
	}
	visited[root] = true
	b := make([]byte, thinBlockSize)
	flags, keys, vals, vs, err := m.node(root, b)
	if err != nil {
		return err
	}
	if flags == btreeInternal {
		for i := range keys {
			child := binary.LittleEndian.Uint64(vals[8*i:])
			if err := m.walk(child, want, visited, depth+1, fn); err != nil {
				return err
			}
		}
		return nil
	}
	if vs != want {
		return fmt.Errorf("btree leaf at block %d has %d-byte values, want %d", root, vs, want)
	}
	for i, k := range keys {
		if err := fn(k, vals[i*vs:(i+1)*vs]); err != nil {
			return err
		}
	}
	return nil
}

// Devices lists the thin devices of the pool (device_details tree).
func (m *ThinMetadata) Devices() ([]ThinDevice, error) {
	var out []ThinDevice
	err := m.walk(m.Super.DeviceDetailsRoot, 24, map[uint64]bool{}, 0, func(k uint64, v []byte) error {
		le := binary.LittleEndian
		out = append(out, ThinDevice{ID: k, MappedBlocks: le.Uint64(v), TransactionID: le.Uint64(v[8:]),
			CreationTime: le.Uint32(v[16:]), SnapshotTime: le.Uint32(v[20:])})
		return nil
	})
	return out, err
}

// Mappings returns the mapped blocks of thin device dev in virtual block
// order. It fails when the device is not in the pool.
func (m *ThinMetadata) Mappings(dev uint64) ([]ThinMapping, error) {
	var root uint64
	found := false
	visited := map[uint64]bool{}
	err := m.walk(m.Super.DataMappingRoot, 8, visited, 0, func(k uint64, v []byte) error {
		if k == dev {
			root, found = binary.LittleEndian.Uint64(v), true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("thin data mapping tree: %w", err)
	}
	if !found {
		return nil, fmt.Errorf("thin device %d is not in the pool metadata", dev)
	}
	var out []ThinMapping
	last := int64(-1)
	err = m.walk(root, 8, visited, 1, func(k uint64, v []byte) error {
		if int64(k) <= last {
			return fmt.Errorf("thin device %d: block keys out of order (%d after %d)", dev, k, last)
		}
		last = int64(k)
		x := binary.LittleEndian.Uint64(v)
		out = append(out, ThinMapping{Virtual: k, Data: x >> thinDataBlockShift, Time: uint32(x & (1<<thinDataBlockShift - 1))})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("thin device %d mapping tree: %w", dev, err)
	}
	return out, nil
}

// thinSeg reads a thin LV: mapped blocks from the pool's data LV, zeros
// elsewhere.
type thinSeg struct {
	data    *lvReader
	bs      int64
	maps    []ThinMapping
	dataLen int64
}

func (lv *LV) thinReader(s *Segment, depth int) (segReader, error) {
	vg := lv.VG
	pool := vg.lvByName[s.ThinPool]
	if pool == nil {
		return nil, fmt.Errorf("thin segment names no thin pool")
	}
	if len(pool.Segments) != 1 || pool.Segments[0].Type != "thin-pool" {
		return nil, fmt.Errorf("thin pool %s is not a single thin-pool segment", pool.Name)
	}
	ps := pool.Segments[0]
	if vg.lvByName[ps.PoolMetadata] == nil || vg.lvByName[ps.PoolData] == nil {
		return nil, fmt.Errorf("thin pool %s does not name its metadata and data LVs", pool.Name)
	}
	if s.StartExtent != 0 {
		return nil, fmt.Errorf("%w: thin segment starting at extent %d", ErrNotReadable, s.StartExtent)
	}
	if eo := str(s.Section, "external_origin"); eo != "" {
		// Unmapped blocks would come from the external origin, not
		// zeros: refuse rather than misread.
		return nil, fmt.Errorf("%w: thin LV with external origin %s", ErrNotReadable, eo)
	}
	tmeta, err := vg.lvByName[ps.PoolMetadata].open(depth + 1)
	if err != nil {
		return nil, fmt.Errorf("pool metadata: %w", err)
	}
	tdata, err := vg.lvByName[ps.PoolData].open(depth + 1)
	if err != nil {
		return nil, fmt.Errorf("pool data: %w", err)
	}
	md, err := ReadThinMetadata(tmeta, tmeta.Size())
	if err != nil {
		return nil, fmt.Errorf("pool %s metadata: %w", pool.Name, err)
	}
	bs := int64(md.Super.DataBlockSize) * sector
	if ps.ChunkSize != 0 && ps.ChunkSize != bs {
		return nil, fmt.Errorf("pool %s: chunk_size %d bytes in LVM metadata, %d in the thin superblock", pool.Name, ps.ChunkSize, bs)
	}
	if s.DeviceID < 0 {
		return nil, fmt.Errorf("bad device_id %d", s.DeviceID)
	}
	maps, err := md.Mappings(uint64(s.DeviceID))
	if err != nil {
		return nil, fmt.Errorf("pool %s: %w", pool.Name, err)
	}
	return &thinSeg{data: tdata, bs: bs, maps: maps, dataLen: tdata.Size()}, nil
}

func (t *thinSeg) lookup(v uint64) (uint64, bool) {
	i := sort.Search(len(t.maps), func(i int) bool { return t.maps[i].Virtual >= v })
	if i < len(t.maps) && t.maps[i].Virtual == v {
		return t.maps[i].Data, true
	}
	return 0, false
}

func (t *thinSeg) readAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		blk, in := off/t.bs, off%t.bs
		n := int(min(int64(len(p)-done), t.bs-in))
		if d, ok := t.lookup(uint64(blk)); ok {
			doff := int64(d)*t.bs + in
			if d >= uint64(t.dataLen/t.bs) {
				return done, fmt.Errorf("thin block %d maps to data block %d beyond the pool's %d blocks", blk, d, t.dataLen/t.bs)
			}
			if _, err := t.data.ReadAt(p[done:done+n], doff); err != nil && err != io.EOF {
				return done, err
			}
		} else {
			clear(p[done : done+n])
		}
		done += n
		off += int64(n)
	}
	return done, nil
}

func (t *thinSeg) mapOffset(int64) (io.ReaderAt, int64, int64, error) {
	return nil, 0, 0, fmt.Errorf("a thin LV has no linear mapping")
}
