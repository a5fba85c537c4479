package md

import "fmt"

// raid10 follows drivers/md/raid10.c: layout bits 0-7 are the near copies,
// 8-15 the far copies, bit 16 "offset" (far copies one chunk-stripe later
// instead of a far stripe later), bits 17+ the far-set variant.
type raid10 struct {
	disks      int64
	near, far  int64
	offset     bool
	farSetSize int64
	chunk      int64
	stride     int64 // bytes between far copies on a member
}

func newRAID10(a *Array) (levelReader, int64, error) {
	l := a.Layout
	nc, fc := int64(l&0xff), int64((l>>8)&0xff)
	g := &raid10{disks: int64(a.RaidDisks), near: nc, far: fc, offset: l&(1<<16) != 0, chunk: a.ChunkSize}
	switch l >> 17 {
	case 0:
		g.farSetSize = g.disks
	case 1:
		if fc > 0 {
			g.farSetSize = g.disks / fc
		}
	case 2:
		g.farSetSize = fc * nc
	default:
		return nil, 0, fmt.Errorf("%w: raid10 layout %#x", ErrNotReadable, l)
	}
	if nc < 1 || fc < 1 || nc*fc > g.disks || g.chunk <= 0 || g.chunk&(g.chunk-1) != 0 || g.farSetSize < 1 || g.farSetSize > g.disks {
		return nil, 0, fmt.Errorf("%w: raid10 layout %#x (near %d, far %d) on %d devices with chunk %d", ErrNotReadable, l, nc, fc, g.disks, g.chunk)
	}
	// calc_sectors: chunks per device used, and the far stride.
	chunks := a.DevSize / g.chunk
	chunks /= fc
	chunks *= g.disks
	chunks /= nc // chunks in the array
	arraySize := chunks * g.chunk
	used := chunks * nc * fc
	used = (used + g.disks - 1) / g.disks // chunks per device, rounded up
	if g.offset {
		g.stride = g.chunk
	} else {
		g.stride = used / fc * g.chunk
	}
	if used*g.chunk > a.DevSize {
		return nil, 0, fmt.Errorf("%w: raid10 needs %d bytes per member, the superblock gives %d", ErrNotReadable, used*g.chunk, a.DevSize)
	}
	return g, arraySize, nil
}

// copies lists where every copy of the array chunk holding byte off is:
// (slot, member offset of off), as __raid10_find_phys computes.
func (g *raid10) copies(off int64) (slots []int, devOffs []int64) {
	chunk := off / g.chunk
	inChunk := off % g.chunk
	chunk *= g.near
	stripe := chunk / g.disks
	dev := chunk % g.disks
	if g.offset {
		stripe *= g.far
	}
	sector := inChunk + stripe*g.chunk
	lastFarSetStart := (g.disks/g.farSetSize - 1) * g.farSetSize
	lastFarSetSize := g.farSetSize + g.disks%g.farSetSize
	for n := int64(0); n < g.near; n++ {
		d, s := dev, sector
		slots = append(slots, int(d))
		devOffs = append(devOffs, s)
		for f := int64(1); f < g.far; f++ {
			set := d / g.farSetSize
			d += g.near
			if g.disks%g.farSetSize != 0 && d > lastFarSetStart {
				d -= lastFarSetStart
				d %= lastFarSetSize
				d += lastFarSetStart
			} else {
				d %= g.farSetSize
				d += g.farSetSize * set
			}
			s += g.stride
			slots = append(slots, int(d))
			devOffs = append(devOffs, s)
		}
		dev++
		if dev >= g.disks {
			dev = 0
			sector += g.chunk
		}
	}
	return slots, devOffs
}

func (g *raid10) readAt(r *Reader, p []byte, off int64) error {
	for len(p) > 0 {
		n := min(int64(len(p)), g.chunk-off%g.chunk)
		slots, offs := g.copies(off)
		var first error
		ok := false
		for i, s := range slots {
			if r.devs[s] == nil {
				if first == nil {
					first = &MissingError{Array: r.Name, Offset: off, Role: s}
				}
				continue
			}
			err := r.readDev(s, p[:n], offs[i], off)
			if err == nil {
				ok = true
				break
			}
			if first == nil {
				first = err
			}
		}
		if !ok {
			return first
		}
		p, off = p[n:], off+n
	}
	return nil
}
