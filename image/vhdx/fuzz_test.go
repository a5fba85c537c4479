package vhdx

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// A VHDX keeps its metadata spread over the first megabytes (headers at 64
// and 128 KiB, region tables at 192 and 256 KiB, qemu's BAT at 2 MiB and
// metadata at 3 MiB), mostly zeros. Fuzz inputs are therefore sparse files
// encoded compactly: a uint64 file size, then (uint32 sector number, 512
// bytes) pairs; every other sector is zero.
type sparseFile struct {
	size    int64
	sectors map[int64][]byte
}

func decodeSparse(data []byte) *sparseFile {
	s := &sparseFile{sectors: map[int64][]byte{}}
	if len(data) < 8 {
		return s
	}
	s.size = int64(binary.LittleEndian.Uint64(data) % (1 << 40))
	data = data[8:]
	for len(data) >= 4+512 && len(s.sectors) < 1<<14 {
		n := int64(binary.LittleEndian.Uint32(data))
		s.sectors[n] = data[4 : 4+512]
		data = data[4+512:]
	}
	return s
}

func (s *sparseFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= s.size {
		return 0, io.EOF
	}
	var eof error
	if int64(len(p)) > s.size-off {
		p, eof = p[:s.size-off], io.EOF
	}
	for i := 0; i < len(p); {
		sec, in := (off+int64(i))/512, (off+int64(i))%512
		n := min(int(512-in), len(p)-i)
		if b, ok := s.sectors[sec]; ok {
			copy(p[i:i+n], b[in:])
		} else {
			clear(p[i : i+n])
		}
		i += n
	}
	return len(p), eof
}

// seed encodes the non-zero sectors of the first 4 MiB of a qemu-img VHDX
// (its whole metadata; the payload is dropped).
func seed(tb testing.TB, file string) []byte {
	tb.Helper()
	p, err := fixturetest.Decompress(filepath.Join(fixturetest.ImagesDir(), file+".xz"))
	if err != nil {
		tb.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	b := make([]byte, 4<<20)
	n, _ := io.ReadFull(f, b)
	out := binary.LittleEndian.AppendUint64(nil, uint64(fi.Size()))
	for i := 0; i+512 <= n; i += 512 {
		if !bytes.Equal(b[i:i+512], make([]byte, 512)) {
			out = binary.LittleEndian.AppendUint32(out, uint32(i/512))
			out = append(out, b[i:i+512]...)
		}
	}
	return out
}

func FuzzOpen(f *testing.F) {
	f.Add(seed(f, "fmt-vhdx.vhdx"))
	f.Add(seed(f, "fmt-vhdx-1m.vhdx"))
	f.Add(seed(f, "fmt-vhdx-fixed.vhdx"))
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fixturetest.Watchdog(10 * time.Second)()
		s := decodeSparse(data)
		d, err := Open(s, s.size)
		if err != nil {
			return
		}
		buf := make([]byte, 70000)
		size := d.Size()
		for i := int64(0); i < 16; i++ {
			if _, err := d.ReadAt(buf, size/16*i); err != nil && err != io.EOF {
				continue
			}
		}
	})
}

// TestSeedsOpen: the compact seeds hold a whole, valid VHDX header
// section, so the fuzzer starts from images that open.
func TestSeedsOpen(t *testing.T) {
	for _, f := range []string{"fmt-vhdx.vhdx", "fmt-vhdx-1m.vhdx", "fmt-vhdx-fixed.vhdx"} {
		b := seed(t, f)
		if len(b) > 256<<10 {
			t.Errorf("%s: seed of %d bytes is too big for fuzzing", f, len(b))
		}
		s := decodeSparse(b)
		d, err := Open(s, s.size)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d.Size() != 117440512 {
			t.Errorf("%s: size %d", f, d.Size())
		}
	}
	if !bytes.Contains(seed(t, "fmt-vhdx.vhdx"), guidBAT[:]) {
		t.Errorf("BAT region GUID %x not in the region table", guidBAT)
	}
}
