package lvm

import "hash/crc32"

// initialCRC is the seed LVM2 uses for every checksum it stores (label
// header, mda header, metadata text): INITIAL_CRC in lib/misc/crc.h.
const initialCRC = 0xf597a6cf

// lvmCRC computes LVM2's calc_crc(seed, data): the reflected CRC-32 of the
// IEEE polynomial 0xedb88320, started from seed, with no inversion before or
// after. Go's crc32 inverts on entry and exit, so undo both.
func lvmCRC(seed uint32, data []byte) uint32 {
	return ^crc32.Update(^seed, crc32.IEEETable, data)
}
