package ext_test

import (
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// openTiny opens the small ext4 fixture (fixtures/scripts/ext-fixtures.sh).
func openTiny() *os.File {
	p, err := fixturetest.Decompress(filepath.Join(fixturetest.ImagesDir(), "ext-tiny-ext4.img.xz"))
	if err != nil {
		log.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		log.Fatal(err)
	}
	return f
}

// Open a filesystem from any io.ReaderAt, look a path up and list a
// directory (ReadDirInode includes "." and "..").
func Example() {
	f := openTiny()
	defer f.Close()
	st, _ := f.Stat()
	fsys, err := ext.Open(f, st.Size(), nil)
	if err != nil {
		log.Fatal(err)
	}
	ino, err := fsys.Lookup("/d")
	if err != nil {
		log.Fatal(err)
	}
	ents, err := fsys.ReadDirInode(ino)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range ents {
		fmt.Println(e.Ino, e.Name)
	}
	// Output:
	// 12 .
	// 2 ..
	// 13 a
}

// Read a file's content, holes as zeros, and the byte ranges that hold
// data (what a sparse copy writes).
func ExampleFS_OpenInode() {
	f := openTiny()
	defer f.Close()
	st, _ := f.Stat()
	fsys, err := ext.Open(f, st.Size(), nil)
	if err != nil {
		log.Fatal(err)
	}
	ino, err := fsys.LookupFollow("/sp")
	if err != nil {
		log.Fatal(err)
	}
	file, err := fsys.OpenInode(ino)
	if err != nil {
		log.Fatal(err)
	}
	b, err := io.ReadAll(io.NewSectionReader(file, 0, file.Size()))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d bytes, data ranges %v\n", len(b), file.DataRanges())
	// Output:
	// 30720 bytes, data ranges [{2048 1024} {6144 1024} {10240 1024} {14336 1024} {18432 1024} {22528 1024} {26624 1024}]
}

// The same filesystem through the filesystem-neutral interface every
// consumer uses (package vfs): on-disk inode numbers, Unix modes.
func ExampleNewVFS() {
	f := openTiny()
	defer f.Close()
	st, _ := f.Stat()
	fsys, err := ext.Open(f, st.Size(), nil)
	if err != nil {
		log.Fatal(err)
	}
	v := ext.NewVFS(fsys)
	ino, err := v.Lookup("/s1")
	if err != nil {
		log.Fatal(err)
	}
	s, err := v.Stat(ino)
	if err != nil {
		log.Fatal(err)
	}
	target, _ := v.Readlink(ino)
	fmt.Printf("%s inode %d mode %o -> %q\n", v.Info().Type, s.Ino, s.Mode, target)
	// Output:
	// ext4 inode 17 mode 120777 -> "f"
}
