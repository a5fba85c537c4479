package lvm

// dm-cache and dm-writecache LVs.
//
// A cache LV (segment type "cache") names its origin LV and a cache pool:
// either a "cache-pool" LV with data and metadata sub-LVs, or a cachevol
// (one LV holding metadata and data at metadata_start/data_start). The
// metadata is dm-cache's (drivers/md/dm-cache-metadata.c), in the kernel's
// persistent-data structures (4 KiB blocks, crc32c checksums):
//
//	superblock (block 0)
//	  0 csum, 4 flags (bit 0: clean shutdown), 8 blocknr, 16 uuid,
//	  32 magic 06142003 (octal), 40 version (1 or 2), 44 policy name,
//	  60 hint size, 64 space map root (128 bytes), 192 mapping_root,
//	  200 hint_root, 208 discard_root, 216 discard block size,
//	  224 discard blocks, 232 data_block_size (sectors), 236 metadata
//	  block size, 240 cache_blocks, 244..255 feature flags, 256 stats,
//	  272 policy version, 284 dirty_root (version 2)
//	mapping: a dm-array indexed by cache block of le64 (origin block << 16
//	  | flags): bit 0 valid, bit 1 dirty (version 1 only)
//	dirty: a dm-bitset (dm-array of le64 words) by cache block (version 2)
//
// A dm-array is a btree (the thin one: same node format) from array block
// index to the metadata block of an array block: a 24-byte header (csum,
// max_entries, nr_entries, value_size, blocknr) and then the values.
//
// The LV reads as the kernel shows it: a block that is valid and dirty in
// the cache comes from the cache data, every other block from the origin.
// When the metadata was not shut down cleanly the kernel cannot trust the
// dirty bits and treats every valid block as dirty; so does this reader.
//
// dm-writecache (segment type "writecache") keeps its metadata at the start
// of the cache LV (drivers/md/dm-writecache.c, SSD mode): a 64-byte
// superblock (magic 0x23489321, version, block_size, n_blocks, seq_count)
// followed by n_blocks entries {original_sector, seq_count}; the data blocks
// follow the metadata, rounded up to whole blocks. An entry is committed
// when its seq_count is below the superblock's; for one origin sector the
// committed entry with the highest seq_count holds the data.

import (
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"strings"
)

const (
	cacheMagic         = 1623043 // 06142003 octal
	cacheSuperCSumXOR  = 9031977
	arrayBlockCSumXOR  = 595846735
	arrayHeaderSize    = 24
	cacheFlagClean     = 1
	cacheMappingValid  = 1
	cacheMappingDirty  = 2
	maxCacheBlocks     = 1 << 28
	writecacheMagic    = 0x23489321
	writecacheSBSize   = 64
	writecacheEntry    = 16
	maxWritecacheBlock = 1 << 30
)

// CacheSuperblock is the decoded dm-cache metadata superblock.
type CacheSuperblock struct {
	Flags         uint32
	Version       uint32
	Policy        string
	MappingRoot   uint64
	DirtyRoot     uint64
	DataBlockSize uint32 // sectors
	CacheBlocks   uint32
}

// Clean reports whether the cache was shut down cleanly (its dirty bits
// can be trusted).
func (s *CacheSuperblock) Clean() bool { return s.Flags&cacheFlagClean != 0 }

// CacheMapping is one valid cache block.
type CacheMapping struct {
	CBlock uint64 // block of the cache data device
	OBlock uint64 // block of the origin
	Dirty  bool
}

// CacheMetadata is dm-cache metadata opened for reading.
type CacheMetadata struct {
	Super CacheSuperblock
	pd    *ThinMetadata // the persistent-data block reader (btree walk)
}

