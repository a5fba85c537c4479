package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// Helpers of the TestWhere* tests, which damage real images at bytes found
// from the images themselves.

// sfPart is one partition as sfdisk -J lists it.
type sfPart struct {
	Node  string
	Start int64 // in 512-byte sectors
	Type  string
}

// sfdiskParts lists the partitions of the image at path with sfdisk -J,
// at least min of them.
func sfdiskParts(t *testing.T, path string, min int) []sfPart {
	t.Helper()
	out, err := exec.Command("sfdisk", "-J", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	var sf struct {
		PT struct {
			Partitions []sfPart `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &sf); err != nil || len(sf.PT.Partitions) < min {
		t.Fatalf("sfdisk -J: %v %s", err, out)
	}
	return sf.PT.Partitions
}

// dom0PV is the dom0 fixture's bytes with its PV (partition 2) found: the
// PV header's layout is pvck's (label in sector 1 of the PV, the PV header
// at the label's offset, then the UUID, the device size, the data areas
// and the metadata areas), the mda header's LVM2's (raw_locn 0 at byte
// 40: offset, size, checksum).
type dom0PV struct {
	b      []byte
	pv     int64  // the PV's byte in the image
	mda    int64  // the metadata area's byte on the PV
	hdr    []byte // the mda header (512 bytes)
	copyAt int64  // the metadata copy's byte on the PV
	text   []byte // the metadata copy
}

func readDom0PV(t *testing.T) *dom0PV {
	t.Helper()
	path := fixturetest.Image(t, "dom0")
	d := &dom0PV{pv: sfdiskParts(t, path, 2)[1].Start * 512}
	var err error
	if d.b, err = os.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	label := d.pv + 512
	if string(d.b[label:label+8]) != "LABELONE" {
		t.Fatalf("no LVM label at byte %d", label)
	}
	p := label + int64(le.Uint32(d.b[label+20:])) + 32 + 8
	for le.Uint64(d.b[p:]) != 0 { // data areas
		p += 16
	}
	p += 16
	d.mda = int64(le.Uint64(d.b[p:]))
	d.hdr = d.b[d.pv+d.mda : d.pv+d.mda+512]
	if d.mda == 0 || string(d.hdr[4:20]) != " LVM2 x[5A%r0N*>" {
		t.Fatalf("no metadata area header at PV byte %d", d.mda)
	}
	d.copyAt = d.mda + int64(le.Uint64(d.hdr[40:]))
	d.text = d.b[d.pv+d.copyAt : d.pv+d.copyAt+int64(le.Uint64(d.hdr[48:]))]
	return d
}

// replace overwrites the first old in the metadata copy with new, of the
// same length, and makes the text's and the header's checksums good again.
func (d *dom0PV) replace(t *testing.T, old, new string) {
	t.Helper()
	i := bytes.Index(d.text, []byte(old))
	if i < 0 || len(old) != len(new) {
		t.Fatalf("no %q in the metadata at PV byte %d", old, d.copyAt)
	}
	copy(d.text[i:], new)
	le := binary.LittleEndian
	le.PutUint32(d.hdr[56:], calcCRC(d.text))
	le.PutUint32(d.hdr[0:], calcCRC(d.hdr[4:]))
}

// calcCRC is LVM2's calc_crc, seed 0xf597a6cf (lib/misc/crc.c).
func calcCRC(b []byte) uint32 { return ^crc32.Update(^uint32(0xf597a6cf), crc32.IEEETable, b) }

// qcow2BadL2 converts ext4WithFile's image to a qcow2 (qemu-img's default
// 64 KiB clusters) and points the L2 entry mapping /big's last block past
// the end of the file. One L1 entry (l1_table_offset, header bytes 40-47)
// maps the whole disk; its L2 table's entry for virtual byte v is at the
// table's offset (bits 9-55) plus 8*(v/cluster), the cluster size being
// 1<<cluster_bits (header bytes 20-23; qemu's docs/interop/qcow2.txt). It
// returns the qcow2's path and the entry's byte in it.
func qcow2BadL2(t *testing.T) (string, int64) {
	t.Helper()
	dir := t.TempDir()
	raw, blk := ext4WithFile(t, dir)
	q := filepath.Join(dir, "fs.qcow2")
	b := convert(t, "qcow2", raw, q)
	be := binary.BigEndian
	cluster := int64(1) << be.Uint32(b[20:])
	l2 := int64(be.Uint64(b[be.Uint64(b[40:]):]) & 0x00fffffffffffe00)
	entry := l2 + 8*(blk*1024/cluster)
	if l2 == 0 || be.Uint64(b[entry:])&0x00fffffffffffe00 == 0 {
		t.Fatalf("the cluster of block %d is unallocated", blk)
	}
	be.PutUint64(b[entry:], 1<<63|uint64(int64(len(b))+16*cluster))
	if err := os.WriteFile(q, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return q, entry
}
