package journal

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// corpusDir is e2fsprogs' test images (fixturetest.CorpusDir).
func corpusDir() string { return fixturetest.CorpusDir() }

// corpusImage decompresses the image of corpus case name into a temporary
// directory and returns its path.
func corpusImage(tb testing.TB, name string) string {
	tb.Helper()
	return fixturetest.CorpusImage(tb, name, tb.TempDir())
}

// copyFile copies src to a new file in the test's temp dir.
func copyFile(tb testing.TB, src, name string) string {
	tb.Helper()
	dst := filepath.Join(tb.TempDir(), name)
	if err := fixturetest.CopySparse(src, dst); err != nil {
		tb.Fatal(err)
	}
	return dst
}

// e2fsck runs e2fsck with args on path and returns its combined output.
// Exit codes 0-2 and 4 (errors left) are fine: the output is the oracle.
func e2fsck(tb testing.TB, path string, args ...string) string {
	tb.Helper()
	cmd := exec.Command("e2fsck", append(args, path)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() >= 8 {
			tb.Fatalf("e2fsck %v %s: %v\n%s", args, path, err, out)
		}
	}
	return string(out)
}

func readAll(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// openExt opens the ext filesystem in b.
func openExt(tb testing.TB, r io.ReaderAt, size int64) *ext.FS {
	tb.Helper()
	fsys, err := ext.Open(r, size, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return fsys
}

// walk returns path -> description (type, and sha256 of the content for
// regular files, target for symlinks) for the whole tree.
func walk(tb testing.TB, fsys *ext.FS) map[string]string {
	tb.Helper()
	out := map[string]string{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if p == "lost+found" && d.IsDir() {
			// e2fsck -fy may recreate or fill it; compared separately.
		}
		switch {
		case d.IsDir():
			out[p] = "dir"
		case d.Type()&fs.ModeSymlink != 0:
			ino, err := fsys.Lookup("/" + p)
			if err != nil {
				return err
			}
			t, err := fsys.Readlink(ino)
			if err != nil {
				return err
			}
			out[p] = "symlink " + t
		case d.Type().IsRegular():
			ino, err := fsys.Lookup("/" + p)
			if err != nil {
				return err
			}
			f, err := fsys.OpenInode(ino)
			if err != nil {
				return err
			}
			h := sha256.New()
			if _, err := io.Copy(h, io.NewSectionReader(f, 0, f.Size())); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			out[p] = "file " + hex.EncodeToString(h.Sum(nil))
		default:
			out[p] = "special " + d.Type().String()
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("walk: %v", err)
	}
	return out
}

// sameTree reports the differences between two walks.
func sameTree(tb testing.TB, what string, got, want map[string]string) {
	tb.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	bad := 0
	for _, k := range keys {
		if got[k] != want[k] {
			bad++
			if bad <= 20 {
				tb.Errorf("%s: %s: replayed %q, e2fsck %q", what, k, got[k], want[k])
			}
		}
	}
	if bad > 20 {
		tb.Errorf("%s: %d differences in all", what, bad)
	}
}

// Superblock fields e2fsck updates for reasons of its own (time of the
// write, time of the last check when it ran one, bytes written, and so the
// checksum) are not compared.
var sbIgnored = [][2]int{{0x30, 0x34}, {0x40, 0x44}, {0x174 + 4, 0x180}, {0x274, 0x275}, {0x277, 0x278}, {0x3FC, 0x400}}

// compareBlocks compares the overlay with the image e2fsck -E journal_only
// produced, block by block. The filesystem superblock is compared without
// the fields in sbIgnored.
func compareBlocks(tb testing.TB, ov *Overlay, want []byte) (diff []uint64) {
	tb.Helper()
	if ov.Size() != int64(len(want)) {
		tb.Fatalf("overlay size %d, e2fsck image %d", ov.Size(), len(want))
	}
	got := make([]byte, ov.Size())
	if n, err := ov.ReadAt(got, 0); n != len(got) {
		tb.Fatalf("overlay read: %d bytes, %v", n, err)
	}
	bs := ov.BlockSize()
	// Mask the ignored superblock fields in both.
	g1, w1 := slicesClone(got[1024:2048]), slicesClone(want[1024:2048])
	for _, r := range sbIgnored {
		for i := r[0]; i < r[1]; i++ {
			g1[i], w1[i] = 0, 0
		}
	}
	if !bytes.Equal(g1, w1) {
		for i := range g1 {
			if g1[i] != w1[i] {
				tb.Errorf("filesystem superblock differs at field offset %#x: replayed %#02x, e2fsck %#02x", i, g1[i], w1[i])
			}
		}
	}
	for off := int64(0); off < int64(len(got)); off += bs {
		end := min(off+bs, int64(len(got)))
		lo := off
		if off <= 1024 && end >= 2048 {
			// Block holding the superblock: compare the rest of it.
			if !bytes.Equal(got[off:1024], want[off:1024]) || !bytes.Equal(got[2048:end], want[2048:end]) {
				diff = append(diff, uint64(off/bs))
			}
			continue
		}
		if off == 1024 && bs == 1024 {
			continue
		}
		if !bytes.Equal(got[lo:end], want[lo:end]) {
			diff = append(diff, uint64(off/bs))
		}
	}
	return diff
}

func slicesClone(b []byte) []byte { return append([]byte(nil), b...) }

// changedBlocks lists the blocks that differ between two images.
func changedBlocks(a, b []byte, bs int) []uint64 {
	var out []uint64
	for off := 0; off < len(a) && off < len(b); off += bs {
		end := min(off+bs, len(a), len(b))
		if !bytes.Equal(a[off:end], b[off:end]) {
			out = append(out, uint64(off/bs))
		}
	}
	return out
}
