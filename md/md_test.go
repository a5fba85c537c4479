package md

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// fixtureArrays are the arrays of fixtures/scripts/md-fixtures.sh whose
// members are whole images md-NAME-N, with their member count.
var fixtureArrays = []struct {
	name    string
	members int
}{
	{"r1v12", 2}, {"r1v090", 3}, {"linv10", 2}, {"r0v11", 3}, {"r0alt", 3},
	{"r10n2", 3}, {"r10f2", 4}, {"r10o2", 3}, {"r4", 3}, {"r5lvm", 3}, {"r5deg", 3}, {"r6", 5},
}

func openMember(t testing.TB, array string, i int) *Member {
	t.Helper()
	name := fmt.Sprintf("md-%s-%d", array, i)
	f, size := fixturetest.Open(t, fixturetest.Image(t, name))
	sb, err := Read(f, size)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &Member{Name: name, R: f, Size: size, SB: sb}
}

func members(t testing.TB, array string, n int) []*Member {
	var out []*Member
	for i := 0; i < n; i++ {
		out = append(out, openMember(t, array, i))
	}
	return out
}

// golden sha256 and size of the array (first line of md-NAME.sha256).
func goldenSum(t testing.TB, array string) (string, int64) {
	t.Helper()
	line, _, _ := strings.Cut(string(fixturetest.Golden(t, "md-"+array+".sha256")), "\n")
	f := strings.Fields(line)
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return f[0], n
}

func sumReader(t testing.TB, r io.ReaderAt, size int64) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, size)); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// examineField is one member's `mdadm --examine` output, as key → value.
type examined map[string]string

// readExamine parses md-NAME.examine: one block per member, in order.
func readExamine(t testing.TB, array string) []examined {
	t.Helper()
	var out []examined
	sc := bufio.NewScanner(bytes.NewReader(fixturetest.Golden(t, "md-"+array+".examine")))
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "== ") {
			out = append(out, examined{})
			continue
		}
		if len(out) == 0 {
			continue
		}
		if strings.HasPrefix(l, "this ") {
			out[len(out)-1]["this"] = strings.Join(strings.Fields(l)[1:], " ")
			continue
		}
		if k, v, ok := strings.Cut(l, " : "); ok {
			out[len(out)-1][strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if len(out) == 0 {
		t.Fatalf("md-%s.examine: no members", array)
	}
	return out
}

func sectors(t testing.TB, v string) int64 {
	f := strings.Fields(v)
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		t.Fatalf("%q: %v", v, err)
	}
	return n * 512
}

// TestSuperblocksMatchMdadm compares every parsed field with what mdadm
// --examine printed for the same member.
func TestSuperblocksMatchMdadm(t *testing.T) {
	for _, fa := range fixtureArrays {
		t.Run(fa.name, func(t *testing.T) {
			ex := readExamine(t, fa.name)
			if len(ex) != fa.members {
				t.Fatalf("examine has %d members, want %d", len(ex), fa.members)
			}
			for i, m := range members(t, fa.name, fa.members) {
				e, sb := ex[i], m.SB
				ver := e["Version"]
				if ver == "0.90.00" {
					ver = "0.90"
				}
				if sb.Version != ver {
					t.Errorf("%s: version %s, mdadm %s", m.Name, sb.Version, ver)
				}
				uuid := e["Array UUID"]
				if uuid == "" {
					uuid = e["UUID"]
				}
				if sb.UUIDString() != uuid {
					t.Errorf("%s: uuid %s, mdadm %s", m.Name, sb.UUIDString(), uuid)
				}
				if n := e["Name"]; n != sb.Name && !(n == "" && sb.Version == "0.90") {
					t.Errorf("%s: name %q, mdadm %q", m.Name, sb.Name, n)
				}
				if LevelName(sb.Level) != e["Raid Level"] {
					t.Errorf("%s: level %s, mdadm %s", m.Name, LevelName(sb.Level), e["Raid Level"])
				}
				if fmt.Sprint(sb.RaidDisks) != e["Raid Devices"] {
					t.Errorf("%s: raid disks %d, mdadm %s", m.Name, sb.RaidDisks, e["Raid Devices"])
				}
				if fmt.Sprint(sb.Events) != e["Events"] {
					t.Errorf("%s: events %d, mdadm %s", m.Name, sb.Events, e["Events"])
				}
				if !strings.HasSuffix(e["Checksum"], "correct") || !sb.ChecksumOK || e["Checksum"] != fmt.Sprintf("%x - correct", sb.Checksum) {
					t.Errorf("%s: checksum %08x ok=%v, mdadm %q", m.Name, sb.Checksum, sb.ChecksumOK, e["Checksum"])
				}
				if c := e["Chunk Size"]; c != "" && c != fmt.Sprintf("%dK", sb.ChunkSize/1024) {
					t.Errorf("%s: chunk %d, mdadm %s", m.Name, sb.ChunkSize, c)
				}
				if sb.Version == "0.90" {
					// "this NUMBER MAJOR MINOR RAIDDEVICE STATE..."
					f := strings.Fields(e["this"])
					if len(f) < 4 || f[0] != fmt.Sprint(sb.DevNumber) || f[3] != fmt.Sprint(sb.Role) {
						t.Errorf("%s: number %d role %d, mdadm this = %q", m.Name, sb.DevNumber, sb.Role, e["this"])
					}
					if u := e["Used Dev Size"]; u != "" && sectors(t, u)*2 != sb.DevSize {
						t.Errorf("%s: dev size %d, mdadm %s KiB", m.Name, sb.DevSize, u)
					}
					if pm := e["Preferred Minor"]; pm != fmt.Sprint(sb.PreferredMinor) {
						t.Errorf("%s: preferred minor %d, mdadm %s", m.Name, sb.PreferredMinor, pm)
					}
					continue
				}
				if sectors(t, e["Super Offset"]) != sb.Offset {
					t.Errorf("%s: superblock at %d, mdadm %s", m.Name, sb.Offset, e["Super Offset"])
				}
				wantData := int64(0)
				if d := e["Data Offset"]; d != "" {
					wantData = sectors(t, d)
				}
				if sb.DataOffset != wantData {
					t.Errorf("%s: data offset %d, mdadm %d", m.Name, sb.DataOffset, wantData)
				}
				if sectors(t, e["Avail Dev Size"]) != sb.DataSize {
					t.Errorf("%s: data size %d, mdadm %s", m.Name, sb.DataSize, e["Avail Dev Size"])
				}
				if u := e["Used Dev Size"]; u != "" && sectors(t, u) != sb.DevSize {
					t.Errorf("%s: dev size %d, mdadm %s", m.Name, sb.DevSize, u)
				}
				if r := e["Device Role"]; r != fmt.Sprintf("Active device %d", sb.Role) {
					t.Errorf("%s: role %d, mdadm %q", m.Name, sb.Role, r)
				}
				if e["Internal Bitmap"] != "" && sb.BitmapOffset == 0 {
					t.Errorf("%s: mdadm shows an internal bitmap (%s), the parser none", m.Name, e["Internal Bitmap"])
				}
				if bb := e["Bad Block Log"]; bb != "" && !strings.Contains(bb, fmt.Sprintf("at offset %d sectors", sb.BadBlocksOffset/512)) {
					t.Errorf("%s: bad-block log at %d, mdadm %q", m.Name, sb.BadBlocksOffset, bb)
				}
			}
		})
	}
}

