package raid

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

func TestGF(t *testing.T) {
	// x^8 = x^4+x^3+x^2+1 = 0x1d in this field.
	if got := gfMul(2, 0x80); got != 0x1d {
		t.Fatalf("2*0x80 = %#x, want 0x1d", got)
	}
	if gfPow2(8) != 0x1d || gfPow2(0) != 1 || gfPow2(255) != 1 {
		t.Fatalf("2^8=%#x 2^0=%#x 2^255=%#x", gfPow2(8), gfPow2(0), gfPow2(255))
	}
	for a := 1; a < 256; a++ {
		if gfMul(byte(a), gfInv(byte(a))) != 1 {
			t.Fatalf("%#x * inv = %#x", a, gfMul(byte(a), gfInv(byte(a))))
		}
	}
	// mul2Into matches gfMul by 2 on every byte value, in both the
	// word-at-a-time and the tail paths.
	buf := make([]byte, 259)
	for i := range buf {
		buf[i] = byte(i)
	}
	mul2Into(buf)
	for i := range buf {
		if buf[i] != gfMul(2, byte(i)) {
			t.Fatalf("mul2(%#x) = %#x, want %#x", byte(i), buf[i], gfMul(2, byte(i)))
		}
	}
}

// Hand-computed syndromes: D0=0x01 D1=0x01 D2=0x80 with slots 0,1,2:
// P = 0x01^0x01^0x80 = 0x80; Q = 1*0x01 ^ 2*0x01 ^ 4*0x80
// = 0x01 ^ 0x02 ^ 0x3a (0x80*2 = 0x1d, *2 = 0x3a) = 0x39.
func TestSyndromesByHand(t *testing.T) {
	data := [][]byte{{0x01, 0x00}, {0x01, 0xff}, {0x80, 0x00}}
	p := make([]byte, 2)
	q := make([]byte, 2)
	Syndromes(p, q, data, []int{0, 1, 2})
	// Second byte: only D1=0xff, slot 1: P=0xff, Q=2*0xff = 0xfe^0x1d = 0xe3.
	if !bytes.Equal(p, []byte{0x80, 0xff}) || !bytes.Equal(q, []byte{0x39, 0xe3}) {
		t.Fatalf("P %x Q %x, want 80ff 39e3", p, q)
	}
	// A nil chunk counts as zero, and slots need not start at 0 (DDF).
	Syndromes(p, q, [][]byte{nil, {0x01, 0x01}}, []int{0, 3})
	if !bytes.Equal(p, []byte{1, 1}) || !bytes.Equal(q, []byte{8, 8}) {
		t.Fatalf("P %x Q %x, want 0101 0808", p, q)
	}
}

func TestRecover(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 37
	data := make([][]byte, 6)
	for i := range data {
		data[i] = make([]byte, n)
		for j := range data[i] {
			data[i][j] = byte(rng.Uint32())
		}
	}
	slots := []int{0, 1, 2, 3, 4, 5}
	p, q := make([]byte, n), make([]byte, n)
	Syndromes(p, q, data, slots)
	without := func(skip ...int) ([][]byte, []int) {
		var ds [][]byte
		var ss []int
	next:
		for i := range data {
			for _, s := range skip {
				if i == s {
					continue next
				}
			}
			ds = append(ds, data[i])
			ss = append(ss, slots[i])
		}
		return ds, ss
	}
	out := make([]byte, n)
	ds, _ := without(4)
	RecoverP(out, p, ds)
	if !bytes.Equal(out, data[4]) {
		t.Fatal("RecoverP")
	}
	ds, ss := without(2)
	RecoverQ(out, q, 2, ds, ss)
	if !bytes.Equal(out, data[2]) {
		t.Fatal("RecoverQ")
	}
	for x := range data {
		for y := range data {
			if x == y {
				continue
			}
			ds, ss := without(x, y)
			dy := make([]byte, n)
			RecoverPQ(out, dy, p, q, x, y, ds, ss)
			if !bytes.Equal(out, data[x]) || !bytes.Equal(dy, data[y]) {
				t.Fatalf("RecoverPQ(%d,%d)", x, y)
			}
		}
	}
}

// encode builds member images for a Parity array holding data, using the
// layout and syndromes under test (the layout tables and syndromes have
// their own independent tests above).
func encode(g Parity, data []byte, stripes int) [][]byte {
	cs := int(g.ChunkSize)
	mem := make([][]byte, g.Disks)
	for i := range mem {
		mem[i] = make([]byte, stripes*cs)
	}
	for s := range stripes {
		st := g.Stripe(int64(s))
		chunks := make([][]byte, len(st.Data))
		var slots []int
		for k, d := range st.Data {
			src := data[(s*len(st.Data)+k)*cs:][:cs]
			copy(mem[d][s*cs:], src)
			chunks[k] = src
			if st.QSlot != nil {
				slots = append(slots, st.QSlot[d])
			}
		}
		var q []byte
		if st.Q >= 0 {
			q = mem[st.Q][s*cs:][:cs]
		}
		Syndromes(mem[st.P][s*cs:][:cs], q, chunks, slots)
	}
	return mem
}

