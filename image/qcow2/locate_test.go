package qcow2

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestLocateMatchesQemuImgMap: Locate against `qemu-img map
// --output=json`, the oracle for where each virtual byte of a qcow2 is
// stored. A 4 MiB disk with data in scattered 48 KiB pieces is converted
// with 64 KiB clusters, 512-byte clusters, extended L2 entries
// (subclusters), compressed (-c: no byte is stored as such), and as an
// overlay on a backing file that holds the first half, with two pieces
// written through it (Locate names only the overlay's own clusters). The first, middle and last byte of every range
// qemu-img lists must agree.
func TestLocateMatchesQemuImgMap(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	b := make([]byte, 4<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for off := 0; off+48<<10 <= len(b); off += 176 << 10 {
		for i := off; i < off+48<<10; i++ {
			b[i] = byte(rng.Uint32())
		}
	}
	if err := os.WriteFile(raw, b, 0o644); err != nil {
		t.Fatal(err)
	}
	half := filepath.Join(dir, "half.raw")
	if err := os.WriteFile(half, append(b[:2<<20:2<<20], make([]byte, 2<<20)...), 0o644); err != nil {
		t.Fatal(err)
	}
	qemu := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
		}
	}
	overlay := filepath.Join(dir, "overlay.qcow2")
	qemu("create", "-f", "qcow2", "-F", "raw", "-b", "half.raw", overlay)
	// Two pieces written through the overlay (qemu-io), one over the
	// backing file's half.
	for _, w := range []string{"write -P 0x5a 1984k 128k", "write -P 0xa5 3M 64k"} {
		if out, err := exec.Command("qemu-io", "-f", "qcow2", "-c", w, overlay).CombinedOutput(); err != nil {
			t.Fatalf("qemu-io %s: %v\n%s", w, err, out)
		}
	}
	for _, c := range []struct {
		name string
		conv []string // qemu-img convert options; nil: the overlay
		any  bool     // some byte is stored here
	}{
		{"c64k.qcow2", []string{}, true},
		{"c512.qcow2", []string{"-o", "cluster_size=512"}, true},
		{"ext.qcow2", []string{"-o", "extended_l2=on,cluster_size=128k"}, true},
		{"comp.qcow2", []string{"-c"}, false},
		{"overlay.qcow2", nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name)
			if c.conv != nil {
				qemu(append(append([]string{"convert", "-O", "qcow2"}, c.conv...), raw, p)...)
			}
			out, err := exec.Command("qemu-img", "map", "--output=json", p).Output()
			if err != nil {
				t.Fatal(err)
			}
			var ranges []struct {
				Start, Length int64
				Depth         int
				Data          bool
				Compressed    bool
				Offset        *int64
			}
			if err := json.Unmarshal(out, &ranges); err != nil {
				t.Fatalf("qemu-img map: %v\n%s", err, out)
			}
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			im, err := Open(f, st.Size(), p)
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			stored := 0
			for _, r := range ranges {
				for _, v := range []int64{r.Start, r.Start + r.Length/2, r.Start + r.Length - 1} {
					path, off, ok := im.Locate(v)
					want := r.Data && r.Depth == 0 && !r.Compressed && r.Offset != nil && c.name != "comp.qcow2"
					switch {
					case ok != want:
						t.Errorf("Locate(%d) ok %v; qemu-img map lists %+v", v, ok, r)
					case ok && (path != p || off != *r.Offset+v-r.Start):
						t.Errorf("Locate(%d) = byte %d of %s; qemu-img map: byte %d of %s", v, off, path, *r.Offset+v-r.Start, p)
					case ok:
						stored++
					}
				}
			}
			if (stored > 0) != c.any {
				t.Errorf("%d bytes located; want some: %v", stored, c.any)
			}
		})
	}
}
