package partition

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// BenchmarkReadGPT reads the GPT of a 100 GB sparse image partitioned by
// sfdisk at setup (primary header, entry array, backup header and array at
// the far end). inspect must answer on such an image in well under 50 ms.
func BenchmarkReadGPT(b *testing.B) {
	img := filepath.Join(b.TempDir(), "100g.img")
	f, err := os.Create(img)
	if err != nil {
		b.Fatal(err)
	}
	const size = 100 << 30
	if err := f.Truncate(size); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("sfdisk", "-q", img)
	cmd.Stdin = strings.NewReader("label: gpt\nsize=1G, type=U\nsize=20G, type=L\nsize=8G, type=S\ntype=E6D6D379-F507-44C2-A23C-238F2A3DF928\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("sfdisk: %v\n%s", err, out)
	}
	b.ResetTimer()
	for b.Loop() {
		t, err := Read(f, size, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(t.Partitions) != 4 || len(t.Notes) != 0 {
			b.Fatalf("unexpected table: %d partitions, notes %q", len(t.Partitions), t.Notes)
		}
	}
	b.StopTimer()
	f.Close()
}

// BenchmarkReadMBRLogical reads the part-mbr-logical fixture (MBR plus a
// four-link EBR chain).
func BenchmarkReadMBRLogical(b *testing.B) {
	f, err := os.Open(fixturetest.Image(b, "part-mbr-logical"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	for b.Loop() {
		if _, err := Read(f, fi.Size(), nil); err != nil {
			b.Fatal(err)
		}
	}
}
