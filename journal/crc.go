package journal

import "hash/crc32"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c is the kernel's crc32c_le(seed, p), no pre- or post-inversion:
// what jbd2_chksum computes for the v2/v3 checksums. (Go's crc32.Update
// inverts on the way in and out, hence the double negation.)
func crc32c(seed uint32, p []byte) uint32 {
	return ^crc32.Update(^seed, castagnoli, p)
}

// crc32beTable is for the kernel's crc32_be: CRC-32 with polynomial
// 0x04C11DB7, most significant bit first, no inversions. jbd2's v1
// transaction checksum (COMPAT_CHECKSUM) uses it.
var crc32beTable = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04C11DB7
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return
}()

func crc32be(crc uint32, p []byte) uint32 {
	for _, b := range p {
		crc = crc<<8 ^ crc32beTable[byte(crc>>24)^b]
	}
	return crc
}
