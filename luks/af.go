package luks

import (
	"encoding/binary"
	"hash"
)

// afMerge recovers a key of len(dst) bytes from stripes concatenated
// anti-forensic stripes (LUKS1 spec, "AFmerge"): d = 0; for every stripe
// but the last, d = diffuse(d XOR stripe); key = d XOR last stripe.
func afMerge(dst, material []byte, stripes int, h func() hash.Hash) {
	n := len(dst)
	d := make([]byte, n)
	hh := h()
	for i := 0; i < stripes-1; i++ {
		s := material[i*n : (i+1)*n]
		for j := range d {
			d[j] ^= s[j]
		}
		diffuse(d, hh)
	}
	last := material[(stripes-1)*n : stripes*n]
	for j := range dst {
		dst[j] = d[j] ^ last[j]
	}
}

// diffuse replaces every digest-sized block i of b (the last one possibly
// shorter) by hash(be32(i) || block), truncated to the block's length.
func diffuse(b []byte, hh hash.Hash) {
	ds := hh.Size()
	var iv [4]byte
	var sum []byte
	for i, off := 0, 0; off < len(b); i, off = i+1, off+ds {
		end := min(off+ds, len(b))
		hh.Reset()
		binary.BigEndian.PutUint32(iv[:], uint32(i))
		hh.Write(iv[:])
		hh.Write(b[off:end])
		sum = hh.Sum(sum[:0])
		copy(b[off:end], sum)
	}
}
