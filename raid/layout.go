// Package raid holds the RAID geometry and parity maths shared by LVM's
// raid4/5/6/10 segments (dm-raid) and MD arrays: where each chunk of the
// array lives on which member, the P (XOR) and Q (Reed-Solomon over GF(2^8),
// as the kernel's lib/raid6) syndromes, reconstruction of one or two missing
// members, and an io.ReaderAt over member io.ReaderAts of which some may be
// missing (a degraded array).
//
// Layout numbers are the kernel's (drivers/md/raid5.h ALGORITHM_*), so an MD
// superblock's layout field and dm-raid's raid types map onto them directly.
// The mapping of a chunk to a member follows raid5_compute_sector() and the
// raid10 mapping follows __raid10_find_phys(); both were re-derived from the
// kernel's description and are checked against arrays a real kernel wrote
// (fixtures/scripts/lvm-raid.sh).
package raid

import (
	"fmt"
)

// Layout is a RAID4/5/6 parity layout (the kernel's ALGORITHM_* numbers).
type Layout int

// The kernel's layouts. LeftSymmetric is the MD and LVM default for RAID5;
// RotatingZeroRestart ("raid6_zr") is LVM's default for RAID6 and
// LeftSymmetric MD's.
const (
	LeftAsymmetric      Layout = 0
	RightAsymmetric     Layout = 1
	LeftSymmetric       Layout = 2
	RightSymmetric      Layout = 3
	Parity0             Layout = 4 // dedicated parity on the first member
	ParityN             Layout = 5 // dedicated parity on the last member(s)
	RotatingZeroRestart Layout = 8 // DDF
	RotatingNRestart    Layout = 9 // DDF
	RotatingNContinue   Layout = 10
	LeftAsymmetric6     Layout = 16 // RAID5 left asymmetric + Q on the last member
	RightAsymmetric6    Layout = 17
	LeftSymmetric6      Layout = 18
	RightSymmetric6     Layout = 19
	Parity0_6           Layout = 20
	ParityN_6           Layout = ParityN
)

var layoutNames = map[Layout]string{
	LeftAsymmetric:      "left-asymmetric",
	RightAsymmetric:     "right-asymmetric",
	LeftSymmetric:       "left-symmetric",
	RightSymmetric:      "right-symmetric",
	Parity0:             "parity-first",
	ParityN:             "parity-last",
	RotatingZeroRestart: "ddf-zero-restart",
	RotatingNRestart:    "ddf-N-restart",
	RotatingNContinue:   "ddf-N-continue",
	LeftAsymmetric6:     "left-asymmetric-6",
	RightAsymmetric6:    "right-asymmetric-6",
	LeftSymmetric6:      "left-symmetric-6",
	RightSymmetric6:     "right-symmetric-6",
	Parity0_6:           "parity-first-6",
}

// String is mdadm's name for the layout.
func (l Layout) String() string {
	if s, ok := layoutNames[l]; ok {
		return s
	}
	return fmt.Sprintf("layout-%d", int(l))
}

// ddf reports the layouts whose Q is computed over all members in member
// order (with P and Q counted as zero), as the DDF standard does.
func (l Layout) ddf() bool {
	return l == RotatingZeroRestart || l == RotatingNRestart || l == RotatingNContinue
}

// LVMLayouts maps dm-raid / lvm2 segment type names to level and layout.
var LVMLayouts = map[string]struct {
	Level  int
	Layout Layout
}{
	"raid4":      {5, Parity0}, // dm-raid: "raid4 layout = raid5_0"
	"raid5_n":    {5, ParityN},
	"raid5_ls":   {5, LeftSymmetric},
	"raid5_rs":   {5, RightSymmetric},
	"raid5_la":   {5, LeftAsymmetric},
	"raid5_ra":   {5, RightAsymmetric},
	"raid5":      {5, LeftSymmetric},
	"raid6_zr":   {6, RotatingZeroRestart},
	"raid6_nr":   {6, RotatingNRestart},
	"raid6_nc":   {6, RotatingNContinue},
	"raid6":      {6, RotatingZeroRestart},
	"raid6_n_6":  {6, ParityN_6},
	"raid6_la_6": {6, LeftAsymmetric6},
	"raid6_ra_6": {6, RightAsymmetric6},
	"raid6_ls_6": {6, LeftSymmetric6},
	"raid6_rs_6": {6, RightSymmetric6},
	"raid6_0_6":  {6, Parity0_6},
}

// Parity is the geometry of a RAID4, RAID5 or RAID6 array.
type Parity struct {
	Level     int    // 4, 5 or 6
	Layout    Layout // ignored for level 4 (parity on the last member)
	Disks     int    // members, parity included
	ChunkSize int64  // bytes per chunk, a multiple of 512
}

// Validate checks that the geometry is one the kernel can run.
func (g Parity) Validate() error {
	switch g.Level {
	case 4, 5:
		if g.Disks < 2 {
			return fmt.Errorf("raid%d with %d members (at least 2)", g.Level, g.Disks)
		}
		if g.Level == 5 && (g.Layout < 0 || g.Layout > ParityN) {
			return fmt.Errorf("raid5 layout %d is unknown", int(g.Layout))
		}
	case 6:
		if g.Disks < 4 {
			return fmt.Errorf("raid6 with %d members (at least 4)", g.Disks)
		}
		if _, ok := layoutNames[g.Layout]; !ok {
			return fmt.Errorf("raid6 layout %d is unknown", int(g.Layout))
		}
	default:
		return fmt.Errorf("raid level %d has no parity geometry", g.Level)
	}
	if g.Disks > 256 {
		return fmt.Errorf("raid%d with %d members (at most 256)", g.Level, g.Disks)
	}
	if g.ChunkSize < 512 || g.ChunkSize%512 != 0 || g.ChunkSize > 1<<30 {
		return fmt.Errorf("raid%d chunk size %d is not a multiple of 512 between 512 and 1 GiB", g.Level, g.ChunkSize)
	}
	return nil
}

