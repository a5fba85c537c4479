package compressed

import (
	"encoding/binary"
	"io"
)

// Declared returns the decompressed size that the stream r (of size bytes,
// compression kind) declares in its own metadata, or -1 if it declares
// none that can be trusted:
//
//   - xz: the sum of the uncompressed sizes in the index of every stream,
//     read backwards from the end (stream footer → index), as xz -l does.
//   - zstd: the sum of every frame's Frame_Content_Size, found by walking
//     the frames' block headers; -1 if any frame leaves it out.
//   - gzip: -1. ISIZE is the size modulo 2^32 of the last member only.
//   - bzip2: -1; the format records no size.
//
// The answer is only a claim made by the file. The decompressor holds the
// stream to it: output past the declared size is an error.
func Declared(r io.ReaderAt, size int64, kind string) int64 {
	switch kind {
	case XZ:
		return xzDeclared(r, size)
	case Zstd:
		return zstdDeclared(r, size)
	}
	return -1
}

const maxDeclared = 1 << 62

func readAt(r io.ReaderAt, off, n int64) []byte {
	if off < 0 || n < 0 || n > 1<<24 {
		return nil
	}
	b := make([]byte, n)
	if k, err := r.ReadAt(b, off); int64(k) != n && err != nil {
		return nil
	}
	return b
}

// uvarint reads xz's multibyte integer (at most 9 bytes, 7 bits each).
func uvarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 9; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			if i > 0 && b[i] == 0 {
				return 0, 0 // not minimally encoded: invalid
			}
			return v, i + 1
		}
	}
	return 0, 0
}

func xzDeclared(r io.ReaderAt, size int64) int64 {
	var total int64
	end := size
	for streams := 0; end > 0; streams++ {
		// Stream padding: zero bytes in 4-byte units.
		for end >= 4 {
			b := readAt(r, end-4, 4)
			if b == nil {
				return -1
			}
			if binary.LittleEndian.Uint32(b) != 0 {
				break
			}
			end -= 4
		}
		if end == 0 {
			break
		}
		if end < 24 || end%4 != 0 {
			return -1
		}
		foot := readAt(r, end-12, 12)
		if foot == nil || foot[10] != 'Y' || foot[11] != 'Z' {
			return -1
		}
		indexSize := (int64(binary.LittleEndian.Uint32(foot[4:8])) + 1) * 4
		indexStart := end - 12 - indexSize
		if indexStart < 12 {
			return -1
		}
		index := readAt(r, indexStart, indexSize)
		if index == nil || index[0] != 0 {
			return -1
		}
		p := 1
		count, n := uvarint(index[p:])
		if n == 0 || count > uint64(indexSize)/2 {
			return -1
		}
		p += n
		var blocks int64
		for i := uint64(0); i < count; i++ {
			unpadded, n := uvarint(index[p:])
			if n == 0 {
				return -1
			}
			p += n
			uncompressed, n := uvarint(index[p:])
			if n == 0 {
				return -1
			}
			p += n
			if unpadded > maxDeclared || uncompressed > maxDeclared {
				return -1
			}
			blocks += (int64(unpadded) + 3) &^ 3
			total += int64(uncompressed)
			if blocks > size || total > maxDeclared {
				return -1
			}
		}
		start := indexStart - blocks - 12
		if start < 0 {
			return -1
		}
		head := readAt(r, start, 6)
		if head == nil || string(head) != string(magicXZ) {
			return -1
		}
		end = start
	}
	return total
}

func zstdDeclared(r io.ReaderAt, size int64) int64 {
	var total int64
	var off int64
	frames := 0
	for off < size {
		h := readAt(r, off, min(18, size-off))
		if len(h) < 4 {
			return -1
		}
		magic := binary.LittleEndian.Uint32(h)
		if magic&0xFFFFFFF0 == 0x184D2A50 { // skippable frame
			if len(h) < 8 {
				return -1
			}
			off += 8 + int64(binary.LittleEndian.Uint32(h[4:8]))
			continue
		}
		if magic != 0xFD2FB528 || len(h) < 5 {
			return -1
		}
		frames++
		fhd := h[4]
		single := fhd&0x20 != 0
		p := 5
		if !single {
			p++ // window descriptor
		}
		p += []int{0, 1, 2, 4}[fhd&3]
		var fcsLen int
		switch fhd >> 6 {
		case 0:
			if single {
				fcsLen = 1
			}
		case 1:
			fcsLen = 2
		case 2:
			fcsLen = 4
		case 3:
			fcsLen = 8
		}
		if fcsLen == 0 || p+fcsLen > len(h) {
			return -1
		}
		var fcs uint64
		switch fcsLen {
		case 1:
			fcs = uint64(h[p])
		case 2:
			fcs = uint64(binary.LittleEndian.Uint16(h[p:])) + 256
		case 4:
			fcs = uint64(binary.LittleEndian.Uint32(h[p:]))
		case 8:
			fcs = binary.LittleEndian.Uint64(h[p:])
		}
		if fcs > maxDeclared || total+int64(fcs) > maxDeclared {
			return -1
		}
		total += int64(fcs)
		off += int64(p + fcsLen)
		// Walk the blocks to the next frame.
		for {
			b := readAt(r, off, 3)
			if b == nil {
				return -1
			}
			bh := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
			last, typ, bsize := bh&1 != 0, (bh>>1)&3, int64(bh>>3)
			off += 3
			switch typ {
			case 0, 2:
				off += bsize
			case 1:
				off++
			default:
				return -1
			}
			if off > size {
				return -1
			}
			if last {
				break
			}
		}
		if fhd&0x04 != 0 {
			off += 4
		}
		if off > size {
			return -1
		}
	}
	if frames == 0 {
		return -1
	}
	return total
}
