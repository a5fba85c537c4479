package lvm

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/imgtool/imgtool/image"
)

// Renaming a VG on disk, the way vgrename (and, with NewUUIDs, vgimportclone)
// would: new metadata text with the new name and seqno+1 is written into
// every metadata area of every PV of the VG, after the current copy in the
// ring, and each area's raw_locn slot 0 is pointed at it. With NewUUIDs the
// VG and every PV get fresh UUIDs, in the metadata and in the PV labels.
//
// Nothing is written by PlanRename: it returns a Plan, the exact list of
// byte ranges to change in the outermost image files (through image.Resolve,
// so a PV inside a partition or inside another VG's LV is handled), with the
// old and new bytes. Apply writes a plan; Undo restores the old bytes from
// an UndoFile saved before applying.

// RenameOptions tune PlanRename.
type RenameOptions struct {
	// NewUUIDs gives the VG and its PVs new random UUIDs (vgimportclone).
	NewUUIDs bool
	// Force plans even when the VG's metadata copies disagree, a PV is
	// missing, or the metadata did not come from disk.
	Force bool
	// Rand is the randomness for new UUIDs (crypto/rand when nil).
	Rand io.Reader
}

// Write is one byte range to change.
type Write struct {
	// Target names the outermost image file (its path), Under is that
	// reader itself.
	Target string      `json:"target"`
	Under  io.ReaderAt `json:"-"`
	Offset int64       `json:"offset"`
	Old    []byte      `json:"-"`
	New    []byte      `json:"-"`
	// Description says what the bytes are.
	Description string `json:"description"`
}

// Plan is a rename ready to apply.
type Plan struct {
	VGName    string `json:"vg_name"`
	VGUUID    string `json:"vg_uuid"`
	NewName   string `json:"new_name"`
	NewVGUUID string `json:"new_vg_uuid"`
	OldSeqno  uint64 `json:"old_seqno"`
	NewSeqno  uint64 `json:"new_seqno"`
	// PVUUIDs maps old PV UUIDs to new ones (identity without NewUUIDs).
	PVUUIDs map[string]string `json:"pv_uuids"`
	Writes  []Write           `json:"writes"`
	// Text is the new metadata text (without the terminating NUL).
	Text []byte `json:"-"`
}

// ValidVGName reports whether name is acceptable to LVM as a VG name.
func ValidVGName(name string) error {
	if name == "" || len(name) > 127 {
		return fmt.Errorf("VG name must have 1 to 127 characters")
	}
	if name == "." || name == ".." || name[0] == '-' {
		return fmt.Errorf("VG name %q is not allowed", name)
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("+_.-", c) >= 0) {
			return fmt.Errorf("VG name %q has character %q; LVM allows a-z A-Z 0-9 + _ . -", name, c)
		}
	}
	return nil
}

// newUUID returns a random LVM UUID (32 characters of [0-9A-Za-z]), raw.
func newUUID(r io.Reader) (string, error) {
	const chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, pvUUIDLen)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("random UUID: %w", err)
	}
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b), nil
}

type splice struct {
	start, end int
	text       string
}

