package image_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/image"
	"github.com/imgtool/imgtool/image/compressed"
)

// TestBombs (issue 13.3): 80 KB of zstd holding a 1.5 GiB disk costs under
// 1 MiB of temp disk and still reads as the ext4 it holds; 33 KB of zstd
// that expands to 1 GiB of 0xFF is refused at the budget.
func TestBombs(t *testing.T) {
	tmp := t.TempDir()
	im, err := image.OpenWithOptions(filepath.Join(fixturetest.ImagesDir(), "bomb-zero.img.zst"), &image.Options{TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if im.Size() != 1536<<20 || im.Format != "zstd" {
		t.Errorf("size %d, format %q; want 1.5 GiB zstd", im.Size(), im.Format)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(im.File().Fd()), &st); err != nil {
		t.Fatal(err)
	}
	t.Logf("1.5 GiB bomb: decompressed copy uses %d bytes of disk", st.Blocks*512)
	if used := st.Blocks * 512; used > 1<<20 {
		t.Errorf("the decompressed copy takes %d bytes of disk; want under 1 MiB", used)
	}
	sb := make([]byte, 1024)
	if _, err := im.ReadAt(sb, 1024); err != nil {
		t.Fatal(err)
	}
	if sb[0x38] != 0x53 || sb[0x39] != 0xEF || string(sb[0x78:0x7c]) != "bomb" {
		t.Errorf("no ext4 superblock labelled bomb at byte 1024 of the decompressed disk")
	}

	_, err = image.OpenWithOptions(filepath.Join(fixturetest.ImagesDir(), "bomb-ff.img.zst"), &image.Options{TempDir: tmp, TempLimit: 1 << 20})
	if !errors.Is(err, compressed.ErrBudget) {
		t.Errorf("bomb-ff with a 1 MiB budget: err = %v; want compressed.ErrBudget", err)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("the temp dir keeps %d files after the refusal", len(ents))
	}
}
