package salvage

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"os"
	"testing"
	"time"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
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
