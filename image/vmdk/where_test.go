package vmdk

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/imgtool/imgtool/internal/where"
)

// Issue 12.5: VMDK damage is reported at its byte in the file that holds
// it. The images are made by qemu-img; every expected offset is read from
// the file through the layout of VMware's "Virtual Disk Format 1.1"
// (SparseExtentHeader: grainSize at byte 20, numGTEsPerGT at 44, gdOffset
// at 56; GD and GT entries are little-endian uint32 sectors).

func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
	}
}

// sparseImage converts 4 MiB of random data to a monolithicSparse VMDK
// and returns its path and bytes.
func sparseImage(t *testing.T) (string, []byte) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw")
	data := make([]byte, 4<<20)
	rand.Read(data)
	if err := os.WriteFile(raw, data, 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "s.vmdk")
	qemuImg(t, "convert", "-O", "vmdk", raw, p)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, b
}

func wantAt(t *testing.T, what string, err error, path string, off int64) {
	t.Helper()
	if p, o := where.FileOffset(err); p != path || o != off {
		t.Errorf("%s: %v: located at %q byte %d, want %q byte %d", what, err, p, o, path, off)
	}
}

// TestGrainEntryPastEOFLocated: the GT entry of an allocated grain is
// pointed past the end of the file; the read names the entry's byte.
func TestGrainEntryPastEOFLocated(t *testing.T) {
	p, b := sparseImage(t)
	grain := int64(le.Uint64(b[20:])) * sector
	gd := int64(le.Uint64(b[56:])) * sector
	gt := int64(le.Uint32(b[gd:])) * sector // GD entry 0
	j := int64(3)
	if le.Uint32(b[gt+4*j:]) == 0 {
		t.Fatalf("grain %d is not allocated", j)
	}
	binary.LittleEndian.PutUint32(b[gt+4*j:], uint32(len(b)/sector+100))
	d, err := OpenNamed(bytes.NewReader(b), int64(len(b)), "", p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadAt(make([]byte, 4096), j*grain); err == nil {
		t.Fatal("read through a GT entry past EOF succeeded")
	} else {
		wantAt(t, "grain", err, p, gt+4*j)
	}
	// Grain j-1 still reads.
	if _, err := d.ReadAt(make([]byte, 4096), (j-1)*grain); err != nil {
		t.Errorf("grain %d: %v", j-1, err)
	}
}

// TestGrainTablePastEOFLocated: GD entry 0 points past the end of the
// file; the read names the GD entry's byte.
func TestGrainTablePastEOFLocated(t *testing.T) {
	p, b := sparseImage(t)
	gd := int64(le.Uint64(b[56:])) * sector
	binary.LittleEndian.PutUint32(b[gd:], uint32(len(b)/sector+100))
	d, err := OpenNamed(bytes.NewReader(b), int64(len(b)), "", p, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.ReadAt(make([]byte, 512), 0)
	wantAt(t, "grain table", err, p, gd)
}

// TestSparseHeaderLocated: header fields that are out of range are
// reported at the field's byte.
func TestSparseHeaderLocated(t *testing.T) {
	p, b := sparseImage(t)
	for _, c := range []struct {
		name string
		off  int64
		set  func([]byte)
	}{
		{"grainSize", 20, func(h []byte) { le.PutUint64(h[20:], 3) }},
		{"numGTEsPerGT", 44, func(h []byte) { le.PutUint32(h[44:], 0) }},
		{"gdOffset", 56, func(h []byte) { le.PutUint64(h[56:], uint64(len(b)/sector)) }},
		{"descriptorOffset", 28, func(h []byte) { le.PutUint64(h[28:], uint64(len(b)/sector)) }},
	} {
		h := bytes.Clone(b)
		c.set(h)
		_, err := OpenNamed(bytes.NewReader(h), int64(len(h)), "", p, nil)
		if err == nil {
			t.Errorf("%s: opened", c.name)
			continue
		}
		wantAt(t, c.name, err, p, c.off)
	}
}

// TestDescriptorExtentLocated: a monolithicFlat descriptor whose flat
// extent file is shorter than its extent line says is reported at the
// line's byte in the descriptor file (found in the text qemu-img wrote);
// so is an extent line that does not parse.
func TestDescriptorExtentLocated(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.vmdk")
	qemuImg(t, "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", p, "1M")
	text, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	line := int64(bytes.Index(text, []byte("\nRW "))) + 1
	if line <= 0 || !bytes.Contains(text[line:], []byte("FLAT \"f-flat.vmdk\"")) {
		t.Fatalf("no flat extent line in\n%s", text)
	}
	if err := os.Truncate(filepath.Join(dir, "f-flat.vmdk"), 4096); err != nil {
		t.Fatal(err)
	}
	d, err := OpenFile(p)
	if err == nil {
		d.Close()
		t.Fatal("opened a flat extent shorter than its line")
	}
	wantAt(t, "flat extent", err, p, line)

	bad := bytes.Replace(text, []byte("RW 2048 FLAT"), []byte("RW x048 FLAT"), 1)
	if err := os.WriteFile(p, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = OpenFile(p)
	wantAt(t, "extent line", err, p, line)
}

// TestCompressedGrainLocated: in a streamOptimized VMDK (qemu-img,
// subformat=streamOptimized) the GT entry of a compressed grain pointed
// past the end of the file is reported at the entry's byte. The grain
// directory is found as for any sparse extent, through the footer (1024
// bytes before the end) when the header's gdOffset is "at end".
func TestCompressedGrainLocated(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw")
	data := make([]byte, 4<<20)
	rand.Read(data)
	if err := os.WriteFile(raw, data, 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "so.vmdk")
	qemuImg(t, "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, p)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	h := b[:512]
	if le.Uint64(h[56:]) == GDAtEnd {
		h = b[len(b)-1024:]
	}
	grain := int64(le.Uint64(h[20:])) * sector
	gd := int64(le.Uint64(h[56:])) * sector
	gt := int64(le.Uint32(b[gd:])) * sector
	if le.Uint32(h[8:])&FlagCompressed == 0 || gt == 0 || le.Uint32(b[gt+8:]) == 0 {
		t.Fatal("not a compressed extent with grain 2 allocated")
	}
	binary.LittleEndian.PutUint32(b[gt+8:], uint32(len(b)/sector+100))
	d, err := OpenNamed(bytes.NewReader(b), int64(len(b)), "", p, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.ReadAt(make([]byte, 4096), 2*grain)
	wantAt(t, "compressed grain", err, p, gt+8)
}

// TestExtentFileLocated: a twoGbMaxExtentSparse descriptor names a sparse
// extent file; a header field out of range in that file is located in it
// (the extent file's name, byte 20: grainSize).
func TestExtentFileLocated(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "tw.vmdk")
	qemuImg(t, "create", "-q", "-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse", p, "4M")
	ext := filepath.Join(dir, "tw-s001.vmdk")
	b, err := os.ReadFile(ext)
	if err != nil {
		t.Fatal(err)
	}
	le.PutUint64(b[20:], 3)
	if err := os.WriteFile(ext, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = OpenFile(p)
	if err == nil {
		t.Fatal("opened")
	}
	wantAt(t, "extent header", err, ext, 20)
}
