package raid

import (
	"errors"
	"fmt"
	"io"
)

// MemberError is a read of one member that failed (or a member that is
// missing when its data was needed). Off is the byte offset on the member.
type MemberError struct {
	Member int
	Off    int64
	Err    error
}

func (e *MemberError) Error() string {
	return fmt.Sprintf("member %d at byte %d: %v", e.Member, e.Off, e.Err)
}

func (e *MemberError) Unwrap() error { return e.Err }

// ErrMissing marks a member that is absent.
var ErrMissing = errors.New("member missing")

// readFull reads len(p) bytes from r at off; a short read is an error.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// members holds the member readers and which ranges are usable.
type members struct {
	rs []io.ReaderAt
	// staleFrom[i] >= 0: member i is only valid below that member offset
	// (a rebuild in progress); -1: valid everywhere.
	staleFrom []int64
}

func newMembers(rs []io.ReaderAt) members {
	m := members{rs: rs, staleFrom: make([]int64, len(rs))}
	for i := range m.staleFrom {
		m.staleFrom[i] = -1
	}
	return m
}

// usable reports whether member i can serve [off, off+n).
func (m *members) usable(i int, off, n int64) bool {
	if m.rs[i] == nil {
		return false
	}
	return m.staleFrom[i] < 0 || off+n <= m.staleFrom[i]
}

func (m *members) read(i int, p []byte, off int64) error {
	if !m.usable(i, off, int64(len(p))) {
		return &MemberError{i, off, ErrMissing}
	}
	if err := readFull(m.rs[i], p, off); err != nil {
		return &MemberError{i, off, err}
	}
	return nil
}

// ParityReader reads a RAID4/5/6 array from its members' data areas,
// rebuilding the chunks of missing or unreadable members from parity.
type ParityReader struct {
	g    Parity
	m    members
	size int64
}

// NewParityReader returns a reader over members (one per member in array
// order, each starting at the member's data offset; nil for a missing
// member) exposing size bytes.
func NewParityReader(g Parity, rs []io.ReaderAt, size int64) (*ParityReader, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	if len(rs) != g.Disks {
		return nil, fmt.Errorf("raid%d with %d members but %d member readers", g.Level, g.Disks, len(rs))
	}
	if size < 0 {
		return nil, fmt.Errorf("raid%d array size %d", g.Level, size)
	}
	missing := 0
	for _, r := range rs {
		if r == nil {
			missing++
		}
	}
	if missing > g.ParityDisks() {
		return nil, fmt.Errorf("raid%d with %d of %d members missing: %w", g.Level, missing, g.Disks, ErrTooManyMissing)
	}
	return &ParityReader{g: g, m: newMembers(rs), size: size}, nil
}

// MarkStale says member i holds valid data only below member byte offset
// from (it was being rebuilt); above it the member counts as missing.
func (r *ParityReader) MarkStale(i int, from int64) { r.m.staleFrom[i] = from }

// Geometry returns the array geometry.
func (r *ParityReader) Geometry() Parity { return r.g }

// Size is the array size in bytes.
func (r *ParityReader) Size() int64 { return r.size }

// Degraded reports whether some member is missing.
func (r *ParityReader) Degraded() bool {
	for i := range r.m.rs {
		if r.m.rs[i] == nil || r.m.staleFrom[i] >= 0 {
			return true
		}
	}
	return false
}

// ReadAt reads array bytes. Chunks on healthy members are read directly;
// those on missing or failing members are rebuilt from the rest of their
// stripe.
func (r *ParityReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("raid%d: negative offset %d", r.g.Level, off)
	}
	done := 0
	for len(p) > 0 {
		if off >= r.size {
			return done, io.EOF
		}
		mem, moff, run := r.g.Locate(off)
		n := int(min(int64(len(p)), run, r.size-off))
		if err := r.m.read(mem, p[:n], moff); err != nil {
			if rerr := r.rebuild(p[:n], mem, moff); rerr != nil {
				return done, fmt.Errorf("raid%d array byte %d: %w (rebuild: %w)", r.g.Level, off, err, rerr)
			}
		}
		p = p[n:]
		off += int64(n)
		done += n
	}
	return done, nil
}

