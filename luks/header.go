package luks

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Magic numbers of the binary headers.
const (
	magicPrimary   = "LUKS\xba\xbe"
	magicSecondary = "SKUL\xba\xbe"

	luks1HeaderSize = 592
	luks2BinSize    = 4096
	sectorSize512   = 512

	// Bounds that keep damaged headers from asking for absurd work.
	maxKeyBytes      = 512      // master/area keys (4096 bits)
	maxKeyMaterial   = 64 << 20 // stripes * key size
	maxJSONArea      = 4 << 20  // LUKS2 hdr_size is 16 KiB .. 4 MiB
	maxArgon2Memory  = 4 << 20  // KiB (4 GiB), cryptsetup's limit
	maxArgon2Threads = 16
)

// ErrNotLUKS is returned when a volume has no LUKS magic at byte 0.
var ErrNotLUKS = errors.New("luks: no LUKS header")

// ErrWrongKey is returned (wrapped) when no keyslot opens with the given
// passphrase or key file.
var ErrWrongKey = errors.New("no keyslot matches the passphrase or key file")

// Keyslot is one key slot: how a passphrase becomes the key that decrypts
// this slot's copy of the master key.
type Keyslot struct {
	ID       int    `json:"id"`
	Priority int    `json:"priority"` // LUKS2: 0 ignore, 1 normal, 2 high
	KDF      string `json:"kdf"`      // pbkdf2, argon2i, argon2id
	Hash     string `json:"hash,omitempty"`
	// Iterations for pbkdf2; time cost for argon2.
	Iterations int    `json:"iterations"`
	Memory     int    `json:"memory_kib,omitempty"` // argon2
	CPUs       int    `json:"cpus,omitempty"`       // argon2 lanes
	Salt       []byte `json:"-"`
	// Key material: AreaSize bytes at byte AreaOffset of the header device,
	// encrypted with AreaCipher under an AreaKeyBytes-long derived key.
	AreaOffset   int64  `json:"area_offset"`
	AreaSize     int64  `json:"area_size"`
	AreaCipher   string `json:"area_cipher"`
	AreaKeyBytes int    `json:"area_key_bytes"`
	KeyBytes     int    `json:"key_bytes"` // master key size
	Stripes      int    `json:"stripes"`
	AFHash       string `json:"af_hash"`
}

// Segment is where the encrypted data lives and how it is encrypted.
type Segment struct {
	Offset int64 `json:"offset"`
	// Size is the data size in bytes, or -1 for "the rest of the device".
	Size       int64  `json:"size"`
	Cipher     string `json:"cipher"` // e.g. aes-xts-plain64
	SectorSize int    `json:"sector_size"`
	IVTweak    uint64 `json:"iv_tweak,omitempty"`
}

type digest struct {
	keyslots   []int
	hash       string
	iterations int
	salt, sum  []byte
}

// Header is a parsed LUKS1 or LUKS2 header.
type Header struct {
	Version  int       `json:"version"`
	UUID     string    `json:"uuid"`
	Label    string    `json:"label,omitempty"`
	Subsys   string    `json:"subsystem,omitempty"`
	Keyslots []Keyslot `json:"keyslots"`
	Segment  Segment   `json:"segment"`
	// HeaderSize is the size of the header area(s) in bytes; for LUKS2 the
	// size of one binary+JSON copy.
	HeaderSize int64 `json:"header_size"`
	// Seqid is the LUKS2 header sequence number of the copy in use.
	Seqid uint64 `json:"seqid,omitempty"`
	// Notes report damage and fallbacks (a bad primary header, ...).
	Notes []string `json:"notes,omitempty"`

	// Detached says the header came from its own file (cryptsetup
	// luksFormat --header) and the data from another device.
	Detached bool `json:"detached,omitempty"`

	digests []digest
	r       io.ReaderAt // the header (and keyslot areas)
	size    int64
	data    io.ReaderAt // the encrypted data: r unless detached
	dataSz  int64
}

