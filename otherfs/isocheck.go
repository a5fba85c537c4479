package otherfs

import (
	"encoding/binary"
	"fmt"
	"io"
)

// ISO 9660 volume descriptors (ECMA-119 8) and path table records (9.4).
const (
	vdType           = 0
	vdSignature      = 1 // "CD001"
	vdBlockSize      = 128
	vdPathTableSize  = 132
	vdPathTableL     = 140
	vdPrimary        = 1
	vdSupplementary  = 2
	vdTerminator     = 255
	maxISODescs      = 64
	maxISODirsToScan = 200_000
	ptNameLen        = 0 // u8
	ptExtent         = 2 // u32 LE in the L table
	ptHeader         = 8
)

// checkISO vets an ISO 9660 volume before go-diskfs reads it. go-diskfs
// allocates whatever a path table or directory length on disk says (up to
// 4 GiB each, zeroed) before reading it, so a corrupt length costs seconds
// and gigabytes (a fuzzer found one). Every length it may use must lie
// inside the volume and be at most maxISODirSz: the path tables of the
// primary and supplementary descriptors; every directory a path table
// names (go-diskfs takes its length from the directory's own "." record);
// every directory reachable from the roots (the length in its parent's
// record). The descriptor set must end with a terminator within
// maxISODescs descriptors. The error names the offset.
func checkISO(r io.ReaderAt, size int64) error {
	le := binary.LittleEndian
	type span struct{ ext, size uint32 }
	var roots, tables []span
	terminated := false
	for i := 0; i < maxISODescs && !terminated; i++ {
		off := isoVDStart + int64(i)*isoSectorSize
		var vd [isoSectorSize]byte
		if n, _ := r.ReadAt(vd[:], off); n < len(vd) {
			return fmt.Errorf("volume descriptor %d at %#x: past the end of the volume", i, off)
		}
		if string(vd[vdSignature:vdSignature+5]) != "CD001" {
			return fmt.Errorf("volume descriptor %d at %#x: no CD001 signature", i, off)
		}
		switch vd[vdType] {
		case vdTerminator:
			terminated = true
		case vdPrimary, vdSupplementary:
			bs := int64(le.Uint16(vd[vdBlockSize:]))
			pts, ptl := le.Uint32(vd[vdPathTableSize:]), le.Uint32(vd[vdPathTableL:])
			if pts > maxISODirSz || int64(ptl)*bs+int64(pts) > size {
				return fmt.Errorf("volume descriptor %d at %#x: path table of %d bytes at block %d lies outside the volume (%d bytes)", i, off, pts, ptl, size)
			}
			if bs == isoSectorSize {
				tables = append(tables, span{ptl, pts})
			}
			roots = append(roots, span{le.Uint32(vd[pvdRootDR+drExtent:]), le.Uint32(vd[pvdRootDR+drSize:])})
		}
	}
	if !terminated {
		return fmt.Errorf("no volume descriptor set terminator in the %d descriptors from %#x", maxISODescs, isoVDStart)
	}
	inside := func(ext, n uint32) bool {
		return n <= maxISODirSz && int64(ext)*isoSectorSize+int64(n) <= size
	}
	// Directories named by the path tables: their own "." length.
	for _, t := range tables {
		b := make([]byte, t.size)
		if _, err := r.ReadAt(b, int64(t.ext)*isoSectorSize); err != nil {
			return fmt.Errorf("path table at %#x: %v", int64(t.ext)*isoSectorSize, err)
		}
		for p := 0; p+ptHeader <= len(b); {
			nl := int(b[p+ptNameLen])
			if nl == 0 {
				break
			}
			ext := le.Uint32(b[p+ptExtent:])
			var l [4]byte
			off := int64(ext)*isoSectorSize + drSize
			if n, _ := r.ReadAt(l[:], off); n < len(l) {
				return fmt.Errorf("path table entry at %#x: directory at block %d lies outside the volume", int64(t.ext)*isoSectorSize+int64(p), ext)
			}
			if n := le.Uint32(l[:]); !inside(ext, n) {
				return fmt.Errorf("directory at block %d (%#x): length %d runs past the end of the volume (%d bytes)", ext, off, n, size)
			}
			p += ptHeader + nl + nl%2
		}
	}
	// Directories reachable from the roots, each once.
	seen := map[uint32]bool{}
	queue := roots
	for len(queue) > 0 && len(seen) < maxISODirsToScan {
		d := queue[0]
		queue = queue[1:]
		if seen[d.ext] {
			continue
		}
		seen[d.ext] = true
		if !inside(d.ext, d.size) {
			return fmt.Errorf("directory at block %d (%#x): length %d runs past the end of the volume (%d bytes)", d.ext, int64(d.ext)*isoSectorSize, d.size, size)
		}
		buf := make([]byte, d.size)
		if _, err := r.ReadAt(buf, int64(d.ext)*isoSectorSize); err != nil {
			return fmt.Errorf("directory at block %d: %v", d.ext, err)
		}
		var bad error
		eachISORecord(buf, func(off int, rec []byte) bool {
			if rec[drFlags]&drFlagDir == 0 {
				return true
			}
			ext, sz := le.Uint32(rec[drExtent:]), le.Uint32(rec[drSize:])
			if !inside(ext, sz) {
				bad = fmt.Errorf("directory record at %#x: directory of %d bytes at block %d runs past the end of the volume (%d bytes)",
					int64(d.ext)*isoSectorSize+int64(off), sz, ext, size)
				return false
			}
			dot := rec[drNameLen] == 1 && len(rec) > drName && rec[drName] <= 1 // "." or ".."
			if !dot {
				queue = append(queue, span{ext, sz})
			}
			return true
		})
		if bad != nil {
			return bad
		}
	}
	return nil
}