// quote returns s as an LVM config string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// PlanRename plans renaming vg to newName on disk.
func PlanRename(vg *VG, newName string, opts *RenameOptions) (*Plan, error) {
	if opts == nil {
		opts = &RenameOptions{}
	}
	rnd := opts.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	if err := ValidVGName(newName); err != nil {
		return nil, err
	}
	if newName == vg.Name && !opts.NewUUIDs {
		return nil, fmt.Errorf("VG %s already has that name", vg.Name)
	}
	if !opts.Force {
		if vg.Inconsistent {
			return nil, fmt.Errorf("VG %s: metadata copies disagree or are damaged (%s); refusing without Force", vg.Name, strings.Join(vg.Notes, "; "))
		}
		if len(vg.Missing) > 0 {
			return nil, fmt.Errorf("VG %s: PVs %s are missing; their metadata could not be updated; refusing without Force", vg.Name, strings.Join(vg.Missing, ", "))
		}
		if vg.Source == nil {
			return nil, fmt.Errorf("VG %s: metadata was supplied, not read from disk; refusing without Force", vg.Name)
		}
	}
	md := vg.Meta
	p := &Plan{VGName: vg.Name, VGUUID: vg.UUID, NewName: newName, NewVGUUID: vg.UUID, OldSeqno: md.Seqno,
		NewSeqno: md.Seqno + 1, PVUUIDs: map[string]string{}}
	var sp []splice
	// The VG section's key.
	for _, it := range md.Root.Items {
		if it.Section == md.VG {
			sp = append(sp, splice{it.KeyStart, it.KeyStart + len(it.Key), newName})
		}
	}
	sq := md.VG.Get("seqno")
	sp = append(sp, splice{sq.Start, sq.End, fmt.Sprint(p.NewSeqno)})
	newRaw := map[string]string{} // old dashed PV UUID -> new raw
	if opts.NewUUIDs {
		u, err := newUUID(rnd)
		if err != nil {
			return nil, err
		}
		p.NewVGUUID = FormatUUID(u)
		id := md.VG.Get("id")
		sp = append(sp, splice{id.Start, id.End, quote(p.NewVGUUID)})
		for _, mp := range md.PVs {
			u, err := newUUID(rnd)
			if err != nil {
				return nil, err
			}
			newRaw[mp.ID] = u
			p.PVUUIDs[mp.ID] = FormatUUID(u)
			v := mp.Section.Get("id")
			sp = append(sp, splice{v.Start, v.End, quote(FormatUUID(u))})
		}
	} else {
		for _, mp := range md.PVs {
			p.PVUUIDs[mp.ID] = mp.ID
		}
	}
	sort.Slice(sp, func(i, j int) bool { return sp[i].start > sp[j].start })
	text := append([]byte(nil), md.Text...)
	for _, s := range sp {
		text = append(text[:s.start], append([]byte(s.text), text[s.end:]...)...)
	}
	// Check our own edit before anyone writes it.
	check, err := ParseMetadata(text)
	if err != nil || check.VGName != newName || check.Seqno != p.NewSeqno || check.ID != p.NewVGUUID {
		return nil, fmt.Errorf("internal error: edited metadata does not parse back (%v)", err)
	}
	p.Text = text
	buf := append(append([]byte(nil), text...), 0) // LVM stores the NUL
	crc := lvmCRC(initialCRC, buf)

	for _, vp := range vg.PVs {
		pv := vp.PV
		if pv == nil {
			continue
		}
		for i, m := range pv.MDAs {
			if m.Header == nil {
				return nil, fmt.Errorf("PV %s metadata area %d is unreadable (%v); refusing to write", pv.UUID, i, m.Err)
			}
			if m.Ignored {
				continue
			}
			ws, err := planMDA(pv, i, m, buf, crc)
			if err != nil {
				return nil, err
			}
			p.Writes = append(p.Writes, ws...)
		}
		if opts.NewUUIDs {
			w, err := planLabel(pv, newRaw[pv.UUID])
			if err != nil {
				return nil, err
			}
			p.Writes = append(p.Writes, w...)
		}
	}
	if len(p.Writes) == 0 {
		return nil, fmt.Errorf("VG %s: no metadata area to write", vg.Name)
	}
	return p, nil
}