// Cipher returns the data cipher spec, e.g. "aes-xts-plain64".
func (h *Header) Cipher() string { return h.Segment.Cipher }

// Parse reads the LUKS header of the volume r of size bytes.
func Parse(r io.ReaderAt, size int64) (*Header, error) {
	return parse(r, size, nil, -1)
}

// ParseDetached reads a detached LUKS header (cryptsetup luksFormat
// --header HDR DATA) from hdr, hdrSize bytes, for the data device data of
// dataSize bytes, which carries no header: the segment offset (0 as
// cryptsetup makes it) counts from the data device's first byte. Nothing
// in the header names its data device; the caller says which it is.
func ParseDetached(hdr io.ReaderAt, hdrSize int64, data io.ReaderAt, dataSize int64) (*Header, error) {
	if dataSize < 0 {
		return nil, fmt.Errorf("luks: data device size %d", dataSize)
	}
	return parse(hdr, hdrSize, data, dataSize)
}

// parse reads a header from r; data and dataSize are the data device when
// detached (dataSize >= 0), else r holds both.
func parse(r io.ReaderAt, size int64, data io.ReaderAt, dataSize int64) (*Header, error) {
	h, err := parseHeader(r, size, dataSize)
	if err != nil {
		return nil, err
	}
	h.data, h.dataSz = r, size
	if dataSize >= 0 {
		h.data, h.dataSz, h.Detached = data, dataSize, true
	}
	return h, nil
}

