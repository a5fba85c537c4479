package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// TestDDBackingLeak: `imgtool dd leak.qcow2 ""` must not print a host file
// named as the backing file (CVE-2024-4467 class), until --allow-backing
// says so.
func TestDDBackingLeak(t *testing.T) {
	dir := t.TempDir()
	host := filepath.Join(dir, "host")
	imgs := filepath.Join(dir, "images")
	os.MkdirAll(host, 0o755)
	os.MkdirAll(imgs, 0o755)
	secret := filepath.Join(host, "hostname")
	if err := os.WriteFile(secret, []byte("secret-host-name\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	leak := filepath.Join(imgs, "leak.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-u", "-f", "qcow2", "-b", "../host/hostname", "-F", "raw", leak, "1M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, out)
	}
	out, errs, code := imgtool(t, "dd", leak, "")
	if code != exitError || strings.Contains(out, "secret") {
		t.Fatalf("dd leak.qcow2: exit %d, stdout %q; want exit 1 and no host data", code, out)
	}
	for _, want := range []string{leak, "backing file name", "../host/hostname", "--allow-backing"} {
		if !strings.Contains(errs, want) {
			t.Errorf("error %q does not mention %q", errs, want)
		}
	}
	for _, allow := range []string{host, "any"} {
		out, errs, code = imgtool(t, "dd", "--allow-backing", allow, leak, "")
		if code != exitOK || !strings.HasPrefix(out, "secret-host-name\n") {
			t.Errorf("dd --allow-backing %s: exit %d, stdout starts %q, stderr %q", allow, code, out[:min(len(out), 20)], errs)
		}
	}
	if _, errs, code = imgtool(t, "dd", "--allow-backing", secret, leak, ""); code != exitUsage {
		t.Errorf("--allow-backing FILE: exit %d (%s), want %d", code, errs, exitUsage)
	}
}

// TestBombCat (issue 13.3): a 1.5 GiB zstd bomb opened with --tmp reads
// correctly (the file's sha256 is the one mke2fs -d was given).
func TestBombCat(t *testing.T) {
	want, err := os.ReadFile(filepath.Join(fixturetest.Dir(), "golden", "bomb-zero.sha256"))
	if err != nil {
		t.Fatal(err)
	}
	out, errs, code := imgtool(t, "cat", "--tmp", t.TempDir(), filepath.Join(fixturetest.ImagesDir(), "bomb-zero.img.zst"), "/payload.bin")
	if code != exitOK {
		t.Fatalf("cat: exit %d: %s", code, errs)
	}
	if got := fmt.Sprintf("%x", sha256.Sum256([]byte(out))); got != strings.TrimSpace(string(want)) {
		t.Errorf("payload sha256 %s, want %s", got, want)
	}
	if _, errs, code := imgtool(t, "inspect", "--tmp", filepath.Join(t.TempDir(), "missing"), filepath.Join(fixturetest.ImagesDir(), "bomb-zero.img.zst")); code != exitError || !strings.Contains(errs, "missing") {
		t.Errorf("--tmp to a missing dir: exit %d, %q", code, errs)
	}
}
