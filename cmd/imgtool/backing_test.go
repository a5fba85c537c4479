package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
