package image

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestLocate: for every container qemu-img writes, each byte Locate
// places must be there in the file (it holds the virtual disk's bytes,
// which are random pieces, so a wrong place shows), and where `qemu-img
// map --output=json` gives an offset (qcow2, VHD, sparse and flat VMDK;
// its vhdx driver gives none) Locate must give the same one, and must
// locate exactly the bytes qemu-img gives an offset for (not compressed
// qcow2 clusters or streamOptimized VMDK grains). qcow2 also comes with 512-byte clusters,
// extended L2 entries (subclusters), and as an overlay on a raw backing
// file holding the first half with two pieces written through it by
// qemu-io (only the overlay's own clusters are located).
func TestLocate(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	disk := make([]byte, 6<<20)
	rng := rand.New(rand.NewPCG(3, 4))
	for off := 0; off+80<<10 <= len(disk); off += 400 << 10 {
		for i := off; i < off+80<<10; i++ {
			disk[i] = byte(rng.Uint32())
		}
	}
	if err := os.WriteFile(raw, disk, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	overlay := func(t *testing.T, p string) {
		half := filepath.Join(dir, "half.raw")
		if err := os.WriteFile(half, append(disk[:3<<20:3<<20], make([]byte, 3<<20)...), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, "qemu-img", "create", "-f", "qcow2", "-F", "raw", "-b", "half.raw", p)
		for _, w := range []string{"write -P 0x5a 2944k 128k", "write -P 0xa5 4M 64k"} {
			run(t, "qemu-io", "-f", "qcow2", "-c", w, p)
		}
	}
	for _, c := range []struct {
		name, format string
		opts         []string
		make         func(*testing.T, string) // instead of converting disk.raw
		located      bool                     // some bytes are stored as such
		compressed   bool                     // some data bytes are compressed
	}{
		{"disk.img", "raw", nil, nil, true, false},
		{"disk.qcow2", "qcow2", nil, nil, true, false},
		{"c512.qcow2", "qcow2", []string{"-o", "cluster_size=512"}, nil, true, false},
		{"ext.qcow2", "qcow2", []string{"-o", "extended_l2=on,cluster_size=128k"}, nil, true, false},
		{"comp.qcow2", "qcow2", []string{"-c"}, nil, true, true},
		{"overlay.qcow2", "qcow2", nil, overlay, true, false},
		{"dyn.vhd", "vpc", nil, nil, true, false},
		{"fixed.vhd", "vpc", []string{"-o", "subformat=fixed"}, nil, true, false},
		{"disk.vhdx", "vhdx", []string{"-o", "block_size=1M"}, nil, true, false},
		{"sparse.vmdk", "vmdk", nil, nil, true, false},
		{"flat.vmdk", "vmdk", []string{"-o", "subformat=monolithicFlat"}, nil, true, false},
		{"split.vmdk", "vmdk", []string{"-o", "subformat=twoGbMaxExtentSparse"}, nil, true, false},
		{"stream.vmdk", "vmdk", []string{"-o", "subformat=streamOptimized"}, nil, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name)
			if c.make != nil {
				c.make(t, p)
			} else {
				run(t, "qemu-img", append(append([]string{"convert", "-O", c.format}, c.opts...), raw, p)...)
			}
			out, err := exec.Command("qemu-img", "map", "--output=json", "-f", c.format, p).Output()
			if err != nil {
				t.Fatal(err)
			}
			var ranges []struct {
				Start, Length int64
				Depth         int
				Present, Data bool
				Offset        *int64
			}
			if err := json.Unmarshal(out, &ranges); err != nil {
				t.Fatalf("qemu-img map: %v\n%s", err, out)
			}
			im, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			// Where qemu-img map gives offsets, a byte is stored as such
			// exactly where it gives one for a present range (compressed
			// clusters and grains, unallocated ones have none; an
			// unallocated subcluster has one but is not present; qemu-img
			// writes a cluster that does not compress uncompressed); its
			// vhdx driver gives none, so there every data byte.
			offsets := false
			for _, r := range ranges {
				offsets = offsets || r.Offset != nil
			}
			files := map[string][]byte{}
			located, data, packed := 0, 0, 0
			for _, r := range ranges {
				// The ends and a third of the way, and a byte off any
				// cluster or block boundary in each random piece.
				vs := []int64{r.Start, r.Start + r.Length/3, r.Start + r.Length - 1}
				for piece := int64(0); piece < int64(len(disk)); piece += 400 << 10 {
					if v := piece + 777; r.Start <= v && v < r.Start+r.Length {
						vs = append(vs, v)
					}
				}
				stored := r.Depth == 0 && (offsets && r.Offset != nil && r.Present || !offsets && r.Data && c.located)
				for _, v := range vs {
					path, off, ok := im.Locate(v)
					if r.Data {
						data++
					}
					if !ok {
						if r.Data && r.Depth == 0 && !stored {
							packed++
						}
						if stored {
							t.Errorf("Locate(%d): not located; qemu-img map: %+v", v, r)
						}
						continue
					}
					located++
					if !stored {
						t.Errorf("Locate(%d) = byte %d of %s; qemu-img map lists %+v", v, off, path, r)
					}
					if files[path] == nil {
						if files[path], err = os.ReadFile(path); err != nil {
							t.Fatal(err)
						}
					}
					// Up to 64 bytes, inside the range (the next one may
					// lie elsewhere) and the disk.
					want := make([]byte, min(int64(64), r.Start+r.Length-v, im.Size()-v))
					if _, err := im.ReadAt(want, v); err != nil {
						t.Fatal(err)
					}
					if got := files[path][off:min(off+int64(len(want)), int64(len(files[path])))]; !bytes.Equal(got, want) {
						t.Errorf("Locate(%d) = byte %d of %s, which does not hold the disk's bytes there", v, off, path)
					}
					if r.Offset != nil && filepath.Base(path) != c.name && c.format == "vmdk" {
						continue // qemu-img map's offset of a separate extent file
					}
					if r.Offset != nil && off != *r.Offset+v-r.Start {
						t.Errorf("Locate(%d) = byte %d; qemu-img map: byte %d", v, off, *r.Offset+v-r.Start)
					}
				}
			}
			if c.located && (located == 0 || data == 0) || !c.located && located > 0 || c.compressed != (packed > 0) {
				t.Errorf("%d of the sampled bytes located, %d data bytes sampled, %d of them data not stored as such", located, data, packed)
			}
		})
	}
}
