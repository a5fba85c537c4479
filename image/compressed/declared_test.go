package compressed

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// cliSize asks the real tool what a compressed file decompresses to:
// xz --robot -l, zstd -lv.
func cliSize(t *testing.T, kind, path string) int64 {
	t.Helper()
	var out []byte
	var err error
	var re *regexp.Regexp
	switch kind {
	case XZ:
		out, err = exec.Command("xz", "--robot", "-l", path).Output()
		re = regexp.MustCompile(`(?m)^totals\t\d+\t\d+\t\d+\t(\d+)`)
	case Zstd:
		out, err = exec.Command("zstd", "-lv", path).CombinedOutput()
		re = regexp.MustCompile(`Decompressed Size: .*\((\d+) B\)`)
	}
	if err != nil {
		t.Fatalf("%s -l %s: %v\n%s", kind, path, err, out)
	}
	m := re.FindSubmatch(out)
	if m == nil {
		t.Fatalf("%s -l %s: no size in\n%s", kind, path, out)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}

func declaredOf(t *testing.T, path string) (string, int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	kind := Detect(b)
	return kind, Declared(bytes.NewReader(b), int64(len(b)), kind)
}

// TestDeclaredMatchesCLI: the declared size is what xz -l and zstd -l
// report, also for several streams/frames in one file.
func TestDeclaredMatchesCLI(t *testing.T) {
	dir := t.TempDir()
	images := fixturetest.ImagesDir()
	xz1 := filepath.Join(images, "fmt-raw.img.xz")
	zst1 := filepath.Join(images, "fmt-raw.img.zst")
	// Two xz streams with stream padding between them, and two zstd
	// frames: both tools accept these concatenations.
	a, _ := os.ReadFile(xz1)
	b, _ := os.ReadFile(filepath.Join(images, "ext-tiny-ext2.img.xz"))
	multiXZ := filepath.Join(dir, "multi.xz")
	os.WriteFile(multiXZ, append(append(append([]byte{}, a...), make([]byte, 8)...), b...), 0o644)
	z, _ := os.ReadFile(zst1)
	multiZst := filepath.Join(dir, "multi.zst")
	os.WriteFile(multiZst, append(append([]byte{}, z...), z...), 0o644)
	for _, p := range []string{xz1, zst1, multiXZ, multiZst, filepath.Join(images, "bomb-zero.img.zst"), filepath.Join(images, "bomb-ff.img.zst")} {
		kind, got := declaredOf(t, p)
		if want := cliSize(t, kind, p); got != want {
			t.Errorf("%s: Declared = %d, %s -l says %d", filepath.Base(p), got, kind, want)
		}
	}
	// A zstd stream made from a pipe has no content size: unknown.
	cmd := exec.Command("zstd", "-q", "-c")
	cmd.Stdin = bytes.NewReader(bytes.Repeat([]byte("x"), 100000))
	piped, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := Declared(bytes.NewReader(piped), int64(len(piped)), Zstd); got != -1 {
		t.Errorf("zstd from a pipe (no content size): Declared = %d, want -1", got)
	}
	for _, ext := range []string{"gz", "bz2"} {
		if _, got := declaredOf(t, filepath.Join(images, "fmt-raw.img."+ext)); got != -1 {
			t.Errorf("%s: Declared = %d, want -1 (the format declares no usable size)", ext, got)
		}
	}
	// Damage makes it unknown, never a wrong number.
	cut := a[:len(a)-5]
	if got := Declared(bytes.NewReader(cut), int64(len(cut)), XZ); got != -1 {
		t.Errorf("truncated xz: Declared = %d, want -1", got)
	}
}

func diskUsage(t *testing.T, f *os.File) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// TestBudget: 33 KB of zstd that expands to 1 GiB of 0xFF bytes (no holes
// possible) is stopped at the budget, having written no more than it.
func TestBudget(t *testing.T) {
	src, err := os.Open(filepath.Join(fixturetest.ImagesDir(), "bomb-ff.img.zst"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	const budget = 1 << 20
	n, err := DecompressLimited(dst, src, Zstd, Limits{Declared: -1, Budget: budget}, nil)
	if !errors.Is(err, ErrBudget) {
		t.Fatalf("err = %v after %d bytes; want ErrBudget", err, n)
	}
	if used := diskUsage(t, dst); used > budget {
		t.Errorf("the bomb took %d bytes of disk; budget %d", used, budget)
	}
}

// TestPastDeclared: a stream that produces more than it declares stops
// there.
func TestPastDeclared(t *testing.T) {
	p := filepath.Join(fixturetest.ImagesDir(), "fmt-raw.img.xz")
	kind, declared := declaredOf(t, p)
	src, _ := os.Open(p)
	defer src.Close()
	dst, _ := os.CreateTemp(t.TempDir(), "out")
	defer dst.Close()
	_, err := DecompressLimited(dst, src, kind, Limits{Declared: declared - 1}, nil)
	if !errors.Is(err, ErrPastDeclared) {
		t.Errorf("err = %v; want ErrPastDeclared", err)
	}
}

func FuzzDeclared(f *testing.F) {
	for _, name := range []string{"fmt-raw.img.xz", "fmt-raw.img.zst", "bomb-ff.img.zst"} {
		if b, err := os.ReadFile(filepath.Join(fixturetest.ImagesDir(), name)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, kind := range []string{XZ, Zstd} {
			if d := Declared(bytes.NewReader(b), int64(len(b)), kind); d < -1 {
				t.Fatalf("%s: Declared = %d", kind, d)
			}
		}
	})
}
