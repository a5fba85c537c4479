package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 12.5, item 5: qcow2 header fields the open refuses. qemu-img
// converts the ext4 image to a v3 qcow2; an incompatible feature bit no
// reader knows (bit 40) is set at byte 72 (QEMU's qcow2 spec): the CLI
// names the field and that byte. Then the file is cut inside the v3
// header (at 90 bytes): the error is located at byte 72, where the v3
// fields begin.
func TestWhere3Qcow2Header(t *testing.T) {
	dir := t.TempDir()
	raw, _ := ext4WithFile(t, dir)
	p := filepath.Join(dir, "fs.qcow2")
	b := convert(t, "qcow2", raw, p)
	be := binary.BigEndian
	if be.Uint32(b[4:]) != 3 {
		t.Fatalf("qemu-img made version %d", be.Uint32(b[4:]))
	}
	be.PutUint64(b[72:], be.Uint64(b[72:])|1<<40)
	os.WriteFile(p, b, 0o644)
	want := fmt.Sprintf("[volume fs.qcow2: byte 72 of %s]", p)
	_, errs, code := imgtool(t, "inspect", p)
	if code != exitError || !strings.Contains(errs, "incompatible feature") || !strings.Contains(errs, want) {
		t.Errorf("unknown feature bit: exit %d, %q; want exit %d and %q", code, errs, exitError, want)
	}
	os.WriteFile(p, b[:90], 0o644)
	_, errs, code = imgtool(t, "inspect", p)
	if code != exitError || !strings.Contains(errs, "v3 header") || !strings.Contains(errs, want) {
		t.Errorf("short v3 header: exit %d, %q; want exit %d and %q", code, errs, exitError, want)
	}
}