// TestArraysMatchKernel reads every array from all its member images and
// compares it byte for byte (sha256) with what the kernel read from
// /dev/mdN.
func TestArraysMatchKernel(t *testing.T) {
	for _, fa := range fixtureArrays {
		t.Run(fa.name, func(t *testing.T) {
			arrays := Assemble(members(t, fa.name, fa.members))
			if len(arrays) != 1 {
				t.Fatalf("%d arrays, want 1", len(arrays))
			}
			checkArray(t, arrays[0], fa.name)
		})
	}
}

func checkArray(t *testing.T, a *Array, name string) {
	t.Helper()
	r, err := a.Open()
	if err != nil {
		t.Fatalf("open: %v (notes %q)", err, a.Notes)
	}
	want, size := goldenSum(t, name)
	if r.Size() != size {
		t.Fatalf("size %d, kernel %d", r.Size(), size)
	}
	if got := sumReader(t, r, size); got != want {
		t.Errorf("sha256 %s, kernel %s", got, want)
	}
}

// TestStaleMembersLeftOut: a member failed and removed before more writes
// keeps its old event count and old data; assembly must use the others
// and say so.
func TestStaleMembersLeftOut(t *testing.T) {
	for _, c := range []struct {
		name        string
		n, stale    int
		wantMissing []int
	}{{"r1v090", 3, 2, []int{2}}, {"r5deg", 3, 1, []int{1}}} {
		t.Run(c.name, func(t *testing.T) {
			ms := members(t, c.name, c.n)
			a := Assemble(ms)[0]
			if len(a.Stale) != 1 || a.Stale[0] != ms[c.stale] {
				t.Fatalf("stale %v, want %s (notes %q)", names(a.Stale), ms[c.stale].Name, a.Notes)
			}
			if fmt.Sprint(a.Missing()) != fmt.Sprint(c.wantMissing) {
				t.Errorf("missing %v, want %v", a.Missing(), c.wantMissing)
			}
			found := false
			for _, n := range a.Notes {
				if strings.Contains(n, ms[c.stale].Name) && (strings.Contains(n, "stale") || strings.Contains(n, "faulty")) {
					found = true
				}
			}
			if !found {
				t.Errorf("no note names the stale member: %q", a.Notes)
			}
			checkArray(t, a, c.name)
			// The stale member given first changes nothing.
			rev := append([]*Member{ms[c.stale]}, ms...)
			rev = append(rev[:c.stale+1], rev[c.stale+2:]...)
			checkArray(t, Assemble(rev)[0], c.name)
		})
	}
}

