package osinspect

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/image"
	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/vfs"
)

// inspector is virt-inspector's XML (fixtures/golden/os-NAME.inspector.xml,
// libguestfs's appliance on the same image).
type inspector struct {
	OS []struct {
		Root     string `xml:"root"`
		Arch     string `xml:"arch"`
		Distro   string `xml:"distro"`
		Product  string `xml:"product_name"`
		Major    int    `xml:"major_version"`
		Minor    int    `xml:"minor_version"`
		Hostname string `xml:"hostname"`
		Mounts   []struct {
			Dev   string `xml:"dev,attr"`
			Point string `xml:",chardata"`
		} `xml:"mountpoints>mountpoint"`
	} `xml:"operatingsystem"`
}

// libguestfsAddr maps libguestfs's device names to imgtool addresses:
// /dev/sda1 is p1 of the one disk, /dev/VG/LV is VG/LV.
func libguestfsAddr(dev string) string {
	if n, ok := strings.CutPrefix(dev, "/dev/sda"); ok {
		return "p" + n
	}
	return strings.TrimPrefix(dev, "/dev/")
}

func openTree(t *testing.T, name string) *inspect.Tree {
	t.Helper()
	im, err := image.Open(fixturetest.Image(t, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { im.Close() })
	tree, err := inspect.Inspect([]inspect.Source{{Name: name + ".img", R: im, Size: im.Size()}}, &inspect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func opener(v *inspect.Volume) (vfs.FS, error) { return v.OpenFS(vfs.OpenOptions{}) }

// The OS fields and the mount map against virt-inspector, and what it does
// not report (kernels, init, the fstab lines it skips) against the
// fixture script's trees (fixtures/scripts/os-guests.sh).
func TestInspectAgainstVirtInspector(t *testing.T) {
	for _, c := range []struct {
		name    string
		kernels []string
		init    string
		// extra are the mounts virt-inspector leaves out: a vfat by
		// PARTUUID, a bind mount.
		extra []string
		swap  []string
		notes []string // substrings, one per note, in order
	}{
		{name: "os-centos5", kernels: []string{"2.6.18-308.el5xen"}, init: "sysvinit",
			swap:  []string{"VolGroup00/LogVol01"},
			notes: []string{"fstab line 9: LABEL=/data: not in the image (mount point /data)"}},
		{name: "os-debian", kernels: []string{"6.1.0-18-amd64"}, init: "systemd",
			extra: []string{"/boot/efi=p4", "/var/www=bind:/srv/www"},
			swap:  []string{"p3"},
			notes: []string{"fstab line 8: /dev/sr0: not in the image (mount point /media/cdrom0)",
				"fstab line 10: UUID=deadbeef-0000-4000-8000-000000000000: not in the image (mount point /data)"}},
		{name: "os-rhel7", kernels: []string{"0-rescue-0123456789abcdef", "3.10.0-1160.el7.x86_64"}, init: "systemd",
			swap: []string{"centos/swap"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var want inspector
			if err := xml.Unmarshal(fixturetest.Golden(t, c.name+".inspector.xml"), &want); err != nil {
				t.Fatal(err)
			}
			if len(want.OS) != 1 {
				t.Fatalf("golden has %d OSes", len(want.OS))
			}
			w := want.OS[0]
			oses := Inspect(openTree(t, c.name), opener)
			if len(oses) != 1 {
				t.Fatalf("found %d OSes, want 1", len(oses))
			}
			o := oses[0]
			if o.Root != libguestfsAddr(w.Root) || o.Arch != w.Arch || o.Distro != w.Distro || o.Product != w.Product ||
				o.Major != w.Major || o.Minor != w.Minor || o.Hostname != w.Hostname {
				t.Errorf("got  root %s arch %s distro %s product %q %d.%d host %s\nwant root %s arch %s distro %s product %q %d.%d host %s",
					o.Root, o.Arch, o.Distro, o.Product, o.Major, o.Minor, o.Hostname,
					libguestfsAddr(w.Root), w.Arch, w.Distro, w.Product, w.Major, w.Minor, w.Hostname)
			}
			var gotMounts, wantMounts []string
			for _, m := range o.Mounts {
				if m.Bind != "" {
					gotMounts = append(gotMounts, m.Point+"=bind:"+m.Bind)
				} else {
					gotMounts = append(gotMounts, m.Point+"="+m.Address)
				}
			}
			for _, m := range w.Mounts {
				wantMounts = append(wantMounts, m.Point+"="+libguestfsAddr(m.Dev))
			}
			wantMounts = append(wantMounts, c.extra...)
			sort.Strings(gotMounts)
			sort.Strings(wantMounts)
			if !reflect.DeepEqual(gotMounts, wantMounts) {
				t.Errorf("mounts\n got %q\nwant %q", gotMounts, wantMounts)
			}
			if o.Mounts[0].Point != "/" {
				t.Errorf("first mount %s, want /", o.Mounts[0].Point)
			}
			if !reflect.DeepEqual(o.Kernels, c.kernels) || o.Init != c.init || !reflect.DeepEqual(o.Swap, c.swap) {
				t.Errorf("kernels %q init %s swap %q; want %q %s %q", o.Kernels, o.Init, o.Swap, c.kernels, c.init, c.swap)
			}
			if len(o.Notes) != len(c.notes) {
				t.Fatalf("notes %q, want %d", o.Notes, len(c.notes))
			}
			for i, n := range c.notes {
				if !strings.Contains(o.Notes[i], n) {
					t.Errorf("note %d: %q, want %q", i, o.Notes[i], n)
				}
			}
		})
	}
}

// The guest view of the CentOS 5 guest, walked as extract walks it, is
// what the kernel showed with the guest's three filesystems mounted
// (fixtures/golden/mount-find-os-centos5.txt): /home comes from its own
// LV, /boot from LABEL=/boot.
func TestGuestViewAgainstKernel(t *testing.T) {
	oses := Inspect(openTree(t, "os-centos5"), opener)
	if len(oses) != 1 {
		t.Fatalf("%d OSes", len(oses))
	}
	g, err := oses[0].Guest(opener, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := g.MountNotes(); len(n) != 0 {
		t.Errorf("mount notes: %q", n)
	}
	got := Listing(t, g)
	want := strings.Split(strings.TrimSpace(string(fixturetest.Golden(t, "mount-find-os-centos5.txt"))), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("guest view differs from the kernel's mounts:\n%s", diffLines(got, want))
	}
	// /home/alice is on LogVol02, not on the root LV: its inode number is
	// in instance 2's range.
	ino, err := g.Lookup("/home/alice/notes.txt")
	if err != nil || uint64(ino)>>instShift == 0 {
		t.Errorf("/home/alice/notes.txt: ino %#x %v (want a mounted filesystem's)", uint64(ino), err)
	}
	// .. at a mount root goes back to the parent filesystem.
	if a, err := g.Lookup("/home/../etc/fstab"); err != nil {
		t.Error(err)
	} else if b, _ := g.Lookup("/etc/fstab"); a != b {
		t.Errorf("/home/../etc/fstab = %d, /etc/fstab = %d", a, b)
	}
	if _, err := g.Lookup("/data/x"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("/data/x: %v", err)
	}
}

// Listing renders fsys as fixtures/scripts/find-listing.sh renders a
// mounted tree: find -printf '%y %m %U %G %s %T@ %P', then sha256 or the
// symlink target, sorted by path.
func Listing(t *testing.T, fsys vfs.FS) []string {
	t.Helper()
	type row struct{ key, line string }
	var rows []row
	var walk func(ino vfs.Ino, p string)
	walk = func(ino vfs.Ino, p string) {
		st, err := fsys.Stat(ino)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		typ, h := "?", "-"
		switch {
		case st.IsDir():
			typ = "d"
		case st.IsSymlink():
			typ = "l"
			h, _ = fsys.Readlink(ino)
		case st.IsRegular():
			typ = "f"
			f, err := fsys.Open(ino)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			sum := sha256.New()
			if _, err := io.Copy(sum, io.NewSectionReader(f, 0, f.Size())); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			h = hex.EncodeToString(sum.Sum(nil))
		}
		name := p
		if name == "" {
			name = "."
		}
		rows = append(rows, row{p, fmt.Sprintf("%s %o %d %d %d %d.%09d0 %s %s", typ, st.Mode&vfs.ModePerm, st.UID, st.GID, st.Size,
			st.Mtime.Unix(), st.Mtime.Nanosecond(), name, h)})
		if !st.IsDir() {
			return
		}
		ents, err := fsys.ReadDir(ino)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, e := range ents {
			walk(e.Ino, strings.TrimPrefix(p+"/"+e.Name, "/"))
		}
	}
	walk(fsys.Root(), "")
	// sort -k7 in the C locale: by the path (empty for the root)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].key < rows[j].key })
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.line
	}
	return out
}

func diffLines(got, want []string) string {
	var b strings.Builder
	g := map[string]bool{}
	for _, l := range got {
		g[l] = true
	}
	w := map[string]bool{}
	for _, l := range want {
		w[l] = true
		if !g[l] {
			fmt.Fprintf(&b, "- %s\n", l)
		}
	}
	for _, l := range got {
		if !w[l] {
			fmt.Fprintf(&b, "+ %s\n", l)
		}
	}
	return b.String()
}

// Disk names in a guest's fstab are the guest's: in the demo, the guest
// disk is the dom0 LV VolGroup00/domu1 (Xen's xvda), so xvda1, sda1 and
// vda1 are its p1, and /dev/VolGroup00/LogVol00 is the guest's own VG's
// LV, not the dom0's of the same name.
func TestResolveRelativeToGuestDisk(t *testing.T) {
	tree := openTree(t, "dom0")
	root, err := tree.Resolve("VolGroup00/domu1/VolGroup00/LogVol00")
	if err != nil {
		t.Fatal(err)
	}
	r := &resolver{tree: tree, disk: GuestDisk(root), root: root}
	if r.disk.Address != "VolGroup00/domu1" {
		t.Fatalf("guest disk %q", r.disk.Address)
	}
	for spec, want := range map[string]string{
		"/dev/xvda1":                      "VolGroup00/domu1/p1",
		"/dev/sda1":                       "VolGroup00/domu1/p1",
		"/dev/vda2":                       "VolGroup00/domu1/p2",
		"/dev/hda1":                       "VolGroup00/domu1/p1",
		"/dev/xvda":                       "VolGroup00/domu1",
		"/dev/VolGroup00/LogVol00":        "VolGroup00/domu1/VolGroup00/LogVol00",
		"/dev/mapper/VolGroup00-LogVol01": "VolGroup00/domu1/VolGroup00/LogVol01",
		"LABEL=/boot":                     "VolGroup00/domu1/p1",
		"UUID=00000000-2222-4333-8444-000000000001": "p1", // the dom0's /boot: not on the guest disk, found in the tree
		"/dev/root": "VolGroup00/domu1/VolGroup00/LogVol00",
	} {
		v, err := r.Resolve(spec)
		if err != nil || v.Address != want {
			got := ""
			if v != nil {
				got = v.Address
			}
			t.Errorf("%s: %q %v, want %s", spec, got, err, want)
		}
	}
	for _, spec := range []string{"/dev/xvdb1", "/dev/xvda9", "/dev/md0", "/dev/VolGroup00/nope", "UUID=ffffffff-0000-0000-0000-000000000000"} {
		if v, err := r.Resolve(spec); err == nil {
			t.Errorf("%s resolved to %s", spec, v.Address)
		}
	}
}
