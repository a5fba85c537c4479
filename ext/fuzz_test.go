package ext

import (
	"bytes"
	"encoding/binary"
	"github.com/imgtool/imgtool/vfs"
	"io"
	"io/fs"
	"sync"
	"testing"

	"github.com/imgtool/imgtool/internal/zero"
)

// The tiny fixtures (fixtures/scripts/ext-tiny.sh) are whole filesystems of
// 128-256 KiB: small enough to be fuzz inputs and bases.
var tinyImages = []string{"tiny-ext4", "tiny-ext2", "tiny-inline", "tiny-nofiletype"}

var (
	tinyOnce sync.Once
	tinyData [][]byte
)

func tiny(t testing.TB) [][]byte {
	tinyOnce.Do(func() {
		for _, n := range tinyImages {
			tinyData = append(tinyData, loadImage(t, n))
		}
	})
	if len(tinyData) != len(tinyImages) {
		t.Fatal("tiny images not loaded")
	}
	return tinyData
}

// exercise reads everything reachable with bounded work; it must never
// panic or hang whatever the image holds.
func exercise(fsys *FS) {
	buf := make([]byte, 64<<10)
	n := min(fsys.Superblock().InodesCount, 64)
	v := NewVFS(fsys)
	for ino := uint32(1); ino <= n; ino++ {
		in, err := fsys.Inode(ino)
		if err != nil {
			continue
		}
		fsys.BlockMap(ino)
		fsys.MetadataBlocks(ino)
		fsys.Xattrs(ino)
		fsys.Readlink(ino)
		if in.IsDir() {
			fsys.ReadDirInode(ino)
			v.Parent(vfs.Ino(ino))
		}
		if f, err := fsys.OpenInode(ino); err == nil {
			f.ReadAt(buf, 0)
			if f.Size() > int64(len(buf)) {
				f.ReadAt(buf, f.Size()-int64(len(buf)))
			}
		}
	}
	ents, _ := fsys.ReadDir(".")
	for i, e := range ents {
		if i > 32 {
			break
		}
		fsys.Stat(e.Name())
		e.Info()
		if f, err := fsys.Open(e.Name()); err == nil {
			if rd, ok := f.(fs.ReadDirFile); ok {
				rd.ReadDir(-1)
			} else {
				io.CopyN(io.Discard, f, 1<<20)
			}
			f.Close()
		}
	}
	fsys.Lookup("/d/a")
	fsys.Lookup("/s1")
	fsys.LookupFollow("/s1")
	fsys.Notes()
	v.Consistent()
}

// fuzzHead is how much of a tiny image FuzzOpen fuzzes: the boot block,
// the superblock and the group descriptor table (1 KiB blocks).
const fuzzHead = 3072

// FuzzOpen fuzzes the superblock and the group descriptors (the first 3 KiB
// of a tiny image, which selects the image) and everything reached from
// them. Whole images are too large for the fuzzer to mutate quickly.
func FuzzOpen(f *testing.F) {
	imgs := tiny(f)
	for w, b := range imgs {
		f.Add(uint8(w), bytes.Clone(b[:fuzzHead]))
	}
	f.Fuzz(func(t *testing.T, which uint8, head []byte) {
		base := imgs[int(which)%len(imgs)]
		head = bytes.Clone(head[:min(len(head), fuzzHead)])
		if which&0x80 == 0 && len(head) >= superblockOffset+superblockSize {
			// Keep the superblock checksum valid, so that mutations get
			// past it into the rest of the superblock and the groups.
			sb := head[superblockOffset : superblockOffset+superblockSize]
			binary.LittleEndian.PutUint32(sb[sbChecksum:], superblockChecksum(sb))
		}
		// bit 6 selects salvage mode and computed descriptors
		fsys, err := Open(&overlay{base, 0, head}, int64(len(base)), &Options{Salvage: which&0x40 != 0, GuessGroupDescriptors: which&0x60 == 0x60})
		if err != nil {
			return
		}
		exercise(fsys)
	})
}

// overlay is base with patch laid over it at off, without copying base:
// fuzz iterations stay cheap.
type overlay struct {
	base  []byte
	off   int64
	patch []byte
}

