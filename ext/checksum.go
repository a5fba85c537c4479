package ext

import (
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c is the kernel's crc32c_le(seed, p): no pre- or post-inversion, which
// is what ext4's metadata_csum stores. Go's crc32.Update inverts on the way
// in and out, hence the double negation.
func crc32c(seed uint32, p []byte) uint32 {
	return ^crc32.Update(^seed, castagnoli, p)
}

// crc32cU32 is crc32c over v's four little-endian bytes, byte by byte
// from the table: a [4]byte passed to crc32.Update escapes to the heap,
// an allocation per inode checksum (pprof of a 1M-inode scan).
func crc32cU32(seed, v uint32) uint32 {
	c := seed
	for range 4 {
		c = castagnoli[byte(c)^byte(v)] ^ c>>8
		v >>= 8
	}
	return c
}

// crc32cZero2 is crc32c over two zero bytes (a checksum field), without
// a slice that would escape.
func crc32cZero2(c uint32) uint32 {
	c = castagnoli[byte(c)] ^ c>>8
	return castagnoli[byte(c)] ^ c>>8
}

// crc16Table is CRC-16/ARC (polynomial 0x8005, reflected 0xA001), the
// kernel's crc16() used by the gdt_csum (uninit_bg) group descriptor checksum.
var crc16Table = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0xA001
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return
}()

func crc16(crc uint16, p []byte) uint16 {
	for _, b := range p {
		crc = crc>>8 ^ crc16Table[byte(crc)^b]
	}
	return crc
}
