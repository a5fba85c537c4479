package inspect

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/image"
)

// inspectImages inspects the fixture images names (the first is the main
// image, the rest as with -a).
func inspectImages(t testing.TB, names ...string) *Tree {
	t.Helper()
	var srcs []Source
	for _, n := range names {
		im, err := image.Open(fixturetest.Image(t, n))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { im.Close() })
		srcs = append(srcs, Source{Name: n + ".img", R: im, Size: im.Size()})
	}
	tree, err := Inspect(srcs, &Options{HostVGNames: func(string) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func mdMembers(array string, n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, fmt.Sprintf("md-%s-%d", array, i))
	}
	return out
}

// mdGolden returns the kernel's "sha256 size" for line key of
// md-ARRAY.sha256 ("" is the array itself, else the first field).
func mdGolden(t testing.TB, array, key string) (string, int64) {
	t.Helper()
	for _, l := range strings.Split(string(fixturetest.Golden(t, "md-"+array+".sha256")), "\n") {
		f := strings.Fields(l)
		var sum, size string
		switch {
		case key == "" && len(f) == 2:
			sum, size = f[0], f[1]
		case key != "" && len(f) == 3 && f[0] == key:
			sum, size = f[1], f[2]
		default:
			continue
		}
		var n int64
		fmt.Sscan(size, &n)
		return sum, n
	}
	t.Fatalf("md-%s.sha256 has no line %q", array, key)
	return "", 0
}

