package otherfs

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/vfs"
)

// FuzzOtherFS feeds mutated fixture filesystems through Open, a walk of
// every directory, Lstat/ReadLink and reads of every file, and fails on
// any panic that escapes (go-diskfs's panics must come back as errors)
// or a hang (the watchdog).
//
// The fuzz input is data[0] choosing a base image (a real filesystem made
// by the fixture scripts) and data[1:] laid over the start of that image,
// where the headers, FATs, superblocks, volume descriptors and directory
// tables are. The seeds are the bases' own first bytes, so the fuzzer
// starts from valid filesystems.
func FuzzOtherFS(f *testing.F) {
	bases := fuzzBases(f)
	for i, b := range bases {
		head := make([]byte, min(int64(b.seedLen), b.size))
		if _, err := b.r.ReadAt(head, 0); err != nil && err != io.EOF {
			f.Fatal(err)
		}
		f.Add(append([]byte{byte(i)}, head...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 1 {
			return
		}
		defer fixturetest.Watchdog(20 * time.Second)()
		b := bases[int(data[0])%len(bases)]
		r := &overlay{head: data[1:], base: b.r}
		exercise(t, r, b.size)
	})
}

// exercise opens and walks a volume; errors are fine, panics are not.
func exercise(t *testing.T, r io.ReaderAt, size int64) {
	fsys, err := Open(r, size, "fuzz")
	if err != nil {
		return
	}
	buf := make([]byte, 64<<10)
	n := 0
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if n++; n > 5000 {
			return fs.SkipAll
		}
		if err != nil {
			return nil
		}
		st, err := fsys.Entry(p)
		if err != nil {
			return nil
		}
		switch {
		case st.Mode&fs.ModeSymlink != 0:
			_, _ = fsys.ReadLink(p)
			_, _ = fsys.Stat(p)
		case st.Mode.IsRegular():
			f, err := fsys.Open(p)
			if err != nil {
				return nil
			}
			rd := f.(*File)
			// The first and last chunks: enough to reach the data of
			// every file without reading megabytes of zeros.
			_, _ = rd.ReadAt(buf, 0)
			if st.Size > int64(len(buf)) {
				_, _ = rd.ReadAt(buf, st.Size-int64(len(buf)))
			}
			f.Close()
		}
		return nil
	})
	var ce *CorruptError
	_ = errors.As(err, &ce)
}

// overlay reads head over base.
type overlay struct {
	head []byte
	base io.ReaderAt
}

func (o *overlay) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	if off < int64(len(o.head)) {
		n = copy(p, o.head[off:])
		if n == len(p) {
			return n, nil
		}
	}
	m, err := o.base.ReadAt(p[n:], off+int64(n))
	return n + m, err
}

type fuzzBase struct {
	r       io.ReaderAt
	size    int64
	seedLen int
}

var (
	basesOnce sync.Once
	basesVal  []fuzzBase
)

// fuzzBases: the squashfs (whole), ISO (its volume descriptors and
// directories), FAT32 (boot sector, FATs and root), and the FAT12 and
// FAT16 partitions of the sigs disk.
func fuzzBases(tb testing.TB) []fuzzBase {
	basesOnce.Do(func() {
		open := func(name string) *os.File {
			f, err := os.Open(fixturetest.Image(tb, name))
			if err != nil {
				tb.Fatal(err)
			}
			return f
		}
		add := func(f *os.File, off, size int64, seed int) {
			if size == 0 {
				st, _ := f.Stat()
				size = st.Size()
			}
			basesVal = append(basesVal, fuzzBase{io.NewSectionReader(f, off, size), size, seed})
		}
		add(open("otherfs-squashfs"), 0, 0, 160<<10)
		add(open("otherfs-iso"), 0, 0, 112<<10)
		add(open("otherfs-fat32"), 0, 0, 600<<10)
		var sf struct {
			PT struct {
				Parts []struct{ Start, Size int64 } `json:"partitions"`
			} `json:"partitiontable"`
		}
		if err := json.Unmarshal(fixturetest.Golden(tb, "sigs-sfdisk.json"), &sf); err != nil {
			tb.Fatal(err)
		}
		sigs := open("sigs")
		add(sigs, sf.PT.Parts[0].Start*512, sf.PT.Parts[0].Size*512, 32<<10)  // FAT12
		add(sigs, sf.PT.Parts[1].Start*512, sf.PT.Parts[1].Size*512, 128<<10) // FAT16
	})
	return basesVal
}

// TestSigsFAT12FAT16 opens the FAT12 and FAT16 partitions of the sigs
// disk (mkfs.vfat -F 12/-F 16 with labels; nothing copied in): the kind
// from the cluster count and the label must be mkfs's.
func TestSigsFAT12FAT16(t *testing.T) {
	bases := fuzzBases(t)
	for i, want := range []struct {
		k     Kind
		label string
	}{{FAT12, "FAT12VOL"}, {FAT16, "FAT16VOL"}} {
		b := bases[3+i]
		fsys, err := Open(b.r, b.size, "p"+string(rune('1'+i)))
		if err != nil {
			t.Fatal(err)
		}
		if fsys.Kind() != want.k || fsys.Label() != want.label {
			t.Errorf("kind %s label %q, want %s %q", fsys.Kind(), fsys.Label(), want.k, want.label)
		}
		ents, err := fsys.ReadDir(".")
		if err != nil || len(ents) != 0 {
			t.Errorf("%s root: %v %v (mkfs only: empty)", want.k, ents, err)
		}
	}
}

// TestPanicBecomesError: a panic inside a go-diskfs call comes back as a
// CorruptError naming the volume.
func TestPanicBecomesError(t *testing.T) {
	fsys := &FS{kind: Squashfs, volume: "VG/lv"}
	err := fsys.safe("read directory x", func() error { panic("simulated go-diskfs bug") })
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Volume != "VG/lv" {
		t.Fatalf("got %v", err)
	}
	if want := "volume VG/lv: squashfs filesystem is corrupt: read directory x: "; len(err.Error()) < len(want) || err.Error()[:len(want)] != want {
		t.Errorf("message %q", err)
	}
}

// FuzzVFS drives the vfs.FS view (Inos from positions, link counts, the
// tree walk) over damaged volumes: errors are fine, panics and hangs are
// not; every Ino WalkInodes hands out must Stat, in increasing order.
func FuzzVFS(f *testing.F) {
	bases := fuzzBases(f)
	for i, b := range bases {
		head := make([]byte, min(int64(b.seedLen), b.size))
		if _, err := b.r.ReadAt(head, 0); err != nil && err != io.EOF {
			f.Fatal(err)
		}
		f.Add(append([]byte{byte(i)}, head...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 1 {
			return
		}
		defer fixturetest.Watchdog(20 * time.Second)()
		b := bases[int(data[0])%len(bases)]
		fsys, err := Open(&overlay{head: data[1:], base: b.r}, b.size, "fuzz")
		if err != nil {
			return
		}
		v := NewVFS(fsys)
		_ = v.Info()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var last vfs.Ino
		n := 0
		_ = v.WalkInodes(ctx, func(ino vfs.Ino, st *vfs.Stat, err error) error {
			if ino <= last && n > 0 {
				t.Fatalf("WalkInodes: %d after %d", ino, last)
			}
			last, n = ino, n+1
			if n > 5000 {
				return errors.New("enough")
			}
			if err == nil && st.IsRegular() {
				if f, err := v.Open(ino); err == nil {
					_ = f.DataRanges()
				}
			}
			return nil
		})
		_, _ = v.LookupFollow("/README.txt")
		_, _ = v.Lookup("/links/to-readme")
	})
}
