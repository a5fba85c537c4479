package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// The guest-view address (VOL:@/path) through ls, cat and extract: /home
// of the CentOS 5 guest is its own LV (LogVol02), found through the
// guest's fstab; the files come out as the kernel showed them with the
// guest's filesystems mounted (fixtures/golden/mount-find-os-centos5.txt).
func TestGuestAddress(t *testing.T) {
	img := fixturetest.Image(t, "os-centos5")
	golden := map[string][]string{} // path -> find-listing fields
	for _, line := range strings.Split(strings.TrimSpace(string(fixturetest.Golden(t, "mount-find-os-centos5.txt"))), "\n") {
		f := strings.Fields(line)
		golden[f[6]] = f
	}

	// extract VolGroup00:@/home (the VG holds the OS root LogVol00)
	dest := filepath.Join(t.TempDir(), "h")
	_, stderr, code := imgtool(t, "extract", img, "VolGroup00:@/home", dest)
	if code != 0 {
		t.Fatalf("extract exit %d: %s", code, stderr)
	}
	n := 0
	for p, f := range golden {
		rel, ok := strings.CutPrefix(p, "home/")
		if !ok {
			continue
		}
		got := filepath.Join(dest, rel)
		st, err := os.Lstat(got)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if fmt.Sprintf("%o", st.Mode().Perm()|modeBits(st.Mode())) != f[1] {
			t.Errorf("%s: mode %o, want %s", p, st.Mode().Perm(), f[1])
		}
		if f[0] == "f" {
			b, _ := os.ReadFile(got)
			if fmt.Sprintf("%x", sha256.Sum256(b)) != f[7] {
				t.Errorf("%s: content differs", p)
			}
			n++
		}
	}
	if n != 3 {
		t.Errorf("checked %d files of /home, want 3 (alice/.bashrc, alice/notes.txt, bob/todo)", n)
	}
	if !strings.Contains(stderr, "LABEL=/data") {
		t.Errorf("the fstab line naming a missing device is not said: %s", stderr)
	}

	// cat @/path (the only OS) and ls --json with the guest's numbering
	out, _, code := imgtool(t, "cat", img, "@/home/alice/notes.txt")
	if code != 0 || !strings.HasPrefix(out, "the only copy of the quarterly numbers\n") {
		t.Errorf("cat @/home/alice/notes.txt: exit %d %q", code, out)
	}
	out, _, code = imgtool(t, "ls", img, "VolGroup00/LogVol00:@/boot", "--json")
	var ents []struct{ Name string }
	if err := json.Unmarshal(jsonKey(t, out, "entries"), &ents); code != 0 || err != nil {
		t.Fatalf("ls --json: exit %d %v %q", code, err, out)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name)
	}
	if got := strings.Join(names, " "); got != "grub initrd-2.6.18-308.el5xen.img lost+found vmlinuz-2.6.18-308.el5xen" {
		t.Errorf("ls @/boot (p1, LABEL=/boot): %s", got)
	}
	// No OS under a volume: a clear error; a plain path is unchanged.
	_, stderr, code = imgtool(t, "ls", img, "p1:@/")
	if code == 0 || !strings.Contains(stderr, "p1 holds no operating system") {
		t.Errorf("p1:@/: exit %d %q", code, stderr)
	}
	if _, _, code = imgtool(t, "ls", img, "p1:/grub"); code != 0 {
		t.Errorf("p1:/grub: exit %d", code)
	}
}

// modeBits are the setuid/setgid/sticky bits in find's %m form.
func modeBits(m os.FileMode) os.FileMode {
	var b os.FileMode
	if m&os.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}
