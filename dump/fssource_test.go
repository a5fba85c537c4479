package dump

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/otherfs"
	"github.com/imgtool/imgtool/vfs"
)

// FSSource's numbering on real filesystems: the root is 2, every inode
// maps to one number and back, no number is below 2 but the ones restore
// accepts, and the modes are as documented (identity for ext, a swap for
// squashfs, dense for FAT and ISO 9660).
func TestFSSourceNumbering(t *testing.T) {
	open := func(name string) vfs.FS {
		f, err := os.Open(fixturetest.Image(t, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		st, _ := f.Stat()
		if name == "ext-ext4" {
			fsys, err := ext.Open(f, st.Size(), nil)
			if err != nil {
				t.Fatal(err)
			}
			return ext.NewVFS(fsys)
		}
		fsys, err := otherfs.Open(f, st.Size(), name)
		if err != nil {
			t.Fatal(err)
		}
		return otherfs.NewVFS(fsys)
	}
	for _, c := range []struct {
		name     string
		stable   bool
		identity bool
	}{{"ext-ext4", true, true}, {"otherfs-squashfs", true, false}, {"otherfs-fat32", false, false}, {"otherfs-iso", false, false}} {
		t.Run(c.name, func(t *testing.T) {
			fsys := open(c.name)
			s, err := NewFSSource(context.Background(), fsys)
			if err != nil {
				t.Fatal(err)
			}
			if s.Stable() != c.stable {
				t.Errorf("stable %v, want %v", s.Stable(), c.stable)
			}
			if s.ToDump(fsys.Root()) != RootIno || s.FromDump(RootIno) != fsys.Root() {
				t.Errorf("root %d maps to %d", fsys.Root(), s.ToDump(fsys.Root()))
			}
			seen := map[uint32]vfs.Ino{}
			n := 0
			err = fsys.WalkInodes(context.Background(), func(ino vfs.Ino, _ *vfs.Stat, _ error) error {
				n++
				d := s.ToDump(ino)
				if d < RootIno || d > s.MaxIno() {
					t.Errorf("inode %d -> %d, outside 2..%d", ino, d, s.MaxIno())
				}
				if prev, ok := seen[d]; ok {
					t.Errorf("inodes %d and %d both -> %d", prev, ino, d)
				}
				seen[d] = ino
				if back := s.FromDump(d); back != ino {
					t.Errorf("inode %d -> %d -> %d", ino, d, back)
				}
				if c.identity && d != uint32(ino) {
					t.Errorf("ext inode %d renumbered to %d", ino, d)
				}
				return nil
			})
			if err != nil || n < 10 {
				t.Fatalf("walk: %d inodes, %v", n, err)
			}
		})
	}
}

// noScan hides a Source's InodeScanner.
type noScan struct{ Source }

// TestScanSameStream: pass I from the inode scan writes the same stream,
// byte for byte, as pass I by Stat, at level 0 and at a level 1 whose
// base date falls among the fixture's inode times.
func TestScanSameStream(t *testing.T) {
	src := extSource(t, fixturetest.Image(t, "ext-ext4"))
	// A base date in the middle of the inodes' change times (the later
	// of ctime and mtime, as the writer's test).
	var times []int64
	for ino := uint32(1); ino <= src.MaxIno(); ino++ {
		if in, err := src.Stat(ino); err == nil && knownType(in.Mode) {
			if t := max(in.Mtime.Unix(), in.Ctime.Unix()); t < 1<<31 { // dates on tape are 32-bit
				times = append(times, t)
			}
		}
	}
	slices.Sort(times)
	mid, last := time.Unix(times[len(times)/2], 0), time.Unix(times[len(times)-1], 0)
	date := last.Add(24 * time.Hour)
	split := false
	for _, base := range []time.Time{{}, mid, last} {
		level := 1
		if base.IsZero() {
			level = 0
		}
		opts := WriteOptions{Level: level, Date: date, BaseDate: base, HonorNodump: level >= 1}
		var a, b bytes.Buffer
		sa, err := Write(&a, src, opts)
		if err != nil {
			t.Fatal(err)
		}
		sb, err := Write(&b, noScan{src}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("level %d: scan and Stat streams differ (%d and %d bytes)", level, a.Len(), b.Len())
		}
		split = split || level == 1 && sa.Dumped > 1 && sa.Dumped < sa.Inodes
		t.Logf("level %d (base %v): %d of %d inodes dumped (by Stat: %d)", level, base, sa.Dumped, sa.Inodes, sb.Dumped)
	}
	if !split {
		t.Error("no base date split the inodes into dumped and not")
	}
}

// TestDamageLeftOut: what the source cannot read is left out of the dump
// and listed in Stats.Lost; the rest is dumped and stock restore reads it.
// Damage made with debugfs and dd on a mke2fs -d image (1 KiB blocks): an
// inode of a type ext does not have (/c/odd), and the second block of a
// two-block directory (/big) with an invalid rec_len.
func TestDamageLeftOut(t *testing.T) {
	needRestore(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	for _, d := range []string{"c", "big"} {
		os.MkdirAll(filepath.Join(src, d), 0o755)
	}
	os.WriteFile(filepath.Join(src, "c/odd"), []byte("odd\n"), 0o644)
	os.WriteFile(filepath.Join(src, "c/ok"), []byte("ok\n"), 0o644)
	for i := range 40 {
		os.WriteFile(filepath.Join(src, "big", fmt.Sprintf("entry-with-a-longish-name-%02d", i)), nil, 0o644)
	}
	img := filepath.Join(dir, "fs.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-b", "1024", "-O", "^dir_index", "-d", src, img, "8M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	if out, err := exec.Command("debugfs", "-w", "-R", "sif /c/odd mode 0170644", img).CombinedOutput(); err != nil {
		t.Fatalf("debugfs: %v\n%s", err, out)
	}
	out, err := exec.Command("debugfs", "-R", "blocks /big", img).Output()
	blocks := strings.Fields(string(out))
	if err != nil || len(blocks) < 2 {
		t.Fatalf("debugfs blocks /big: %v %q", err, out)
	}
	b, _ := os.ReadFile(img)
	var second int64
	fmt.Sscan(blocks[1], &second)
	binary.LittleEndian.PutUint16(b[second*1024+4:], 7) // rec_len 7: invalid
	os.WriteFile(img, b, 0o644)

	file, st := writeDump(t, extSource(t, img), WriteOptions{Level: 0, Date: t0})
	lost := strings.Join(st.Lost, "\n")
	if len(st.Lost) != 2 || !strings.Contains(lost, `("odd" in directory`) || !strings.Contains(lost, "dumped with the") {
		t.Errorf("Stats.Lost: %q; want the inode of /c/odd and the directory /big", st.Lost)
	}
	toc := parseTOC(t, runRestore(t, t.TempDir(), "-t", "-f", file))
	nbig := 0
	for p := range toc {
		if strings.HasPrefix(p, "./big/") {
			nbig++
		}
	}
	if _, ok := toc["./c/ok"]; !ok || toc["./c/odd"] != 0 || nbig == 0 || nbig >= 40 {
		t.Errorf("restore -t: c/ok %v, c/odd %v, %d of big's 40 entries; want c/ok, no c/odd, some of big's", toc["./c/ok"] != 0, toc["./c/odd"] != 0, nbig)
	}
}

// TestUnmappableDataAsZeros: a file whose second block pointer points
// past the end of an ext2 filesystem (debugfs sif) cannot be opened; it is
// in the dump as zeros of its size and named in Stats.Lost, and the rest
// of the filesystem restores with stock restore.
func TestUnmappableDataAsZeros(t *testing.T) {
	needRestore(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "data"), bytes.Repeat([]byte("abc"), 1024), 0o644)
	os.WriteFile(filepath.Join(src, "ok"), []byte("ok\n"), 0o644)
	img := filepath.Join(dir, "fs.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", "-d", src, img, "4M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	if out, err := exec.Command("debugfs", "-w", "-R", "sif /data block[1] 99999999", img).CombinedOutput(); err != nil {
		t.Fatalf("debugfs: %v\n%s", err, out)
	}
	file, stats := writeDump(t, extSource(t, img), WriteOptions{Level: 0, Date: t0})
	if len(stats.Lost) != 1 || !strings.Contains(stats.Lost[0], "block 99999999") {
		t.Errorf("Stats.Lost: %q; want /data's bad block pointer", stats.Lost)
	}
	out := t.TempDir()
	runRestore(t, out, "-x", "-a", "-o", "-y", "-f", file)
	if got, err := os.ReadFile(filepath.Join(out, "data")); err != nil || !bytes.Equal(got, make([]byte, 3072)) {
		t.Errorf("restored /data: %d bytes, %v; want 3072 zeros", len(got), err)
	}
	if got, err := os.ReadFile(filepath.Join(out, "ok")); err != nil || string(got) != "ok\n" {
		t.Errorf("restored /ok: %q, %v", got, err)
	}
}

// failingRead fails reads of one inode's data from byte at on, after
// reading what lies before it.
type failingRead struct {
	Source
	ino uint32
	at  int64
}

func (s failingRead) Open(ino uint32) (File, error) {
	f, err := s.Source.Open(ino)
	if err != nil || ino != s.ino {
		return f, err
	}
	return failingFile{f, s.at}, nil
}

type failingFile struct {
	File
	at int64
}

func (f failingFile) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) <= f.at {
		return f.File.ReadAt(p, off)
	}
	n := 0
	if off < f.at {
		n, _ = f.File.ReadAt(p[:f.at-off], off)
	}
	return n, errors.New("injected read error")
}

