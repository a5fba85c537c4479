package md

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// seedImages returns small images holding the fixtures' real superblocks
// where a member of that size would have them: the first 8 KiB of 1.1/1.2
// members, the last 128 KiB of 1.0/0.90 members.
func seedImages(tb testing.TB) [][]byte {
	var out [][]byte
	for _, fa := range fixtureArrays {
		for i := 0; i < fa.members && i < 2; i++ {
			b, err := os.ReadFile(fixturetest.Image(tb, "md-"+fa.name+"-"+string(rune('0'+i))))
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, b[:8192], b[len(b)-128<<10:])
		}
	}
	return out
}

// FuzzSuperblock: any bytes as a member must give a superblock or an
// error, never a panic; what parses must assemble and read (or fail)
// without panicking or hanging.
func FuzzSuperblock(f *testing.F) {
	for _, s := range seedImages(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		defer fixturetest.Watchdog(10 * time.Second)()
		sb, err := Read(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if sb == nil && !errors.Is(err, ErrNoSuperblock) && err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		m := &Member{Name: "fuzz", R: bytes.NewReader(b), Size: int64(len(b)), SB: sb}
		readArray(t, Assemble([]*Member{m, m}))
	})
}

func readArray(t *testing.T, arrays []*Array) {
	for _, a := range arrays {
		r, err := a.Open()
		if err != nil {
			continue
		}
		buf := make([]byte, 4096)
		for _, off := range []int64{0, r.Size() / 2, r.Size() - 100, r.Size() - 4096} {
			if off < 0 {
				continue
			}
			n, err := r.ReadAt(buf, off)
			if err == nil && n != len(buf) {
				t.Fatalf("short read %d without error at %d", n, off)
			}
			if err != nil && err != io.EOF && n == len(buf) {
				t.Fatalf("full read with error %v", err)
			}
		}
		_, _, _, _ = r.MapOffset(0)
		if r.Size() <= 4<<20 {
			_, _ = r.Check(2)
		}
	}
}

// sb1 writes a v1.2 superblock (4 KiB at byte 4096) with a correct
// checksum, for members built in tests.
type sb1 struct {
	uuid                       byte
	level, layout, raidDisks   int32
	chunkSectors               uint32
	devSectors, dataOffSectors uint64
	dataSectors                uint64
	devNumber                  uint32
	events                     uint64
	roles                      []uint16
}

func (p sb1) bytes() []byte {
	b := make([]byte, 4096)
	le := binary.LittleEndian
	le.PutUint32(b[0:], Magic)
	le.PutUint32(b[4:], 1)
	for i := 16; i < 32; i++ {
		b[i] = p.uuid + byte(i)
	}
	copy(b[32:], "fuzz:a")
	le.PutUint32(b[72:], uint32(p.level))
	le.PutUint32(b[76:], uint32(p.layout))
	le.PutUint64(b[80:], p.devSectors)
	le.PutUint32(b[88:], p.chunkSectors)
	le.PutUint32(b[92:], uint32(p.raidDisks))
	le.PutUint64(b[128:], p.dataOffSectors)
	le.PutUint64(b[136:], p.dataSectors)
	le.PutUint64(b[144:], 8)
	le.PutUint32(b[160:], p.devNumber)
	le.PutUint64(b[200:], p.events)
	le.PutUint64(b[208:], ^uint64(0))
	le.PutUint32(b[220:], uint32(len(p.roles)))
	for i, r := range p.roles {
		le.PutUint16(b[256+2*i:], r)
	}
	le.PutUint32(b[216:], csum1(b, len(p.roles)))
	return b
}

// FuzzAssemble builds members from fuzzed geometry (level, layout, chunk,
// member count and sizes, roles, events) with valid checksums, so that
// assembly and every level's mapping run on odd but self-consistent
// superblocks: no panic, no hang, reads succeed or fail cleanly.
func FuzzAssemble(f *testing.F) {
	f.Add(int8(5), int32(2), uint8(2), uint8(3), uint16(64), uint16(64), uint16(64), uint8(0), uint8(0))
	f.Add(int8(0), int32(2), uint8(1), uint8(3), uint16(32), uint16(48), uint16(64), uint8(0), uint8(0))
	f.Add(int8(10), int32(0x102), uint8(1), uint8(3), uint16(64), uint16(64), uint16(64), uint8(1), uint8(0))
	f.Add(int8(10), int32(0x10201), uint8(1), uint8(3), uint16(64), uint16(64), uint16(64), uint8(0), uint8(2))
	f.Add(int8(-1), int32(0), uint8(0), uint8(2), uint16(16), uint16(40), uint16(0), uint8(0), uint8(0))
	f.Add(int8(6), int32(2), uint8(1), uint8(3), uint16(64), uint16(64), uint16(64), uint8(2), uint8(1))
	f.Add(int8(1), int32(0), uint8(0), uint8(3), uint16(64), uint16(64), uint16(64), uint8(7), uint8(3))
	f.Fuzz(func(t *testing.T, level int8, layout int32, chunkShift, disks uint8, s0, s1, s2 uint16, drop, staleMask uint8) {
		defer fixturetest.Watchdog(10 * time.Second)()
		n := int(disks%6) + 1
		if level == 6 {
			n = max(n, 4)
		}
		chunk := uint32(1) << (chunkShift % 8) // 1..128 sectors
		sizes := []uint16{s0, s1, s2, s0, s1, s2}
		roles := make([]uint16, n)
		for i := range roles {
			roles[i] = uint16(i)
		}
		var ms []*Member
		for i := 0; i < n; i++ {
			if drop&(1<<i) != 0 {
				continue
			}
			dataSectors := uint64(sizes[i]%512) + 1
			devSectors := uint64(sizes[0]%512) + 1
			if devSectors > dataSectors {
				devSectors = dataSectors
			}
			events := uint64(10)
			if staleMask&(1<<i) != 0 {
				events = 3
			}
			p := sb1{level: int32(level), layout: layout, raidDisks: int32(n), chunkSectors: chunk,
				devSectors: devSectors, dataOffSectors: 16, dataSectors: dataSectors,
				devNumber: uint32(i), events: events, roles: roles}
			img := make([]byte, 8192+int(dataSectors)*512)
			copy(img[4096:], p.bytes())
			for k := 8192; k < len(img); k++ {
				img[k] = byte(k/512) ^ byte(i)
			}
			sb, err := Read(bytes.NewReader(img), int64(len(img)))
			if err != nil {
				continue
			}
			ms = append(ms, &Member{Name: "m", R: bytes.NewReader(img), Size: int64(len(img)), SB: sb})
		}
		readArray(t, Assemble(ms))
	})
}
