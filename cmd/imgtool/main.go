// Command imgtool looks inside disk images: partition tables, LVM2, MD,
// LUKS and ext2/3/4, XFS, FAT, squashfs and ISO 9660, read straight from the image with no root and no kernel help.
package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

func main() {
	os.Exit(profiled(func() int { return run(os.Args[1:], os.Stdout, os.Stderr) }))
}

// profiled runs fn under a CPU profile written to $IMGTOOL_CPUPROFILE when
// that is set (for the bench scripts and `go tool pprof`: profile before
// optimising), and just runs it otherwise.
func profiled(fn func() int) int {
	path := os.Getenv("IMGTOOL_CPUPROFILE")
	if path == "" {
		return fn()
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "imgtool: IMGTOOL_CPUPROFILE: %v\n", err)
		return fn()
	}
	code := fn()
	pprof.StopCPUProfile()
	f.Close()
	return code
}
