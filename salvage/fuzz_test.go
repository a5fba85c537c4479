package salvage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"testing"
	"time"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/vfs"
)

// tinyImages are the ext package's tiny fixtures (128-256 KiB): small
// enough to be fuzz inputs, with every structure the reader parses.
func tinyImages(tb testing.TB) [][]byte {
	var out [][]byte
	for _, n := range []string{"ext-tiny-ext4", "ext-tiny-ext2", "ext-tiny-inline", "ext-tiny-nofiletype"} {
		b, err := os.ReadFile(fixturetest.Image(tb, n))
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzSalvage damages a tiny image (patch bytes written at an offset,
// several places at once through a repeat stride) and salvages it into a
// tar stream: the walk, the orphan scan, cross-link and cycle detection
// must finish without a panic, quickly, and account for what they found.
func FuzzSalvage(f *testing.F) {
	imgs := tinyImages(f)
	for w, b := range imgs {
		// seeds: an inode table region, the descriptor table, the root
		// directory block, a superblock field
		fsys, err := ext.Open(bytes.NewReader(b), int64(len(b)), nil)
		if err != nil {
			f.Fatal(err)
		}
		gd := fsys.Groups()[0]
		it := uint32(gd.InodeTable * uint64(fsys.BlockSize()))
		f.Add(uint8(w), it+uint32(fsys.Superblock().InodeSize), uint16(0), bytes.Clone(b[it+256:it+512]))
		f.Add(uint8(w), uint32(2*1024), uint16(1024), []byte{0, 0, 0, 0})
		root, _ := fsys.BlockMap(ext.RootIno)
		if len(root) > 0 {
			off := uint32(root[0].Physical * uint64(fsys.BlockSize()))
			f.Add(uint8(w), off, uint16(0), []byte{2, 0, 0, 0, 12, 0, 1, 2, '.', 0, 0, 0, 2, 0, 0, 0})
		}
		f.Add(uint8(w|0x80), uint32(1024+0x20), uint16(0), []byte{0, 1, 0, 0})
	}
	f.Fuzz(func(t *testing.T, which uint8, off uint32, stride uint16, patch []byte) {
		base := imgs[int(which&0x7f)%len(imgs)]
		img := bytes.Clone(base)
		if len(patch) > 4096 {
			patch = patch[:4096]
		}
		for i, o := 0, int64(off)%int64(len(img)); i < 8 && o < int64(len(img)); i++ {
			copy(img[o:], patch)
			if stride == 0 {
				break
			}
			o += int64(stride)
		}
		if which&0x80 == 0 {
			// keep the superblock checksum valid so that damage gets past it
			sb := img[1024:2048]
			binary.LittleEndian.PutUint32(sb[0x3FC:], crc32c(sb[:0x3FC]))
		}
		defer fixturetest.Watchdog(20 * time.Second)()
		fsys, err := ext.Open(bytes.NewReader(img), int64(len(img)), &ext.Options{Salvage: true, GuessGroupDescriptors: which&0x40 != 0})
		if err != nil {
			return
		}
		rep, err := RunTar(context.Background(), fsys, io.Discard, Options{})
		if err != nil {
			t.Fatalf("RunTar: %v", err)
		}
		if rep.FilesRecovered < 0 || rep.FilesLost < 0 || rep.BytesLost < 0 || rep.BytesRecovered < 0 {
			t.Fatalf("negative totals: %+v", rep)
		}
		_ = rep.Summary(10)
	})
}

// crc32c as ext4 stores the superblock checksum: crc32c(~0, b) without
// the final inversion.
func crc32c(b []byte) uint32 {
	return ^crc32.Update(^uint32(0xFFFFFFFF), crc32.MakeTable(crc32.Castagnoli), b)
}

// fuzzFS is a filesystem decoded from fuzz bytes, for the
// filesystem-neutral walk (RunVFS): inodes of any type or unreadable,
// directories naming any inode (loops, second names, missing inodes,
// bad names), some in use but named by no one, and checksum notes.
type fuzzFS struct {
	base  vfs.Ino
	modes []uint32 // 0: unreadable
	ents  map[vfs.Ino][]vfs.DirEntry
	notes []vfs.Note
}

func newFuzzFS(b []byte) *fuzzFS {
	f := &fuzzFS{base: 1, ents: map[vfs.Ino][]vfs.DirEntry{}}
	if len(b) < 2 {
		b = append(b, 0, 0)
	}
	if b[1]&1 != 0 {
		f.base = 1 << 40 // inode numbers wider than 32 bits
	}
	n := 2 + int(b[0])%40
	b = b[2:]
	next := func() byte {
		if len(b) == 0 {
			return 0
		}
		c := b[0]
		b = b[1:]
		return c
	}
	modes := []uint32{vfs.ModeDir | 0o755, vfs.ModeReg | 0o644, vfs.ModeLink | 0o777, vfs.ModeFIFO | 0o644, 0o644, 0}
	f.modes = make([]uint32, n)
	f.modes[0] = vfs.ModeDir | 0o755
	for i := 1; i < n; i++ {
		f.modes[i] = modes[int(next())%len(modes)]
	}
	names := []string{"a", "b", "a", ".", "..", "x/y", "", "c\x00", "d"}
	for i := 0; i < n; i++ {
		if f.modes[i]&vfs.ModeType != vfs.ModeDir {
			continue
		}
		ino := f.base + vfs.Ino(i)
		for k := int(next()) % 6; k > 0; k-- {
			f.ents[ino] = append(f.ents[ino], vfs.DirEntry{Name: names[int(next())%len(names)], Ino: f.base + vfs.Ino(int(next())%(n+2))})
		}
	}
	for k := int(next()) % 4; k > 0; k-- {
		f.notes = append(f.notes, vfs.Note{Ino: f.base + vfs.Ino(int(next())%n), Offset: 512, Msg: "checksum", Checksum: true})
	}
	return f
}

func (f *fuzzFS) mode(ino vfs.Ino) (uint32, error) {
	if ino < f.base || ino-f.base >= vfs.Ino(len(f.modes)) || f.modes[ino-f.base] == 0 {
		return 0, fmt.Errorf("inode %d: offset %d: unreadable", ino, int64(ino)*256)
	}
	return f.modes[ino-f.base], nil
}

func (f *fuzzFS) Info() vfs.Info                       { return vfs.Info{Type: "fuzz", BlockSize: 512} }
func (f *fuzzFS) Root() vfs.Ino                        { return f.base }
func (f *fuzzFS) Lookup(string) (vfs.Ino, error)       { return 0, fs.ErrNotExist }
func (f *fuzzFS) LookupFollow(string) (vfs.Ino, error) { return 0, fs.ErrNotExist }
func (f *fuzzFS) Xattrs(vfs.Ino) ([]vfs.Xattr, error)  { return nil, nil }
func (f *fuzzFS) Notes() []vfs.Note                    { return f.notes }
func (f *fuzzFS) Stat(ino vfs.Ino) (*vfs.Stat, error) {
	m, err := f.mode(ino)
	if err != nil {
		return nil, err
	}
	return &vfs.Stat{Ino: ino, Mode: m, Nlink: 1, Size: 3}, nil
}
func (f *fuzzFS) ReadDir(ino vfs.Ino) ([]vfs.DirEntry, error) {
	if m, err := f.mode(ino); err != nil || m&vfs.ModeType != vfs.ModeDir {
		return nil, errors.New("not a directory")
	}
	return f.ents[ino], nil
}
func (f *fuzzFS) Readlink(vfs.Ino) (string, error) { return "t", nil }
func (f *fuzzFS) Open(ino vfs.Ino) (vfs.File, error) {
	if m, err := f.mode(ino); err != nil || m&vfs.ModeType != vfs.ModeReg {
		return nil, errors.New("not a file")
	}
	return fuzzFile{}, nil
}
func (f *fuzzFS) WalkInodes(ctx context.Context, fn func(vfs.Ino, *vfs.Stat, error) error) error {
	for i := range f.modes {
		st, err := f.Stat(f.base + vfs.Ino(i))
		if err := fn(f.base+vfs.Ino(i), st, err); err != nil {
			return err
		}
	}
	return nil
}

type fuzzFile struct{}

func (fuzzFile) Size() int64             { return 3 }
func (fuzzFile) DataRanges() []vfs.Range { return []vfs.Range{{Off: 0, Len: 3}} }
func (fuzzFile) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader([]byte("abc")).ReadAt(p, off)
}

// FuzzSalvageVFS salvages filesystems decoded from fuzz bytes through the
// filesystem-neutral walk into a tar stream: no panic, every readable
// inode is extracted or accounted for (reached from the root or under
// #orphans), and the totals are sane.
func FuzzSalvageVFS(f *testing.F) {
	f.Add([]byte{5, 0, 0, 1, 0, 3, 2, 0, 1, 1, 1, 2, 0})
	f.Add([]byte{9, 1, 0, 0, 1, 2, 5, 0, 2, 0, 3, 1, 0, 0, 1, 8, 3})
	f.Add([]byte{30, 0, 0, 0, 0, 0, 0, 5, 5, 5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	f.Fuzz(func(t *testing.T, b []byte) {
		defer fixturetest.Watchdog(20 * time.Second)()
		fsys := newFuzzFS(b)
		rep, err := RunVFSTar(context.Background(), fsys, io.Discard, Options{})
		if err != nil {
			t.Fatalf("RunVFSTar: %v", err)
		}
		if rep.FilesRecovered < 0 || rep.FilesLost < 0 || rep.Orphans < 0 || rep.BytesLost < 0 {
			t.Fatalf("negative totals: %+v", rep)
		}
		unreach := 0
		for _, e := range rep.Entries {
			if e.has(Unreachable) {
				unreach++
				if e.Inode() < uint64(fsys.base) || e.Inode()-uint64(fsys.base) >= uint64(len(fsys.modes)) {
					t.Fatalf("orphan %d is no inode of the filesystem", e.Inode())
				}
			}
		}
		if unreach != rep.Orphans {
			t.Fatalf("%d unreachable entries, %d orphans counted", unreach, rep.Orphans)
		}
		_ = rep.Summary(10)
	})
}
