package image_test

import (
	"io"
	"path/filepath"
	"testing"

	"github.com/imgtool/imgtool/image"
)

// BenchmarkReadFormats reads the whole 112 MiB dom0 disk through each
// container, 1 MiB at a time (MB/s of virtual disk).
func BenchmarkReadFormats(b *testing.B) {
	dir := fmtDir(b)
	for _, f := range []string{"fmt-raw.img", "fmt-qcow2.qcow2", "fmt-qcow2-zlib.qcow2", "fmt-qcow2-zstd.qcow2",
		"fmt-chain-top.qcow2", "fmt-vmdk-sparse.vmdk", "fmt-vmdk-stream.vmdk", "fmt-vmdk-flat.vmdk",
		"fmt-vhd-dynamic.vhd", "fmt-vhd-fixed.vhd", "fmt-vhdx.vhdx"} {
		b.Run(f, func(b *testing.B) {
			im, err := image.Open(filepath.Join(dir, f))
			if err != nil {
				b.Fatal(err)
			}
			defer im.Close()
			buf := make([]byte, 1<<20)
			b.SetBytes(im.Size())
			for b.Loop() {
				for off := int64(0); off < im.Size(); off += int64(len(buf)) {
					if _, err := im.ReadAt(buf, off); err != nil && err != io.EOF {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
