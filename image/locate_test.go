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
// places must be there in the file (the disk's bytes are random, so a
// wrong place shows), and where `qemu-img map --output=json` gives an
// offset (qcow2, VHD, sparse and flat VMDK; its vhdx driver gives none)
// Locate must give the same one. Bytes qemu-img lists as data must be
// located, except in formats that do not store them as such (compressed
// streamOptimized VMDK).
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
	for _, c := range []struct {
		name, format string
		opts         []string
		located      bool // data bytes are stored as such
	}{
		{"disk.img", "raw", nil, true},
		{"disk.qcow2", "qcow2", nil, true},
		{"dyn.vhd", "vpc", nil, true},
		{"fixed.vhd", "vpc", []string{"-o", "subformat=fixed"}, true},
		{"disk.vhdx", "vhdx", []string{"-o", "block_size=1M"}, true},
		{"sparse.vmdk", "vmdk", nil, true},
		{"flat.vmdk", "vmdk", []string{"-o", "subformat=monolithicFlat"}, true},
		{"split.vmdk", "vmdk", []string{"-o", "subformat=twoGbMaxExtentSparse"}, true},
		{"stream.vmdk", "vmdk", []string{"-o", "subformat=streamOptimized"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name)
			args := append(append([]string{"convert", "-O", c.format}, c.opts...), raw, p)
			if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
				t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
			}
			out, err := exec.Command("qemu-img", "map", "--output=json", "-f", c.format, p).Output()
			if err != nil {
				t.Fatal(err)
			}
			var ranges []struct {
				Start, Length int64
				Data          bool
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
			files := map[string][]byte{}
			located, data := 0, 0
			for _, r := range ranges {
				// The ends and a third of the way, and a byte off any
				// cluster or block boundary in each random piece.
				vs := []int64{r.Start, r.Start + r.Length/3, r.Start + r.Length - 1}
				for piece := int64(0); piece < int64(len(disk)); piece += 400 << 10 {
					if v := piece + 777; r.Start <= v && v < r.Start+r.Length {
						vs = append(vs, v)
					}
				}
				for _, v := range vs {
					path, off, ok := im.Locate(v)
					if r.Data {
						data++
					}
					if !ok {
						if r.Data && c.located {
							t.Errorf("Locate(%d): not located; qemu-img map: %+v", v, r)
						}
						continue
					}
					located++
					if files[path] == nil {
						if files[path], err = os.ReadFile(path); err != nil {
							t.Fatal(err)
						}
					}
					// Up to 64 bytes, inside the range (the next one may lie
					// elsewhere) and the disk (a VHD rounds its size up).
					n := min(int64(64), r.Start+r.Length-v, int64(len(disk))-v, int64(len(files[path]))-off)
					if v < int64(len(disk)) && (n <= 0 || !bytes.Equal(files[path][off:off+n], disk[v:v+n])) {
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
			if c.located && (located == 0 || data == 0) {
				t.Errorf("%d of the sampled bytes located, %d data bytes sampled", located, data)
			}
			if !c.located && located > 0 {
				t.Errorf("%d bytes located in a format that stores none as such", located)
			}
		})
	}
}
