package compressed

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// The fixtures were made by xz, gzip, zstd and bzip2 (fmt-disks.sh).
func TestDetectFixtures(t *testing.T) {
	for ext, kind := range map[string]string{"xz": XZ, "gz": Gzip, "zst": Zstd, "bz2": Bzip2} {
		b, err := os.ReadFile(filepath.Join(fixturetest.ImagesDir(), "fmt-raw.img."+ext))
		if err != nil {
			t.Fatal(err)
		}
		if got := Detect(b[:16]); got != kind {
			t.Errorf("%s: Detect = %q, want %q", ext, got, kind)
		}
	}
	raw, err := os.ReadFile(fixturetest.Image(t, "fmt-raw"))
	if err != nil {
		t.Fatal(err)
	}
	if got := Detect(raw[:16]); got != "" {
		t.Errorf("raw disk detected as %q", got)
	}
}

// TestDamaged: a truncated or corrupted stream is an error that says where,
// never a short image.
func TestDamaged(t *testing.T) {
	for _, ext := range []string{"xz", "gz", "zst", "bz2"} {
		b, err := os.ReadFile(filepath.Join(fixturetest.ImagesDir(), "fmt-raw.img."+ext))
		if err != nil {
			t.Fatal(err)
		}
		for name, bad := range map[string][]byte{
			"truncated": b[:len(b)/2],
			"corrupted": append(append(append([]byte{}, b[:len(b)/3]...), bytes.Repeat([]byte{0x55}, 64)...), b[len(b)/3+64:]...),
		} {
			tmp, err := os.CreateTemp(t.TempDir(), "out")
			if err != nil {
				t.Fatal(err)
			}
			_, err = Decompress(tmp, bytes.NewReader(bad), Detect(bad), nil)
			tmp.Close()
			if err == nil {
				t.Errorf("%s %s: no error", ext, name)
			} else if !strings.Contains(err.Error(), "input byte") {
				t.Errorf("%s %s: error does not say where: %v", ext, name, err)
			}
		}
	}
}
