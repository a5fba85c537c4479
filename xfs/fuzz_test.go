package xfs

import (
	"context"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/vfs"
)

// The fuzz targets patch one metadata structure of a real fixture image
// (superblock + AG headers, an inode and its bmbt block, a directory
// block, an attr block, the head of a dirty log) with the fuzz input, then
// open and read everything reachable with bounded work. Nothing may panic
// or hang.

type patchedVol struct {
	base io.ReaderAt
	size int64
	off  int64
	data []byte
}

func (v *patchedVol) Size() int64 { return v.size }
func (v *patchedVol) ReadAt(p []byte, off int64) (int, error) {
	n, err := v.base.ReadAt(p, off)
	s, e := max(off, v.off), min(off+int64(len(p)), v.off+int64(len(v.data)))
	if s < e {
		copy(p[s-off:e-off], v.data[s-v.off:e-v.off])
	}
	return n, err
}

type fuzzBase struct {
	f    *os.File
	size int64
	// offsets of structures in the image
	inode, bmbt, dirBlock, sfDir, attrLeaf, sfAttr, log int64
	isize, bsize                                        int
}

var (
	fuzzOnce  sync.Once
	fuzzBases map[string]*fuzzBase
)

func loadFuzzBase(t testing.TB, name string) *fuzzBase {
	fuzzOnce.Do(func() { fuzzBases = map[string]*fuzzBase{} })
	if b := fuzzBases[name]; b != nil {
		return b
	}
	path := fixturetest.Image(t, name)
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := fh.Stat()
	b := &fuzzBase{f: fh, size: st.Size()}
	f, err := Open(fileVol{fh, st.Size()}, name, vfs.OpenOptions{NoJournal: true})
	if err != nil {
		t.Fatal(err)
	}
	b.isize, b.bsize = int(f.sb.InodeSize), int(f.sb.BlockSize)
	b.log, _ = f.fsbOff(f.sb.LogStart)
	firstBlock := func(path string, attr bool) (int64, int64) {
		ino, err := f.Lookup(path)
		if err != nil {
			return -1, -1
		}
		in, err := f.inode(ino)
		if err != nil {
			t.Fatal(err)
		}
		ext, _ := f.forkExtents(in, attr)
		if len(ext) == 0 {
			return in.Off, -1
		}
		o, _ := f.fsbOff(ext[0].fsb)
		return in.Off, o
	}
	b.inode, _ = firstBlock("/files/frag-a", false)
	if ino, err := f.Lookup("/files/frag-a"); err == nil {
		if in, err := f.inode(ino); err == nil && in.Format == fmtBtree {
			b.bmbt, _ = f.fsbOff(be.Uint64(in.DataFork[4+((len(in.DataFork)-4)/16)*8:]))
		}
	}
	_, b.dirBlock = firstBlock("/dirs/block60", false)
	b.sfDir, _ = firstBlock("/dirs/sf3", false)
	_, b.attrLeaf = firstBlock("/xattr/many", true)
	b.sfAttr, _ = firstBlock("/xattr/sf", true)
	fuzzBases[name] = b
	return b
}

// exerciseFS reads what is reachable, bounded: 300 entries, 1 MiB per file.
func exerciseFS(f *FS) {
	budget := 300
	buf := make([]byte, 64<<10)
	var walk func(dir vfs.Ino, depth int)
	walk = func(dir vfs.Ino, depth int) {
		ents, _ := f.ReadDir(dir)
		for _, e := range ents {
			if budget--; budget < 0 || depth > 8 {
				return
			}
			st, err := f.Stat(e.Ino)
			if err != nil {
				continue
			}
			f.Xattrs(e.Ino)
			f.BlockMap(e.Ino)
			switch {
			case st.IsDir():
				walk(e.Ino, depth+1)
			case st.IsSymlink():
				f.Readlink(e.Ino)
			case st.IsRegular():
				if fl, err := f.Open(e.Ino); err == nil {
					fl.DataRanges()
					for off := int64(0); off < min(fl.Size(), 1<<20); off += int64(len(buf)) {
						fl.ReadAt(buf, off)
					}
				}
			}
		}
	}
	walk(f.Root(), 0)
	f.Lookup("/dirs/../files/./small")
	n := 0
	f.WalkInodes(context.Background(), func(vfs.Ino, *vfs.Stat, error) error {
		if n++; n > 500 {
			return io.EOF
		}
		return nil
	})
	f.Notes()
}