func parseHeader(r io.ReaderAt, size, dataSize int64) (*Header, error) {
	var b [luks1HeaderSize]byte
	if size < int64(len(b)) {
		return nil, ErrNotLUKS
	}
	if _, err := r.ReadAt(b[:], 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("luks: reading header at byte 0: %w", err)
	}
	if string(b[:6]) != magicPrimary {
		// A LUKS2 device whose primary binary header is gone may still
		// have its secondary.
		h, err := parseLUKS2(r, size, b[:], dataSize)
		if err == nil {
			return h, nil
		}
		return nil, ErrNotLUKS
	}
	switch v := binary.BigEndian.Uint16(b[6:]); v {
	case 1:
		return parseLUKS1(r, size, b[:], dataSize)
	case 2:
		return parseLUKS2(r, size, b[:], dataSize)
	default:
		return nil, fmt.Errorf("luks: unknown LUKS version %d at byte 6", v)
	}
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// --- LUKS1 ----------------------------------------------------------------

const (
	luks1SlotActive   = 0x00AC71F3
	luks1SlotDisabled = 0x0000DEAD
)

// parseLUKS1 parses the LUKS1 header b of r; dataSize >= 0 is the size of
// a detached data device, whose payload may start at byte 0.
func parseLUKS1(r io.ReaderAt, size int64, b []byte, dataSize int64) (*Header, error) {
	be := binary.BigEndian
	h := &Header{Version: 1, r: r, size: size}
	name, mode, hash := cstring(b[8:40]), cstring(b[40:72]), cstring(b[72:104])
	payload := int64(be.Uint32(b[104:])) * sectorSize512
	keyBytes := int(be.Uint32(b[108:]))
	h.UUID = cstring(b[168:208])
	if keyBytes <= 0 || keyBytes > maxKeyBytes {
		return nil, fmt.Errorf("luks: LUKS1 key size %d bytes at byte 108 is out of range", keyBytes)
	}
	if name == "" || mode == "" {
		return nil, fmt.Errorf("luks: LUKS1 header has no cipher name/mode (bytes 8-71)")
	}
	if dataSize < 0 && (payload < luks1HeaderSize || payload > size) {
		return nil, fmt.Errorf("luks: LUKS1 payload offset %d (byte 104) is outside the %d-byte volume", payload, size)
	}
	if dataSize >= 0 && payload > dataSize {
		return nil, fmt.Errorf("luks: LUKS1 payload offset %d (byte 104) is outside the %d-byte data device", payload, dataSize)
	}
	cipher := strings.ToLower(name + "-" + mode)
	h.Segment = Segment{Offset: payload, Size: -1, Cipher: cipher, SectorSize: sectorSize512}
	h.HeaderSize = payload
	iter := int(be.Uint32(b[164:]))
	if iter <= 0 {
		return nil, fmt.Errorf("luks: LUKS1 master-key digest iterations %d at byte 164", iter)
	}
	d := digest{hash: strings.ToLower(hash), iterations: iter,
		salt: append([]byte(nil), b[132:164]...), sum: append([]byte(nil), b[112:132]...)}
	for i := 0; i < 8; i++ {
		s := b[208+48*i : 208+48*(i+1)]
		state := be.Uint32(s[0:])
		switch state {
		case luks1SlotActive:
		case luks1SlotDisabled:
			continue
		default:
			h.Notes = append(h.Notes, fmt.Sprintf("keyslot %d has an unknown state %#x (byte %d); skipped", i, state, 208+48*i))
			continue
		}
		ks := Keyslot{ID: i, Priority: 1, KDF: "pbkdf2", Hash: d.hash,
			Iterations: int(be.Uint32(s[4:])), Salt: append([]byte(nil), s[8:40]...),
			AreaOffset: int64(be.Uint32(s[40:])) * sectorSize512, AreaCipher: cipher,
			AreaKeyBytes: keyBytes, KeyBytes: keyBytes, Stripes: int(be.Uint32(s[44:])), AFHash: d.hash}
		ks.AreaSize = int64(ks.Stripes) * int64(keyBytes)
		if err := checkSlot(&ks, size); err != nil {
			h.Notes = append(h.Notes, fmt.Sprintf("keyslot %d (byte %d): %v; skipped", i, 208+48*i, err))
			continue
		}
		d.keyslots = append(d.keyslots, i)
		h.Keyslots = append(h.Keyslots, ks)
	}
	h.digests = []digest{d}
	return h, nil
}

func checkSlot(ks *Keyslot, size int64) error {
	if ks.KeyBytes <= 0 || ks.KeyBytes > maxKeyBytes || ks.AreaKeyBytes <= 0 || ks.AreaKeyBytes > maxKeyBytes {
		return fmt.Errorf("key size %d/%d bytes is out of range", ks.KeyBytes, ks.AreaKeyBytes)
	}
	if ks.Stripes <= 0 || int64(ks.Stripes)*int64(ks.KeyBytes) > maxKeyMaterial {
		return fmt.Errorf("%d anti-forensic stripes are out of range", ks.Stripes)
	}
	need := int64(ks.Stripes) * int64(ks.KeyBytes)
	if ks.AreaSize < need {
		return fmt.Errorf("key material area of %d bytes is smaller than %d stripes of %d bytes", ks.AreaSize, ks.Stripes, ks.KeyBytes)
	}
	if ks.AreaOffset < 0 || ks.AreaOffset > size || need > size-ks.AreaOffset {
		return fmt.Errorf("key material at byte %d (+%d) is outside the %d-byte volume", ks.AreaOffset, need, size)
	}
	if ks.Iterations <= 0 {
		return fmt.Errorf("%d iterations", ks.Iterations)
	}
	switch ks.KDF {
	case "pbkdf2":
		if _, err := hashFunc(ks.Hash); err != nil {
			return err
		}
	case "argon2i", "argon2id":
		if ks.Memory <= 0 || ks.Memory > maxArgon2Memory || ks.CPUs <= 0 || ks.CPUs > maxArgon2Threads {
			return fmt.Errorf("argon2 memory %d KiB / %d threads out of range", ks.Memory, ks.CPUs)
		}
	default:
		return fmt.Errorf("unsupported key derivation %q", ks.KDF)
	}
	if _, err := hashFunc(ks.AFHash); err != nil {
		return err
	}
	return nil
}

// --- LUKS2 ----------------------------------------------------------------

// Offsets at which cryptsetup looks for a secondary header when the primary
// cannot tell its size.
var luks2SecondaryOffsets = []int64{0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000}

type luks2Copy struct {
	off     int64
	hdrSize int64
	seqid   uint64
	label   string
	subsys  string
	uuid    string
	json    []byte
}

// readLUKS2Copy reads and checks one binary header + JSON area at off.
func readLUKS2Copy(r io.ReaderAt, size, off int64, magic string) (*luks2Copy, error) {
	if off+luks2BinSize > size {
		return nil, fmt.Errorf("header at byte %d: beyond the end of the %d-byte volume", off, size)
	}
	bin := make([]byte, luks2BinSize)
	if _, err := r.ReadAt(bin, off); err != nil && err != io.EOF {
		return nil, fmt.Errorf("header at byte %d: %w", off, err)
	}
	if string(bin[:6]) != magic {
		return nil, fmt.Errorf("header at byte %d: no %q magic", off, magic)
	}
	be := binary.BigEndian
	if v := be.Uint16(bin[6:]); v != 2 {
		return nil, fmt.Errorf("header at byte %d: version %d, want 2", off, v)
	}
	c := &luks2Copy{off: off, hdrSize: int64(be.Uint64(bin[8:])), seqid: be.Uint64(bin[16:]),
		label: cstring(bin[24:72]), uuid: cstring(bin[168:208]), subsys: cstring(bin[208:256])}
	if c.hdrSize < luks2BinSize+4096 || c.hdrSize > maxJSONArea+luks2BinSize || c.hdrSize%4096 != 0 {
		return nil, fmt.Errorf("header at byte %d: hdr_size %d (byte %d) is out of range", off, c.hdrSize, off+8)
	}
	if off+c.hdrSize > size {
		return nil, fmt.Errorf("header at byte %d: hdr_size %d runs past the end of the %d-byte volume", off, c.hdrSize, size)
	}
	if ho := int64(be.Uint64(bin[256:])); ho != off {
		return nil, fmt.Errorf("header at byte %d: says it is at byte %d (hdr_offset, byte %d)", off, ho, off+256)
	}
	alg := cstring(bin[72:104])
	hf, err := hashFunc(alg)
	if err != nil {
		return nil, fmt.Errorf("header at byte %d: checksum algorithm: %v", off, err)
	}
	all := make([]byte, c.hdrSize)
	copy(all, bin)
	if _, err := r.ReadAt(all[luks2BinSize:], off+luks2BinSize); err != nil && err != io.EOF {
		return nil, fmt.Errorf("header at byte %d: JSON area: %w", off, err)
	}
	want := append([]byte(nil), all[448:448+64]...)
	clear(all[448 : 448+64])
	hh := hf()
	hh.Write(all)
	sum := hh.Sum(nil)
	if subtle.ConstantTimeCompare(sum, want[:len(sum)]) != 1 {
		return nil, fmt.Errorf("header at byte %d: %s checksum mismatch", off, alg)
	}
	js := all[luks2BinSize:]
	if i := bytes.IndexByte(js, 0); i >= 0 {
		js = js[:i]
	}
	c.json = js
	return c, nil
}

func parseLUKS2(r io.ReaderAt, size int64, first []byte, dataSize int64) (*Header, error) {
	var notes []string
	prim, perr := readLUKS2Copy(r, size, 0, magicPrimary)
	var sec *luks2Copy
	var serr error
	if prim != nil {
		sec, serr = readLUKS2Copy(r, size, prim.hdrSize, magicSecondary)
	}
	if sec == nil {
		// The primary does not tell where the secondary is (or is wrong):
		// try the offsets cryptsetup knows.
		for _, o := range luks2SecondaryOffsets {
			if prim != nil && o == prim.hdrSize {
				continue
			}
			if s, err := readLUKS2Copy(r, size, o, magicSecondary); err == nil {
				sec, serr = s, nil
				break
			}
		}
		if serr == nil && sec == nil {
			serr = errors.New("no secondary header found")
		}
	}
	var use *luks2Copy
	switch {
	case prim != nil && sec != nil:
		use = prim
		if sec.seqid > prim.seqid {
			use = sec
			notes = append(notes, fmt.Sprintf("secondary header (byte %d) is newer than the primary (seqid %d > %d); using it", sec.off, sec.seqid, prim.seqid))
		} else if sec.seqid < prim.seqid {
			notes = append(notes, fmt.Sprintf("secondary header (byte %d) is older than the primary (seqid %d < %d)", sec.off, sec.seqid, prim.seqid))
		}
	case prim != nil:
		use = prim
		notes = append(notes, fmt.Sprintf("secondary LUKS2 header unusable: %v", serr))
	case sec != nil:
		use = sec
		notes = append(notes, fmt.Sprintf("primary LUKS2 header unusable (%v); using the secondary at byte %d", perr, sec.off))
	default:
		return nil, fmt.Errorf("luks: no usable LUKS2 header: primary: %v; secondary: %v", perr, serr)
	}
	h, err := parseLUKS2JSON(use.json, size, dataSize)
	if err != nil {
		return nil, fmt.Errorf("luks: LUKS2 JSON metadata of the header at byte %d: %w", use.off, err)
	}
	h.UUID, h.Label, h.Subsys, h.Seqid = use.uuid, use.label, use.subsys, use.seqid
	h.HeaderSize = use.hdrSize
	h.Notes = append(notes, h.Notes...)
	h.r, h.size = r, size
	return h, nil
}

// JSON of a LUKS2 header. Sizes and offsets are strings holding decimal
// uint64 (JSON numbers cannot hold them all); counts are numbers.
type jsonMeta struct {
	Keyslots map[string]jsonKeyslot `json:"keyslots"`
	Segments map[string]jsonSegment `json:"segments"`
	Digests  map[string]jsonDigest  `json:"digests"`
	Config   struct {
		JSONSize     string `json:"json_size"`
		KeyslotsSize string `json:"keyslots_size"`
		Requirements struct {
			Mandatory []string `json:"mandatory"`
		} `json:"requirements"`
	} `json:"config"`
}

type jsonKeyslot struct {
	Type     string `json:"type"`
	KeySize  int    `json:"key_size"`
	Priority *int   `json:"priority"`
	AF       struct {
		Type    string `json:"type"`
		Stripes int    `json:"stripes"`
		Hash    string `json:"hash"`
	} `json:"af"`
	Area struct {
		Type       string `json:"type"`
		Offset     string `json:"offset"`
		Size       string `json:"size"`
		Encryption string `json:"encryption"`
		KeySize    int    `json:"key_size"`
	} `json:"area"`
	KDF struct {
		Type       string `json:"type"`
		Hash       string `json:"hash"`
		Iterations int    `json:"iterations"`
		Time       int    `json:"time"`
		Memory     int    `json:"memory"`
		CPUs       int    `json:"cpus"`
		Salt       string `json:"salt"`
	} `json:"kdf"`
}

type jsonSegment struct {
	Type       string   `json:"type"`
	Offset     string   `json:"offset"`
	Size       string   `json:"size"`
	IVTweak    string   `json:"iv_tweak"`
	Encryption string   `json:"encryption"`
	SectorSize int      `json:"sector_size"`
	Flags      []string `json:"flags"`
}

type jsonDigest struct {
	Type       string   `json:"type"`
	Keyslots   []string `json:"keyslots"`
	Segments   []string `json:"segments"`
	Hash       string   `json:"hash"`
	Iterations int      `json:"iterations"`
	Salt       string   `json:"salt"`
	Digest     string   `json:"digest"`
}

func parseU64(name, s string) (int64, error) {
	v, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		return 0, fmt.Errorf("%s %q is not a byte count", name, s)
	}
	return int64(v), nil
}