// rebuild computes the bytes of member target at member offset moff from
// the other members of the stripe.
func (r *ParityReader) rebuild(out []byte, target int, moff int64) error {
	st := r.g.Stripe(moff / r.g.ChunkSize)
	n := len(out)
	bufs := make([][]byte, r.g.Disks)
	failed := map[int]bool{target: true}
	var firstErr error
	for i := range r.g.Disks {
		if i == target {
			continue
		}
		if i == st.Q && (st.P != target) && r.m.usable(st.P, moff, int64(n)) {
			// Q is only needed when P cannot serve; read it lazily below.
			continue
		}
		b := make([]byte, n)
		if err := r.m.read(i, b, moff); err != nil {
			failed[i] = true
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		bufs[i] = b
	}
	var lost []int // data members without data
	for _, d := range st.Data {
		if failed[d] {
			lost = append(lost, d)
		}
	}
	pOK := bufs[st.P] != nil
	if (len(lost) > 1 || !pOK) && st.Q >= 0 && bufs[st.Q] == nil && !failed[st.Q] {
		b := make([]byte, n)
		if err := r.m.read(st.Q, b, moff); err != nil {
			failed[st.Q] = true
			if firstErr == nil {
				firstErr = err
			}
		} else {
			bufs[st.Q] = b
		}
	}
	qOK := st.Q >= 0 && bufs[st.Q] != nil
	var present [][]byte
	var slots []int
	for _, d := range st.Data {
		if !failed[d] {
			present = append(present, bufs[d])
			if st.QSlot != nil {
				slots = append(slots, st.QSlot[d])
			}
		}
	}
	switch {
	case len(lost) == 1 && pOK:
		RecoverP(out, bufs[st.P], present)
	case len(lost) == 1 && qOK:
		RecoverQ(out, bufs[st.Q], st.QSlot[target], present, slots)
	case len(lost) == 2 && pOK && qOK:
		other := lost[0]
		if other == target {
			other = lost[1]
		}
		scratch := make([]byte, n)
		RecoverPQ(out, scratch, bufs[st.P], bufs[st.Q], st.QSlot[target], st.QSlot[other], present, slots)
	default:
		if firstErr == nil {
			firstErr = ErrTooManyMissing
		}
		return fmt.Errorf("stripe %d: %d data chunks lost, P %s, Q %s: %w", st.Index, len(lost), okWord(pOK), okWord(qOK), firstErr)
	}
	return nil
}

func okWord(ok bool) string {
	if ok {
		return "readable"
	}
	return "unavailable"
}

// Mismatch is a stripe whose stored parity disagrees with its data.
type Mismatch struct {
	Stripe int64 `json:"stripe"`
	// MemberOff is the member byte offset of the first disagreeing 512-byte
	// sector (the same on every member); Len runs to the end of the last.
	MemberOff int64 `json:"member_offset"`
	Len       int64 `json:"length"`
	// ArrayOff is the first array byte of the stripe and ArrayLen its size.
	ArrayOff int64 `json:"array_offset"`
	ArrayLen int64 `json:"array_length"`
	P        bool  `json:"p_bad"` // P disagrees
	Q        bool  `json:"q_bad"` // Q disagrees
}

// ErrUnverifiable is returned by Check for stripes whose parity cannot be
// verified because too many members are missing.
var ErrUnverifiable = errors.New("parity cannot be verified with these members missing")

// CheckStripe recomputes the parity of stripe s and returns the mismatch,
// or nil when P (and Q) match the data. With one member missing a RAID6 stripe is still checked: the
// missing chunk is rebuilt from one syndrome and the other is verified.
func (r *ParityReader) CheckStripe(s int64) (*Mismatch, error) {
	g := r.g
	st := g.Stripe(s)
	moff := s * g.ChunkSize
	n := g.ChunkSize
	bufs := make([][]byte, g.Disks)
	var missing []int
	for i := range g.Disks {
		b := make([]byte, n)
		if err := r.m.read(i, b, moff); err != nil {
			missing = append(missing, i)
			continue
		}
		bufs[i] = b
	}
	if len(missing) > 0 {
		if g.Level != 6 || len(missing) > 1 {
			return nil, fmt.Errorf("stripe %d: member %d: %w", s, missing[0], ErrUnverifiable)
		}
		x := missing[0]
		if x != st.P && x != st.Q {
			// Rebuild the data chunk from P, then verify Q.
			var present [][]byte
			for _, d := range st.Data {
				if d != x {
					present = append(present, bufs[d])
				}
			}
			b := make([]byte, n)
			RecoverP(b, bufs[st.P], present)
			bufs[x] = b
		}
	}
	data := make([][]byte, len(st.Data))
	var slots []int
	for k, d := range st.Data {
		data[k] = bufs[d]
		if st.QSlot != nil {
			slots = append(slots, st.QSlot[d])
		}
	}
	p := make([]byte, n)
	var q []byte
	if st.Q >= 0 {
		q = make([]byte, n)
	}
	Syndromes(p, q, data, slots)
	first, last := int64(-1), int64(-1)
	var badP, badQ bool
	for sec := int64(0); sec < n; sec += 512 {
		bad := false
		if bufs[st.P] != nil && !equal(p[sec:sec+512], bufs[st.P][sec:sec+512]) {
			bad, badP = true, true
		}
		if q != nil && bufs[st.Q] != nil && !equal(q[sec:sec+512], bufs[st.Q][sec:sec+512]) {
			bad, badQ = true, true
		}
		if bad {
			if first < 0 {
				first = sec
			}
			last = sec + 512
		}
	}
	if first < 0 {
		return nil, nil
	}
	return &Mismatch{
		Stripe: s, MemberOff: moff + first, Len: last - first,
		ArrayOff: s * g.StripeBytes(), ArrayLen: g.StripeBytes(),
		P: badP, Q: badQ,
	}, nil
}

func equal(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Stripes is the number of stripes the array's size covers.
func (r *ParityReader) Stripes() int64 {
	sb := r.g.StripeBytes()
	return (r.size + sb - 1) / sb
}

// Raid10Reader reads an md raid10 array from its members, taking each
// chunk from the first copy that is present and readable.
type Raid10Reader struct {
	g    Raid10
	m    members
	size int64
}

// NewRaid10Reader returns a reader over members (nil for missing ones)
// exposing size bytes.
func NewRaid10Reader(g Raid10, rs []io.ReaderAt, size int64) (*Raid10Reader, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	if len(rs) != g.Disks {
		return nil, fmt.Errorf("raid10 with %d members but %d member readers", g.Disks, len(rs))
	}
	if size < 0 {
		return nil, fmt.Errorf("raid10 array size %d", size)
	}
	return &Raid10Reader{g: g, m: newMembers(rs), size: size}, nil
}

// MarkStale says member i holds valid data only below member offset from.
func (r *Raid10Reader) MarkStale(i int, from int64) { r.m.staleFrom[i] = from }

// Size is the array size in bytes.
func (r *Raid10Reader) Size() int64 { return r.size }

// Geometry returns the array geometry.
func (r *Raid10Reader) Geometry() Raid10 { return r.g }

// ReadAt reads array bytes from the first usable copy of each chunk.
func (r *Raid10Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("raid10: negative offset %d", off)
	}
	done := 0
	for len(p) > 0 {
		if off >= r.size {
			return done, io.EOF
		}
		locs, run := r.g.Locate(off)
		n := int(min(int64(len(p)), run, r.size-off))
		var firstErr error
		ok := false
		for _, l := range locs {
			err := r.m.read(l.Member, p[:n], l.Off)
			if err == nil {
				ok = true
				break
			}
			if firstErr == nil {
				firstErr = err
			}
		}
		if !ok {
			return done, fmt.Errorf("raid10 array byte %d: no copy readable (%d copies): %w", off, len(locs), firstErr)
		}
		p = p[n:]
		off += int64(n)
		done += n
	}
	return done, nil
}
