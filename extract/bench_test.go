package extract

import (
	"context"
	"io"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/internal/zero"
)

// BenchmarkRunTree extracts the whole ext4 fixture (5,000+ entries, 110 MiB
// logical of which 0.8 MiB data) to tmpfs: the per-file cost (walk,
// create, metadata) dominates.
func BenchmarkRunTree(b *testing.B) {
	for _, w := range []int{1, 2, 4} {
		b.Run("workers="+strconv.Itoa(w), func(b *testing.B) {
			fsys, _ := openFixture(b, "ext4")
			dir := benchTmpfs(b)
			b.ResetTimer()
			for i := range b.N {
				rep, err := Run(context.Background(), ext.NewVFS(fsys), []string{"/"}, filepath.Join(dir, strconv.Itoa(i)), Options{Workers: w, Devices: true})
				if err != nil || rep.Partial() {
					b.Fatal(err, rep.Problems)
				}
			}
		})
	}
}

// BenchmarkCopySparse copies the 40 MB sparse file (three data ranges).
func BenchmarkCopySparse(b *testing.B) {
	fsys, _ := openFixture(b, "ext4")
	dir := benchTmpfs(b)
	b.ResetTimer()
	for i := range b.N {
		_, err := Run(context.Background(), ext.NewVFS(fsys), []string{"/seq.txt", "/sparse40"}, filepath.Join(dir, strconv.Itoa(i)), Options{})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTar streams the ext4 fixture as tar to io.Discard (holes as
// zeros: 110 MiB).
func BenchmarkTar(b *testing.B) {
	fsys, _ := openFixture(b, "ext4")
	b.SetBytes(116144538)
	for range b.N {
		if _, err := RunTar(context.Background(), ext.NewVFS(fsys), []string{"/"}, io.Discard, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAllZero is the hole check applied to every chunk written.
func BenchmarkAllZero(b *testing.B) {
	buf := make([]byte, chunkSize)
	b.SetBytes(chunkSize)
	for range b.N {
		if !zero.Is(buf) {
			b.Fatal("not zero")
		}
	}
}

func benchTmpfs(b *testing.B) string { return tmpfsDir(b) }
