package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
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

// TestWhere3VMDKHeader: the sparse header's version (byte 4) set to 9,
// then (version restored, on a streamOptimized VMDK) the compression
// algorithm (byte 77) set to 7: each open is located at that byte.
func TestWhere3VMDKHeader(t *testing.T) {
	dir := t.TempDir()
	raw, _ := ext4WithFile(t, dir)
	p := filepath.Join(dir, "fs.vmdk")
	b := convert(t, "vmdk", raw, p)
	le := binary.LittleEndian
	le.PutUint32(b[4:], 9)
	os.WriteFile(p, b, 0o644)
	want := fmt.Sprintf("[volume fs.vmdk: byte 4 of %s]", p)
	_, errs, code := imgtool(t, "inspect", p)
	if code != exitError || !strings.Contains(errs, "version 9") || !strings.Contains(errs, want) {
		t.Errorf("version: exit %d, %q; want exit %d and %q", code, errs, exitError, want)
	}
	if o, err := exec.Command("qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, p).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, o)
	}
	b, _ = os.ReadFile(p)
	le.PutUint16(b[77:], 7)
	os.WriteFile(p, b, 0o644)
	want = fmt.Sprintf("[volume fs.vmdk: byte 77 of %s]", p)
	_, errs, code = imgtool(t, "inspect", p)
	if code != exitError || !strings.Contains(errs, "compression algorithm 7") || !strings.Contains(errs, want) {
		t.Errorf("compression: exit %d, %q; want exit %d and %q", code, errs, exitError, want)
	}
}

// TestWhere3Compressed: the committed .zst and .gz fixtures cut in half:
// the error names the file and the compressed byte the decoder had taken
// when it failed ("at or before": decoders read ahead).
func TestWhere3Compressed(t *testing.T) {
	for _, ext := range []string{"zst", "gz"} {
		b, err := os.ReadFile(filepath.Join(fixturetest.ImagesDir(), "fmt-raw.img."+ext))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "cut.img."+ext)
		os.WriteFile(p, b[:len(b)/2], 0o644)
		_, errs, code := imgtool(t, "inspect", p)
		if code != exitError || !strings.Contains(errs, p) || !strings.Contains(errs, "at or before input byte ") {
			t.Errorf("%s: exit %d, %q; want exit %d, the file and \"at or before input byte\"", ext, code, errs, exitError)
		}
		t.Log(errs)
	}
}

// TestWhere3Decompressed: a qcow2 whose cluster_bits (byte 20) is out of
// range, compressed with zstd: the byte is one of the decompressed
// stream, and the CLI says so rather than naming byte 20 of the .zst.
func TestWhere3Decompressed(t *testing.T) {
	dir := t.TempDir()
	raw, _ := ext4WithFile(t, dir)
	p := filepath.Join(dir, "fs.qcow2")
	b := convert(t, "qcow2", raw, p)
	binary.BigEndian.PutUint32(b[20:], 3)
	os.WriteFile(p, b, 0o644)
	if o, err := exec.Command("zstd", "-q", "--rm", p).CombinedOutput(); err != nil {
		t.Fatalf("zstd: %v\n%s", err, o)
	}
	z := p + ".zst"
	want := fmt.Sprintf("[volume fs.qcow2.zst: byte 20 of %s (decompressed)]", z)
	_, errs, code := imgtool(t, "inspect", z)
	if code != exitError || !strings.Contains(errs, "cluster bits") || !strings.Contains(errs, want) {
		t.Errorf("exit %d, %q; want exit %d and %q", code, errs, exitError, want)
	}
}

// TestWhere3LVMTruncated: the dom0 fixture cut 1 MiB into its PV (p2, as
// sfdisk -J lists it): reading an LV whose extents lie past the cut names
// the LV, the PV and the byte of the image file.
func TestWhere3LVMTruncated(t *testing.T) {
	path := fixturetest.Image(t, "dom0")
	pv := sfdiskParts(t, path, 2)[1].Start * 512
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "dom0-cut.img")
	os.WriteFile(img, b[:pv+1<<20], 0o644)
	_, errs, code := imgtool(t, "dd", img, "VolGroup00/LogVol00", "-o", filepath.Join(t.TempDir(), "out"))
	t.Log(errs)
	if code != exitError || !strings.Contains(errs, "LogVol00") || !strings.Contains(errs, "PV pv0") || !strings.Contains(errs, fmt.Sprintf("= byte %d of %s]", pv+1<<20, img)) {
		t.Errorf("dd: exit %d, %q; want exit %d, the LV, the PV and a byte of %s", code, errs, exitError, img)
	}
}

// TestWhere3LVMUnknownPV: the dom0 fixture's VG metadata is rewritten so
// that LogVol00's stripes name "pv9", a PV the VG does not have (checksums
// made good as TestWhereLVMSegment does): the LV does not assemble, and
// the error is located at the metadata copy.
func TestWhere3LVMUnknownPV(t *testing.T) {
	d := readDom0PV(t)
	d.replace(t, `"pv0", `, `"pv9", `)
	b, pv, copyAt := d.b, d.pv, d.copyAt
	img := filepath.Join(t.TempDir(), "dom0-pv9.img")
	os.WriteFile(img, b, 0o644)
	want := fmt.Sprintf("[volume p2 byte %d = byte %d of %s]", copyAt, pv+copyAt, img)
	o, _, _ := imgtool(t, "inspect", img)
	if !strings.Contains(o, "unknown PV pv9") || !strings.Contains(o, want) {
		t.Errorf("inspect's LV notes lack %q:\n%s", want, o)
	}
}
