package raid

import "fmt"

// Raid10 is the geometry of an md raid10 array (dm-raid "raid10" with the
// near, far or offset format): Near copies of each chunk on adjacent members,
// each repeated Far times further down (far: a whole device section away;
// offset: one chunk row away, rotated by Near members).
type Raid10 struct {
	Disks     int
	Near, Far int   // copies; Near*Far is the total
	Offset    bool  // far copies one chunk row apart ("offset" layout)
	ChunkSize int64 // bytes
	// FarSetSize is the number of members a far copy rotates within; 0
	// means all of them (the original layout, md layout bit 17 clear).
	FarSetSize int
	// DevSize is the usable bytes of each member (md's dev_sectors); the
	// far layout needs it to place the far copies.
	DevSize int64
}

// Raid10FromLayout decodes md's raid10 layout word (near copies in bits
// 0-7, far copies in bits 8-15, offset in bit 16, far-set variant in bits
// 17+).
func Raid10FromLayout(layout uint32, disks int, chunk, devSize int64) (Raid10, error) {
	g := Raid10{
		Disks:     disks,
		Near:      int(layout & 0xff),
		Far:       int(layout >> 8 & 0xff),
		Offset:    layout&(1<<16) != 0,
		ChunkSize: chunk,
		DevSize:   devSize,
	}
	switch layout >> 17 {
	case 0:
		g.FarSetSize = disks
	case 1:
		if g.Far > 0 {
			g.FarSetSize = disks / g.Far
		}
	case 2:
		g.FarSetSize = g.Far * g.Near
	default:
		return g, fmt.Errorf("raid10 layout 0x%x has an unknown far-set variant", layout)
	}
	return g, g.Validate()
}

// Validate checks the geometry.
func (g Raid10) Validate() error {
	if g.Near < 1 || g.Far < 1 {
		return fmt.Errorf("raid10 with %d near and %d far copies", g.Near, g.Far)
	}
	if g.Disks < 2 || g.Disks > 256 {
		return fmt.Errorf("raid10 with %d members", g.Disks)
	}
	if g.Near*g.Far > g.Disks {
		return fmt.Errorf("raid10 with %d copies on %d members", g.Near*g.Far, g.Disks)
	}
	if g.ChunkSize < 512 || g.ChunkSize%512 != 0 || g.ChunkSize&(g.ChunkSize-1) != 0 || g.ChunkSize > 1<<30 {
		return fmt.Errorf("raid10 chunk size %d is not a power of two between 512 and 1 GiB", g.ChunkSize)
	}
	fs := g.farSet()
	if fs < 1 || fs > g.Disks {
		return fmt.Errorf("raid10 far set size %d with %d members", g.FarSetSize, g.Disks)
	}
	if g.DevSize < 0 {
		return fmt.Errorf("raid10 member size %d", g.DevSize)
	}
	return nil
}

func (g Raid10) farSet() int {
	if g.FarSetSize == 0 {
		return g.Disks
	}
	return g.FarSetSize
}

// Copies is the total number of copies of each chunk.
func (g Raid10) Copies() int { return g.Near * g.Far }

// devChunks is the chunks of each member in use, as md's calc_sectors().
func (g Raid10) devChunks() int64 {
	size := g.DevSize / g.ChunkSize
	size /= int64(g.Far)
	size *= int64(g.Disks)
	size /= int64(g.Near)
	// size is now the chunks in the array
	size *= int64(g.Copies())
	return (size + int64(g.Disks) - 1) / int64(g.Disks)
}

// stride is the member byte distance between far copies.
func (g Raid10) stride() int64 {
	if g.Offset {
		return g.ChunkSize
	}
	return g.devChunks() / int64(g.Far) * g.ChunkSize
}

// Size is the array size (md's raid10_size()).
func (g Raid10) Size() int64 {
	size := g.DevSize / g.ChunkSize
	size /= int64(g.Far)
	size *= int64(g.Disks)
	size /= int64(g.Near)
	return size * g.ChunkSize
}

// Loc is a place on a member.
type Loc struct {
	Member int
	Off    int64
}

// Locate returns every copy of the array byte at off (the first is the
// one md prefers when all are healthy) and how many bytes stay in the same
// chunk.
func (g Raid10) Locate(off int64) ([]Loc, int64) {
	out := make([]Loc, 0, g.Copies())
	chunk := off / g.ChunkSize
	in := off % g.ChunkSize
	n := int64(g.Disks)
	fs := g.farSet()
	lastSetStart := (g.Disks/fs - 1) * fs
	lastSetSize := fs + g.Disks%fs

	chunk *= int64(g.Near)
	stripe := chunk / n
	dev := int(chunk % n)
	if g.Offset {
		stripe *= int64(g.Far)
	}
	sector := in + stripe*g.ChunkSize
	stride := g.stride()
	for range g.Near {
		d, s := dev, sector
		out = append(out, Loc{d, s})
		for f := 1; f < g.Far; f++ {
			set := d / fs
			d += g.Near
			if g.Disks%fs != 0 && d > lastSetStart {
				d -= lastSetStart
				d %= lastSetSize
				d += lastSetStart
			} else {
				d %= fs
				d += fs * set
			}
			s += stride
			out = append(out, Loc{d, s})
		}
		dev++
		if dev >= g.Disks {
			dev = 0
			sector += g.ChunkSize
		}
	}
	return out, g.ChunkSize - in
}
