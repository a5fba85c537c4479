package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWhereVirtualDisk: a damaged ext directory block is located at a byte
// of the disk the filesystem sits on. Only for a raw image is that a byte
// of the file; in a qcow2 it is a byte of the virtual disk, in a .zst one
// of the decompressed stream, and the message must not name the file as
// if it were raw (it did: "byte 1361920 of fs.qcow2"). Where the qcow2
// stores that byte is added, as qemu-img map places it.
func TestWhereVirtualDisk(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "d"), 0o755)
	os.WriteFile(filepath.Join(src, "d", "f"), []byte("hi\n"), 0o644)
	raw := filepath.Join(dir, "fs.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-b", "1024", "-d", src, raw, "4M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	out, err := exec.Command("debugfs", "-R", "blocks /d", raw).Output()
	if err != nil {
		t.Fatal(err)
	}
	var blk int64
	if _, err := fmt.Sscan(string(out), &blk); err != nil || blk == 0 {
		t.Fatalf("debugfs blocks /d: %q", out)
	}
	b, _ := os.ReadFile(raw)
	off := blk * 1024
	binary.LittleEndian.PutUint16(b[off+4:], 7) // rec_len 7: invalid
	os.WriteFile(raw, b, 0o644)
	q := filepath.Join(dir, "fs.qcow2")
	convert(t, "qcow2", raw, q)
	for _, f := range []string{raw, q} {
		if o, err := exec.Command("zstd", "-q", "-k", f).CombinedOutput(); err != nil {
			t.Fatalf("zstd: %v\n%s", err, o)
		}
	}
	// Where the qcow2 stores the block: qemu-img map's range holding it.
	out, err = exec.Command("qemu-img", "map", "--output=json", q).Output()
	if err != nil {
		t.Fatal(err)
	}
	var ranges []struct {
		Start, Length int64
		Offset        *int64
	}
	if err := json.Unmarshal(out, &ranges); err != nil {
		t.Fatal(err)
	}
	host := int64(-1)
	for _, r := range ranges {
		if r.Offset != nil && r.Start <= off && off < r.Start+r.Length {
			host = *r.Offset + off - r.Start
		}
	}
	qb, _ := os.ReadFile(q)
	if host < 0 || binary.LittleEndian.Uint16(qb[host+4:]) != 7 {
		t.Fatalf("qemu-img map puts byte %d at %d, which is not the damaged entry:\n%s", off, host, out)
	}
	for _, c := range []struct{ image, of string }{
		{raw, raw + "]"},
		{q, fmt.Sprintf("the qcow2 virtual disk of %s, stored at byte %d of %s]", q, host, q)},
		{raw + ".zst", raw + ".zst (decompressed)]"},
		{q + ".zst", "the qcow2 virtual disk of " + q + ".zst (decompressed)]"},
	} {
		want := fmt.Sprintf("byte %d = byte %d of %s", off, off, c.of)
		_, errs, code := imgtool(t, "ls", c.image, "/d")
		if code != exitPartial || !strings.Contains(errs, "rec_len") || !strings.Contains(errs, want) {
			t.Errorf("ls %s /d: exit %d, %q; want exit %d and %q", filepath.Base(c.image), code, errs, exitPartial, want)
		}
	}
}

// TestWhereDecompressedRead: TestWhereQcow2L2's damage (an L2 entry past
// the end of the file, met when /big is read) in a qcow2 inside a .zst:
// the entry's byte is one of the decompressed stream, and the read-time
// error says so as the open-time ones do (TestWhere3Decompressed).
func TestWhereDecompressedRead(t *testing.T) {
	q, entry := qcow2BadL2(t)
	if o, err := exec.Command("zstd", "-q", "--rm", q).CombinedOutput(); err != nil {
		t.Fatalf("zstd: %v\n%s", err, o)
	}
	z := q + ".zst"
	want := fmt.Sprintf("[volume fs.qcow2.zst: byte %d of %s (decompressed)]", entry, z)
	_, errs, code := imgtool(t, "cat", z, "/big")
	if code != exitError || !strings.Contains(errs, "L2 entry") || !strings.Contains(errs, want) {
		t.Errorf("cat: exit %d, %q; want exit %d and %q", code, errs, exitError, want)
	}
}
