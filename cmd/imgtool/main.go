// Command imgtool looks inside disk images: partition tables, LVM2, MD,
// LUKS and ext2/3/4, XFS, FAT, squashfs and ISO 9660, read straight from the image with no root and no kernel help.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
