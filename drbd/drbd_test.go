package drbd

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/image"
)

var fixtureNames = []string{
	"drbd-newer-a", "drbd-newer-b", "drbd-old-a", "drbd-hist-b", "drbd-sb-a", "drbd-sb-b",
	"drbd-unrel", "drbd-sync-a", "drbd-sync-b", "drbd-v09-a", "drbd-v09-b", "drbd-fs",
}

func readFixture(t testing.TB, name string) (*Metadata, *image.Image) {
	t.Helper()
	im, err := image.Open(fixturetest.Image(t, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { im.Close() })
	m, err := Read(im, im.Size())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m, im
}

// dump is what drbdmeta dump-md printed.
type dump struct {
	version                            string
	uuids                              []uint64 // v08: current, bitmap, h1, h2
	current                            uint64   // v09
	flags                              uint64   // v09 (v08 dumps print 0)
	nodeID                             int64
	peerBitmap                         []uint64
	history                            []uint64 // v09
	laSize, devUUID                    uint64
	bmPerBit, alStripes, alStripe4k    uint64
	mdSizeSect, mdOffset, alOff, bmOff int64
	bitsSet                            int64
	maxPeers                           int64
}

var hexRe = regexp.MustCompile(`0x[0-9A-Fa-f]{16}`)

func parseHex(s string) uint64 {
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	if err != nil {
		panic(err)
	}
	return v
}

func parseDump(t *testing.T, name string) dump {
	var d dump
	d.nodeID = -1
	var block string
	sc := bufio.NewScanner(bytes.NewReader(fixturetest.Golden(t, name+".dump")))
	num := func(s string) int64 {
		v, err := strconv.ParseInt(strings.TrimSuffix(strings.Fields(s)[len(strings.Fields(s))-1], ";"), 0, 64)
		if err != nil {
			t.Fatalf("%s.dump: %q: %v", name, s, err)
		}
		return v
	}
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(l, "version "):
			d.version = strings.Trim(strings.Fields(l)[1], `";`)
		case strings.HasPrefix(l, "uuid {"):
			block = "uuid"
		case strings.HasPrefix(l, "history-uuids {"):
			block = "history"
		case strings.HasPrefix(l, "peer["):
			block = "peer"
		case strings.HasPrefix(l, "bm {"), strings.HasPrefix(l, "bitmap["):
			block = "bm"
		case l == "}":
			block = ""
		case block == "uuid" && strings.HasPrefix(l, "0x"):
			for _, h := range hexRe.FindAllString(l, -1) {
				d.uuids = append(d.uuids, parseHex(h))
			}
		case block == "history":
			for _, h := range hexRe.FindAllString(l, -1) {
				d.history = append(d.history, parseHex(h))
			}
		case block == "peer" && strings.HasPrefix(l, "bitmap-uuid "):
			d.peerBitmap = append(d.peerBitmap, parseHex(hexRe.FindString(l)))
		case strings.HasPrefix(l, "current-uuid "):
			d.current = parseHex(hexRe.FindString(l))
		case block == "" && strings.HasPrefix(l, "flags "):
			d.flags = uint64(num(l))
		case strings.HasPrefix(l, "node-id "):
			d.nodeID = num(l)
		case strings.HasPrefix(l, "max-peers "):
			d.maxPeers = num(l)
		case strings.HasPrefix(l, "la-size-sect "):
			d.laSize = uint64(num(l))
		case strings.HasPrefix(l, "device-uuid "):
			d.devUUID = parseHex(hexRe.FindString(l))
		case strings.HasPrefix(l, "bm-byte-per-bit "):
			d.bmPerBit = uint64(num(l))
		case strings.HasPrefix(l, "al-stripes "):
			d.alStripes = uint64(num(l))
		case strings.HasPrefix(l, "al-stripe-size-4k "):
			d.alStripe4k = uint64(num(l))
		case strings.HasPrefix(l, "# md_size_sect "):
			d.mdSizeSect = num(l)
		case strings.HasPrefix(l, "# md_offset "):
			d.mdOffset = num(l)
		case strings.HasPrefix(l, "# al_offset "):
			d.alOff = num(l)
		case strings.HasPrefix(l, "# bm_offset "):
			d.bmOff = num(l)
		case strings.HasPrefix(l, "# bits-set "):
			d.bitsSet = num(l)
		}
	}
	if d.version == "" || d.laSize == 0 || d.mdOffset == 0 {
		t.Fatalf("%s.dump: could not parse (version %q, la-size %d)", name, d.version, d.laSize)
	}
	return d
}