// TestUnreadableDataAsZeros: a read that fails part way through a file
// (a test double over the in-memory source) puts zeros on tape from the
// failed byte to the end of that read, names the range in Stats.Lost, and
// the dump goes on: stock restore extracts the file with its readable
// bytes, and lists every path of the tree.
func TestUnreadableDataAsZeros(t *testing.T) {
	needRestore(t)
	src := buildSource()
	data := bytes.Repeat([]byte("0123456789"), 1000) // 10,000 bytes
	ino := src.file("/broken", 0o644, data)
	file, stats := writeDump(t, failingRead{src, ino, 4000}, WriteOptions{Level: 0, Date: t0})
	if len(stats.Lost) != 1 || !strings.Contains(stats.Lost[0], "bytes 4000-9999") || !strings.Contains(stats.Lost[0], "injected read error") {
		t.Errorf("Stats.Lost: %q; want bytes 4000-9999 of /broken", stats.Lost)
	}
	out := t.TempDir()
	runRestore(t, out, "-x", "-a", "-o", "-y", "-f", file)
	got, err := os.ReadFile(filepath.Join(out, "broken"))
	want := append(append([]byte(nil), data[:4000]...), make([]byte, 6000)...)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("restored /broken: %d bytes, %v; want the first 4000 bytes, then zeros", len(got), err)
	}
	if toc := parseTOC(t, runRestore(t, t.TempDir(), "-t", "-f", file)); !mapsEqual(toc, src.walk()) {
		t.Errorf("restore -t lists %d paths, the source has %d", len(toc), len(src.walk()))
	}
}