// ParityDisks is 1 for RAID4/5 and 2 for RAID6.
func (g Parity) ParityDisks() int {
	if g.Level == 6 {
		return 2
	}
	return 1
}

// DataDisks is the number of data chunks per stripe.
func (g Parity) DataDisks() int { return g.Disks - g.ParityDisks() }

// StripeBytes is the number of array bytes in one stripe (one chunk of
// every member).
func (g Parity) StripeBytes() int64 { return g.ChunkSize * int64(g.DataDisks()) }

// Size is the array size for members of devSize bytes each.
func (g Parity) Size(devSize int64) int64 {
	return devSize / g.ChunkSize * g.StripeBytes()
}

// Stripe says where the chunks of one stripe live.
type Stripe struct {
	Index int64 // stripe number; its chunks are at member offset Index*ChunkSize
	P, Q  int   // members holding P and Q (Q is -1 below RAID6)
	// Data[k] is the member holding data chunk k of the stripe, in array order.
	Data []int
	// QSlot[m] is the power of the generator member m's chunk is multiplied
	// by in Q, or -1 for the P and Q members. Without Q it is nil.
	QSlot []int
}

// Stripe maps stripe number s.
func (g Parity) Stripe(s int64) Stripe {
	n := g.Disks
	dd := g.DataDisks()
	st := Stripe{Index: s, Q: -1, Data: make([]int, dd)}
	for k := range dd {
		d, p, q := g.place(s, k)
		st.Data[k] = d
		st.P, st.Q = p, q
	}
	if g.Level == 6 {
		st.QSlot = make([]int, n)
		for i := range st.QSlot {
			st.QSlot[i] = -1
		}
		if g.Layout.ddf() {
			// DDF: every member is a slot in member order, P and Q zero.
			for _, d := range st.Data {
				st.QSlot[d] = d
			}
		} else {
			// md: slots in member order starting just after Q.
			d0 := 0
			if st.Q != n-1 {
				d0 = (st.Q + 1) % n
			}
			slot := 0
			for i, d := 0, d0; i < n; i, d = i+1, (d+1)%n {
				if d == st.P || d == st.Q {
					continue
				}
				st.QSlot[d] = slot
				slot++
			}
		}
	}
	return st
}

// place returns the member of data chunk k of stripe s and the P and Q
// members, as raid5_compute_sector().
func (g Parity) place(s int64, k int) (d, p, q int) {
	n := g.Disks
	dd := g.DataDisks()
	rot := func(m int) int { return int(s % int64(m)) }
	d, q = k, -1
	switch g.Level {
	case 4:
		p = dd
	case 5:
		switch g.Layout {
		case LeftAsymmetric:
			p = dd - rot(n)
			if d >= p {
				d++
			}
		case RightAsymmetric:
			p = rot(n)
			if d >= p {
				d++
			}
		case LeftSymmetric:
			p = dd - rot(n)
			d = (p + 1 + d) % n
		case RightSymmetric:
			p = rot(n)
			d = (p + 1 + d) % n
		case Parity0:
			p = 0
			d++
		case ParityN:
			p = dd
		}
	case 6:
		asym := func(pp int) {
			p, q = pp, pp+1
			if p == n-1 {
				d++
				q = 0
			} else if d >= p {
				d += 2
			}
		}
		switch g.Layout {
		case LeftAsymmetric:
			asym(n - 1 - rot(n))
		case RightAsymmetric, RotatingZeroRestart:
			asym(rot(n))
		case RotatingNRestart:
			asym(n - 1 - int((s+1)%int64(n)))
		case LeftSymmetric:
			p = n - 1 - rot(n)
			q = (p + 1) % n
			d = (p + 2 + d) % n
		case RightSymmetric:
			p = rot(n)
			q = (p + 1) % n
			d = (p + 2 + d) % n
		case Parity0:
			p, q = 0, 1
			d += 2
		case ParityN:
			p, q = dd, dd+1
		case RotatingNContinue:
			p = n - 1 - rot(n)
			q = (p + n - 1) % n
			d = (p + 1 + d) % n
		case LeftAsymmetric6:
			p = dd - rot(n-1)
			if d >= p {
				d++
			}
			q = n - 1
		case RightAsymmetric6:
			p = rot(n - 1)
			if d >= p {
				d++
			}
			q = n - 1
		case LeftSymmetric6:
			p = dd - rot(n-1)
			d = (p + 1 + d) % (n - 1)
			q = n - 1
		case RightSymmetric6:
			p = rot(n - 1)
			d = (p + 1 + d) % (n - 1)
			q = n - 1
		case Parity0_6:
			p = 0
			d++
			q = n - 1
		}
	}
	return d, p, q
}

// Locate maps an array byte offset to the member holding it and the byte
// offset on that member, plus how many bytes stay in the same chunk.
func (g Parity) Locate(off int64) (member int, memberOff int64, run int64) {
	chunk := off / g.ChunkSize
	in := off % g.ChunkSize
	dd := int64(g.DataDisks())
	s := chunk / dd
	d, _, _ := g.place(s, int(chunk%dd))
	return d, s*g.ChunkSize + in, g.ChunkSize - in
}
