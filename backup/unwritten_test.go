package backup

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// TestUnwrittenExtentsDumpAsZeros shows the difference with stock dump on
// the ext-ext4 fixture, whose /prealloc is a fallocate'd (unwritten) file
// laid over blocks that still hold "STALE-DATA!" (the fixture script checks
// that). Stock dump, reading a read-only loop device, copies the stale
// bytes onto the tape; our dump describes the unwritten range as a hole,
// so restore gives zeros.
func TestUnwrittenExtentsDumpAsZeros(t *testing.T) {
	need(t, "dump", "restore", "losetup")
	img := fixturetest.Copy(t, "ext-ext4")
	dir := t.TempDir()

	// Ours.
	ours := filepath.Join(dir, "ours.dump")
	dumpImage(t, img, ours, 0, time.Now(), time.Time{})
	oursDir := t.TempDir()
	sh(t, oursDir, "restore", "-x", "-a", "-o", "-y", "-f", ours, "./prealloc")
	got, err := os.ReadFile(filepath.Join(oursDir, "prealloc"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 65536 || !bytes.Equal(got, make([]byte, 65536)) {
		t.Errorf("our dump: /prealloc restored as %d bytes, %d of them non-zero; want 65536 zeros", len(got), len(got)-bytes.Count(got, []byte{0}))
	}

	// Stock dump on a read-only loop device.
	out, err := exec.Command("losetup", "-r", "-f", "--show", img).Output()
	if err != nil {
		t.Fatalf("losetup: %v", err)
	}
	loop := strings.TrimSpace(string(out))
	defer exec.Command("losetup", "-d", loop).Run()
	stock := filepath.Join(dir, "stock.dump")
	sh(t, dir, "dump", "-0", "-q", "-f", stock, loop)
	stockDir := t.TempDir()
	sh(t, stockDir, "restore", "-x", "-a", "-o", "-y", "-f", stock, "./prealloc")
	leaked, err := os.ReadFile(filepath.Join(stockDir, "prealloc"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(leaked, []byte("STALE-DATA!")) {
		t.Errorf("stock dump did not leak the stale bytes this time (got %q...): the fixture no longer shows the difference", leaked[:min(len(leaked), 32)])
	} else {
		t.Logf("stock dump leaked %d bytes of stale data from unwritten extents; ours wrote zeros", bytes.Count(leaked, []byte("STALE-DATA!"))*11)
	}
}
