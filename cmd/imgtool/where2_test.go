package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// Issue 12.5, the layers TestWhere* (where_test.go) leave out: VMDK, VHDX
// and the MBR's EBR chain. Each damages an image made by the real tools
// (mke2fs, qemu-img; sfdisk for the fixture) at a byte computed from the
// file through the format's documented layout, and checks that the CLI
// names the volume and that byte.

// ext4WithFile makes a 4 MiB ext4 image (1 KiB blocks) holding /big, 256
// KiB, and returns it with the block number of the file's last block
// (debugfs).
func ext4WithFile(t *testing.T, dir string) (string, int64) {
	t.Helper()
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
	if len(f) < 100 {
		t.Fatalf("debugfs blocks /big: %q", out)
	}
	var blk int64
	fmt.Sscan(f[len(f)-1], &blk)
	return raw, blk
}

func convert(t *testing.T, format, raw, out string) []byte {
	t.Helper()
	if o, err := exec.Command("qemu-img", "convert", "-O", format, raw, out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, o)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWhereVMDK: qemu-img converts the ext4 image to a monolithicSparse
// VMDK. The GT entry of the grain holding /big's last block is pointed
// past the end of the file: cat and dd name that entry's byte. Its offset
// follows VMware's Virtual Disk Format 1.1: grainSize (sectors) at header
// byte 20, numGTEsPerGT at 44, gdOffset (sector) at 56, 4-byte GD and GT
// entries. Then a header field out of range (grainSize) fails the open
// at byte 20.
func TestWhereVMDK(t *testing.T) {
	dir := t.TempDir()
	raw, blk := ext4WithFile(t, dir)
	p := filepath.Join(dir, "fs.vmdk")
	b := convert(t, "vmdk", raw, p)
	le := binary.LittleEndian
	grain := int64(le.Uint64(b[20:])) * 512
	cover := grain * int64(le.Uint32(b[44:]))
	gd := int64(le.Uint64(b[56:])) * 512
	v := blk * 1024
	gt := int64(le.Uint32(b[gd+4*(v/cover):])) * 512
	entry := gt + 4*((v%cover)/grain)
	if gt == 0 || le.Uint32(b[entry:]) == 0 {
		t.Fatalf("the grain of block %d is not allocated", blk)
	}
	le.PutUint32(b[entry:], uint32(len(b)/512+1000))
	os.WriteFile(p, b, 0o644)
	want := fmt.Sprintf("[volume fs.vmdk: byte %d of %s]", entry, p)
	_, errs, code := imgtool(t, "cat", p, "/big")
	if code != exitError || !strings.Contains(errs, "GT entry") || !strings.Contains(errs, want) {
		t.Errorf("cat: exit %d, %q; want exit %d and %q", code, errs, exitError, want)
	}
	_, errs, code = imgtool(t, "dd", p, "", "-o", filepath.Join(dir, "out"))
	if code != exitError || !strings.Contains(errs, want) {
		t.Errorf("dd: exit %d, %q; want exit %d and %q", code, errs, exitError, want)
	}

	le.PutUint64(b[20:], 3) // grainSize: not a power of two
	os.WriteFile(p, b, 0o644)
	want = fmt.Sprintf("[volume fs.vmdk: byte 20 of %s]", p)
	_, errs, code = imgtool(t, "inspect", p)
	if code != exitError || !strings.Contains(errs, "grain size") || !strings.Contains(errs, want) {
		t.Errorf("inspect: exit %d, %q; want exit %d and %q", code, errs, exitError, want)
	}
}

// TestWhereVHDX: qemu-img converts the ext4 image to a VHDX. BAT entry 0
// (block 0: the superblock) is pointed past the end of the file: ls and dd
// name the entry's byte. [MS-VHDX]: region table 1 at 192 KiB, 32-byte
// entries from its byte 16 (GUID, file offset u64, ...); the BAT region's
// GUID is 2DC27766-F623-4200-9D64-115E9BFD4A08; 8-byte BAT entries, state
// in bits 0-2 (6: fully present), file offset in MiB in bits 20-63. Then
// the BAT's region entry is pointed past the end (CRC-32C made good): the
// open names the entry.
func TestWhereVHDX(t *testing.T) {
	dir := t.TempDir()
	raw, _ := ext4WithFile(t, dir)
	p := filepath.Join(dir, "fs.vhdx")
	b := convert(t, "vhdx", raw, p)
	le := binary.LittleEndian
	guidBAT := []byte{0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42, 0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08}
	const regions = 192 << 10
	ent := int64(-1)
	for i := int64(0); i < int64(le.Uint32(b[regions+8:])); i++ {
		if e := regions + 16 + 32*i; bytes.Equal(b[e:e+16], guidBAT) {
			ent = e
		}
	}
	if ent < 0 {
		t.Fatal("no BAT region entry")
	}
	bat := int64(le.Uint64(b[ent+16:]))
	if b[bat]&7 != 6 {
		t.Fatalf("block 0 is not present: BAT entry %#x", le.Uint64(b[bat:]))
	}
	orig := bytes.Clone(b)
	le.PutUint64(b[bat:], uint64(len(b)>>20+64)<<20|6)
	os.WriteFile(p, b, 0o644)
	want := fmt.Sprintf("[volume fs.vhdx: byte %d of %s]", bat, p)
	_, errs, code := imgtool(t, "ls", p, "/")
	if code != exitError || !strings.Contains(errs, "BAT entry") || !strings.Contains(errs, want) {
		t.Errorf("ls: exit %d, %q; want exit %d and %q", code, errs, exitError, want)
	}
	_, errs, code = imgtool(t, "dd", p, "", "-o", filepath.Join(dir, "out"))
	if code != exitError || !strings.Contains(errs, want) {
		t.Errorf("dd: exit %d, %q; want exit %d and %q", code, errs, exitError, want)
	}

	b = orig
	le.PutUint64(b[ent+16:], uint64(len(b))+1<<20)
	tab := b[regions : regions+64<<10]
	clear(tab[4:8])
	le.PutUint32(tab[4:], crc32c(tab))
	os.WriteFile(p, b, 0o644)
	want = fmt.Sprintf("[volume fs.vhdx: byte %d of %s]", ent, p)
	_, errs, code = imgtool(t, "inspect", p)
	if code != exitError || !strings.Contains(errs, "region table") || !strings.Contains(errs, want) {
		t.Errorf("inspect: exit %d, %q; want exit %d and %q", code, errs, exitError, want)
	}
}

// TestWhereEBR: the sfdisk-made part-mbr-logical fixture (p5-p8 logical in
// the extended p3, whose start sfdisk -J gives) has its first EBR's link
// pointed past the disk, so p6-p8 vanish. ls p6 says why and where: the
// link entry, the first entry of the EBR (the extended partition's first
// sector) with an extended type (0x05, 0x0f, 0x85). inspect's note says
// the same.
func TestWhereEBR(t *testing.T) {
	path := fixturetest.Image(t, "part-mbr-logical")
	parts := sfdiskParts(t, path, 0)
	ebr := int64(-1)
	for _, p := range parts {
		if p.Type == "5" || p.Type == "f" || p.Type == "85" {
			ebr = p.Start * 512
		}
	}
	b, err := os.ReadFile(path)
	if err != nil || ebr < 0 {
		t.Fatalf("%v; extended partition at %d in %+v", err, ebr, parts)
	}
	link := int64(-1)
	for i := int64(0); i < 4 && link < 0; i++ {
		if e := ebr + 446 + 16*i; b[e+4] == 5 || b[e+4] == 0xf || b[e+4] == 0x85 {
			link = e
		}
	}
	if link < 0 {
		t.Fatal("the first EBR has no link")
	}
	binary.LittleEndian.PutUint32(b[link+8:], uint32(len(b)/512))
	img := filepath.Join(t.TempDir(), "ebr-bad.img")
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("[volume ebr-bad.img byte %d = byte %d of %s]", link, link, img)
	_, errs, code := imgtool(t, "ls", img, "p6:/")
	if code != exitError || !strings.Contains(errs, "no such volume") || !strings.Contains(errs, "outside the extended partition") || !strings.Contains(errs, want) {
		t.Errorf("ls: exit %d, %q; want exit %d and %q", code, errs, exitError, want)
	}
	_, errs, code = imgtool(t, "dd", img, "p7", "-o", filepath.Join(t.TempDir(), "out"))
	if code != exitError || !strings.Contains(errs, want) {
		t.Errorf("dd: exit %d, %q; want exit %d and %q", code, errs, exitError, want)
	}
	o, _, _ := imgtool(t, "inspect", img)
	if !strings.Contains(o, want) {
		t.Errorf("inspect's note lacks %q:\n%s", want, o)
	}
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// TestWhereLVMSegment: the dom0 fixture's VG metadata (on p2, as sfdisk
// -J lists it) is rewritten so that pv0 has one extent: every LV's segment
// then lies past the PV's end. The LVs' notes name the metadata copy:
// its byte on the PV is the mda's offset (PV header, as TestWhereLVM
// finds it) plus raw_locn 0's offset (mda header byte 40). The text's
// checksum (raw_locn byte 16) and the mda header's (byte 0, over bytes
// 4-511) are LVM2's calc_crc, seed 0xf597a6cf (lib/misc/crc.c), made good
// again.
func TestWhereLVMSegment(t *testing.T) {
	d := readDom0PV(t)
	i := bytes.Index(d.text, []byte("pe_count = "))
	if i < 0 {
		t.Fatalf("no pe_count in the metadata at PV byte %d", d.copyAt)
	}
	j := i + bytes.IndexByte(d.text[i:], '\n')
	old := string(d.text[i:j])
	d.replace(t, old, "pe_count = 1"+strings.Repeat(" ", len(old)-len("pe_count = 1"))) // same length
	b, pv, copyAt := d.b, d.pv, d.copyAt
	img := filepath.Join(t.TempDir(), "dom0-seg.img")
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("[volume p2 byte %d = byte %d of %s]", copyAt, pv+copyAt, img)
	o, _, _ := imgtool(t, "inspect", img)
	if !strings.Contains(o, "lie beyond the 1 extents of PV") || !strings.Contains(o, want) {
		t.Errorf("inspect's LV notes lack %q:\n%s", want, o)
	}
	_, errs, code := imgtool(t, "dd", img, "VolGroup00/LogVol00", "-o", filepath.Join(t.TempDir(), "out"))
	if code != exitError || !strings.Contains(errs, want) {
		t.Errorf("dd: exit %d, %q; want exit %d and %q", code, errs, exitError, want)
	}
}

// TestWhereMBRTruncated: the part-mbr-logical fixture is cut 4 KiB into
// p2 (its start from sfdisk -J). inspect's note on p2 names its MBR entry
// (entry 2: byte 446+16, the documented MBR layout); the EBR chain, whose
// first EBR is now past the end, is located at the MBR entry of the
// extended partition (p3's: byte 446+32), and ls p5 lists it.
func TestWhereMBRTruncated(t *testing.T) {
	path := fixturetest.Image(t, "part-mbr-logical")
	parts := sfdiskParts(t, path, 3)
	if n := parts[2].Node; !strings.HasSuffix(n, "3") || parts[2].Type != "5" {
		t.Fatalf("sfdisk -J: the third entry is %s type %s, want the extended p3", n, parts[2].Type)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "trunc.img")
	if err := os.WriteFile(img, b[:parts[1].Start*512+4096], 0o644); err != nil {
		t.Fatal(err)
	}
	p2 := fmt.Sprintf("its table entry: [volume trunc.img byte %d = byte %d of %s]", 446+16, 446+16, img)
	ext := fmt.Sprintf("[volume trunc.img byte %d = byte %d of %s]", 446+32, 446+32, img)
	o, _, _ := imgtool(t, "inspect", img)
	if !strings.Contains(o, "extends past the end of the disk") || !strings.Contains(o, p2) || !strings.Contains(o, ext) {
		t.Errorf("inspect lacks %q or %q:\n%s", p2, ext, o)
	}
	_, errs, code := imgtool(t, "ls", img, "p5:/")
	if code != exitError || !strings.Contains(errs, "EBR at sector") || !strings.Contains(errs, ext) {
		t.Errorf("ls: exit %d, %q; want exit %d and %q", code, errs, exitError, ext)
	}
}

// TestWhereQcow2L2: as TestWhereQcow2, one level down: the L2 entry
// mapping /big's last block is pointed past the end of the file
// (qcow2BadL2).
func TestWhereQcow2L2(t *testing.T) {
	q, entry := qcow2BadL2(t)
	want := fmt.Sprintf("[volume fs.qcow2: byte %d of %s]", entry, q)
	_, errs, code := imgtool(t, "cat", q, "/big")
	if code != exitError || !strings.Contains(errs, "L2 entry") || !strings.Contains(errs, want) {
		t.Errorf("cat: exit %d, %q; want exit %d and %q", code, errs, exitError, want)
	}
}

// TestWhereVHD: qemu-img converts the ext4 image to a dynamic VHD (vpc);
// the BAT entry of the block holding /big's last block is pointed past
// the end of the file. Microsoft's VHD specification: the footer (last
// 512 bytes) gives the dynamic header's offset at byte 16; the header the
// BAT's offset at 16 and the block size at 32; 4-byte big-endian entries.
func TestWhereVHD(t *testing.T) {
	dir := t.TempDir()
	raw, blk := ext4WithFile(t, dir)
	p := filepath.Join(dir, "fs.vhd")
	b := convert(t, "vpc", raw, p)
	be := binary.BigEndian
	hdr := int64(be.Uint64(b[len(b)-512+16:]))
	if string(b[hdr:hdr+8]) != "cxsparse" {
		t.Fatalf("no dynamic header at byte %d", hdr)
	}
	entry := int64(be.Uint64(b[hdr+16:])) + 4*(blk*1024/int64(be.Uint32(b[hdr+32:])))
	if be.Uint32(b[entry:]) == 0xffffffff {
		t.Fatalf("the block of block %d is unallocated", blk)
	}
	be.PutUint32(b[entry:], uint32(len(b)/512+1000))
	os.WriteFile(p, b, 0o644)
	want := fmt.Sprintf("[volume fs.vhd: byte %d of %s]", entry, p)
	_, errs, code := imgtool(t, "cat", p, "/big")
	if code != exitError || !strings.Contains(errs, "BAT entry") || !strings.Contains(errs, want) {
		t.Errorf("cat: exit %d, %q; want exit %d and %q", code, errs, exitError, want)
	}
}