// planMDA places buf in metadata area m after its current copy, as
// _vg_write_raw does, and rewrites the header to point at it.
func planMDA(pv *PV, idx int, m *MDA, buf []byte, crc uint32) ([]Write, error) {
	h := m.Header
	size := uint64(len(buf))
	if maxSize := (h.Size-mdaHeaderSize)/2 - 512; size > maxSize {
		return nil, fmt.Errorf("PV %s metadata area %d: new metadata (%d bytes) exceeds the maximum %d", pv.UUID, idx, size, maxSize)
	}
	var oldStart, oldLast, oldWrap uint64
	have := len(h.RawLocns) > 0 && h.RawLocns[0].Offset != 0
	if have {
		old := h.RawLocns[0]
		if old.Offset >= h.Size || old.Size > h.Size {
			return nil, fmt.Errorf("PV %s metadata area %d: current raw_locn %+v lies outside the area", pv.UUID, idx, old)
		}
		oldStart = old.Offset
		if old.Offset+old.Size > h.Size {
			oldWrap = old.Offset + old.Size - h.Size
			oldLast = oldWrap + mdaHeaderSize - 1
		} else {
			oldLast = old.Offset + old.Size - 1
		}
	}
	newStart := uint64(mdaHeaderSize)
	if have && h.Size-oldLast >= mdaAlignment {
		next := oldLast + 1
		newStart = next + (mdaAlignment - next%mdaAlignment)
		if newStart > h.Size-mdaAlignment {
			newStart = mdaHeaderSize
		}
	}
	n1, n2 := ringSpan(newStart, size, h.Size)
	newLast := newStart + size - 1
	if n2 > 0 {
		newLast = n2 + mdaHeaderSize - 1
	}
	if have {
		overlap := true
		switch {
		case n2 > 0 && oldWrap > 0:
		case n2 == 0 && oldWrap == 0 && newStart > oldLast:
			overlap = false
		case n2 == 0 && oldWrap == 0 && newStart < oldStart && newLast < oldStart:
			overlap = false
		case oldWrap > 0 && n2 == 0 && oldLast < newStart && newLast < oldStart:
			overlap = false
		case n2 > 0 && oldWrap == 0 && newLast < oldStart && oldLast < newStart:
			overlap = false
		}
		if overlap {
			return nil, fmt.Errorf("PV %s metadata area %d: new metadata (%d bytes) would overwrite the current copy", pv.UUID, idx, size)
		}
	}
	area := m.Locn.Offset
	var out []Write
	add := func(off uint64, data []byte, desc string) error {
		ws, err := resolveWrite(pv, int64(off), data, desc)
		out = append(out, ws...)
		return err
	}
	desc := fmt.Sprintf("PV %s mda %d: metadata text", pv.UUID, idx)
	if err := add(area+newStart, buf[:n1], desc); err != nil {
		return nil, err
	}
	if n2 > 0 {
		if err := add(area+mdaHeaderSize, buf[n1:], desc+" (wrapped part)"); err != nil {
			return nil, err
		}
	}
	nh := *h
	nh.RawLocns = []RawLocn{{Offset: newStart, Size: size, Checksum: crc}, {}}
	if err := add(area, nh.marshal(), fmt.Sprintf("PV %s mda %d: header, raw_locn 0 -> offset %d size %d", pv.UUID, idx, newStart, size)); err != nil {
		return nil, err
	}
	return out, nil
}

// planLabel rewrites the label sector with a new PV UUID and CRC.
func planLabel(pv *PV, newRaw string) ([]Write, error) {
	off := int64(pv.LabelSector) * SectorSize
	sec := make([]byte, SectorSize)
	if _, err := pv.R.ReadAt(sec, off); err != nil {
		return nil, fmt.Errorf("PV %s: rereading label: %w", pv.UUID, err)
	}
	p := int(pv.Label.Offset)
	if string(sec[p:p+pvUUIDLen]) != pv.Header.UUID {
		return nil, fmt.Errorf("PV %s: label changed since it was read", pv.UUID)
	}
	copy(sec[p:], newRaw)
	binary.LittleEndian.PutUint32(sec[16:], lvmCRC(initialCRC, sec[labelCRCStart:]))
	return resolveWrite(pv, off, sec, fmt.Sprintf("PV %s: label, new PV UUID %s", pv.UUID, FormatUUID(newRaw)))
}

// resolveWrite maps data at PV offset off to the outermost image, split
// where the mapping is not contiguous, and records the old bytes.
func resolveWrite(pv *PV, off int64, data []byte, desc string) ([]Write, error) {
	var out []Write
	for len(data) > 0 {
		under, abs, run, err := image.Resolve(pv.R, off)
		if err != nil {
			return out, fmt.Errorf("PV %s: cannot map byte %d to the image file: %w", pv.UUID, off, err)
		}
		n := int64(len(data))
		if run < n {
			n = run
		}
		old := make([]byte, n)
		if _, err := under.ReadAt(old, abs); err != nil {
			return out, fmt.Errorf("PV %s: reading %d bytes at image byte %d: %w", pv.UUID, n, abs, err)
		}
		out = append(out, Write{Target: targetName(under), Under: under, Offset: abs, Old: old,
			New: append([]byte(nil), data[:n]...), Description: desc})
		data = data[n:]
		off += n
	}
	return out, nil
}