// parseLUKS2JSON parses the JSON metadata of a size-byte device; the data
// segment must fit the detached data device of dataSize bytes when
// dataSize >= 0, else that same device.
func parseLUKS2JSON(js []byte, size, dataSize int64) (*Header, error) {
	segSize := size
	if dataSize >= 0 {
		segSize = dataSize
	}
	var m jsonMeta
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, err
	}
	h := &Header{Version: 2}
	for _, req := range m.Config.Requirements.Mandatory {
		return nil, fmt.Errorf("mandatory requirement %q (e.g. a reencryption in progress) is not supported", req)
	}
	segID, seg, err := luks2Segment(m.Segments, segSize)
	if err != nil {
		return nil, err
	}
	h.Segment = seg

	var ids []int
	for id := range m.Keyslots {
		n, err := strconv.Atoi(id)
		if err != nil || n < 0 || n > 31 {
			return nil, fmt.Errorf("keyslot id %q", id)
		}
		ids = append(ids, n)
	}
	sort.Ints(ids)
	for _, n := range ids {
		j := m.Keyslots[strconv.Itoa(n)]
		ks, err := luks2Slot(n, j, size)
		if err != nil {
			h.Notes = append(h.Notes, fmt.Sprintf("keyslot %d: %v; skipped", n, err))
			continue
		}
		h.Keyslots = append(h.Keyslots, ks)
	}
	h.digests, h.Notes = luks2Digests(m.Digests, segID, h.Notes)
	if len(h.digests) == 0 {
		return nil, fmt.Errorf("no usable digest for segment %s", segID)
	}
	// Keyslots whose key is not checked by any digest of the segment
	// cannot open it.
	var keep []Keyslot
	for _, ks := range h.Keyslots {
		if h.digestFor(ks.ID) == nil {
			h.Notes = append(h.Notes, fmt.Sprintf("keyslot %d is not assigned to the data segment", ks.ID))
			continue
		}
		keep = append(keep, ks)
	}
	h.Keyslots = keep
	return h, nil
}

