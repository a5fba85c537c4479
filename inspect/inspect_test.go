package inspect

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/image"
)

// blkidEntry is one "== ADDRESS OFFSET SIZE" block of a golden blkid file,
// written by the fixture scripts from `blkid -p -o export -O OFF -S SIZE`.
type blkidEntry struct {
	addr      string
	off, size int64
	attrs     map[string]string
}

func readBlkidGolden(t *testing.T, name string) []blkidEntry { return readBlkidGoldenTB(t, name) }

func readBlkidGoldenTB(t testing.TB, name string) []blkidEntry {
	t.Helper()
	var out []blkidEntry
	sc := bufio.NewScanner(bytes.NewReader(fixturetest.Golden(t, name)))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "== ") {
			f := strings.Fields(line[3:])
			off, _ := strconv.ParseInt(f[1], 10, 64)
			size, _ := strconv.ParseInt(f[2], 10, 64)
			out = append(out, blkidEntry{addr: f[0], off: off, size: size, attrs: map[string]string{}})
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && len(out) > 0 {
			out[len(out)-1].attrs[k] = strings.ReplaceAll(v, `\ `, " ")
		}
	}
	if len(out) == 0 {
		t.Fatalf("golden %s has no entries", name)
	}
	return out
}

func imageOf(t testing.TB, name string) string { return fixturetest.Image(t, name) }