func names(ms []*Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

// TestDegradedSubsets: a clean redundant array read from every subset of
// its members that still holds the data gives the kernel's bytes.
func TestDegradedSubsets(t *testing.T) {
	for _, c := range []struct {
		name    string
		n, drop int
	}{{"r1v12", 2, 1}, {"r10n2", 3, 1}, {"r10f2", 4, 1}, {"r10o2", 3, 1}, {"r4", 3, 1}, {"r5lvm", 3, 1}, {"r6", 5, 2}} {
		t.Run(c.name, func(t *testing.T) {
			all := members(t, c.name, c.n)
			for _, drop := range subsets(c.n, c.drop) {
				var ms []*Member
				for i, m := range all {
					if !drop[i] {
						ms = append(ms, m)
					}
				}
				t.Run(fmt.Sprintf("without%v", keys(drop)), func(t *testing.T) {
					a := Assemble(ms)[0]
					if len(a.Missing()) != len(keys(drop)) {
						t.Errorf("missing %v, dropped %v", a.Missing(), keys(drop))
					}
					checkArray(t, a, c.name)
				})
			}
		})
	}
}

// subsets lists every set of 1..k of n indexes.
func subsets(n, k int) []map[int]bool {
	var out []map[int]bool
	for mask := 1; mask < 1<<n; mask++ {
		c := 0
		for i := 0; i < n; i++ {
			if mask&(1<<i) != 0 {
				c++
			}
		}
		if c > k {
			continue
		}
		m := map[int]bool{}
		for i := 0; i < n; i++ {
			if mask&(1<<i) != 0 {
				m[i] = true
			}
		}
		out = append(out, m)
	}
	return out
}

func keys(m map[int]bool) []int {
	var out []int
	for i := 0; i < 64; i++ {
		if m[i] {
			out = append(out, i)
		}
	}
	return out
}

// TestNonRedundantMissingMember: a raid0 or linear array without one
// member reads what it can and fails clearly on the rest.
func TestNonRedundantMissingMember(t *testing.T) {
	ms := members(t, "r0alt", 3)
	a := Assemble(ms[:2])[0]
	r, err := a.Open()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	// With 3 members and 64 KiB chunks, chunk 2 of the first zone is on
	// role 2.
	_, err = r.ReadAt(buf, 2*64<<10)
	var me *MissingError
	if !asMissing(err, &me) || me.Role != 2 || me.Offset != 2*64<<10 {
		t.Fatalf("read of role 2's chunk: %v", err)
	}
	if _, err := r.ReadAt(buf, 0); err != nil {
		t.Errorf("chunk 0 is on role 0: %v", err)
	}
	if !strings.Contains(strings.Join(a.Notes, "; "), "raid0 without role 2") {
		t.Errorf("no note on the missing raid0 member: %q", a.Notes)
	}
	// linear without its first member cannot place anything.
	lm := members(t, "linv10", 2)
	if _, err := Assemble(lm[1:])[0].Open(); err == nil {
		t.Error("linear with role 0 missing opened")
	}
}

func asMissing(err error, me **MissingError) bool {
	e, ok := err.(*MissingError)
	if ok {
		*me = e
	}
	return ok
}

// TestCheck: the kernel's arrays are consistent; one flipped byte in a
// member's data area is found in the right stripe (raid5, raid6) or range
// (raid1).
func TestCheck(t *testing.T) {
	for _, c := range []struct {
		name string
		n    int
	}{{"r4", 3}, {"r5lvm", 3}, {"r6", 5}, {"r1v12", 2}} {
		t.Run(c.name, func(t *testing.T) {
			ms := members(t, c.name, c.n)
			r, err := Assemble(ms)[0].Open()
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Check(10)
			if err != nil {
				t.Fatal(err)
			}
			if got.BadCount != 0 || got.Unverifiable != 0 || got.Checked != got.Stripes {
				t.Fatalf("clean array: %+v", got)
			}
			// Flip a byte of member 1 at data byte 3 chunks + 700 (or
			// 300 KiB + 700 for raid1).
			m := ms[1]
			b := make([]byte, m.Size)
			if _, err := m.R.ReadAt(b, 0); err != nil {
				t.Fatal(err)
			}
			at := 3*m.SB.ChunkSize + 700
			if m.SB.ChunkSize == 0 {
				at = 300<<10 + 700
			}
			b[m.SB.DataOffset+at] ^= 0x5a
			bad := *m
			bad.R = bytes.NewReader(b)
			all := append([]*Member{}, ms...)
			all[1] = &bad
			r, err = Assemble(all)[0].Open()
			if err != nil {
				t.Fatal(err)
			}
			got, err = r.Check(10)
			if err != nil {
				t.Fatal(err)
			}
			if got.BadCount != 1 {
				t.Fatalf("one flipped byte: %+v", got)
			}
			if c.name == "r1v12" {
				if d := got.Differ[0]; d.Off != at&^511 || d.Len != 512 {
					t.Errorf("differ %+v, want the sector at %d", d, at&^511)
				}
				return
			}
			if s := got.Bad[0]; s.Stripe != 3 || s.MemberOff != at&^511 || s.Len != 512 {
				t.Errorf("bad stripe %+v, want stripe 3, member bytes %d+512", s, at&^511)
			}
		})
	}
}
