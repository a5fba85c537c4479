package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// extract --salvage on an image whose every group-descriptor table copy is
// zeroed (e2fsck -n and debugfs -c cannot read it): every file of the
// source manifest comes out with its content.
func TestExtractSalvageZeroedGDT(t *testing.T) {
	for _, name := range []string{"salvage-zerogdt-ext2", "salvage-zerogdt-ext4"} {
		t.Run(name, func(t *testing.T) {
			img := fixturetest.Image(t, name)
			before := fixturetest.SHA256File(t, img)
			dest := filepath.Join(t.TempDir(), "out")
			_, errs, code := imgtool(t, "extract", "--salvage", img, "/", dest)
			if code != exitOK && code != exitPartial {
				t.Fatalf("exit %d: %s", code, errs)
			}
			if _, err := os.Stat(filepath.Join(dest, "salvage-report.json")); err != nil {
				t.Errorf("no report: %v", err)
			}
			n := 0
			for _, line := range strings.Split(string(fixturetest.Golden(t, "salvage-zerogdt.manifest")), "\n") {
				f := strings.Split(line, "\t")
				if len(f) != 4 || strings.HasPrefix(line, "#") || f[1] != "file" {
					continue
				}
				b, err := os.ReadFile(filepath.Join(dest, f[0]))
				if err != nil {
					t.Errorf("%s: %v", f[0], err)
					continue
				}
				sum := sha256.Sum256(b)
				if hex.EncodeToString(sum[:]) != f[3] {
					t.Errorf("%s: content differs from the source", f[0])
				}
				n++
			}
			if n < 10 {
				t.Fatalf("only %d files in the manifest were checked", n)
			}
			if fixturetest.SHA256File(t, img) != before {
				t.Fatal("salvage wrote to the image")
			}
		})
	}
}
