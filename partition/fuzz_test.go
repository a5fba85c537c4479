package partition

import (
	"encoding/binary"
	"os"
	"sort"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/internal/zero"
)

// A fuzz input is a sparse disk: a list of 512-byte sectors, each encoded as
// a 4-byte little-endian sector number followed by its 512 bytes; every other
// sector reads as zeros. The disk size is a separate argument (raised to
// cover the last given sector).
const fuzzChunk = 4 + 512

type sparseDisk map[int64][]byte

func decodeSparse(data []byte) (sparseDisk, int64) {
	d := sparseDisk{}
	var end int64
	for len(data) >= fuzzChunk {
		s := int64(binary.LittleEndian.Uint32(data))
		d[s] = data[4:fuzzChunk]
		if (s+1)*512 > end {
			end = (s + 1) * 512
		}
		data = data[fuzzChunk:]
	}
	return d, end
}

func (d sparseDisk) ReadAt(p []byte, off int64) (int, error) {
	for i := 0; i < len(p); {
		s, o := (off+int64(i))/512, int((off+int64(i))%512)
		n := min(512-o, len(p)-i)
		if b, ok := d[s]; ok {
			copy(p[i:i+n], b[o:])
		} else {
			clear(p[i : i+n])
		}
		i += n
	}
	return len(p), nil
}

// recorder notes which 512-byte sectors a Read touches.
type recorder struct {
	f       *os.File
	sectors map[int64]bool
}

func (r *recorder) ReadAt(p []byte, off int64) (int, error) {
	for s := off / 512; s*512 < off+int64(len(p)); s++ {
		r.sectors[s] = true
	}
	return r.f.ReadAt(p, off)
}

// fuzzSeed encodes the non-zero sectors a Read of fixture name looks at.
func fuzzSeed(tb testing.TB, name string) ([]byte, int64) {
	f, err := os.Open(fixturetest.Image(tb, name))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		tb.Fatal(err)
	}
	rec := &recorder{f: f, sectors: map[int64]bool{}}
	Read(rec, fi.Size(), nil)
	var list []int64
	for s := range rec.sectors {
		list = append(list, s)
	}
	sort.Slice(list, func(i, j int) bool { return list[i] < list[j] })
	var out []byte
	buf := make([]byte, 512)
	for _, s := range list {
		if _, err := f.ReadAt(buf, s*512); err != nil || zero.Is(buf) {
			continue
		}
		out = binary.LittleEndian.AppendUint32(out, uint32(s))
		out = append(out, buf...)
	}
	return out, fi.Size()
}

func FuzzRead(f *testing.F) {
	for _, name := range []string{"part-mbr-logical", "part-gpt", "part-gpt-4k", "part-gpt-badprimary",
		"part-hybrid", "part-bare-fat", "part-mbr-ebrloop", "part-mbr-truncated", "part-mbr-4k", "part-iso-mbr", "part-iso-gpt", "part-bare-ntfs", "part-bare-exfat", "part-bare-fat32"} {
		data, size := fuzzSeed(f, name)
		f.Add(data, size, uint8(0))
		if name == "part-mbr-4k" {
			f.Add(data, size, uint8(2)) // read with 4096-byte sectors
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, size int64, ssel uint8) {
		d, end := decodeSparse(data)
		if size < 0 {
			size = -size
		}
		size = max(size%(1<<50), end)
		opts := &Options{SectorSize: []int{0, 512, 4096, 0}[ssel%4]}
		tab, err := Read(d, size, opts)
		if err != nil {
			if tab != nil {
				t.Fatalf("table and error: %v", err)
			}
			return
		}
		if tab.Scheme != SchemeDOS && tab.Scheme != SchemeGPT {
			t.Fatalf("scheme %q", tab.Scheme)
		}
		logical := 0
		for _, p := range tab.Partitions {
			if p.Start != int64(p.StartSector)*int64(tab.SectorSize) || p.Size != int64(p.Sectors)*int64(tab.SectorSize) {
				t.Fatalf("p%d: bytes %d+%d do not match sectors %d+%d", p.Number, p.Start, p.Size, p.StartSector, p.Sectors)
			}
			if p.Start < 0 || p.Size < 0 || p.End() < p.Start {
				t.Fatalf("p%d: negative or overflowing range %d+%d", p.Number, p.Start, p.Size)
			}
			if (p.End() > size) != p.PastEnd {
				t.Fatalf("p%d: ends at %d on a %d-byte disk but PastEnd=%v", p.Number, p.End(), size, p.PastEnd)
			}
			if tab.Scheme == SchemeDOS && p.Number > 4 {
				logical++
			}
		}
		if logical > MaxLogical {
			t.Fatalf("%d logical partitions", logical)
		}
	})
}
