package image_test

import (
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"path/filepath"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/image"
)

// Open a disk image whatever its container (the format is found from the
// content, not the name) and read its virtual disk: here a qcow2 with
// 4 KiB clusters made by qemu-img (fixtures/scripts/fmt-disks.sh;
// qemu-img info of it is fixtures/golden/fmt-qcow2-4k.qcow2.info.json,
// and the sha256 is that of `qemu-img convert -O raw`).
func ExampleOpen() {
	p, err := fixturetest.Decompress(filepath.Join(fixturetest.ImagesDir(), "fmt-qcow2-4k.qcow2.xz"))
	if err != nil {
		log.Fatal(err)
	}
	im, err := image.Open(p)
	if err != nil {
		log.Fatal(err)
	}
	defer im.Close()
	fmt.Println(im.Format, im.Size())
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(im, 0, im.Size())); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%x\n", h.Sum(nil)[:8])
	// Output:
	// qcow2 117440512
	// 0185d5f33b1eef94
}
