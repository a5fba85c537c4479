package lvm

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// head returns the first n bytes of fixture image name.
func head(f *testing.F, name string, off, n int64) []byte {
	f.Helper()
	fh, err := os.Open(fixturetest.Image(f, name))
	if err != nil {
		f.Fatal(err)
	}
	defer fh.Close()
	b := make([]byte, n)
	m, err := fh.ReadAt(b, off)
	if err != nil && err != io.EOF {
		f.Fatal(err)
	}
	return b[:m]
}

// exercise opens and samples every LV of every VG: the readers must return
// errors, never panic, whatever the metadata says.
func exercise(vgs []*VG) {
	buf := make([]byte, 4096)
	for _, vg := range vgs {
		vg.Report()
		vg.PVReports()
		vg.SegReports()
		vg.LVReports()
		for _, lv := range vg.LVs {
			r, err := lv.Open()
			if err != nil {
				continue
			}
			r.ReadAt(buf, 0)
			if r.Size() > int64(len(buf)) {
				r.ReadAt(buf, r.Size()-int64(len(buf)))
				r.ReadAt(buf, r.Size()/2)
			}
			lv.Snapshot()
		}
	}
}

func FuzzReadPV(f *testing.F) {
	// Label, PV header and metadata areas sit at the start of the PV.
	f.Add(head(f, "lvm-wrap", 0, 68<<10))     // 60 KiB wrapped ring
	f.Add(head(f, "lvm-linear", 0, 16<<10))   // mda larger than the input
	f.Add(head(f, "lvm-corrupt", 0, 16<<10))  // damaged newest copy
	f.Add(head(f, "lvm-striped-a", 0, 8<<10)) // label + mda header
	f.Fuzz(func(t *testing.T, data []byte) {
		data = append([]byte(nil), data...) // never modify the fuzzer's input
		if len(data) > 0 && data[0]&1 == 1 {
			// Half the time, repair the checksums so mutations reach
			// the structure behind them.
			fixPVChecksums(data)
		}
		pv, err := ReadPV(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		vgs, err := Assemble([]*PV{pv}, nil)
		if err != nil {
			return
		}
		exercise(vgs)
		for _, vg := range vgs {
			PlanRename(vg, "fuzzed", &RenameOptions{Force: true, NewUUIDs: true, Rand: bytes.NewReader(make([]byte, 4096))})
		}
	})
}

func FuzzParseMetadata(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(fixturetest.Dir(), "golden", "lvm-*.vg"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`vg { id = "x" seqno = 1 extent_size = 8 physical_volumes { pv0 { id = "p" pe_start = 1 pe_count = 2 } } }`))
	f.Fuzz(func(t *testing.T, data []byte) {
		md, err := ParseMetadata(data)
		if err != nil {
			return
		}
		// Assemble from the text alone: every PV is missing.
		vgs, err := Assemble(nil, &AssembleOptions{Metadata: []*Metadata{md}})
		if err != nil {
			return
		}
		exercise(vgs)
	})
}

func FuzzSnapshotCOW(f *testing.F) {
	// The COW LV "snap" starts at PE 8 of the PV (pe_start 1 MiB, 512 KiB
	// extents): header chunk, metadata area 0, some data chunks.
	f.Add(head(f, "lvm-snapshot", 1<<20+8*512<<10, 24<<10))
	f.Add([]byte("SnAp\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ReadCOW(bytes.NewReader(data), int64(len(data)), 1<<20)
		if err != nil {
			return
		}
		for _, e := range s.Exceptions {
			if n, ok := s.lookup(e.Old); !ok || n != e.New && n == 0 {
				t.Fatalf("lookup(%d) = %d, %v", e.Old, n, ok)
			}
		}
	})
}

// thinSeed returns the pool metadata LV of the thin fixture, cut after its
// last non-zero 4 KiB block.
func thinSeed(f *testing.F) []byte {
	b := head(f, "lvm-thin", 1<<20, 2<<20) // pool_tmeta is PEs 0-3
	last := 0
	for i := 0; i+thinBlockSize <= len(b); i += thinBlockSize {
		if !bytes.Equal(b[i:i+thinBlockSize], make([]byte, thinBlockSize)) {
			last = i + thinBlockSize
		}
	}
	return b[:last]
}

func FuzzThinMetadata(f *testing.F) {
	f.Add(thinSeed(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Repair every block's checksum so mutations reach the btree
		// structure (without this nearly every input fails the csum).
		data = append([]byte(nil), data...)
		fixThinChecksums(data)
		md, err := ReadThinMetadata(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		devs, err := md.Devices()
		if err != nil {
			return
		}
		for _, d := range devs {
			md.Mappings(d.ID)
		}
		md.Mappings(1)
	})
}

// fixThinChecksums rewrites the csum of the superblock (block 0) and of
// every other 4 KiB block as if it were a btree node.
func fixThinChecksums(data []byte) {
	for i := 0; i+thinBlockSize <= len(data); i += thinBlockSize {
		b := data[i : i+thinBlockSize]
		x := uint32(thinBtreeCSumXOR)
		if i == 0 {
			x = thinSuperCSumXOR
		}
		binary.LittleEndian.PutUint32(b, dmChecksum(b[4:], x))
	}
}

// fixPVChecksums repairs the label CRC, then for each metadata area inside
// data the CRC of the text slot 0 points at and the mda header CRC.
func fixPVChecksums(data []byte) {
	for s := 0; s < labelScanSectors && (s+1)*SectorSize <= len(data); s++ {
		sec := data[s*SectorSize : (s+1)*SectorSize]
		if string(sec[:8]) != labelID {
			continue
		}
		binary.LittleEndian.PutUint64(sec[8:], uint64(s))
		h, err := parsePVHeader(sec, binary.LittleEndian.Uint32(sec[20:]), s)
		if err == nil {
			for _, m := range h.MetadataAreas {
				// Offset comes from the fuzzer: compare without adding, so a
				// huge value cannot wrap around.
				if m.Offset == 0 || m.Offset >= uint64(len(data)) || uint64(len(data))-m.Offset < mdaHeaderSize {
					continue
				}
				hb := data[m.Offset : m.Offset+mdaHeaderSize]
				size := binary.LittleEndian.Uint64(hb[32:])
				off := binary.LittleEndian.Uint64(hb[rawLocnOffset:])
				n := binary.LittleEndian.Uint64(hb[rawLocnOffset+8:])
				if size <= uint64(len(data))-m.Offset {
					if text, err := readRing(bytes.NewReader(data), m.Offset, size, off, n); err == nil {
						binary.LittleEndian.PutUint32(hb[rawLocnOffset+16:], lvmCRC(initialCRC, text))
					}
				}
				binary.LittleEndian.PutUint32(hb, lvmCRC(initialCRC, hb[4:]))
			}
		}
		binary.LittleEndian.PutUint32(sec[16:], lvmCRC(initialCRC, sec[labelCRCStart:]))
		return
	}
}
