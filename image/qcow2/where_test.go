package qcow2

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/imgtool/imgtool/internal/where"
)

// Issue 12.5: qcow2 damage beyond the L1 table is reported at its byte in
// the file. The image is made by qemu-img; offsets are read from it
// through qemu's docs/interop/qcow2.txt: cluster_bits at byte 20,
// l1_table_offset at 40 (big-endian), 8-byte L1 and L2 entries with the
// offset in bits 9-55.

func qcow2Image(t *testing.T) (string, []byte) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw")
	data := make([]byte, 4<<20)
	rand.Read(data)
	if err := os.WriteFile(raw, data, 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "d.qcow2")
	if out, err := exec.Command("qemu-img", "convert", "-O", "qcow2", raw, p).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, out)
	}
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

// TestL2EntryLocated: L2 entry 5 of L1 entry 0 is pointed past the end of
// the file; a read of cluster 5 names the entry's byte, and cluster 4
// still reads.
func TestL2EntryLocated(t *testing.T) {
	_, b := qcow2Image(t)
	be := binary.BigEndian
	cluster := int64(1) << be.Uint32(b[20:])
	l1 := int64(be.Uint64(b[40:]))
	l2 := int64(be.Uint64(b[l1:]) & 0x00fffffffffffe00)
	if l2 == 0 {
		t.Fatal("L1 entry 0 is unallocated")
	}
	ent := l2 + 8*5
	if be.Uint64(b[ent:])&0x00fffffffffffe00 == 0 {
		t.Fatal("cluster 5 is unallocated")
	}
	be.PutUint64(b[ent:], 1<<63|uint64(int64(len(b))+16*cluster))
	f := filepath.Join(t.TempDir(), "bad.qcow2")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	im, err := Open(bytes.NewReader(b), int64(len(b)), f)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	_, err = im.ReadAt(make([]byte, 4096), 5*cluster+512)
	if err == nil {
		t.Fatal("read through an L2 entry past EOF succeeded")
	}
	wantAt(t, "L2 entry", err, f, ent)
	if _, err := im.ReadAt(make([]byte, 4096), 4*cluster); err != nil {
		t.Errorf("cluster 4: %v", err)
	}
}

// TestHeaderFieldLocated: header fields out of range are reported at
// the field's byte; the sentinel errors still match.
func TestHeaderFieldLocated(t *testing.T) {
	p, b := qcow2Image(t)
	be := binary.BigEndian
	for _, c := range []struct {
		name string
		off  int64
		set  func([]byte)
		is   error
	}{
		{"cluster_bits", 20, func(h []byte) { be.PutUint32(h[20:], 40) }, nil},
		{"l1_table_offset", 40, func(h []byte) { be.PutUint64(h[40:], uint64(len(b))) }, nil},
		{"crypt_method", 32, func(h []byte) { be.PutUint32(h[32:], 1) }, ErrEncrypted},
		{"version", 4, func(h []byte) { be.PutUint32(h[4:], 7) }, ErrUnsupported},
	} {
		h := bytes.Clone(b)
		c.set(h)
		_, err := Open(bytes.NewReader(h), int64(len(h)), p)
		if err == nil {
			t.Errorf("%s: opened", c.name)
			continue
		}
		wantAt(t, c.name, err, p, c.off)
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%s: %v is not %v", c.name, err, c.is)
		}
	}
}