func inspectFixture(t testing.TB, name string) *Tree {
	path := fixturetest.Image(t, name)
	im, err := image.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { im.Close() })
	tree, err := Inspect([]Source{{Name: path, R: im, Size: im.Size()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// checkAgainstBlkid resolves every golden address and compares offset,
// size and what blkid -p says is there.
func checkAgainstBlkid(t *testing.T, tree *Tree, golden []blkidEntry) {
	for _, g := range golden {
		t.Run(g.addr, func(t *testing.T) {
			v, err := tree.Resolve(g.addr)
			if err != nil {
				t.Fatal(err)
			}
			if v.Offset != g.off || v.Size != g.size {
				t.Errorf("offset/size = %d/%d, blkid golden %d/%d", v.Offset, v.Size, g.off, g.size)
			}
			if v.Content == nil {
				t.Fatalf("no content found; blkid says %v", g.attrs)
			}
			c := v.Content
			want := func(key, got string) {
				if g.attrs[key] != got {
					t.Errorf("%s = %q, blkid says %q", key, got, g.attrs[key])
				}
			}
			want("TYPE", c.Type)
			want("LABEL", c.Label)
			if c.Type != "drbd" { // blkid prints no UUID for DRBD; we show the device UUID
				want("UUID", c.UUID)
			}
			if _, ok := g.attrs["VERSION"]; ok {
				want("VERSION", c.Version)
			}
			if _, ok := g.attrs["SEC_TYPE"]; ok && strings.HasPrefix(c.Type, "ext") {
				want("SEC_TYPE", c.Info["sec_type"])
			}
		})
	}
}

func TestSignaturesMatchBlkid(t *testing.T) {
	tree := inspectFixture(t, "sigs")
	checkAgainstBlkid(t, tree, readBlkidGolden(t, "sigs-blkid.txt"))
	// The dirty ext4 is flagged.
	v, err := tree.Resolve("LABEL=dirtyvol")
	if err != nil {
		t.Fatal(err)
	}
	if v.Content.Info["state"] != "needs_recovery" || len(v.Notes) == 0 {
		t.Errorf("needs_recovery not reported: info %v notes %v", v.Content.Info, v.Notes)
	}
}

func TestDom0MatchesBlkid(t *testing.T) {
	tree := inspectFixture(t, "dom0")
	checkAgainstBlkid(t, tree, readBlkidGolden(t, "dom0-blkid.txt"))
}

func TestResolveErrorsListChoices(t *testing.T) {
	tree := inspectFixture(t, "dom0")
	for _, addr := range []string{"", "LABEL=/boot", "p9"} {
		_, err := tree.Resolve(addr)
		ae, ok := err.(*AddressError)
		if !ok {
			t.Errorf("Resolve(%q) = %v, want an AddressError", addr, err)
			continue
		}
		if addr != "p9" && len(ae.Choices) < 2 {
			t.Errorf("Resolve(%q): choices %v, want at least two", addr, ae.Choices)
		}
	}
	v, err := tree.Resolve("LABEL=dom0swap")
	if err != nil || v.Address != "VolGroup00/LogVol01" {
		t.Errorf("LABEL=dom0swap -> %v, %v", v, err)
	}
}

func TestSplitFileSpec(t *testing.T) {
	for _, c := range []struct{ in, vol, path string }{
		{"/etc/passwd", "", "/etc/passwd"},
		{"p1:/grub/menu.lst", "p1", "/grub/menu.lst"},
		{"VolGroup00/domu1/VolGroup00/LogVol00:/home", "VolGroup00/domu1/VolGroup00/LogVol00", "/home"},
		{"LABEL=/boot:/grub", "LABEL=/boot", "/grub"},
		{"p1:", "p1", "/"},
	} {
		vol, path, err := SplitFileSpec(c.in)
		if err != nil || vol != c.vol || path != c.path {
			t.Errorf("SplitFileSpec(%q) = %q, %q, %v", c.in, vol, path, err)
		}
	}
	if _, _, err := SplitFileSpec("etc/passwd"); err == nil {
		t.Error("relative path accepted")
	}
}

// The source image is never written by inspecting it.
func TestInspectDoesNotWrite(t *testing.T) {
	path := fixturetest.Copy(t, "dom0")
	before := fixturetest.SHA256File(t, path)
	im, err := image.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Inspect([]Source{{Name: path, R: im, Size: im.Size()}}, nil); err != nil {
		t.Fatal(err)
	}
	im.Close()
	if after := fixturetest.SHA256File(t, path); after != before {
		t.Fatal("image changed by inspect")
	}
}

func TestHostVGClashFlagged(t *testing.T) {
	path := imageOf(t, "dom0")
	im, err := image.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	var asked []string
	tree, err := Inspect([]Source{{Name: path, R: im, Size: im.Size()}}, &Options{HostVGNames: func(n string) bool {
		asked = append(asked, n)
		return n == "VolGroup00"
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) == 0 {
		t.Fatal("host VG names never consulted")
	}
	v, err := tree.Resolve("VolGroup00")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(v.Notes, "\n"), "this host has a VG named") || !strings.Contains(strings.Join(tree.Notes, "\n"), "this host") {
		t.Errorf("host clash not flagged: %v / %v", v.Notes, tree.Notes)
	}
}

// A DRBD backing device: the metadata is described (generation identifiers
// as drbdmeta get-gi prints them) and the data area in front of it is
// explored as VOL/drbd, holding the filesystem blkid found in it.
func TestDRBDBackingDevice(t *testing.T) {
	tree := inspectFixture(t, "drbd-fs")
	root := tree.Roots[0]
	if root.Content == nil || root.Content.Type != "drbd" || root.DRBD == nil {
		t.Fatalf("root: content %+v drbd %+v", root.Content, root.DRBD)
	}
	// get-gi prints the four UUIDs, then the flag bits.
	if gi := strings.TrimSpace(string(fixturetest.Golden(t, "drbd-fs.gi"))); root.DRBD.GI == "" || !strings.HasPrefix(gi, root.DRBD.GI+":") {
		t.Errorf("GI %q, drbdmeta get-gi %q", root.DRBD.GI, gi)
	}
	want, _ := strconv.ParseInt(strings.TrimSpace(string(fixturetest.Golden(t, "drbd-fs.datasize"))), 10, 64)
	v, err := tree.Resolve("drbd")
	if err != nil {
		t.Fatal(err)
	}
	if v.Size != want || root.DRBD.DataSize != want {
		t.Errorf("data size %d / %d, golden %d", v.Size, root.DRBD.DataSize, want)
	}
	blk := map[string]string{}
	for _, l := range strings.Split(string(fixturetest.Golden(t, "drbd-fs.blkid")), "\n") {
		if k, val, ok := strings.Cut(l, "="); ok {
			blk[k] = val
		}
	}
	if v.Content == nil || v.Content.Type != blk["TYPE"] || v.Content.Label != blk["LABEL"] || v.Content.UUID != blk["UUID"] {
		t.Errorf("data area content %+v, blkid %v", v.Content, blk)
	}
}
