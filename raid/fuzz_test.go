package raid

import (
	"bytes"
	"io"
	"testing"
)

// FuzzParityLayout: for any geometry Validate accepts, every stripe places
// P, Q and the data chunks on distinct members in range, Locate agrees with
// Stripe, and the Q slots are a permutation without holes (md) or the member
// numbers (DDF).
func FuzzParityLayout(f *testing.F) {
	f.Add(5, 2, 4, int64(65536), int64(123456789))
	f.Add(6, 8, 5, int64(4096), int64(0))
	f.Add(6, 19, 7, int64(512), int64(1<<40))
	f.Add(4, 0, 2, int64(1024), int64(77))
	f.Fuzz(func(t *testing.T, level, layout, disks int, chunk, off int64) {
		g := Parity{Level: level, Layout: Layout(layout), Disks: disks, ChunkSize: chunk}
		if g.Validate() != nil || off < 0 || off > 1<<56 {
			return
		}
		m, moff, run := g.Locate(off)
		if run <= 0 || run > chunk || moff < 0 {
			t.Fatalf("locate %d: member %d off %d run %d", off, m, moff, run)
		}
		s := moff / chunk
		st := g.Stripe(s)
		k := int(off / chunk % int64(g.DataDisks()))
		if st.Data[k] != m {
			t.Fatalf("locate says member %d, stripe says %d", m, st.Data[k])
		}
		seen := make(map[int]bool)
		for _, d := range append(append([]int{}, st.Data...), st.P) {
			if d < 0 || d >= disks || seen[d] {
				t.Fatalf("stripe %d: bad member %d in %+v", s, d, st)
			}
			seen[d] = true
		}
		if level == 6 {
			if st.Q < 0 || st.Q >= disks || seen[st.Q] {
				t.Fatalf("stripe %d: bad Q in %+v", s, st)
			}
			slots := make(map[int]bool)
			for _, d := range st.Data {
				sl := st.QSlot[d]
				if sl < 0 || sl >= disks || slots[sl] {
					t.Fatalf("stripe %d: bad slot %d in %+v", s, sl, st)
				}
				slots[sl] = true
				if !g.Layout.ddf() && sl >= g.DataDisks() {
					t.Fatalf("stripe %d: md slot %d beyond data disks", s, sl)
				}
			}
		} else if st.Q != -1 {
			t.Fatalf("raid%d with Q %d", level, st.Q)
		}
	})
}

// FuzzRaid10Locate: every copy is on a distinct member inside its used
// area.
func FuzzRaid10Locate(f *testing.F) {
	f.Add(uint32(0x102), 4, int64(65536), int64(1<<30), int64(99999))
	f.Add(uint32(0x201), 3, int64(512), int64(8*512), int64(2000))
	f.Add(uint32(0x10201), 5, int64(4096), int64(1<<20), int64(4096*7))
	f.Add(uint32(0x40201), 4, int64(4096), int64(1<<20), int64(4096*7))
	f.Fuzz(func(t *testing.T, layout uint32, disks int, chunk, devSize, off int64) {
		g, err := Raid10FromLayout(layout, disks, chunk, devSize)
		if err != nil || off < 0 || devSize > 1<<50 {
			return
		}
		size := g.Size()
		if off >= size {
			return
		}
		locs, run := g.Locate(off)
		if len(locs) != g.Copies() || run <= 0 || run > chunk {
			t.Fatalf("%d copies, run %d", len(locs), run)
		}
		seen := map[int]bool{}
		for _, l := range locs {
			if l.Member < 0 || l.Member >= disks || seen[l.Member] {
				t.Fatalf("copies %v", locs)
			}
			seen[l.Member] = true
			if l.Off < 0 || l.Off >= devSize {
				t.Fatalf("copy %v outside member of %d bytes", l, devSize)
			}
		}
	})
}

// FuzzParityReader reads arbitrary member bytes with arbitrary members
// missing: no panic, and when all members are present a read equals the
// data chunks laid out by Locate.
func FuzzParityReader(f *testing.F) {
	f.Add(uint8(5), uint8(2), uint8(4), uint8(3), []byte("0123456789abcdef"), int64(100), uint16(3000))
	f.Add(uint8(6), uint8(10), uint8(5), uint8(0x11), []byte{1, 2, 3}, int64(0), uint16(9000))
	f.Fuzz(func(t *testing.T, level, layout, disks, missing uint8, seed []byte, off int64, n uint16) {
		g := Parity{Level: int(level), Layout: Layout(layout), Disks: int(disks % 12), ChunkSize: 512}
		if g.Validate() != nil || len(seed) == 0 {
			return
		}
		const stripes = 4
		rs := make([]io.ReaderAt, g.Disks)
		mem := make([][]byte, g.Disks)
		for i := range rs {
			mem[i] = bytes.Repeat(seed, stripes*512/len(seed)+1)[:stripes*512]
			mem[i][0] ^= byte(i)
			rs[i] = bytes.NewReader(mem[i])
		}
		size := g.Size(stripes * 512)
		r, err := NewParityReader(g, rs, size)
		if err != nil {
			t.Fatal(err)
		}
		if off < 0 || off > size {
			return
		}
		buf := make([]byte, n)
		got, err := r.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		for i := range got {
			m, mo, _ := g.Locate(off + int64(i))
			if buf[i] != mem[m][mo] {
				t.Fatalf("byte %d", off+int64(i))
			}
		}
		for i := range g.Disks {
			if missing>>i&1 != 0 {
				rs[i] = nil
			}
		}
		if r, err := NewParityReader(g, rs, size); err == nil {
			r.ReadAt(buf, off) //nolint:errcheck // parity of random bytes: any result, no panic
			r.CheckStripe(off / g.StripeBytes() % stripes)
		}
	})
}
