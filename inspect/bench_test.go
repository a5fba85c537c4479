package inspect

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/image"
)

// BenchmarkInspectSparseGPT100G inspects a 100 GB sparse image carrying a
// GPT made by sfdisk (four partitions, no filesystems): everything but the
// tables is holes, so this measures how little inspect reads.
func BenchmarkInspectSparseGPT100G(b *testing.B) {
	path := filepath.Join(b.TempDir(), "big.img")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Truncate(100 << 30); err != nil {
		b.Fatal(err)
	}
	f.Close()
	cmd := exec.Command("sfdisk", "-q", path)
	cmd.Stdin = strings.NewReader("label: gpt\nsize=1GiB, name=boot\nsize=20GiB, type=linux, name=root\nsize=8GiB, type=swap\ntype=lvm, name=data\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("sfdisk: %v\n%s", err, out)
	}
	benchInspect(b, path, 5)
}

// BenchmarkInspectDom0 inspects the nested dom0 fixture: MBR, a VG, an LV
// that is a whole guest disk with its own MBR and VG, and their filesystems.
func BenchmarkInspectDom0(b *testing.B) {
	benchInspect(b, imageOf(b, "dom0"), 12)
}

func benchInspect(b *testing.B, path string, wantNodes int) {
	im, err := image.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer im.Close()
	b.ResetTimer()
	for b.Loop() {
		t, err := Inspect([]Source{{Name: path, R: im, Size: im.Size()}}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if n := len(t.Volumes()); n != wantNodes {
			b.Fatalf("tree has %d nodes, want %d", n, wantNodes)
		}
	}
}
