package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// Issue 12.5: every structural error the CLI prints names the volume and
// the absolute byte of the image file. One test per layer below the
// filesystems (ext's is TestNestedDamageOffset); each expected offset is
// computed from the file's bytes and the real tools' output, not by
// imgtool.

// TestWherePartition: both copies of the GPT entry array of the
// sfdisk-made part-gpt fixture fail their CRC. The primary array's LBA is
// read from the primary header (bytes 72-79 of LBA 1).
func TestWherePartition(t *testing.T) {
	b, err := os.ReadFile(fixturetest.Image(t, "part-gpt"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b[512:520]) != "EFI PART" {
		t.Fatal("no primary GPT header at byte 512")
	}
	arr := int64(binary.LittleEndian.Uint64(b[512+72:])) * 512
	back := len(b) - 512
	if string(b[back:back+8]) != "EFI PART" {
		t.Fatal("no backup GPT header in the last sector")
	}
	barr := int64(binary.LittleEndian.Uint64(b[back+72:])) * 512
	b[arr+56] ^= 0xff // entry 1's name, in each copy
	b[barr+56] ^= 0xff
	img := filepath.Join(t.TempDir(), "gpt-bad.img")
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("[volume gpt-bad.img byte %d = byte %d of %s]", arr, arr, img)
	_, errs, code := imgtool(t, "ls", img, "p1:/")
	if code != exitError || !strings.Contains(errs, "no such volume") || !strings.Contains(errs, "CRC32 mismatch") || !strings.Contains(errs, want) {
		t.Errorf("ls: exit %d, %q; want exit %d and %q", code, errs, exitError, want)
	}
}

// TestWhereLVM: the mda header of the dom0 fixture's PV (partition 2, as
// sfdisk -J lists it) is damaged, so VolGroup00 cannot be assembled. The
// area's offset comes from the PV header (pvck's "metadata area" list):
// label in sector 1 of the PV, PV header at the label's offset, then the
// UUID, the device size, the data areas and the metadata areas.
func TestWhereLVM(t *testing.T) {
	d := readDom0PV(t)
	b, pv, mda := d.b, d.pv, d.mda
	b[pv+mda+8] ^= 0xff // the magic, so the checksum fails too
	img := filepath.Join(t.TempDir(), "dom0-bad.img")
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("[volume p2 byte %d = byte %d of %s]", mda, pv+mda, img)
	_, errs, code := imgtool(t, "ls", img, "VolGroup00/LogVol00:/")
	if code != exitError || !strings.Contains(errs, "no such volume") || !strings.Contains(errs, "mda header") || !strings.Contains(errs, want) {
		t.Errorf("ls: exit %d, %q; want exit %d and %q", code, errs, exitError, want)
	}
	out2, _, _ := imgtool(t, "inspect", img)
	if !strings.Contains(out2, want) {
		t.Errorf("inspect's note on p2 lacks %q:\n%s", want, out2)
	}
}

// TestWhereQcow2: qemu-img converts an ext4 image (512-byte clusters, so
// one L1 entry maps 32 KiB) and the L1 entry mapping a file's data,
// found with debugfs, is pointed past the end of the file. The entry's
// offset is the header's l1_table_offset (bytes 40-47, big-endian) plus 8
// per entry.
func TestWhereQcow2(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	os.WriteFile(filepath.Join(src, "big"), bytes.Repeat([]byte("0123456789abcdef"), 1<<14), 0o644)
	raw := filepath.Join(dir, "fs.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-b", "1024", "-d", src, raw, "4M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	out, err := exec.Command("debugfs", "-R", "blocks /big", raw).Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	var blk int64
	if len(f) < 100 {
		t.Fatalf("debugfs blocks /big: %q", out)
	}
	fmt.Sscan(f[len(f)-1], &blk) // the file's last block: far from the metadata
	q := filepath.Join(dir, "fs.qcow2")
	if out, err := exec.Command("qemu-img", "convert", "-O", "qcow2", "-o", "cluster_size=512", raw, q).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, out)
	}
	b, err := os.ReadFile(q)
	if err != nil {
		t.Fatal(err)
	}
	idx := blk * 1024 / (512 * 64)
	entry := int64(binary.BigEndian.Uint64(b[40:])) + 8*idx
	if binary.BigEndian.Uint64(b[entry:])&0x00fffffffffffe00 == 0 {
		t.Fatalf("L1 entry %d is unallocated", idx)
	}
	binary.BigEndian.PutUint64(b[entry:], 1<<63|uint64(len(b)+1<<20)&^511)
	os.WriteFile(q, b, 0o644)
	want := fmt.Sprintf("[volume fs.qcow2: byte %d of %s]", entry, q)
	_, errs, code := imgtool(t, "cat", q, "/big")
	if code != exitError || !strings.Contains(errs, "L1 entry") || !strings.Contains(errs, want) {
		t.Errorf("cat: exit %d, %q; want exit %d and %q", code, errs, exitError, want)
	}
}
