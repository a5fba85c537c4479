package qcow2

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestCompressedClusterLocated (issue 12.5): qemu-img -c writes a qcow2 of
// compressed clusters; cluster 5's deflate data (the compressed L2 entry's
// offset, bits 0..61-(cluster_bits-8), qemu's docs/interop/qcow2.txt) is
// overwritten with 0xff bytes (an invalid block type): the read names that
// byte of the file.
func TestCompressedClusterLocated(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw")
	if err := os.WriteFile(raw, bytes.Repeat([]byte("compressible text "), 4<<16), 0o644); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "c.qcow2")
	if out, err := exec.Command("qemu-img", "convert", "-c", "-O", "qcow2", raw, f).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, out)
	}
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	bits := be.Uint32(b[20:])
	cluster := int64(1) << bits
	l1 := int64(be.Uint64(b[40:]))
	l2 := int64(be.Uint64(b[l1:]) & 0x00fffffffffffe00)
	e := be.Uint64(b[l2+8*5:])
	if e&(1<<62) == 0 {
		t.Fatalf("cluster 5 is not compressed (entry %#x)", e)
	}
	host := int64(e & (1<<(62-(bits-8)) - 1))
	copy(b[host:], bytes.Repeat([]byte{0xff}, 32))
	im, err := Open(bytes.NewReader(b), int64(len(b)), f)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	_, err = im.ReadAt(make([]byte, 4096), 5*cluster)
	if err == nil {
		t.Fatal("read of a damaged compressed cluster succeeded")
	}
	wantAt(t, "compressed cluster", err, f, host)
	t.Log(err)
}
