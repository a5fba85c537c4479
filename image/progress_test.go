package image_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/image"
)

// TestProgressCountsOutput (issue 13.3: the progress bar counts output
// bytes): decompressing the 80 KB zstd bomb reports the decompressed
// bytes, rising to the 1.5 GiB disk, not the compressed bytes read; the
// total is the size the stream declares, or the end once it is known.
func TestProgressCountsOutput(t *testing.T) {
	p := filepath.Join(fixturetest.ImagesDir(), "bomb-zero.img.zst")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	var calls int
	var last, lastTotal int64 = -1, 0
	im, err := image.OpenWithOptions(p, &image.Options{TempDir: t.TempDir(), Progress: func(done, total int64) {
		if done < last {
			t.Errorf("progress went back from %d to %d", last, done)
		}
		calls++
		last, lastTotal = done, total
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if calls < 2 || last != im.Size() || lastTotal != im.Size() || last <= 1000*fi.Size() {
		t.Errorf("%d progress calls, last %d of %d; want the decompressed size %d (the file is %d bytes)", calls, last, lastTotal, im.Size(), fi.Size())
	}
}
