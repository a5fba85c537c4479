package image

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A block device's size comes from BLKGETSIZE64 (stat says 0 for it): open
// a read-only loop device limited to part of a file and check size and bytes.
func TestOpenBlockDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test attaches a loop device and needs root (CI runs as root)")
	}
	path := filepath.Join(t.TempDir(), "disk.img")
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	const off, size = 1 << 20, 2 << 20
	out, err := exec.Command("losetup", "-f", "--show", "-r", "-o", "1048576", "--sizelimit", "2097152", path).Output()
	if err != nil {
		t.Fatalf("losetup: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })

	im, err := Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if !im.BlockDevice || im.Size() != size || im.Format != FormatRaw {
		t.Fatalf("block device %s: BlockDevice=%v size=%d format=%s; want true, %d, raw", dev, im.BlockDevice, im.Size(), im.Format, size)
	}
	got := make([]byte, 4096)
	if _, err := im.ReadAt(got, size-4096); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data[off+size-4096:off+size]) {
		t.Fatal("bytes read through the loop device differ from the file")
	}
	// A read-only loop device cannot be opened for writing.
	if w, err := OpenWritable(dev); err == nil {
		w.Close()
		t.Fatal("OpenWritable succeeded on a read-only loop device")
	}
}