// ReadCacheMetadata reads and checks the superblock of dm-cache metadata.
func ReadCacheMetadata(r io.ReaderAt, size int64) (*CacheMetadata, error) {
	if size < thinBlockSize {
		return nil, fmt.Errorf("cache metadata of %d bytes has no room for a superblock", size)
	}
	b := make([]byte, thinBlockSize)
	if _, err := r.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("reading cache superblock: %w", err)
	}
	le := binary.LittleEndian
	if m := le.Uint64(b[32:]); m != cacheMagic {
		return nil, fmt.Errorf("cache superblock at byte 32: magic %d, want %d", m, cacheMagic)
	}
	if c := dmChecksum(b[4:], cacheSuperCSumXOR); c != le.Uint32(b) {
		return nil, fmt.Errorf("cache superblock at byte 0: checksum %#08x, computed %#08x", le.Uint32(b), c)
	}
	if le.Uint64(b[8:]) != 0 {
		return nil, fmt.Errorf("cache superblock at byte 8: blocknr %d, want 0", le.Uint64(b[8:]))
	}
	s := CacheSuperblock{Flags: le.Uint32(b[4:]), Version: le.Uint32(b[40:]), Policy: cstr(b[44:60]),
		MappingRoot: le.Uint64(b[192:]), DataBlockSize: le.Uint32(b[232:]), CacheBlocks: le.Uint32(b[240:])}
	if s.Version != 1 && s.Version != 2 {
		return nil, fmt.Errorf("cache superblock at byte 40: version %d (1 and 2 are known)", s.Version)
	}
	if s.Version == 2 {
		s.DirtyRoot = le.Uint64(b[284:])
	}
	if mbs := le.Uint32(b[236:]); mbs != thinBlockSize/sector {
		return nil, fmt.Errorf("cache superblock at byte 236: metadata block size %d sectors, only 8 is supported", mbs)
	}
	if s.DataBlockSize == 0 || s.DataBlockSize%8 != 0 || s.DataBlockSize > 1<<21 {
		return nil, fmt.Errorf("cache superblock at byte 232: bad data block size %d sectors", s.DataBlockSize)
	}
	if s.CacheBlocks > maxCacheBlocks {
		return nil, fmt.Errorf("cache superblock at byte 240: %d cache blocks", s.CacheBlocks)
	}
	return &CacheMetadata{Super: s, pd: &ThinMetadata{r: r, blocks: uint64(size) / thinBlockSize}}, nil
}

func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// arrayValues reads the dm-array at root: entries 0..n-1 of valueSize
// bytes each, passed to fn in index order. Missing array blocks are an
// error.
func (m *CacheMetadata) arrayValues(root uint64, n uint64, valueSize int, visited map[uint64]bool, fn func(i uint64, v []byte) error) error {
	le := binary.LittleEndian
	var next uint64 // next expected entry index
	b := make([]byte, thinBlockSize)
	err := m.pd.walk(root, 8, visited, 0, func(k uint64, v []byte) error {
		blk := le.Uint64(v)
		if blk == 0 || blk >= m.pd.blocks {
			return fmt.Errorf("array block %d at metadata block %d is outside the %d-block device", k, blk, m.pd.blocks)
		}
		if visited[blk] {
			return fmt.Errorf("metadata block %d used twice", blk)
		}
		visited[blk] = true
		off := int64(blk) * thinBlockSize
		if _, err := m.pd.r.ReadAt(b, off); err != nil {
			return fmt.Errorf("reading array block at byte %d: %w", off, err)
		}
		if c := dmChecksum(b[4:], arrayBlockCSumXOR); c != le.Uint32(b) {
			return fmt.Errorf("array block at byte %d: checksum %#08x, computed %#08x", off, le.Uint32(b), c)
		}
		maxE, nr, vs := le.Uint32(b[4:]), le.Uint32(b[8:]), le.Uint32(b[12:])
		if le.Uint64(b[16:]) != blk {
			return fmt.Errorf("array block at byte %d says it is block %d", off, le.Uint64(b[16:]))
		}
		if int(vs) != valueSize || nr > maxE || maxE == 0 || arrayHeaderSize+uint64(maxE)*uint64(vs) > thinBlockSize {
			return fmt.Errorf("array block at byte %d: %d of %d entries of %d bytes (want %d-byte values)", off, nr, maxE, vs, valueSize)
		}
		if k*uint64(maxE) != next {
			return fmt.Errorf("array block %d (byte %d) starts at entry %d, want %d", k, off, k*uint64(maxE), next)
		}
		for i := uint32(0); i < nr && next < n; i++ {
			if err := fn(next, b[arrayHeaderSize+int(i)*valueSize:arrayHeaderSize+int(i+1)*valueSize]); err != nil {
				return err
			}
			next++
		}
		return nil
	})
	if err != nil {
		return err
	}
	if next < n {
		return fmt.Errorf("array has %d entries, want %d", next, n)
	}
	return nil
}

