package lvm

import (
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// hand-built superblock, field offsets from struct dm_raid_superblock.
func makeRaidSB(v190 bool) []byte {
	b := make([]byte, 512)
	le := binary.LittleEndian
	le.PutUint32(b[0:], 0x64526d44)
	if v190 {
		le.PutUint32(b[4:], 1)
	}
	le.PutUint32(b[8:], 5)                // num_devices
	le.PutUint32(b[12:], 3)               // array_position
	le.PutUint64(b[16:], 42)              // events
	le.PutUint64(b[24:], 1<<1)            // failed_devices: member 1
	le.PutUint64(b[32:], ^uint64(0))      // disk_recovery_offset: in sync
	le.PutUint64(b[40:], 2048)            // array_resync_offset: 1 MiB
	le.PutUint32(b[48:], 6)               // level
	le.PutUint32(b[52:], 8)               // layout
	le.PutUint32(b[56:], 32)              // stripe_sectors: 16 KiB
	le.PutUint64(b[64:], ^uint64(0))      // reshape_position: none
	le.PutUint32(b[72:], 6)               // new_level
	le.PutUint32(b[76:], 8)               // new_layout
	le.PutUint64(b[88:], 6144)            // array_sectors
	le.PutUint64(b[96:], 16)              // data_offset: 8 KiB
	le.PutUint64(b[104:], 16)             // new_data_offset
	le.PutUint64(b[112:], 2048)           // sectors
	le.PutUint64(b[120+8:], 1<<(130-128)) // extended failed: member 130
	return b
}

func TestParseRaidSuperblock(t *testing.T) {
	sb, err := ParseRaidSuperblock(makeRaidSB(true))
	if err != nil {
		t.Fatal(err)
	}
	if sb.NumDevices != 5 || sb.ArrayPosition != 3 || sb.Events != 42 || sb.RecoveryOffset != -1 ||
		sb.ResyncOffset != 1<<20 || sb.Level != 6 || sb.Layout != 8 || sb.StripeBytes != 16384 ||
		!sb.V190 || sb.ReshapePosition != -1 || sb.DataOffset != 8192 || sb.ArrayBytes != 6144*512 || sb.MemberBytes != 1<<20 {
		t.Errorf("%+v", sb)
	}
	if !sb.IsFailed(1) || sb.IsFailed(0) || sb.IsFailed(2) || !sb.IsFailed(130) || sb.IsFailed(999) {
		t.Errorf("failed bits %x", sb.Failed)
	}
	if sb.Reshaping() {
		t.Error("reshaping")
	}
	// Without the 1.9.0 flag the extension is ignored.
	sb, err = ParseRaidSuperblock(makeRaidSB(false))
	if err != nil || sb.V190 || sb.DataOffset != 0 || sb.IsFailed(130) || !sb.IsFailed(1) {
		t.Errorf("pre-1.9.0: %+v %v", sb, err)
	}
	// A reshape in progress is recognised.
	b := makeRaidSB(true)
	binary.LittleEndian.PutUint64(b[64:], 100)
	binary.LittleEndian.PutUint32(b[84:], 1) // delta_disks
	if sb, err := ParseRaidSuperblock(b); err != nil || !sb.Reshaping() {
		t.Errorf("reshape: %+v %v", sb, err)
	}
	// Zeroed rmeta: no superblock; nonsense counts are errors.
	if _, err := ParseRaidSuperblock(make([]byte, 512)); !errors.Is(err, ErrNoRaidSuperblock) {
		t.Errorf("zeroed: %v", err)
	}
	b = makeRaidSB(true)
	binary.LittleEndian.PutUint32(b[8:], 0)
	if _, err := ParseRaidSuperblock(b); err == nil {
		t.Error("0 devices accepted")
	}
	b = makeRaidSB(true)
	binary.LittleEndian.PutUint32(b[12:], 7)
	if _, err := ParseRaidSuperblock(b); err == nil {
		t.Error("position beyond the array accepted")
	}
	if _, err := ParseRaidSuperblock(b[:100]); err == nil {
		t.Error("short buffer accepted")
	}
}

// overlayReader replaces len(data) bytes at off of r.
type overlayReader struct {
	r    io.ReaderAt
	off  int64
	data *[]byte
}

func (o overlayReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := o.r.ReadAt(p, off)
	d := *o.data
	for i := range p[:n] {
		if k := off + int64(i) - o.off; k >= 0 && k < int64(len(d)) {
			p[i] = d[k]
		}
	}
	return n, err
}

// FuzzRaidSuperblock parses arbitrary superblocks and puts each in place of
// member 0's rmeta superblock of a real raid5 and raid6 LV (kernel-built
// fixture), which must then open and read without panicking.
func FuzzRaidSuperblock(f *testing.F) {
	names := []string{"lvm-raid-pv0", "lvm-raid-pv1", "lvm-raid-pv2", "lvm-raid-pv3", "lvm-raid-pv4"}
	var pvs []*PV
	for _, n := range names {
		pvs = append(pvs, openPV(f, n))
	}
	vgs, err := Assemble(pvs, nil)
	if err != nil {
		f.Fatal(err)
	}
	vg := vgs[0]
	var data []byte
	var targets []string
	for _, lv := range []string{"r5n", "r6nc"} {
		meta := vg.LV(lv + "_rmeta_0")
		a := meta.Segments[0].Areas[0]
		p := vg.pvByName[a.PV]
		off := p.PEStart + a.Extent*vg.ExtentSize
		r, _ := meta.Open()
		seed := make([]byte, 512)
		if _, err := r.ReadAt(seed, 0); err != nil {
			f.Fatal(err)
		}
		f.Add(seed)
		for _, pv := range pvs {
			if pv.UUID == p.UUID {
				pv.R = overlayReader{pv.R, off, &data}
			}
		}
		targets = append(targets, lv)
	}
	vgs, err = Assemble(pvs, nil)
	if err != nil {
		f.Fatal(err)
	}
	vg = vgs[0]
	f.Add(makeRaidSB(true))
	f.Add(makeRaidSB(false))
	f.Fuzz(func(t *testing.T, b []byte) {
		if sb, err := ParseRaidSuperblock(b); err == nil {
			for i := -1; i < 300; i += 7 {
				sb.IsFailed(i)
			}
			sb.Reshaping()
			if sb.RecoveryOffset < -1 || (sb.RecoveryOffset >= 0 && sb.RecoveryOffset%512 != 0) || sb.NumDevices == 0 {
				t.Fatalf("%+v", sb)
			}
		}
		data = b
		if len(data) > 512 {
			data = data[:512]
		}
		// A few reads (rebuilt when the superblock fails member 0); the
		// whole-LV CheckParity is left out, it made an exec take seconds
		// on a loaded machine.
		buf := make([]byte, 20<<10)
		for _, name := range targets {
			lv := vg.LV(name)
			lv.RaidStatus()
			r, err := lv.Open()
			if err != nil {
				continue
			}
			r.ReadAt(buf, 0)
			r.ReadAt(buf, r.Size()/2+1000)
			r.ReadAt(buf, r.Size()-int64(len(buf)))
		}
	})
}
