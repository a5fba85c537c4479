package extract

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

func sparseGolden(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(fixturetest.Dir(), "golden", "tar-sparse.sha256"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		g[k] = v
	}
	return g
}

func shaAt(t *testing.T, f *os.File, off, n int64) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, off, n)); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// TestTarSparse16TiB (issue 13.2): a file of i_size 16 TiB with two data
// blocks goes into a tar stream of a few KiB (GNU.sparse 1.0), which real
// GNU tar (-xS) and Go's archive/tar restore with the same bytes.
func TestTarSparse16TiB(t *testing.T) {
	g := sparseGolden(t)
	p := fixturetest.Image(t, "tar-sparse")
	img, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	st, _ := img.Stat()
	fsys, err := ext.Open(img, st.Size(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tmp := tmpfsDir(t)
	tarPath := filepath.Join(tmp, "x.tar")
	tf, err := os.Create(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := RunTar(context.Background(), ext.NewVFS(fsys), []string{"/"}, tf, Options{})
	tf.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 {
		t.Errorf("problems: %v", rep.Problems)
	}
	tfi, _ := os.Stat(tarPath)
	t.Logf("16 TiB sparse file: tar stream %d bytes", tfi.Size())
	if tfi.Size() > 1<<20 {
		t.Fatalf("the tar stream is %d bytes; want under 1 MiB for two data blocks", tfi.Size())
	}

	// The real readers: GNU tar and bsdtar (libarchive).
	for _, tool := range [][]string{{"tar", "-xS"}, {"bsdtar", "-x"}} {
		dest := filepath.Join(tmp, tool[0])
		os.Mkdir(dest, 0o755)
		if out, err := exec.Command(tool[0], tool[1], "-f", tarPath, "-C", dest).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", tool, err, out)
		}
		checkSparseTree(t, tool[0], dest, g)
	}
	// Go's archive/tar reads the same members with the same sizes, and
	// the first MiB of big.
	tf, _ = os.Open(tarPath)
	defer tf.Close()
	tr := tar.NewReader(tf)
	seen := map[string]int64{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("archive/tar: %v", err)
		}
		seen[h.Name] = h.Size
		if h.Name == "./big" {
			hs := sha256.New()
			if _, err := io.CopyN(hs, tr, 1<<20); err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%x", hs.Sum(nil)); got != g["first"] {
				t.Errorf("archive/tar: big's first MiB %s, want %s", got, g["first"])
			}
		}
	}
	if fmt.Sprint(seen["./big"]) != g["size"] || seen["./small"] != 1<<20 {
		t.Errorf("archive/tar sees %v", seen)
	}
}

func checkSparseTree(t *testing.T, tool, dest string, g map[string]string) {
	t.Helper()
	big, err := os.Open(filepath.Join(dest, "big"))
	if err != nil {
		t.Fatalf("%s did not restore big: %v", tool, err)
	}
	defer big.Close()
	bfi, _ := big.Stat()
	if fmt.Sprint(bfi.Size()) != g["size"] {
		t.Fatalf("%s: big restored with size %d, want %s", tool, bfi.Size(), g["size"])
	}
	if got := shaAt(t, big, 0, 1<<20); got != g["first"] {
		t.Errorf("%s: big's first MiB: sha256 %s, want %s", tool, got, g["first"])
	}
	if got := shaAt(t, big, bfi.Size()-1<<20, 1<<20); got != g["last"] {
		t.Errorf("%s: big's last MiB: sha256 %s, want %s", tool, got, g["last"])
	}
	if blocks := bfi.Sys().(*syscall.Stat_t).Blocks * 512; blocks > 1<<20 {
		t.Errorf("%s: big restored with %d bytes allocated: not sparse", tool, blocks)
	}
	small, err := os.Open(filepath.Join(dest, "small"))
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	if got := shaAt(t, small, 0, 1<<20); got != g["small"] {
		t.Errorf("%s: small: sha256 %s, want %s", tool, got, g["small"])
	}
}
