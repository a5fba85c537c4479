package ext

import (
	"io"
	"os"
	"testing"
)

// BenchmarkReadAll reads every regular file of an image, as an extract
// would (minus the writes): $EXT_BENCH_IMAGE, or the ext4 fixture.
func BenchmarkReadAll(b *testing.B) {
	path := os.Getenv("EXT_BENCH_IMAGE")
	if path == "" {
		path = fixturesImage(b, "ext4")
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	buf := make([]byte, 1<<20)
	for b.Loop() {
		fsys, err := Open(f, st.Size(), nil)
		if err != nil {
			b.Fatal(err)
		}
		var total int64
		var walk func(ino uint32, depth int)
		walk = func(ino uint32, depth int) {
			ents, err := fsys.ReadDirInode(ino)
			if err != nil {
				b.Fatal(err)
			}
			for _, e := range ents {
				switch {
				case e.Name == "." || e.Name == "..":
				case e.FileType == FTDir && depth < 64:
					walk(e.Ino, depth+1)
				case e.FileType == FTReg:
					fl, err := fsys.OpenInode(e.Ino)
					if err != nil {
						b.Fatal(err)
					}
					for off := int64(0); off < fl.Size(); {
						n, err := fl.ReadAt(buf, off)
						off += int64(n)
						if err != nil && err != io.EOF {
							b.Fatal(err)
						}
						if n == 0 {
							break
						}
					}
					total += fl.Size()
				}
			}
		}
		walk(RootIno, 0)
		b.SetBytes(total)
	}
}

func fixturesImage(b *testing.B, name string) string {
	_, f := openFixture(b, name)
	return f.Name()
}