type failingReader struct{}

func (failingReader) ReadAt([]byte, int64) (int, error) { return 0, errors.New("medium error") }

func allLayouts() []Parity {
	var gs []Parity
	for _, l := range []Layout{LeftAsymmetric, RightAsymmetric, LeftSymmetric, RightSymmetric, Parity0, ParityN} {
		gs = append(gs, Parity{5, l, 4, 1024})
	}
	gs = append(gs, Parity{4, 0, 3, 1024})
	for l := range layoutNames {
		gs = append(gs, Parity{6, l, 5, 1024}, Parity{6, l, 6, 512})
	}
	return gs
}

func TestParityReaderDegraded(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, g := range allLayouts() {
		const stripes = 7
		data := make([]byte, stripes*int(g.StripeBytes()))
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		mem := encode(g, data, stripes)
		size := int64(len(data)) - 300 // not stripe-aligned
		var sets [][]int
		sets = append(sets, nil)
		for a := range g.Disks {
			sets = append(sets, []int{a})
			if g.Level == 6 {
				for b := a + 1; b < g.Disks; b++ {
					sets = append(sets, []int{a, b})
				}
			}
		}
		for _, miss := range sets {
			for _, fail := range []bool{false, true} {
				name := fmt.Sprintf("raid%d-%v-%d/missing%v-fail%v", g.Level, g.Layout, g.Disks, miss, fail)
				rs := make([]io.ReaderAt, g.Disks)
				for i := range rs {
					rs[i] = bytes.NewReader(mem[i])
				}
				for _, m := range miss {
					if fail {
						rs[m] = failingReader{}
					} else {
						rs[m] = nil
					}
				}
				r, err := NewParityReader(g, rs, size)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				got := make([]byte, size)
				// Odd-sized reads crossing chunk boundaries.
				for off := int64(0); off < size; {
					n := min(int64(777), size-off)
					if _, err := r.ReadAt(got[off:off+n], off); err != nil {
						t.Fatalf("%s: read at %d: %v", name, off, err)
					}
					off += n
				}
				if !bytes.Equal(got, data[:size]) {
					t.Fatalf("%s: data differs", name)
				}
				if n, err := r.ReadAt(make([]byte, 10), size-4); n != 4 || err != io.EOF {
					t.Fatalf("%s: read past end: %d %v", name, n, err)
				}
			}
		}
	}
}

func TestParityReaderTooMany(t *testing.T) {
	g := Parity{5, LeftSymmetric, 3, 512}
	mem := encode(g, make([]byte, 4*1024), 4)
	rs := []io.ReaderAt{nil, failingReader{}, bytes.NewReader(mem[2])}
	r, err := NewParityReader(g, rs, 4*1024)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.ReadAt(make([]byte, 4096), 0)
	var me *MemberError
	if err == nil || !errors.As(err, &me) {
		t.Fatalf("got %v, want a member error", err)
	}
	// Stale member: valid below 1024 only.
	rs = []io.ReaderAt{bytes.NewReader(mem[0]), bytes.NewReader(mem[1]), bytes.NewReader(make([]byte, len(mem[2])))}
	r, _ = NewParityReader(g, rs, 4*1024)
	r.MarkStale(2, 0)
	if _, err := r.ReadAt(make([]byte, 4096), 0); err != nil {
		t.Fatalf("stale member not rebuilt: %v", err)
	}
}

func TestCheckStripe(t *testing.T) {
	for _, g := range []Parity{{5, LeftSymmetric, 4, 1024}, {6, RotatingZeroRestart, 5, 1024}, {6, LeftSymmetric, 5, 1024}} {
		data := make([]byte, 5*int(g.StripeBytes()))
		for i := range data {
			data[i] = byte(i * 7)
		}
		mem := encode(g, data, 5)
		// Corrupt one sector of a data chunk of stripe 3.
		st := g.Stripe(3)
		mem[st.Data[1]][3*1024+600] ^= 0x40
		rs := make([]io.ReaderAt, g.Disks)
		for i := range rs {
			rs[i] = bytes.NewReader(mem[i])
		}
		r, _ := NewParityReader(g, rs, int64(len(data)))
		for s := range r.Stripes() {
			m, err := r.CheckStripe(s)
			if err != nil {
				t.Fatal(err)
			}
			if (m != nil) != (s == 3) {
				t.Fatalf("raid%d stripe %d: mismatch %+v", g.Level, s, m)
			}
			if m != nil {
				if m.MemberOff != 3*1024+512 || m.Len != 512 || !m.P || (g.Level == 6) != m.Q || m.ArrayOff != 3*g.StripeBytes() {
					t.Fatalf("raid%d: %+v", g.Level, m)
				}
			}
		}
		// RAID6 with one member missing still checks the other syndrome.
		if g.Level == 6 {
			rs[st.Data[0]] = nil
			r, _ = NewParityReader(g, rs, int64(len(data)))
			m, err := r.CheckStripe(3)
			if err != nil || m == nil || !m.Q {
				t.Fatalf("degraded raid6 check: %+v %v", m, err)
			}
			if m, err := r.CheckStripe(2); err != nil || m != nil {
				t.Fatalf("degraded raid6 check of a good stripe: %+v %v", m, err)
			}
		} else {
			rs[0] = nil
			r, _ = NewParityReader(g, rs, int64(len(data)))
			if _, err := r.CheckStripe(0); !errors.Is(err, ErrUnverifiable) {
				t.Fatalf("degraded raid5 check: %v", err)
			}
		}
	}
}