func fuzzPatched(t *testing.T, base *fuzzBase, off int64, data []byte, opts vfs.OpenOptions) {
	if off < 0 {
		t.Skip("structure not in this image")
	}
	v := &patchedVol{base: base.f, size: base.size, off: off, data: data}
	f, err := Open(v, "fuzz", opts)
	if err != nil {
		return
	}
	exerciseFS(f)
}

func readAt(t testing.TB, b *fuzzBase, off int64, n int) []byte {
	buf := make([]byte, n)
	if _, err := b.f.ReadAt(buf, off); err != nil {
		t.Fatal(err)
	}
	return buf
}

// FuzzSuperblock: the first four sectors (superblock, AGF, AGI, AGFL) of AG 0.
func FuzzSuperblock(f *testing.F) {
	for _, name := range []string{"xfs-1k", "xfs-v4"} {
		b := loadFuzzBase(f, name)
		f.Add(readAt(f, b, 0, 2048))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ParseSuperblock(data)
		fuzzPatched(t, loadFuzzBase(t, "xfs-1k"), 0, data, vfs.OpenOptions{})
	})
}

// FuzzInode: a file's inode followed by its first bmbt block.
func FuzzInode(f *testing.F) {
	b := loadFuzzBase(f, "xfs-1k")
	seed := readAt(f, b, b.inode, b.isize)
	if b.bmbt > 0 {
		seed = append(seed, readAt(f, b, b.bmbt, b.bsize)...)
	}
	f.Add(seed)
	f.Add(readAt(f, b, b.sfDir, b.isize))
	f.Add(readAt(f, b, b.sfAttr, b.isize))
	f.Fuzz(func(t *testing.T, data []byte) {
		b := loadFuzzBase(t, "xfs-1k")
		if len(data) > b.isize && b.bmbt > 0 {
			// Inode and bmbt block are patched separately.
			v := &patchedVol{base: b.f, size: b.size, off: b.bmbt, data: data[b.isize:]}
			w := &patchedVol{base: v, size: b.size, off: b.inode, data: data[:b.isize]}
			if f, err := Open(w, "fuzz", vfs.OpenOptions{}); err == nil {
				exerciseFS(f)
			}
			return
		}
		fuzzPatched(t, b, b.inode, data, vfs.OpenOptions{})
	})
}

// FuzzDirBlock: a single-block directory's block, and a shortform
// directory inode.
func FuzzDirBlock(f *testing.F) {
	for _, name := range []string{"xfs-1k", "xfs-v4"} {
		b := loadFuzzBase(f, name)
		f.Add(uint8(0), readAt(f, b, b.dirBlock, b.bsize))
		f.Add(uint8(1), readAt(f, b, b.sfDir, b.isize))
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		for _, name := range []string{"xfs-1k", "xfs-v4"} {
			b := loadFuzzBase(t, name)
			off := b.dirBlock
			if which&1 == 1 {
				off = b.sfDir
			}
			fuzzPatched(t, b, off, data, vfs.OpenOptions{})
		}
	})
}

// FuzzAttrBlock: the first attr block of a file with 200 xattrs, and a
// shortform attr fork's inode.
func FuzzAttrBlock(f *testing.F) {
	b := loadFuzzBase(f, "xfs-1k")
	f.Add(uint8(0), readAt(f, b, b.attrLeaf, b.bsize))
	f.Add(uint8(1), readAt(f, b, b.sfAttr, b.isize))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		b := loadFuzzBase(t, "xfs-1k")
		off := b.attrLeaf
		if which&1 == 1 {
			off = b.sfAttr
		}
		fuzzPatched(t, b, off, data, vfs.OpenOptions{})
	})
}

// FuzzLog: the first 64 KiB of a dirty log from its tail, replayed.
func FuzzLog(f *testing.F) {
	b := loadFuzzBase(f, "xfs-dirty-a")
	fs0, err := Open(fileVol{b.f, b.size}, "seed", vfs.OpenOptions{})
	if err != nil {
		f.Fatal(err)
	}
	tail := b.log + fs0.Log.TailBlock*bbSize
	f.Add(readAt(f, b, tail, 64<<10))
	f.Fuzz(func(t *testing.T, data []byte) {
		b := loadFuzzBase(t, "xfs-dirty-a")
		fuzzPatched(t, b, tail, data, vfs.OpenOptions{})
	})
}