func targetName(r io.ReaderAt) string {
	switch t := r.(type) {
	case *image.Image:
		return t.Path
	case *os.File:
		return t.Name()
	case interface{ Name() string }:
		return t.Name()
	}
	return fmt.Sprintf("%T", r)
}

// Targets lists the image files a plan writes to.
func (p *Plan) Targets() []string {
	seen := map[string]bool{}
	var out []string
	for _, w := range p.Writes {
		if !seen[w.Target] {
			seen[w.Target] = true
			out = append(out, w.Target)
		}
	}
	return out
}

// String prints the plan (a dry run).
func (p *Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rename VG %s (%s) to %s", p.VGName, p.VGUUID, p.NewName)
	if p.NewVGUUID != p.VGUUID {
		fmt.Fprintf(&b, ", new VG UUID %s", p.NewVGUUID)
	}
	fmt.Fprintf(&b, "; seqno %d -> %d\n", p.OldSeqno, p.NewSeqno)
	for _, old := range sortedKeys(p.PVUUIDs) {
		if p.PVUUIDs[old] != old {
			fmt.Fprintf(&b, "  PV %s -> %s\n", old, p.PVUUIDs[old])
		}
	}
	for _, w := range p.Writes {
		fmt.Fprintf(&b, "  write %6d bytes at %s:%d  %s\n", len(w.New), w.Target, w.Offset, w.Description)
	}
	return b.String()
}

func sortedKeys(m map[string]string) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

// WriteTarget is an image opened for writing (image.OpenWritable gives one).
type WriteTarget interface {
	io.ReaderAt
	io.WriterAt
}

type syncer interface{ Sync() error }

// ErrChanged is returned by Apply and Undo when the bytes on disk are not
// what the plan or undo file expects.
var ErrChanged = errors.New("image bytes changed since the plan was made")

// Apply writes the plan. targets maps each Plan.Targets() name to the image
// opened for writing. Every range is first checked to still hold the old
// bytes; nothing is written if one does not. Metadata text goes first, then
// labels, then the mda headers that commit the new copy; each target is
// synced at the end. Save p.Undo() before calling Apply.
func Apply(p *Plan, targets map[string]WriteTarget) error {
	for _, w := range p.Writes {
		t := targets[w.Target]
		if t == nil {
			return fmt.Errorf("no writable target for %s", w.Target)
		}
		cur := make([]byte, len(w.Old))
		if _, err := t.ReadAt(cur, w.Offset); err != nil {
			return fmt.Errorf("%s: reading %d bytes at %d: %w", w.Target, len(cur), w.Offset, err)
		}
		if !bytes.Equal(cur, w.Old) {
			return fmt.Errorf("%s at byte %d (%s): %w", w.Target, w.Offset, w.Description, ErrChanged)
		}
	}
	order := func(w Write) int {
		switch {
		case strings.Contains(w.Description, "metadata text"):
			return 0
		case strings.Contains(w.Description, "label"):
			return 1
		}
		return 2
	}
	ws := append([]Write(nil), p.Writes...)
	sort.SliceStable(ws, func(i, j int) bool { return order(ws[i]) < order(ws[j]) })
	for _, w := range ws {
		if _, err := targets[w.Target].WriteAt(w.New, w.Offset); err != nil {
			return fmt.Errorf("%s: writing %d bytes at %d (%s): %w", w.Target, len(w.New), w.Offset, w.Description, err)
		}
	}
	return syncAll(targets)
}

func syncAll(targets map[string]WriteTarget) error {
	for name, t := range targets {
		if s, ok := t.(syncer); ok {
			if err := s.Sync(); err != nil {
				return fmt.Errorf("%s: sync: %w", name, err)
			}
		}
	}
	return nil
}