func TestRaid10(t *testing.T) {
	// md(4): near=2 on 3 members: chunk 0 on members 0,1 (row 0); chunk 1 on
	// member 2 (row 0) and member 0 (row 1); chunk 2 on members 1,2 (row 1).
	g := Raid10{Disks: 3, Near: 2, Far: 1, ChunkSize: 512, DevSize: 8 * 512}
	want := [][]Loc{{{0, 0}, {1, 0}}, {{2, 0}, {0, 512}}, {{1, 512}, {2, 512}}}
	for c, w := range want {
		got, _ := g.Locate(int64(c) * 512)
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("near chunk %d: %v, want %v", c, got, w)
		}
	}
	// far=2 on 3 members of 8 chunks: first copies striped over the first
	// half (4 chunks), second copies in the second half shifted by one.
	g = Raid10{Disks: 3, Near: 1, Far: 2, ChunkSize: 512, DevSize: 8 * 512}
	want = [][]Loc{{{0, 0}, {1, 4 * 512}}, {{1, 0}, {2, 4 * 512}}, {{2, 0}, {0, 4 * 512}}, {{0, 512}, {1, 5 * 512}}}
	for c, w := range want {
		got, _ := g.Locate(int64(c) * 512)
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("far chunk %d: %v, want %v", c, got, w)
		}
	}
	if g.Size() != 12*512 {
		t.Errorf("far size %d", g.Size())
	}
	// offset=2 on 3 members: row 0 "A B C", row 1 "C A B".
	g = Raid10{Disks: 3, Near: 1, Far: 2, Offset: true, ChunkSize: 512, DevSize: 8 * 512}
	want = [][]Loc{{{0, 0}, {1, 512}}, {{1, 0}, {2, 512}}, {{2, 0}, {0, 512}}, {{0, 1024}, {1, 1536}}}
	for c, w := range want {
		got, _ := g.Locate(int64(c) * 512)
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("offset chunk %d: %v, want %v", c, got, w)
		}
	}
	g2, err := Raid10FromLayout(0x102, 4, 512, 8*512)
	if err != nil || g2.Near != 2 || g2.Far != 1 || g2.Offset {
		t.Errorf("layout 0x102: %+v %v", g2, err)
	}
	if _, err := Raid10FromLayout(0x10201, 4, 512, 4096); err != nil {
		t.Errorf("offset layout: %v", err)
	}
	if _, err := Raid10FromLayout(0x105, 4, 512, 4096); err == nil {
		t.Error("5 copies on 4 members accepted")
	}

	// Reading with one copy of every chunk missing.
	g = Raid10{Disks: 4, Near: 2, Far: 1, ChunkSize: 1024, DevSize: 16 * 1024}
	size := g.Size()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*13 + i>>9)
	}
	mem := make([][]byte, 4)
	for i := range mem {
		mem[i] = make([]byte, g.DevSize)
	}
	for off := int64(0); off < size; off += 1024 {
		locs, _ := g.Locate(off)
		for _, l := range locs {
			copy(mem[l.Member][l.Off:], data[off:off+1024])
		}
	}
	for _, miss := range [][]int{nil, {0}, {1, 2}, {0, 3}} {
		rs := make([]io.ReaderAt, 4)
		for i := range rs {
			rs[i] = bytes.NewReader(mem[i])
		}
		for _, m := range miss {
			rs[m] = nil
		}
		r, err := NewRaid10Reader(g, rs, size)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, size)
		if _, err := r.ReadAt(got, 0); err != nil {
			t.Fatalf("missing %v: %v", miss, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("missing %v: data differs", miss)
		}
	}
	rs := []io.ReaderAt{nil, nil, bytes.NewReader(mem[2]), bytes.NewReader(mem[3])}
	r, _ := NewRaid10Reader(g, rs, size)
	if _, err := r.ReadAt(make([]byte, 10), 0); err == nil {
		t.Fatal("both copies missing read fine")
	}
}
