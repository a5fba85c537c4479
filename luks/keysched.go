package luks

import "encoding/binary"

// The AES key schedule, computed in software, for the AES-NI decryption
// path (crypto/aes keeps its schedule private).

var sbox [256]byte

func init() {
	// S-box: multiplicative inverse in GF(2^8), then the affine map. The
	// inverses come from log/antilog tables over the generator 3, so this
	// costs 256 steps at start-up rather than 65,536 multiplications.
	var exp [255]byte
	var log [256]int
	p := byte(1)
	for i := 0; i < 255; i++ {
		exp[i] = p
		log[p] = i
		p = gmul(p, 3)
	}
	for i := 0; i < 256; i++ {
		inv := byte(0)
		if i != 0 {
			inv = exp[(255-log[i])%255]
		}
		s := inv
		for k := 1; k <= 4; k++ {
			s ^= inv<<k | inv>>(8-k)
		}
		sbox[i] = s ^ 0x63
	}
}

func gmul(a, b byte) byte {
	var p byte
	for b != 0 {
		if b&1 != 0 {
			p ^= a
		}
		hi := a & 0x80
		a <<= 1
		if hi != 0 {
			a ^= 0x1b
		}
		b >>= 1
	}
	return p
}

func subWord(w uint32) uint32 {
	return uint32(sbox[w>>24])<<24 | uint32(sbox[w>>16&0xff])<<16 | uint32(sbox[w>>8&0xff])<<8 | uint32(sbox[w&0xff])
}

// encKeySchedule returns the round keys of key (16, 24 or 32 bytes), as
// AESENC wants them, and the round count.
func encKeySchedule(key []byte) ([]byte, int) {
	nk := len(key) / 4
	nr := nk + 6
	w := make([]uint32, 4*(nr+1))
	for i := 0; i < nk; i++ {
		w[i] = binary.BigEndian.Uint32(key[4*i:])
	}
	rcon := uint32(1)
	for i := nk; i < len(w); i++ {
		t := w[i-1]
		if i%nk == 0 {
			t = subWord(t<<8|t>>24) ^ rcon<<24
			rcon = uint32(gmul(byte(rcon), 2))
		} else if nk > 6 && i%nk == 4 {
			t = subWord(t)
		}
		w[i] = w[i-nk] ^ t
	}
	ek := make([]byte, 16*(nr+1))
	for i, x := range w {
		binary.BigEndian.PutUint32(ek[4*i:], x)
	}
	return ek, nr
}

// decKeySchedule returns the round keys of the equivalent inverse cipher
// for key (16, 24 or 32 bytes), as AESDEC wants them, and the round count.
func decKeySchedule(key []byte) ([]byte, int) {
	ek, nr := encKeySchedule(key)
	dk := make([]byte, len(ek))
	copy(dk[0:16], ek[16*nr:])
	copy(dk[16*nr:], ek[0:16])
	for r := 1; r < nr; r++ {
		src := ek[16*(nr-r) : 16*(nr-r+1)]
		dst := dk[16*r : 16*(r+1)]
		for c := 0; c < 4; c++ {
			a := src[4*c : 4*c+4]
			dst[4*c+0] = gmul(a[0], 14) ^ gmul(a[1], 11) ^ gmul(a[2], 13) ^ gmul(a[3], 9)
			dst[4*c+1] = gmul(a[0], 9) ^ gmul(a[1], 14) ^ gmul(a[2], 11) ^ gmul(a[3], 13)
			dst[4*c+2] = gmul(a[0], 13) ^ gmul(a[1], 9) ^ gmul(a[2], 14) ^ gmul(a[3], 11)
			dst[4*c+3] = gmul(a[0], 11) ^ gmul(a[1], 13) ^ gmul(a[2], 9) ^ gmul(a[3], 14)
		}
	}
	return dk, nr
}