// luks2Segment checks the data segment, exactly one of type crypt, against
// a data device of segSize bytes, and returns its id.
func luks2Segment(segs map[string]jsonSegment, segSize int64) (string, Segment, error) {
	var segIDs []string
	for id := range segs {
		segIDs = append(segIDs, id)
	}
	sort.Strings(segIDs)
	if len(segIDs) != 1 {
		return "", Segment{}, fmt.Errorf("%d segments (a reencryption?); only one is supported", len(segIDs))
	}
	js0 := segs[segIDs[0]]
	if js0.Type != "crypt" {
		return "", Segment{}, fmt.Errorf("segment %s has type %q, not crypt", segIDs[0], js0.Type)
	}
	off, err := parseU64("segment offset", js0.Offset)
	if err != nil {
		return "", Segment{}, err
	}
	seg := Segment{Offset: off, Size: -1, Cipher: strings.ToLower(js0.Encryption), SectorSize: js0.SectorSize}
	if js0.Size != "dynamic" {
		if seg.Size, err = parseU64("segment size", js0.Size); err != nil {
			return "", Segment{}, err
		}
	}
	if js0.IVTweak != "" {
		t, err := strconv.ParseUint(js0.IVTweak, 10, 64)
		if err != nil {
			return "", Segment{}, fmt.Errorf("segment iv_tweak %q", js0.IVTweak)
		}
		seg.IVTweak = t
	}
	switch seg.SectorSize {
	case 512, 1024, 2048, 4096:
	default:
		return "", Segment{}, fmt.Errorf("segment sector_size %d", seg.SectorSize)
	}
	if seg.Offset > segSize || seg.Offset%int64(seg.SectorSize) != 0 {
		return "", Segment{}, fmt.Errorf("segment offset %d is outside the %d-byte volume or not sector-aligned", seg.Offset, segSize)
	}
	if seg.Size >= 0 && (seg.Size > segSize-seg.Offset || seg.Size%int64(seg.SectorSize) != 0) {
		return "", Segment{}, fmt.Errorf("segment of %d bytes at byte %d does not fit the %d-byte volume", seg.Size, seg.Offset, segSize)
	}
	return segIDs[0], seg, nil
}