// giFlags decodes drbdmeta get-gi's flag fields after the four UUIDs. For
// v08: consistent, was-up-to-date, primary, connected, full-sync,
// peer-outdated, crashed-primary (drbdmeta show-gi's legend).
func giFields(t *testing.T, name string) []string {
	f := strings.Split(strings.TrimSpace(string(fixturetest.Golden(t, name+".gi"))), ":")
	if len(f) < 11 {
		t.Fatalf("%s.gi: %d fields", name, len(f))
	}
	return f
}

// TestAgainstDrbdmeta compares every field with drbdmeta dump-md/get-gi.
func TestAgainstDrbdmeta(t *testing.T) {
	for _, name := range fixtureNames {
		t.Run(name, func(t *testing.T) {
			m, im := readFixture(t, name)
			d := parseDump(t, name)
			gi := giFields(t, name)
			if m.Version != d.version {
				t.Errorf("version %s, drbdmeta %s", m.Version, d.version)
			}
			if m.LaSizeSect != d.laSize || m.DeviceUUID != d.devUUID || uint64(m.BMBytesPer) != d.bmPerBit ||
				uint64(m.ALStripes) != d.alStripes || uint64(m.ALStripe4k) != d.alStripe4k || int64(m.MdSizeSect) != d.mdSizeSect {
				t.Errorf("la-size %d dev-uuid %X bm/bit %d stripes %d/%d md_size %d; drbdmeta %d %X %d %d/%d %d",
					m.LaSizeSect, m.DeviceUUID, m.BMBytesPer, m.ALStripes, m.ALStripe4k, m.MdSizeSect,
					d.laSize, d.devUUID, d.bmPerBit, d.alStripes, d.alStripe4k, d.mdSizeSect)
			}
			if m.Offset != d.mdOffset || m.Offset+int64(m.ALOffset)*512 != d.alOff || m.DataSize() != d.bmOff {
				t.Errorf("md/al/bm offsets %d/%d/%d, drbdmeta %d/%d/%d", m.Offset, m.Offset+int64(m.ALOffset)*512, m.DataSize(), d.mdOffset, d.alOff, d.bmOff)
			}
			ds, _ := strconv.ParseInt(strings.TrimSpace(string(fixturetest.Golden(t, name+".datasize"))), 10, 64)
			if m.DataSize() != ds || m.DataSize() < int64(m.LaSizeSect)*512 {
				t.Errorf("DataSize %d, golden %d (la-size %d bytes)", m.DataSize(), ds, m.LaSizeSect*512)
			}
			want := strings.Join(gi[:4], ":")
			if m.Version == "v08" {
				got := fmt.Sprintf("%016X:%016X:%016X:%016X", d.uuids[0], d.uuids[1], d.uuids[2], d.uuids[3])
				if got != want {
					t.Fatalf("dump-md uuids %s disagree with get-gi %s", got, want)
				}
				// get-gi flags: consistent, was-up-to-date, primary,
				// connected, full-sync, peer-outdated, crashed-primary.
				bitsOrder := []uint32{FlagConsistent, FlagWasUpToDate, FlagPrimaryInd, FlagConnectedInd, FlagFullSync, FlagPeerOutDated, FlagCrashedPrimary}
				for i, bit := range bitsOrder {
					if (m.Flags&bit != 0) != (gi[4+i] == "1") {
						t.Errorf("flag %#x = %v, get-gi field %d says %s", bit, m.Flags&bit != 0, 5+i, gi[4+i])
					}
				}
			} else {
				if m.Current != d.current || uint64(m.Flags) != d.flags || int64(m.NodeID) != d.nodeID || int64(m.MaxPeers) != d.maxPeers {
					t.Errorf("current %X flags %#x node %d peers %d; drbdmeta %X %#x %d %d", m.Current, m.Flags, m.NodeID, m.MaxPeers, d.current, d.flags, d.nodeID, d.maxPeers)
				}
				if len(m.Peers) != len(d.peerBitmap) || len(m.History) != len(d.history) {
					t.Fatalf("%d peers %d history; drbdmeta %d %d", len(m.Peers), len(m.History), len(d.peerBitmap), len(d.history))
				}
				for i := range m.Peers {
					if m.Peers[i].BitmapUUID != d.peerBitmap[i] {
						t.Errorf("peer %d bitmap UUID %X, drbdmeta %X", i, m.Peers[i].BitmapUUID, d.peerBitmap[i])
					}
				}
				for i := range m.History {
					if m.History[i] != d.history[i] {
						t.Errorf("history %d %X, drbdmeta %X", i, m.History[i], d.history[i])
					}
				}
				// get-gi --node-id N shows the bitmap UUID for peer N.
				peer := &Metadata{NodeID: 1 - m.NodeID}
				if got := m.GI(peer); got != want {
					t.Errorf("GI %s, get-gi %s", got, want)
				}
			}
			n, err := m.BitsSet(im, 0)
			if err != nil {
				t.Fatal(err)
			}
			if n != d.bitsSet {
				t.Errorf("bits set %d, drbdmeta %d", n, d.bitsSet)
			}
		})
	}
}

