package raid

import (
	"encoding/binary"
	"errors"
)

// GF(2^8) with the polynomial x^8+x^4+x^3+x^2+1 (0x11d) and generator 2, the
// field of the kernel's lib/raid6 ("The mathematics of RAID-6", H. P. Anvin).

var (
	gfExp [512]byte // gfExp[i] = 2^i, doubled so products need no modulo
	gfLog [256]int  // gfLog[x] = i with 2^i = x (x != 0)
)

func init() {
	x := 1
	for i := range 255 {
		gfExp[i] = byte(x)
		gfLog[x] = i
		x <<= 1
		if x&0x100 != 0 {
			x ^= 0x11d
		}
	}
	for i := 255; i < 512; i++ {
		gfExp[i] = gfExp[i-255]
	}
}

// gfMul multiplies two field elements.
func gfMul(a, b byte) byte {
	if a == 0 || b == 0 {
		return 0
	}
	return gfExp[gfLog[a]+gfLog[b]]
}

// gfPow2 is 2^e for any e >= 0.
func gfPow2(e int) byte { return gfExp[e%255] }

// gfInv is the multiplicative inverse of a non-zero element.
func gfInv(a byte) byte { return gfExp[255-gfLog[a]] }

// mulTable returns the 256-entry table of c*x.
func mulTable(c byte) *[256]byte {
	var t [256]byte
	for x := range 256 {
		t[x] = gfMul(c, byte(x))
	}
	return &t
}

// xorInto sets dst ^= src (len(src) >= len(dst)).
func xorInto(dst, src []byte) {
	n := len(dst)
	i := 0
	for ; i+8 <= n; i += 8 {
		v := binary.LittleEndian.Uint64(dst[i:]) ^ binary.LittleEndian.Uint64(src[i:])
		binary.LittleEndian.PutUint64(dst[i:], v)
	}
	for ; i < n; i++ {
		dst[i] ^= src[i]
	}
}

// mul2Into sets q = q*2 in the field, bytewise.
func mul2Into(q []byte) {
	n := len(q)
	i := 0
	for ; i+8 <= n; i += 8 {
		v := binary.LittleEndian.Uint64(q[i:])
		hi := v & 0x8080808080808080
		v = (v<<1)&0xfefefefefefefefe ^ (hi>>7)*0x1d
		binary.LittleEndian.PutUint64(q[i:], v)
	}
	for ; i < n; i++ {
		b := q[i]
		q[i] = b << 1
		if b&0x80 != 0 {
			q[i] ^= 0x1d
		}
	}
}

// mulInto sets dst = c*src with the table of c.
func mulInto(dst, src []byte, t *[256]byte) {
	for i := range dst {
		dst[i] = t[src[i]]
	}
}

// Syndromes computes P (XOR of all data) and, when q is not nil, Q = sum of
// 2^slot * data over GF(2^8). data[i] may be nil for a chunk that counts as
// zero; slots[i] is its power of the generator (ignored when q is nil). p and
// q must be as long as every non-nil data buffer.
func Syndromes(p, q []byte, data [][]byte, slots []int) {
	clear(p)
	for _, d := range data {
		if d != nil {
			xorInto(p, d)
		}
	}
	if q == nil {
		return
	}
	clear(q)
	// Horner: walk slots from the highest down, doubling in between.
	maxSlot := -1
	for i, d := range data {
		if d != nil && slots[i] > maxSlot {
			maxSlot = slots[i]
		}
	}
	if maxSlot < 0 {
		return
	}
	bySlot := make([][]byte, maxSlot+1)
	for i, d := range data {
		if d == nil || slots[i] < 0 {
			continue
		}
		if prev := bySlot[slots[i]]; prev != nil {
			// Two chunks with one slot cannot happen in a valid stripe;
			// fold them so the maths stays defined.
			tmp := make([]byte, len(d))
			copy(tmp, prev)
			xorInto(tmp, d)
			bySlot[slots[i]] = tmp
			continue
		}
		bySlot[slots[i]] = d
	}
	for s := maxSlot; s >= 0; s-- {
		if s != maxSlot {
			mul2Into(q)
		}
		if d := bySlot[s]; d != nil {
			xorInto(q, d)
		}
	}
}

// ErrTooManyMissing is returned when more members are missing than the
// parity can rebuild.
var ErrTooManyMissing = errors.New("too many members missing to rebuild")

// RecoverP rebuilds one missing chunk from P and the other data chunks:
// out = P xor (xor of present). present holds every other data chunk.
func RecoverP(out, p []byte, present [][]byte) {
	copy(out, p)
	for _, d := range present {
		xorInto(out, d)
	}
}

// RecoverQ rebuilds one missing data chunk of slot x from Q alone (P is
// missing too): D_x = (Q xor Q') * 2^-x, where Q' is the Q of the present
// chunks (with their slots).
func RecoverQ(out, q []byte, x int, present [][]byte, slots []int) {
	qp := make([]byte, len(out))
	scratchP := make([]byte, len(out))
	Syndromes(scratchP, qp, present, slots)
	xorInto(qp, q)
	mulInto(out, qp, mulTable(gfInv(gfPow2(x))))
}

// RecoverPQ rebuilds two missing data chunks of slots x and y from P and Q:
// with Pxy = P xor P', Qxy = Q xor Q' (P', Q' of the present chunks),
//
//	Dx = (Qxy xor 2^y Pxy) / (2^x xor 2^y),  Dy = Pxy xor Dx.
func RecoverPQ(dx, dy, p, q []byte, x, y int, present [][]byte, slots []int) {
	n := len(dx)
	pp := make([]byte, n)
	qp := make([]byte, n)
	Syndromes(pp, qp, present, slots)
	xorInto(pp, p) // Pxy
	xorInto(qp, q) // Qxy
	gx, gy := gfPow2(x), gfPow2(y)
	ty := mulTable(gy)
	tinv := mulTable(gfInv(gx ^ gy))
	for i := range n {
		v := qp[i] ^ ty[pp[i]]
		dx[i] = tinv[v]
		dy[i] = pp[i] ^ dx[i]
	}
}
