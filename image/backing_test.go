package image_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/imgtool/imgtool/image"
	"github.com/imgtool/imgtool/image/ref"
)

// hostileRefs lays out a "host" directory with a secret file and an
// "images" directory whose containers (made by qemu-img, then pointed
// elsewhere) name the secret in every way an attacker might: an absolute
// name, a ../ escape, a symlink into /proc, a FIFO. It returns the images
// directory and the secret's path.
func hostileRefs(t *testing.T) (string, string) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Fatalf("qemu-img is needed (scripts/setup.sh installs qemu-utils): %v", err)
	}
	root := t.TempDir()
	host := filepath.Join(root, "host")
	dir := filepath.Join(root, "images")
	for _, d := range []string{host, dir, filepath.Join(dir, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(host, "secret")
	if err := os.WriteFile(secret, bytes.Repeat([]byte("SECRET!\n"), 1<<17), 0o600); err != nil {
		t.Fatal(err)
	}
	// A good neighbour: a raw base in the image's own directory.
	if err := os.WriteFile(filepath.Join(dir, "base.img"), bytes.Repeat([]byte("base-ok\n"), 1<<17), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/proc/self/environ", filepath.Join(dir, "environ")); err != nil {
		t.Fatal(err)
	}
	qemu := func(args ...string) {
		t.Helper()
		out, err := exec.Command("qemu-img", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
		}
	}
	// -u: qemu-img does not open the backing file, so it may be anything.
	for name, backing := range map[string]string{
		"abs.qcow2":      secret,
		"dotdot.qcow2":   "../host/secret",
		"deep.qcow2":     "sub/../../host/secret",
		"fifo.qcow2":     "fifo",
		"proc.qcow2":     "environ",
		"good.qcow2":     "base.img",
		"goodabs.qcow2":  filepath.Join(dir, "base.img"),
		"sub/up.qcow2":   "../base.img",
		"sub/leak.qcow2": "../../host/secret",
	} {
		qemu("create", "-q", "-u", "-f", "qcow2", "-b", backing, "-F", "raw", filepath.Join(dir, name), "1M")
	}
	qemu("create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", filepath.Join(dir, "flat.vmdk"), "1M")
	desc, err := os.ReadFile(filepath.Join(dir, "flat.vmdk"))
	if err != nil {
		t.Fatal(err)
	}
	for name, extent := range map[string]string{"vabs.vmdk": secret, "vdotdot.vmdk": "../host/secret"} {
		d := strings.Replace(string(desc), `"flat-flat.vmdk"`, `"`+extent+`"`, 1)
		if d == string(desc) {
			t.Fatalf("qemu-img's descriptor has no extent line to rewrite:\n%s", desc)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, secret
}

// TestBackingPolicy: a container may not show a host file outside its own
// directory (CVE-2024-4467 class), unless the policy is widened.
func TestBackingPolicy(t *testing.T) {
	dir, secret := hostileRefs(t)
	read := func(im *image.Image) []byte {
		b := make([]byte, 8)
		if _, err := im.ReadAt(b, 0); err != nil {
			t.Fatalf("%s: read: %v", im.Path, err)
		}
		return b
	}
	for _, name := range []string{"abs.qcow2", "dotdot.qcow2", "deep.qcow2", "fifo.qcow2", "proc.qcow2", "sub/leak.qcow2", "vabs.vmdk", "vdotdot.vmdk"} {
		p := filepath.Join(dir, name)
		im, err := image.OpenWithOptions(p, nil)
		if err == nil {
			t.Errorf("%s: opened by default, reads %q; want it refused", name, read(im))
			im.Close()
			continue
		}
		if !errors.Is(err, ref.ErrRefused) {
			t.Errorf("%s: err = %v; want ref.ErrRefused", name, err)
		}
		// The error names the image, the field and the name.
		msg := err.Error()
		field := "backing file name (header byte 8 points at byte"
		if strings.HasSuffix(name, ".vmdk") {
			field = "descriptor line 8: extent file"
		}
		if !strings.Contains(msg, p) || !strings.Contains(msg, field) {
			t.Errorf("%s: error %q does not name the image and the field %q", name, msg, field)
		}
	}
	for _, name := range []string{"good.qcow2", "goodabs.qcow2", "sub/up.qcow2"} {
		// sub/up.qcow2 names ../base.img: it leaves sub/, its own
		// directory, so it is refused too; the other two are allowed.
		im, err := image.OpenWithOptions(filepath.Join(dir, name), nil)
		if name == "sub/up.qcow2" {
			if !errors.Is(err, ref.ErrRefused) {
				t.Errorf("%s: err = %v; want refused (it leaves its directory)", name, err)
			}
			if err == nil {
				im.Close()
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v; want it opened (its backing file is beside it)", name, err)
			continue
		}
		if got := read(im); string(got) != "base-ok\n" {
			t.Errorf("%s: reads %q, want the base", name, got)
		}
		im.Close()
	}

	// Widened: --allow-backing DIR, and --allow-backing any.
	hostPol, err := ref.Parse([]string{filepath.Dir(secret)})
	if err != nil {
		t.Fatal(err)
	}
	anyPol, err := ref.Parse([]string{"any"})
	if err != nil {
		t.Fatal(err)
	}
	for _, pol := range []*ref.Policy{hostPol, anyPol} {
		for _, name := range []string{"abs.qcow2", "dotdot.qcow2", "sub/leak.qcow2", "vabs.vmdk", "vdotdot.vmdk"} {
			im, err := image.OpenWithOptions(filepath.Join(dir, name), &image.Options{Backing: pol})
			if err != nil {
				t.Errorf("%s with %+v: %v", name, pol, err)
				continue
			}
			if got := read(im); string(got) != "SECRET!\n" {
				t.Errorf("%s with %+v: reads %q", name, pol, got)
			}
			im.Close()
		}
		// A FIFO stays refused under any policy: it is no disk, and
		// reading it would hang.
		if im, err := image.OpenWithOptions(filepath.Join(dir, "fifo.qcow2"), &image.Options{Backing: pol}); !errors.Is(err, ref.ErrRefused) {
			t.Errorf("fifo.qcow2 with %+v: err = %v; want refused", pol, err)
			if err == nil {
				im.Close()
			}
		}
	}
	if _, err := ref.Parse([]string{secret}); err == nil {
		t.Errorf("ref.Parse accepted a regular file as an allowed directory")
	}
}