// luks2Digests keeps the usable digests that check keys of segment segID;
// the others become notes.
func luks2Digests(digs map[string]jsonDigest, segID string, notes []string) ([]digest, []string) {
	var out []digest
	var dids []string
	for id := range digs {
		dids = append(dids, id)
	}
	sort.Strings(dids)
	for _, id := range dids {
		jd := digs[id]
		if jd.Type != "pbkdf2" {
			notes = append(notes, fmt.Sprintf("digest %s has unsupported type %q", id, jd.Type))
			continue
		}
		if !contains(jd.Segments, segID) {
			continue
		}
		salt, err1 := base64.StdEncoding.DecodeString(jd.Salt)
		sum, err2 := base64.StdEncoding.DecodeString(jd.Digest)
		if err1 != nil || err2 != nil || len(sum) == 0 || len(sum) > 64 || jd.Iterations <= 0 {
			notes = append(notes, fmt.Sprintf("digest %s is malformed", id))
			continue
		}
		if _, err := hashFunc(jd.Hash); err != nil {
			notes = append(notes, fmt.Sprintf("digest %s: %v", id, err))
			continue
		}
		d := digest{hash: strings.ToLower(jd.Hash), iterations: jd.Iterations, salt: salt, sum: sum}
		for _, k := range jd.Keyslots {
			n, err := strconv.Atoi(k)
			if err == nil {
				d.keyslots = append(d.keyslots, n)
			}
		}
		out = append(out, d)
	}
	return out, notes
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func luks2Slot(id int, j jsonKeyslot, size int64) (Keyslot, error) {
	ks := Keyslot{ID: id, Priority: 1, KDF: j.KDF.Type, Hash: strings.ToLower(j.KDF.Hash),
		KeyBytes: j.KeySize, AreaCipher: strings.ToLower(j.Area.Encryption), AreaKeyBytes: j.Area.KeySize,
		Stripes: j.AF.Stripes, AFHash: strings.ToLower(j.AF.Hash)}
	if j.Priority != nil {
		ks.Priority = *j.Priority
	}
	if j.Type != "luks2" {
		return ks, fmt.Errorf("type %q is not supported", j.Type)
	}
	if j.Area.Type != "raw" {
		return ks, fmt.Errorf("area type %q is not supported", j.Area.Type)
	}
	if j.AF.Type != "luks1" {
		return ks, fmt.Errorf("anti-forensic type %q is not supported", j.AF.Type)
	}
	var err error
	if ks.AreaOffset, err = parseU64("area offset", j.Area.Offset); err != nil {
		return ks, err
	}
	if ks.AreaSize, err = parseU64("area size", j.Area.Size); err != nil {
		return ks, err
	}
	switch ks.KDF {
	case "pbkdf2":
		ks.Iterations = j.KDF.Iterations
	case "argon2i", "argon2id":
		ks.Iterations, ks.Memory, ks.CPUs = j.KDF.Time, j.KDF.Memory, j.KDF.CPUs
	}
	if ks.Salt, err = base64.StdEncoding.DecodeString(j.KDF.Salt); err != nil {
		return ks, fmt.Errorf("kdf salt is not base64")
	}
	return ks, checkSlot(&ks, size)
}

func (h *Header) digestFor(slot int) *digest {
	for i := range h.digests {
		for _, k := range h.digests[i].keyslots {
			if k == slot {
				return &h.digests[i]
			}
		}
	}
	return nil
}