// Mappings returns the valid cache blocks in cache-block order, with their
// dirty state (from the mapping flags in version 1, the dirty bitset in
// version 2).
func (m *CacheMetadata) Mappings() ([]CacheMapping, error) {
	n := uint64(m.Super.CacheBlocks)
	var out []CacheMapping
	if n == 0 {
		return nil, nil
	}
	if per := uint64(thinBlockSize-arrayHeaderSize) / 8; n > m.pd.blocks*per {
		return nil, fmt.Errorf("%d cache blocks cannot fit the %d-block metadata device", n, m.pd.blocks)
	}
	le := binary.LittleEndian
	visited := map[uint64]bool{}
	err := m.arrayValues(m.Super.MappingRoot, n, 8, visited, func(i uint64, v []byte) error {
		x := le.Uint64(v)
		if x&cacheMappingValid != 0 {
			out = append(out, CacheMapping{CBlock: i, OBlock: x >> 16, Dirty: m.Super.Version == 1 && x&cacheMappingDirty != 0})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cache mapping array: %w", err)
	}
	if m.Super.Version == 2 {
		words := (n + 63) / 64
		dirty := make([]uint64, 0, words)
		err := m.arrayValues(m.Super.DirtyRoot, words, 8, visited, func(i uint64, v []byte) error {
			dirty = append(dirty, le.Uint64(v))
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("cache dirty bitset: %w", err)
		}
		for i := range out {
			c := out[i].CBlock
			out[i].Dirty = dirty[c/64]>>(c%64)&1 != 0
		}
	}
	return out, nil
}

// cacheSeg reads a cached LV: dirty (or, after an unclean shutdown, all
// valid) blocks from the cache data, the rest from the origin.
type cacheSeg struct {
	origin *lvReader
	data   io.ReaderAt
	ndata  int64 // cache data bytes
	bs     int64
	cblock map[uint64]uint64 // origin block -> cache block
}

// cacheSegReader handles the cache segment types, with or without lvm2's
// "+FLAG" suffixes (cache+CACHE_USES_CACHEVOL, cache-pool+METADATA_FORMAT);
// ok is false for other types.
func (lv *LV) cacheSegReader(s *Segment, depth int) (r segReader, ok bool, err error) {
	switch base, _, _ := strings.Cut(s.Type, "+"); base {
	case "cache":
		r, err = lv.cacheReader(s, depth)
		return r, true, err
	case "writecache":
		r, err = lv.writecacheReader(s, depth)
		return r, true, err
	case "cache-pool":
		return nil, true, fmt.Errorf("%w: a cache pool has no content of its own; read the cached LV", ErrNotReadable)
	}
	return nil, false, nil
}

func (lv *LV) cacheReader(s *Segment, depth int) (segReader, error) {
	vg := lv.VG
	origin := vg.lvByName[s.Origin]
	if origin == nil {
		return nil, fmt.Errorf("cache segment names no origin LV")
	}
	poolName := str(s.Section, "cache_pool")
	pool := vg.lvByName[poolName]
	if pool == nil {
		return nil, fmt.Errorf("cache segment names unknown cache pool %q", poolName)
	}
	if s.StartExtent != 0 || len(lv.Segments) != 1 {
		return nil, fmt.Errorf("%w: cache segment starting at extent %d", ErrNotReadable, s.StartExtent)
	}
	var meta, data io.ReaderAt
	var metaSize, dataSize int64
	mode, cfg := "", s.Section
	if len(pool.Segments) == 1 && strings.Split(pool.Segments[0].Type, "+")[0] == "cache-pool" {
		ps := pool.Segments[0]
		cfg = ps.Section
		ml, dl := vg.lvByName[str(cfg, "metadata")], vg.lvByName[str(cfg, "data")]
		if ml == nil || dl == nil {
			return nil, fmt.Errorf("cache pool %s does not name its metadata and data LVs", pool.Name)
		}
		mr, err := ml.open(depth + 1)
		if err != nil {
			return nil, fmt.Errorf("cache pool metadata: %w", err)
		}
		dr, err := dl.open(depth + 1)
		if err != nil {
			return nil, fmt.Errorf("cache pool data: %w", err)
		}
		meta, metaSize, data, dataSize = mr, mr.Size(), dr, dr.Size()
	} else {
		// A cachevol: metadata and data are ranges of one LV.
		cv, err := pool.open(depth + 1)
		if err != nil {
			return nil, fmt.Errorf("cachevol %s: %w", pool.Name, err)
		}
		ms, ml := num(s.Section, "metadata_start")*sector, num(s.Section, "metadata_len")*sector
		ds, dl := num(s.Section, "data_start")*sector, num(s.Section, "data_len")*sector
		if ml <= 0 || dl <= 0 || ms < 0 || ds < 0 || ms+ml > cv.Size() || ds+dl > cv.Size() {
			return nil, fmt.Errorf("cachevol %s: metadata %d+%d / data %d+%d do not fit its %d bytes", pool.Name, ms, ml, ds, dl, cv.Size())
		}
		meta, metaSize = io.NewSectionReader(cv, ms, ml), ml
		data, dataSize = io.NewSectionReader(cv, ds, dl), dl
	}
	mode = str(cfg, "cache_mode")
	or, err := origin.open(depth + 1)
	if err != nil {
		return nil, fmt.Errorf("cache origin: %w", err)
	}
	if or.Size() < lv.Size {
		return nil, fmt.Errorf("cache origin %s has %d bytes, the LV %d", origin.Name, or.Size(), lv.Size)
	}
	cs := &cacheSeg{origin: or, data: data, ndata: dataSize, cblock: map[uint64]uint64{}}
	if mode == "passthrough" {
		cs.bs = 1 << 20
		return cs, nil
	}
	md, err := ReadCacheMetadata(meta, metaSize)
	if err != nil {
		return nil, fmt.Errorf("cache pool %s metadata: %w", pool.Name, err)
	}
	cs.bs = int64(md.Super.DataBlockSize) * sector
	if cz := num(cfg, "chunk_size") * sector; cz != 0 && cz != cs.bs {
		return nil, fmt.Errorf("cache pool %s: chunk_size %d bytes in LVM metadata, %d in the cache superblock", pool.Name, cz, cs.bs)
	}
	maps, err := md.Mappings()
	if err != nil {
		return nil, fmt.Errorf("cache pool %s metadata: %w", pool.Name, err)
	}
	trustDirty := md.Super.Clean()
	for _, m := range maps {
		if !m.Dirty && trustDirty {
			continue // the origin holds the same data
		}
		if int64(m.CBlock+1)*cs.bs > dataSize {
			return nil, fmt.Errorf("cache pool %s: cache block %d lies beyond the %d-byte cache data", pool.Name, m.CBlock, dataSize)
		}
		if prev, dup := cs.cblock[m.OBlock]; dup {
			return nil, fmt.Errorf("cache pool %s: origin block %d is mapped by cache blocks %d and %d", pool.Name, m.OBlock, prev, m.CBlock)
		}
		cs.cblock[m.OBlock] = m.CBlock
	}
	return cs, nil
}

func (c *cacheSeg) readAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		blk, in := off/c.bs, off%c.bs
		n := int(min(int64(len(p)-done), c.bs-in))
		var err error
		if cb, ok := c.cblock[uint64(blk)]; ok {
			_, err = c.data.ReadAt(p[done:done+n], int64(cb)*c.bs+in)
		} else {
			_, err = c.origin.ReadAt(p[done:done+n], off)
		}
		if err != nil && err != io.EOF {
			return done, err
		}
		done += n
		off += int64(n)
	}
	return done, nil
}

func (c *cacheSeg) mapOffset(int64) (io.ReaderAt, int64, int64, error) {
	return nil, 0, 0, fmt.Errorf("a cached LV has no linear mapping")
}

// WritecacheEntry is one committed block of a dm-writecache.
type WritecacheEntry struct {
	Index          uint64 // block of the cache device's data area
	OriginalSector uint64
	Seq            uint64
}

// Writecache is dm-writecache metadata (SSD mode).
type Writecache struct {
	Version   uint32
	BlockSize uint32
	NBlocks   uint64
	Seq       uint64
	DataStart int64 // byte offset of data block 0 on the cache device
	// Entries are the committed blocks, the newest per origin sector, in
	// origin order.
	Entries []WritecacheEntry
}

// ReadWritecache reads dm-writecache metadata from the start of the cache
// device r of size bytes.
func ReadWritecache(r io.ReaderAt, size int64) (*Writecache, error) {
	sb := make([]byte, writecacheSBSize)
	if size < writecacheSBSize {
		return nil, fmt.Errorf("writecache device of %d bytes has no room for a superblock", size)
	}
	if _, err := r.ReadAt(sb, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("reading writecache superblock: %w", err)
	}
	le := binary.LittleEndian
	if m := le.Uint32(sb); m != writecacheMagic {
		return nil, fmt.Errorf("writecache superblock at byte 0: magic %#x, want %#x", m, writecacheMagic)
	}
	w := &Writecache{Version: le.Uint32(sb[4:]), BlockSize: le.Uint32(sb[8:]), NBlocks: le.Uint64(sb[16:]), Seq: le.Uint64(sb[24:])}
	if w.Version != 1 {
		return nil, fmt.Errorf("writecache superblock at byte 4: version %d (1 is known)", w.Version)
	}
	bs := int64(w.BlockSize)
	if bs < 512 || bs > 1<<20 || bs&(bs-1) != 0 {
		return nil, fmt.Errorf("writecache superblock at byte 8: block size %d", bs)
	}
	if w.NBlocks == 0 || w.NBlocks > maxWritecacheBlock {
		return nil, fmt.Errorf("writecache superblock at byte 16: %d blocks", w.NBlocks)
	}
	metaBytes := writecacheSBSize + int64(w.NBlocks)*writecacheEntry
	w.DataStart = (metaBytes + bs - 1) / bs * bs
	if w.DataStart+int64(w.NBlocks)*bs > size {
		return nil, fmt.Errorf("writecache of %d blocks of %d bytes does not fit the %d-byte device", w.NBlocks, bs, size)
	}
	ents := make([]byte, int64(w.NBlocks)*writecacheEntry)
	if _, err := r.ReadAt(ents, writecacheSBSize); err != nil && err != io.EOF {
		return nil, fmt.Errorf("reading writecache entries at byte %d: %w", writecacheSBSize, err)
	}
	newest := map[uint64]WritecacheEntry{}
	for i := uint64(0); i < w.NBlocks; i++ {
		e := ents[i*writecacheEntry:]
		os, seq := le.Uint64(e), le.Uint64(e[8:])
		if seq >= w.Seq || os == ^uint64(0) {
			continue // free, or written after the last commit
		}
		if os%(uint64(bs)/sector) != 0 {
			return nil, fmt.Errorf("writecache entry %d (byte %d): sector %d is not block-aligned", i, writecacheSBSize+i*writecacheEntry, os)
		}
		if old, ok := newest[os]; ok && old.Seq > seq {
			continue
		}
		newest[os] = WritecacheEntry{Index: i, OriginalSector: os, Seq: seq}
	}
	for _, e := range newest {
		w.Entries = append(w.Entries, e)
	}
	sort.Slice(w.Entries, func(i, j int) bool { return w.Entries[i].OriginalSector < w.Entries[j].OriginalSector })
	return w, nil
}

type writecacheSeg struct {
	origin *lvReader
	cache  io.ReaderAt
	bs     int64
	start  int64
	blocks map[uint64]uint64 // origin block -> cache data block
}

func (lv *LV) writecacheReader(s *Segment, depth int) (segReader, error) {
	vg := lv.VG
	origin := vg.lvByName[s.Origin]
	cname := str(s.Section, "writecache")
	cl := vg.lvByName[cname]
	if origin == nil || cl == nil {
		return nil, fmt.Errorf("writecache segment names origin %q and cache %q, not both found", s.Origin, cname)
	}
	if s.StartExtent != 0 || len(lv.Segments) != 1 {
		return nil, fmt.Errorf("%w: writecache segment starting at extent %d", ErrNotReadable, s.StartExtent)
	}
	or, err := origin.open(depth + 1)
	if err != nil {
		return nil, fmt.Errorf("writecache origin: %w", err)
	}
	cr, err := cl.open(depth + 1)
	if err != nil {
		return nil, fmt.Errorf("writecache cache LV: %w", err)
	}
	w, err := ReadWritecache(cr, cr.Size())
	if err != nil {
		return nil, fmt.Errorf("writecache %s: %w", cl.Name, err)
	}
	if bs := num(s.Section, "writecache_block_size"); bs != 0 && bs != int64(w.BlockSize) {
		return nil, fmt.Errorf("writecache %s: block size %d in LVM metadata, %d on disk", cl.Name, bs, w.BlockSize)
	}
	ws := &writecacheSeg{origin: or, cache: cr, bs: int64(w.BlockSize), start: w.DataStart, blocks: map[uint64]uint64{}}
	for _, e := range w.Entries {
		ws.blocks[e.OriginalSector*sector/uint64(ws.bs)] = e.Index
	}
	return ws, nil
}

func (w *writecacheSeg) readAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		blk, in := off/w.bs, off%w.bs
		n := int(min(int64(len(p)-done), w.bs-in))
		var err error
		if ix, ok := w.blocks[uint64(blk)]; ok {
			_, err = w.cache.ReadAt(p[done:done+n], w.start+int64(ix)*w.bs+in)
		} else {
			_, err = w.origin.ReadAt(p[done:done+n], off)
		}
		if err != nil && err != io.EOF {
			return done, err
		}
		done += n
		off += int64(n)
	}
	return done, nil
}

func (w *writecacheSeg) mapOffset(int64) (io.ReaderAt, int64, int64, error) {
	return nil, 0, 0, fmt.Errorf("a writecache LV has no linear mapping")
}