func (o *overlay) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(o.base)) {
		return 0, io.EOF
	}
	n := copy(p, o.base[off:])
	// intersect [off, off+n) with [o.off, o.off+len(patch))
	lo, hi := max(off, o.off), min(off+int64(n), o.off+int64(len(o.patch)))
	if lo < hi {
		copy(p[lo-off:hi-off], o.patch[lo-o.off:hi-o.off])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func openOverlay(t testing.TB, base []byte, off int64, patch []byte) *FS {
	t.Helper()
	fsys, err := Open(&overlay{base, off, patch}, int64(len(base)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

// FuzzInode puts fuzzed bytes in place of inode 12 of a tiny image (which
// selects the image) and reads it every way: fields, block map (extents,
// indirect), content, xattrs, symlink, directory. Seeds are every in-use
// inode of the tiny images.
func FuzzInode(f *testing.F) {
	imgs := tiny(f)
	for w, b := range imgs {
		fsys := mustOpenBytes(f, b)
		for ino := uint32(1); ino <= fsys.Superblock().InodesCount; ino++ {
			off, err := fsys.inodeOffset(ino)
			if err != nil {
				f.Fatal(err)
			}
			raw := b[off : off+int64(fsys.Superblock().InodeSize)]
			if !zero.Is(raw) {
				f.Add(uint8(w), bytes.Clone(raw))
			}
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, raw []byte) {
		base := imgs[int(which)%len(imgs)]
		fsys := mustOpenBytes(t, base)
		off, _ := fsys.inodeOffset(12)
		fsys = openOverlay(t, base, off, raw[:min(len(raw), int(fsys.Superblock().InodeSize))])
		exercise(fsys)
	})
}

// FuzzExtents fuzzes an extent tree: the root in /sp's i_block and its
// leaf block (tiny-ext4's /sp has a depth-1 tree).
func FuzzExtents(f *testing.F) {
	base := tiny(f)[0]
	fsys := mustOpenBytes(f, base)
	ino, err := fsys.Lookup("/sp")
	if err != nil {
		f.Fatal(err)
	}
	in, _ := fsys.Inode(ino)
	meta, err := fsys.MetadataBlocks(ino)
	if err != nil || len(meta) != 1 {
		f.Fatalf("/sp: tree blocks %v, %v", meta, err)
	}
	leafOff := int64(meta[0]) * fsys.BlockSize()
	f.Add(in.Block[:], bytes.Clone(base[leafOff:leafOff+fsys.BlockSize()]))
	g, _ := fsys.Lookup("/g")
	gin, _ := fsys.Inode(g)
	f.Add(gin.Block[:], bytes.Clone(base[leafOff:leafOff+fsys.BlockSize()]))
	rootOff := in.Offset + inBlock
	f.Fuzz(func(t *testing.T, root, leaf []byte) {
		img := bytes.Clone(base[:leafOff+fsys.BlockSize()])
		copy(img[rootOff:rootOff+iBlockSize], root)
		copy(img[leafOff:leafOff+fsys.BlockSize()], leaf)
		fs2 := openOverlay(t, base, 0, img)
		fs2.BlockMap(ino)
		if fl, err := fs2.OpenInode(ino); err == nil {
			buf := make([]byte, 8192)
			for off := int64(0); off < min(fl.Size(), 1<<20); off += int64(len(buf)) {
				fl.ReadAt(buf, off)
			}
		}
	})
}

// FuzzDirBlock fuzzes a directory block: /d's first block in a tiny image
// (which selects the image). Seeds: the real directory blocks, including
// an htree root and index block from the ext2-1k fixture's /big.
func FuzzDirBlock(f *testing.F) {
	imgs := tiny(f)
	for w, b := range imgs {
		fsys := mustOpenBytes(f, b)
		for _, p := range []string{"/", "/d"} {
			ino, _ := fsys.Lookup(p)
			m, _ := fsys.BlockMap(ino)
			for _, e := range m {
				off := int64(e.Physical) * fsys.BlockSize()
				f.Add(uint8(w), bytes.Clone(b[off:off+fsys.BlockSize()]))
			}
		}
	}
	if big := loadImage(f, "ext2-1k"); len(big) > 0 {
		fsys := mustOpenBytes(f, big)
		ino, _ := fsys.Lookup("/big")
		m, _ := fsys.BlockMap(ino)
		off := int64(m[0].Physical) * 1024
		f.Add(uint8(1), bytes.Clone(big[off:off+1024]))
		f.Add(uint8(1), bytes.Clone(big[off+1024:off+2048]))
	}
	type target struct {
		ino uint32
		off int64
	}
	var targets []target
	for _, b := range imgs {
		fsys := mustOpenBytes(f, b)
		ino, err := fsys.Lookup("/d")
		if err != nil {
			f.Fatal(err)
		}
		m, _ := fsys.BlockMap(ino)
		off := int64(-1)
		if len(m) > 0 {
			off = int64(m[0].Physical) * fsys.BlockSize()
		} else if in, _ := fsys.Inode(ino); in != nil {
			off = in.Offset + inBlock // inline directory: fuzz i_block
		}
		targets = append(targets, target{ino, off})
	}
	f.Fuzz(func(t *testing.T, which uint8, blk []byte) {
		w := int(which) % len(imgs)
		tg := targets[w]
		n := 1024
		if tg.off%1024 != 0 {
			n = iBlockSize
		}
		fsys := openOverlay(t, imgs[w], tg.off, blk[:min(len(blk), n)])
		fsys.ReadDirInode(tg.ino)
		NewVFS(fsys).Parent(vfs.Ino(tg.ino))
		fsys.Lookup("/d/a")
		fsys.ReadDir("d")
	})
}