// TestCompare: the verdicts the fixture states were constructed for (see
// fixtures/scripts/drbd-meta.sh), by drbd_uuid_compare's rules.
func TestCompare(t *testing.T) {
	for _, c := range []struct {
		a, b         string
		result, rule int
		split        bool
	}{
		{"drbd-newer-a", "drbd-newer-b", 1, 70, false},
		{"drbd-newer-b", "drbd-newer-a", -1, 50, false},
		{"drbd-old-a", "drbd-hist-b", -2, 60, false},
		{"drbd-hist-b", "drbd-old-a", 2, 80, false},
		{"drbd-sb-a", "drbd-sb-b", 100, 90, true},
		{"drbd-sb-b", "drbd-sb-a", 100, 90, true},
		{"drbd-sb-a", "drbd-unrel", -1000, 100, false},
		{"drbd-sync-a", "drbd-sync-b", 0, 40, false},
		{"drbd-v09-a", "drbd-v09-b", 1, 70, false},
		{"drbd-v09-b", "drbd-v09-a", -1, 50, false},
	} {
		t.Run(c.a+"_vs_"+c.b, func(t *testing.T) {
			a, _ := readFixture(t, c.a)
			b, _ := readFixture(t, c.b)
			v := Compare(a, b)
			if v.Result != c.result || v.Rule != c.rule || v.SplitBrain() != c.split {
				t.Errorf("Compare = %d by rule %d (split %v), want %d by rule %d\n%s", v.Result, v.Rule, v.SplitBrain(), c.result, c.rule, strings.Join(v.Reasons, "\n"))
			}
			if v.Summary() == "" || len(v.Reasons) < 3 {
				t.Errorf("no explanation: %q %q", v.Summary(), v.Reasons)
			}
		})
	}
}

// TestUnclean: the 8.4 "unclean" magic is v08 meta data (drbdmeta reads it
// as such and asks for apply-al), not v09.
func TestUnclean(t *testing.T) {
	m, _ := readFixture(t, "drbd-unclean")
	if m.Version != "v08" || !m.Unclean() || m.Magic != MagicV84Unclean {
		t.Errorf("version %s unclean %v magic %#x", m.Version, m.Unclean(), m.Magic)
	}
	if !strings.Contains(string(fixturetest.Golden(t, "drbd-unclean.dump")), "unclean") {
		t.Error("golden: drbdmeta did not call it unclean")
	}
	gi := strings.TrimSpace(string(fixturetest.Golden(t, "drbd-unclean.gi")))
	if got := m.GI(nil); !strings.HasPrefix(gi, got+":") {
		t.Errorf("GI %s, get-gi %s", got, gi)
	}
	n, _ := readFixture(t, "drbd-newer-a")
	if v := Compare(m, n); v.Result != 0 || v.Rule != 40 {
		t.Errorf("unclean copy vs its clean original: %d by rule %d", v.Result, v.Rule)
	}
}

// TestNotDRBD: other images are refused with ErrNoMetadata, not misread.
func TestNotDRBD(t *testing.T) {
	im, err := image.Open(fixturetest.Image(t, "ext-ext4"))
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if _, err := Read(im, im.Size()); err == nil {
		t.Error("ext4 image read as DRBD")
	}
	if _, err := Read(bytes.NewReader(nil), 0); err == nil {
		t.Error("empty device read as DRBD")
	}
}