// UndoFile records what Apply overwrote.
type UndoFile struct {
	Format  string      `json:"format"` // "imgtool-lvm-undo"
	Version int         `json:"version"`
	VGName  string      `json:"vg_name"`
	VGUUID  string      `json:"vg_uuid"`
	NewName string      `json:"new_name"`
	Writes  []UndoWrite `json:"writes"`
}

// UndoWrite is one saved range: Old are the original bytes; NewSHA256 is
// the sha256 of what Apply wrote there, checked before restoring so that
// undo does not clobber later changes.
type UndoWrite struct {
	Target      string `json:"target"`
	Offset      int64  `json:"offset"`
	Old         []byte `json:"old"` // base64 in JSON
	NewSHA256   string `json:"new_sha256"`
	Description string `json:"description"`
}

const undoFormat = "imgtool-lvm-undo"

// Undo returns the undo record for p.
func (p *Plan) Undo() *UndoFile {
	u := &UndoFile{Format: undoFormat, Version: 1, VGName: p.VGName, VGUUID: p.VGUUID, NewName: p.NewName}
	for _, w := range p.Writes {
		s := sha256.Sum256(w.New)
		u.Writes = append(u.Writes, UndoWrite{Target: w.Target, Offset: w.Offset, Old: w.Old,
			NewSHA256: hex.EncodeToString(s[:]), Description: w.Description})
	}
	return u
}

// Marshal encodes the undo file as JSON.
func (u *UndoFile) Marshal() ([]byte, error) { return json.MarshalIndent(u, "", "  ") }

// ReadUndo decodes an undo file.
func ReadUndo(b []byte) (*UndoFile, error) {
	var u UndoFile
	if err := json.Unmarshal(b, &u); err != nil {
		return nil, fmt.Errorf("undo file: %w", err)
	}
	if u.Format != undoFormat || u.Version != 1 {
		return nil, fmt.Errorf("undo file: format %q version %d, want %q version 1", u.Format, u.Version, undoFormat)
	}
	for i, w := range u.Writes {
		if w.Offset < 0 || len(w.Old) == 0 || len(w.NewSHA256) != 64 {
			return nil, fmt.Errorf("undo file: entry %d is malformed", i)
		}
	}
	return &u, nil
}

// Targets lists the image files an undo file writes to.
func (u *UndoFile) Targets() []string {
	seen := map[string]bool{}
	var out []string
	for _, w := range u.Writes {
		if !seen[w.Target] {
			seen[w.Target] = true
			out = append(out, w.Target)
		}
	}
	return out
}

// Undo restores the saved bytes. Unless force, every range must still hold
// exactly what Apply wrote (by sha256); otherwise nothing is written.
func Undo(u *UndoFile, targets map[string]WriteTarget, force bool) error {
	for _, w := range u.Writes {
		t := targets[w.Target]
		if t == nil {
			return fmt.Errorf("no writable target for %s", w.Target)
		}
		if force {
			continue
		}
		cur := make([]byte, len(w.Old))
		if _, err := t.ReadAt(cur, w.Offset); err != nil {
			return fmt.Errorf("%s: reading %d bytes at %d: %w", w.Target, len(cur), w.Offset, err)
		}
		if s := sha256.Sum256(cur); hex.EncodeToString(s[:]) != w.NewSHA256 {
			return fmt.Errorf("%s at byte %d (%s): %w (not what the rename wrote)", w.Target, w.Offset, w.Description, ErrChanged)
		}
	}
	// The old text was never overwritten (new copies go after it in the
	// ring), so restoring the headers alone recommits it; restore in
	// reverse plan order, headers and labels before the new text.
	for i := len(u.Writes) - 1; i >= 0; i-- {
		w := u.Writes[i]
		if _, err := targets[w.Target].WriteAt(w.Old, w.Offset); err != nil {
			return fmt.Errorf("%s: restoring %d bytes at %d: %w", w.Target, len(w.Old), w.Offset, err)
		}
	}
	return syncAll(targets)
}