// TestLostBounded: a source whose every file read fails (a disk dying
// under the dump) keeps at most maxLost messages and counts all losses.
func TestLostBounded(t *testing.T) {
	src := buildSource()
	for i := range maxLost + 20 {
		src.file(fmt.Sprintf("/many-%03d", i), 0o644, []byte("data"))
	}
	var buf bytes.Buffer
	st, err := Write(&buf, allFail{src}, WriteOptions{Date: t0})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Lost) != maxLost || st.LostCount < maxLost+20 {
		t.Errorf("Lost keeps %d, counts %d; want %d kept of at least %d", len(st.Lost), st.LostCount, maxLost, maxLost+20)
	}
}

// allFail fails every file read.
type allFail struct{ Source }

func (s allFail) Open(ino uint32) (File, error) {
	f, err := s.Source.Open(ino)
	if err != nil {
		return f, err
	}
	return failingFile{f, 0}, nil
}

// extSource opens the ext image at path as a dump source.
func extSource(t *testing.T, path string) *FSSource {
	t.Helper()
	f, size := fixturetest.Open(t, path)
	fsys, err := ext.Open(f, size, nil)
	if err != nil {
		t.Fatal(err)
	}
	return newSource(t, ext.NewVFS(fsys))
}

// newSource is NewFSSource for a test.
func newSource(t *testing.T, fsys vfs.FS) *FSSource {
	t.Helper()
	src, err := NewFSSource(context.Background(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	return src
}