func volumeSum(t testing.TB, v *Volume) string {
	t.Helper()
	r := v.Reader()
	if r == nil {
		t.Fatalf("%s: no reader (notes %q)", v.DisplayAddress(), v.Notes)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, r.Size())); err != nil {
		t.Fatalf("%s: %v", v.DisplayAddress(), err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func resolveKind(t testing.TB, tree *Tree, addr string, kind Kind) *Volume {
	t.Helper()
	v, err := tree.Resolve(addr)
	if err != nil {
		t.Fatal(err)
	}
	if v.Kind != kind {
		t.Fatalf("%s is a %s, want %s", addr, v.Kind, kind)
	}
	return v
}

// TestMDArraysInTree: arrays made of whole images (-a), partitions and
// LVs are nodes with the address scheme, read as the kernel read them, and
// what is inside them (ext4, a partition table, LVM) is found.
func TestMDArraysInTree(t *testing.T) {
	cases := []struct {
		array, addr string
		images      []string
		// inner: a volume inside the array checked against its golden
		// line, and the key of that line.
		inner, innerKey string
		content         string
	}{
		{array: "r1v12", addr: "md-r1v12", images: mdMembers("r1v12", 2), content: "ext4"},
		{array: "r1v090", addr: "md0", images: mdMembers("r1v090", 3), content: "ext4"},
		{array: "linv10", addr: "md-linv10", images: mdMembers("linv10", 2), content: "ext4"},
		{array: "r0v11", addr: "md-r0v11", images: mdMembers("r0v11", 3), content: "ext4"},
		{array: "r10f2", addr: "md-r10f2", images: mdMembers("r10f2", 4), content: "ext4"},
		{array: "parts", addr: "md-parts", images: []string{"md-parts-0"}, content: "dos", inner: "md-parts/p1", innerKey: "p1"},
		{array: "onlv", addr: "vghost/md-onlv", images: []string{"md-onlv-0"}, content: "ext4"},
		{array: "r5lvm", addr: "md-r5lvm", images: mdMembers("r5lvm", 3), content: "LVM2_member", inner: "md-r5lvm/vgmd/data", innerKey: "vgmd/data"},
		{array: "r5deg", addr: "md-r5deg", images: mdMembers("r5deg", 3), content: "ext4"},
		{array: "r6", addr: "md-r6", images: mdMembers("r6", 5), content: "ext4"},
		{array: "r4", addr: "md-r4", images: mdMembers("r4", 3), content: "ext4"},
	}
	for _, c := range cases {
		t.Run(c.array, func(t *testing.T) {
			tree := inspectImages(t, c.images...)
			v := resolveKind(t, tree, c.addr, KindMD)
			want, size := mdGolden(t, c.array, "")
			if v.Size != size {
				t.Fatalf("size %d, kernel %d", v.Size, size)
			}
			if got := volumeSum(t, v); got != want {
				t.Errorf("sha256 %s, kernel %s", got, want)
			}
			if v.Content == nil || v.Content.Type != c.content {
				t.Errorf("content %+v, want %s", v.Content, c.content)
			}
			if v.MD == nil || !v.MD.Readable || v.MD.Level == "" {
				t.Fatalf("MD info %+v", v.MD)
			}
			// Every active member carries a note naming the array.
			for _, m := range v.MD.Members {
				mv, err := tree.Resolve(m.Address)
				if m.Address == "" || err != nil {
					// whole images are roots: find them by name
					for _, r := range tree.Roots {
						if r.DisplayAddress() == m.Address {
							mv, err = r, nil
						}
					}
				}
				if err != nil || mv == nil {
					t.Fatalf("member %q not found: %v", m.Address, err)
				}
				if !strings.Contains(strings.Join(mv.Notes, "; "), "MD member of "+c.addr) {
					t.Errorf("member %s notes %q", m.Address, mv.Notes)
				}
			}
			if c.inner != "" {
				iv, err := tree.Resolve(c.inner)
				if err != nil {
					t.Fatal(err)
				}
				want, size := mdGolden(t, c.array, c.innerKey)
				if iv.Size != size || volumeSum(t, iv) != want {
					t.Errorf("%s: size %d, sha256 differs from the kernel's (%d)", c.inner, iv.Size, size)
				}
			}
		})
	}
}

// TestMDStaleMemberNoted: the stale member of md0 is shown, left out,
// with its event count, and the array still reads as the kernel did.
func TestMDStaleMemberNoted(t *testing.T) {
	tree := inspectImages(t, mdMembers("r1v090", 3)...)
	v := resolveKind(t, tree, "md0", KindMD)
	var stale []MDMember
	for _, m := range v.MD.Members {
		if m.State != "active" {
			stale = append(stale, m)
		}
	}
	if len(stale) != 1 || stale[0].Address != "a2" || stale[0].State != "stale" {
		t.Fatalf("members %+v", v.MD.Members)
	}
	if !v.MD.Degraded || fmt.Sprint(v.MD.Missing) != "[2]" {
		t.Errorf("degraded %v missing %v", v.MD.Degraded, v.MD.Missing)
	}
	a2 := tree.Roots[2]
	if !strings.Contains(strings.Join(a2.Notes, "; "), "stale: left out") {
		t.Errorf("a2 notes %q", a2.Notes)
	}
	if !strings.Contains(strings.Join(v.Notes, "; "), "a2 is stale") {
		t.Errorf("array notes %q", v.Notes)
	}
	want, _ := mdGolden(t, "r1v090", "")
	if volumeSum(t, v) != want {
		t.Error("md0 differs from the kernel's")
	}
}

// TestMDSameNameArrays: two arrays with the same name at one level get a
// UUID prefix, and the bare name is ambiguous with the choices listed. The
// second array is a copy of r1v12 whose superblocks got another array UUID
// (and a recomputed checksum), as a second machine's array of the same
// name would have.
func TestMDSameNameArrays(t *testing.T) {
	var srcs []Source
	for copyNo := 0; copyNo < 2; copyNo++ {
		for i := 0; i < 2; i++ {
			b, err := os.ReadFile(fixturetest.Image(t, fmt.Sprintf("md-r1v12-%d", i)))
			if err != nil {
				t.Fatal(err)
			}
			if copyNo == 1 {
				sb := b[4096 : 4096+4096]
				sb[16] ^= 0xff // array UUID, first byte
				n := 256 + 2*int(binary.LittleEndian.Uint32(sb[220:]))
				var sum uint64
				for k := 0; k+4 <= n; k += 4 {
					if k != 216 {
						sum += uint64(binary.LittleEndian.Uint32(sb[k:]))
					}
				}
				binary.LittleEndian.PutUint32(sb[216:], uint32(sum&0xffffffff+sum>>32))
			}
			srcs = append(srcs, Source{Name: fmt.Sprintf("c%d-%d.img", copyNo, i), R: bytes.NewReader(b), Size: int64(len(b))})
		}
	}
	tree, err := Inspect(srcs, &Options{HostVGNames: func(string) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	var mds []*Volume
	for _, r := range tree.Roots {
		if r.Kind == KindMD {
			mds = append(mds, r)
		}
	}
	if len(mds) != 2 {
		t.Fatalf("%d arrays at the top, want 2", len(mds))
	}
	want, _ := mdGolden(t, "r1v12", "")
	for _, v := range mds {
		if !strings.HasPrefix(v.Address, "md-r1v12@") || len(v.Address) != len("md-r1v12@")+6 {
			t.Errorf("address %q, want md-r1v12@<6 hex digits of the UUID>", v.Address)
		}
		if uuid := strings.ReplaceAll(v.MD.UUID, ":", ""); !strings.HasPrefix(uuid, v.Address[len("md-r1v12@"):]) {
			t.Errorf("address %s does not carry the prefix of UUID %s", v.Address, v.MD.UUID)
		}
		if got, err := tree.Resolve(v.Address); err != nil || got != v {
			t.Errorf("resolve %s: %v", v.Address, err)
		}
		if volumeSum(t, v) != want {
			t.Errorf("%s differs from the kernel's r1v12", v.Address)
		}
	}
	_, err = tree.Resolve("md-r1v12")
	var ae *AddressError
	if !errors.As(err, &ae) || len(ae.Choices) != 2 {
		t.Errorf("bare name: %v, want an ambiguity listing both", err)
	}
}

// TestMDTwoDisks: "here are its two disks". Each disk's partitions are
// members of two raid1 arrays; given together (-a) the arrays sit at the
// top and read as the kernel read them. p2 ends at the end of the disk,
// so its 0.90 superblock is also where one for the whole disk would be:
// the disk is still a partitioned disk, as blkid says. Signatures of the
// members match blkid -p (the 0.90 UUID in blkid's word order).
func TestMDTwoDisks(t *testing.T) {
	tree := inspectImages(t, "md-disk-a", "md-disk-b")
	for i, d := range []string{"a", "b"} {
		root := tree.Roots[i]
		golden := string(fixturetest.Golden(t, "md-disk-"+d+".blkid-disk"))
		if root.Content == nil || root.Content.Type != "dos" || !strings.Contains(golden, "PTTYPE=dos") || strings.Contains(golden, "\nTYPE=") {
			t.Errorf("disk %s: content %+v, blkid %q", d, root.Content, golden)
		}
		sub := &Tree{Roots: []*Volume{root}}
		prefix := ""
		if i > 0 {
			prefix = root.Address + "/"
		}
		for _, g := range readBlkidGolden(t, "md-disk-"+d+".blkid") {
			v, err := sub.Resolve(prefix + g.addr)
			if err != nil {
				t.Fatal(err)
			}
			if v.Offset != g.off || v.Size != g.size || v.Content == nil {
				t.Fatalf("%s: %d+%d %+v, blkid %d+%d", v.Address, v.Offset, v.Size, v.Content, g.off, g.size)
			}
			for k, got := range map[string]string{"TYPE": v.Content.Type, "UUID": v.Content.UUID, "VERSION": v.Content.Version, "LABEL": v.Content.Label} {
				if g.attrs[k] != got {
					t.Errorf("%s: %s = %q, blkid %q", v.Address, k, got, g.attrs[k])
				}
			}
		}
	}
	for _, c := range []struct{ addr, array, members string }{
		{"md-r1v12", "r1v12", "p1 a1/p1"}, {"md0", "r1v090", "p2 a1/p2"},
	} {
		v := resolveKind(t, tree, c.addr, KindMD)
		if v.Parent() != nil {
			t.Errorf("%s is under %s, want the top", c.addr, v.Parent().DisplayAddress())
		}
		var got []string
		for _, m := range v.MD.Members {
			got = append(got, m.Address)
		}
		if strings.Join(got, " ") != c.members {
			t.Errorf("%s members %v, want %s", c.addr, got, c.members)
		}
		want, _ := mdGolden(t, c.array, "")
		if volumeSum(t, v) != want {
			t.Errorf("%s differs from the kernel's", c.addr)
		}
	}
	// One disk alone: both arrays degraded, under the disk, still readable.
	one := inspectImages(t, "md-disk-a")
	for _, c := range []struct{ addr, array string }{{"md-r1v12", "r1v12"}, {"md0", "r1v090"}} {
		v := resolveKind(t, one, c.addr, KindMD)
		if v.Parent() != one.Roots[0] || !v.MD.Degraded {
			t.Errorf("%s: parent %v, degraded %v", c.addr, v.Parent(), v.MD.Degraded)
		}
		want, _ := mdGolden(t, c.array, "")
		if volumeSum(t, v) != want {
			t.Errorf("%s alone differs from the kernel's", c.addr)
		}
	}
}

// TestMDVGAcrossArrays: a VG whose PVs are two raid1 arrays (each made of
// two images) is one VG with both PVs, at the top beside the arrays, and
// its LV reads as the kernel read it.
func TestMDVGAcrossArrays(t *testing.T) {
	tree := inspectImages(t, mdMembers("vgspan", 4)...)
	var vgs []*Volume
	tree.Walk(func(v *Volume) bool {
		if v.Kind == KindVG {
			vgs = append(vgs, v)
		}
		return true
	})
	if len(vgs) != 1 {
		t.Fatalf("%d VGs, want 1", len(vgs))
	}
	vg := vgs[0]
	if vg.Address != "vgspan" || vg.Parent() != nil || len(vg.VG.Missing) != 0 {
		t.Errorf("VG %s (parent %v), missing PVs %v", vg.Address, vg.Parent(), vg.VG.Missing)
	}
	var pvAt []string
	for _, p := range vg.VG.PVs {
		pvAt = append(pvAt, p.Address)
	}
	if strings.Join(pvAt, " ") != "md-vgspanA md-vgspanB" && strings.Join(pvAt, " ") != "md-vgspanB md-vgspanA" {
		t.Errorf("PVs at %v", pvAt)
	}
	lv := resolveKind(t, tree, "vgspan/data", KindLV)
	want, size := mdGolden(t, "vgspan", "vgspan/data")
	if lv.Size != size || volumeSum(t, lv) != want {
		t.Errorf("vgspan/data: %d bytes, sha256 differs from the kernel's (%d)", lv.Size, size)
	}
	// lvs --segments in the appliance: one segment on each array.
	devs := map[string]bool{}
	for _, l := range strings.Split(string(fixturetest.Golden(t, "md-vgspan.segments")), "\n") {
		if f := strings.Fields(l); len(f) == 4 && f[0] == "data" {
			devs[f[3]] = true
		}
	}
	if len(devs) != 2 {
		t.Errorf("the fixture's LV should have extents on both arrays: %v", devs)
	}
}
