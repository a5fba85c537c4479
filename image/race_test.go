package image_test

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/imgtool/imgtool/image"
)

// TestConcurrentReads: ReadAt may be called from several goroutines (the
// inspect and ext readers do); every container must give the raw bytes.
// Run with -race.
func TestConcurrentReads(t *testing.T) {
	dir := fmtDir(t)
	raw, err := os.ReadFile(filepath.Join(dir, "fmt-raw.img"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"fmt-qcow2-zlib.qcow2", "fmt-qcow2-zstd.qcow2", "fmt-chain-base.qcow2", "fmt-vmdk-stream.vmdk",
		"fmt-vmdk-2gbsparse.vmdk", "fmt-vhd-dynamic.vhd", "fmt-vhdx-1m.vhdx"} {
		t.Run(f, func(t *testing.T) {
			im, err := image.Open(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			var wg sync.WaitGroup
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					buf := make([]byte, 40000+g*1000)
					for i := 0; i < 40; i++ {
						off := int64((g*7919+i*104729)%1000) * 100003 % (int64(len(raw)) - int64(len(buf)))
						if _, err := im.ReadAt(buf, off); err != nil {
							t.Errorf("ReadAt(%d): %v", off, err)
							return
						}
						if !bytes.Equal(buf, raw[off:off+int64(len(buf))]) {
							t.Errorf("goroutine %d: bytes at %d differ", g, off)
							return
						}
					}
				}(g)
			}
			wg.Wait()
		})
	}
}
