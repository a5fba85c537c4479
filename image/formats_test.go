package image_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/image"
	"github.com/imgtool/imgtool/image/qcow2"
	"github.com/imgtool/imgtool/inspect"
)

// The fmt-* fixtures are files that name each other (backing files, extent
// files), so they are decompressed (cached by fixturetest) and linked
// under their own names into one directory.
var (
	fmtOnce sync.Once
	fmtPath string
	fmtErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fmtPath != "" {
		os.RemoveAll(fmtPath)
	}
	os.Exit(code)
}

func fmtDir(t testing.TB) string {
	t.Helper()
	fmtOnce.Do(func() {
		fmtPath, fmtErr = os.MkdirTemp("", "imgtool-fmt-")
		if fmtErr != nil {
			return
		}
		xzs, _ := filepath.Glob(filepath.Join(fixturetest.ImagesDir(), "fmt-*.xz"))
		for _, x := range xzs {
			name := strings.TrimSuffix(filepath.Base(x), ".xz")
			if name == "fmt-raw.img" {
				// Link the compressed file itself too: the .xz test opens it.
				if fmtErr = os.Symlink(x, filepath.Join(fmtPath, filepath.Base(x))); fmtErr != nil {
					return
				}
			}
			p, err := fixturetest.Decompress(x)
			if err != nil {
				fmtErr = err
				return
			}
			if fmtErr = os.Symlink(p, filepath.Join(fmtPath, name)); fmtErr != nil {
				return
			}
		}
		for _, ext := range []string{"gz", "zst", "bz2"} {
			x := filepath.Join(fixturetest.ImagesDir(), "fmt-raw.img."+ext)
			if fmtErr = os.Symlink(x, filepath.Join(fmtPath, filepath.Base(x))); fmtErr != nil {
				return
			}
		}
	})
	if fmtErr != nil {
		t.Fatalf("fmt fixtures: %v", fmtErr)
	}
	return fmtPath
}

type sum struct {
	file  string
	vsize int64
	sha   string
}

// sums reads fixtures/golden/fmt-sums.txt: qemu-img's virtual size and
// the sha256 of `qemu-img convert -O raw` for each image.
func sums(t testing.TB) []sum {
	var out []sum
	sc := bufio.NewScanner(io.MultiReader(bytes.NewReader(fixturetest.Golden(t, "fmt-sums.txt")),
		bytes.NewReader(fixturetest.Golden(t, "fmt-vhdx-sums.txt")),
		bytes.NewReader(fixturetest.Golden(t, "fmt-qcow2x-sums.txt"))))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			t.Fatalf("fmt sums: bad line %q", sc.Text())
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sum{f[0], n, f[2]})
	}
	if len(out) < 20 {
		t.Fatalf("fmt-sums.txt has only %d entries", len(out))
	}
	return out
}

func goldenSum(t testing.TB, file string) sum {
	for _, s := range sums(t) {
		if s.file == file {
			return s
		}
	}
	t.Fatalf("no golden sum for %s", file)
	return sum{}
}

// wantFormat is the Format each fixture must be detected as.
var wantFormat = map[string]string{
	"fmt-raw.img":             "raw",
	"fmt-qcow2.qcow2":         "qcow2",
	"fmt-qcow2-v2.qcow2":      "qcow2",
	"fmt-qcow2-zlib.qcow2":    "qcow2",
	"fmt-qcow2-zstd.qcow2":    "qcow2",
	"fmt-qcow2-4k.qcow2":      "qcow2",
	"fmt-chain-base.qcow2":    "qcow2",
	"fmt-chain-mid.qcow2":     "qcow2",
	"fmt-chain-top.qcow2":     "qcow2",
	"fmt-chain-rawtop.qcow2":  "qcow2",
	"fmt-qcow2-snap.qcow2":    "qcow2",
	"fmt-vmdk-sparse.vmdk":    "vmdk-monolithicSparse",
	"fmt-vmdk-zeroed.vmdk":    "vmdk-monolithicSparse",
	"fmt-vmdk-stream.vmdk":    "vmdk-streamOptimized",
	"fmt-vmdk-flat.vmdk":      "vmdk-monolithicFlat",
	"fmt-vmdk-2gbsparse.vmdk": "vmdk-twoGbMaxExtentSparse",
	"fmt-vmdk-2gbflat.vmdk":   "vmdk-twoGbMaxExtentFlat",
	"fmt-vmdk-big.vmdk":       "vmdk-twoGbMaxExtentSparse",
	"fmt-vmdk-bigstream.vmdk": "vmdk-streamOptimized",
	"fmt-vhd-fixed.vhd":       "vhd-fixed",
	"fmt-vhd-dynamic.vhd":     "vhd-dynamic",
	"fmt-vhd-force.vhd":       "vhd-dynamic",
	"fmt-vhd-fixedforce.vhd":  "vhd-fixed",
	"fmt-vhdx.vhdx":           "vhdx-dynamic",
	"fmt-vhdx-1m.vhdx":        "vhdx-dynamic",
	"fmt-vhdx-fixed.vhdx":     "vhdx-fixed",
	"fmt-qcow2x-l2.qcow2":     "qcow2",
	"fmt-qcow2x-sub.qcow2":    "qcow2",
}

func hashAll(t testing.TB, r io.ReaderAt, size int64) string {
	t.Helper()
	h := sha256.New()
	buf := make([]byte, 4<<20)
	for off := int64(0); off < size; {
		n := min(int64(len(buf)), size-off)
		got, err := r.ReadAt(buf[:n], off)
		if err != nil && !(err == io.EOF && int64(got) == n) {
			t.Fatalf("ReadAt(%d bytes at %d): %d, %v", n, off, got, err)
		}
		h.Write(buf[:n])
		off += n
	}
	// Reading at the end must say EOF.
	if n, err := r.ReadAt(buf[:1], size); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at size %d = %d, %v; want 0, EOF", size, n, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestFormatsMatchQemu: every container reads byte for byte as
// `qemu-img convert -O raw` wrote it, at qemu-img's virtual size.
func TestFormatsMatchQemu(t *testing.T) {
	dir := fmtDir(t)
	for _, s := range sums(t) {
		t.Run(s.file, func(t *testing.T) {
			im, err := image.Open(filepath.Join(dir, s.file))
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			if want, ok := wantFormat[s.file]; !ok {
				t.Fatalf("no expected format for %s (add it to wantFormat)", s.file)
			} else if im.Format != want {
				t.Errorf("Format = %q, want %q", im.Format, want)
			}
			if im.Size() != s.vsize {
				t.Fatalf("Size = %d, qemu-img says %d", im.Size(), s.vsize)
			}
			if got := hashAll(t, im, im.Size()); got != s.sha {
				t.Errorf("sha256 = %s, qemu-img convert -O raw gives %s", got, s.sha)
			}
		})
	}
}

// TestUnalignedReads reads odd-sized pieces at odd offsets of every
// container and compares them with the raw image.
func TestUnalignedReads(t *testing.T) {
	dir := fmtDir(t)
	raw, err := os.ReadFile(filepath.Join(dir, "fmt-raw.img"))
	if err != nil {
		t.Fatal(err)
	}
	for file, format := range wantFormat {
		if strings.HasPrefix(file, "fmt-chain-") && file != "fmt-chain-base.qcow2" ||
			strings.Contains(file, "big") || file == "fmt-qcow2-snap.qcow2" || file == "fmt-qcow2x-sub.qcow2" {
			continue // contents differ from the raw disk
		}
		t.Run(file, func(t *testing.T) {
			im, err := image.Open(filepath.Join(dir, file))
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			if im.Format != format {
				t.Fatalf("Format = %q, want %q", im.Format, format)
			}
			// Offsets straddling grains/clusters/blocks, where data is.
			for _, c := range []struct{ off, n int64 }{
				{0, 1}, {511, 2}, {1<<20 - 7, 70000}, {65535, 131075}, {2<<20 - 1, 3},
				{int64(len(raw)) - 1000, 1000}, {12345678, 1 << 20},
			} {
				buf := make([]byte, c.n)
				n, err := im.ReadAt(buf, c.off)
				if int64(n) != c.n || (err != nil && err != io.EOF) {
					t.Fatalf("ReadAt(%d, %d) = %d, %v", c.n, c.off, n, err)
				}
				if !bytes.Equal(buf, raw[c.off:c.off+c.n]) {
					t.Errorf("ReadAt(%d, %d) differs from the raw image", c.n, c.off)
				}
			}
		})
	}
}

// TestCompressed: .xz (the committed fixture itself), .gz, .zst, .bz2
// open as the raw disk, with progress reported and the temporary copy
// gone.
func TestCompressed(t *testing.T) {
	dir := fmtDir(t)
	want := goldenSum(t, "fmt-raw.img")
	for ext, format := range map[string]string{"xz": "xz", "gz": "gzip", "zst": "zstd", "bz2": "bzip2"} {
		t.Run(ext, func(t *testing.T) {
			tmp := t.TempDir()
			var calls int
			var last, total int64
			im, err := image.OpenWithOptions(filepath.Join(dir, "fmt-raw.img."+ext), &image.Options{
				TempDir: tmp,
				Progress: func(done, tot int64) {
					if done < last {
						t.Errorf("progress went back: %d after %d", done, last)
					}
					calls++
					last, total = done, tot
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			if im.Format != format {
				t.Errorf("Format = %q, want %q", im.Format, format)
			}
			if im.Size() != want.vsize {
				t.Fatalf("Size = %d, want %d", im.Size(), want.vsize)
			}
			if got := hashAll(t, im, im.Size()); got != want.sha {
				t.Errorf("sha256 = %s, want %s", got, want.sha)
			}
			// Progress counts output bytes, against the size the stream
			// declares (xz's index, zstd's frame content size; gzip and
			// bzip2 declare none, so their last call gives the total).
			if calls == 0 || last != want.vsize || total != want.vsize {
				t.Errorf("progress: %d calls, last %d/%d; want the final call at %d/%d", calls, last, total, want.vsize, want.vsize)
			}
			if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
				t.Errorf("temp dir holds %d entries while open; the copy should be unlinked", len(ents))
			}
			if im.File() == nil {
				t.Error("File() = nil for a decompressed raw image")
			}
			// Sparse: far fewer blocks than bytes.
			var st statT
			if err := fstat(im.File(), &st); err == nil && st.blocks*512 > im.Size()/4 {
				t.Errorf("decompressed copy uses %d bytes of disk for %d bytes: not sparse", st.blocks*512, im.Size())
			}
		})
	}
}

// TestInspectSameTree: inspect sees the same volumes (addresses, offsets,
// sizes, contents) through every container as through the raw disk.
func TestInspectSameTree(t *testing.T) {
	dir := fmtDir(t)
	want := treeLines(t, filepath.Join(dir, "fmt-raw.img"), "")
	if len(want) < 8 {
		t.Fatalf("raw tree has only %d volumes:\n%s", len(want), strings.Join(want, "\n"))
	}
	for file := range wantFormat {
		if strings.Contains(file, "big") || file == "fmt-raw.img" || file == "fmt-qcow2-snap.qcow2" || file == "fmt-qcow2x-sub.qcow2" ||
			strings.HasPrefix(file, "fmt-chain-") && file != "fmt-chain-base.qcow2" {
			continue // not the same disk contents
		}
		t.Run(file, func(t *testing.T) {
			got := treeLines(t, filepath.Join(dir, file), "")
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("tree differs from the raw image's:\n got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
	t.Run("fmt-raw.img.xz", func(t *testing.T) {
		got := treeLines(t, filepath.Join(dir, "fmt-raw.img.xz"), t.TempDir())
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("tree differs from the raw image's:\n got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

func treeLines(t *testing.T, path, tmp string) []string {
	t.Helper()
	im, err := image.OpenWithOptions(path, &image.Options{TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	tree, err := inspect.Inspect([]inspect.Source{{Name: "disk", R: im, Size: im.Size()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	tree.Walk(func(v *inspect.Volume) bool {
		line := fmt.Sprintf("%s %s off=%d size=%d", v.Address, v.Kind, v.Offset, v.Size)
		if v.Kind == inspect.KindDisk {
			// VHD disks are rounded up to a CHS geometry: the same
			// volumes, a larger disk.
			line = fmt.Sprintf("%s %s off=%d", v.Address, v.Kind, v.Offset)
		}
		if c := v.Content; c != nil {
			line += fmt.Sprintf(" %s %s %s %s", c.Type, c.Version, c.UUID, c.Label)
		}
		out = append(out, line)
		return true
	})
	return out
}

// TestQcow2Snapshots compares the snapshot table with qemu-img snapshot -l.
func TestQcow2Snapshots(t *testing.T) {
	dir := fmtDir(t)
	im, err := image.Open(filepath.Join(dir, "fmt-qcow2-snap.qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	// qemu-img snapshot -l:
	//   Snapshot list:
	//   ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT
	//   1         snap1                 0 B 2026-11-21 06:03:55 00:00:00.000          0
	var want [][2]string
	for _, line := range strings.Split(string(fixturetest.Golden(t, "fmt-qcow2-snap.snapshots.txt")), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[0] == "ID" || f[0] == "Snapshot" {
			continue
		}
		// The tag may contain spaces: it ends before "<size> <unit> <date> <time>".
		n := len(f)
		tag := strings.Join(f[1:n-6], " ")
		want = append(want, [2]string{f[0], tag + " " + f[n-4] + " " + f[n-3]})
	}
	if len(want) != 2 {
		t.Fatalf("golden lists %d snapshots, want 2", len(want))
	}
	if len(im.Snapshots) != len(want) {
		t.Fatalf("got %d snapshots, qemu-img lists %d", len(im.Snapshots), len(want))
	}
	for i, s := range im.Snapshots {
		got := [2]string{s.ID, s.Name + " " + s.Date.Local().Format("2006-01-02 15:04:05")}
		if got != want[i] {
			t.Errorf("snapshot %d = %q, qemu-img says %q", i, got, want[i])
		}
		if s.DiskSize != uint64(im.Size()) {
			t.Errorf("snapshot %d disk size %d, want %d", i, s.DiskSize, im.Size())
		}
		// inspect's detail line gives the date local with its zone (as
		// ls -l does), so that it names one instant wherever it is read.
		re := regexp.MustCompile(`snapshot ` + s.ID + ` ".*" taken (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}) `)
		found := false
		for _, d := range im.Details {
			if m := re.FindStringSubmatch(d); m != nil {
				when, err := time.Parse("2006-01-02 15:04:05 -0700", m[1])
				found = err == nil && when.Equal(s.Date.Truncate(time.Second))
			}
		}
		if !found {
			t.Errorf("snapshot %d: no detail line with its date %v and zone: %q", i, s.Date, im.Details)
		}
	}
}

// TestQcow2Backing compares the backing chain with qemu-img info.
func TestQcow2Backing(t *testing.T) {
	dir := fmtDir(t)
	var info struct {
		BackingFilename string `json:"backing-filename"`
		BackingFormat   string `json:"backing-filename-format"`
	}
	for _, f := range []string{"fmt-chain-top.qcow2", "fmt-chain-mid.qcow2", "fmt-chain-rawtop.qcow2"} {
		if err := json.Unmarshal(fixturetest.Golden(t, f+".info.json"), &info); err != nil {
			t.Fatal(err)
		}
		im, err := image.Open(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if len(im.Backing) == 0 || im.Backing[0].Name != info.BackingFilename || im.Backing[0].Format != info.BackingFormat {
			t.Errorf("%s: backing %+v, qemu-img says %q (%s)", f, im.Backing, info.BackingFilename, info.BackingFormat)
		}
		if im.Backing[0].Path != filepath.Join(dir, info.BackingFilename) {
			t.Errorf("%s: backing resolved to %s, want it next to the image", f, im.Backing[0].Path)
		}
		im.Close()
	}
}

func TestQcow2Errors(t *testing.T) {
	dir := fmtDir(t)
	_, err := image.Open(filepath.Join(dir, "fmt-qcow2-missing.qcow2"))
	if !errors.Is(err, qcow2.ErrMissingBacking) || !strings.Contains(err.Error(), "fmt-missing-base.qcow2") {
		t.Errorf("missing backing file: err = %v; want ErrMissingBacking naming fmt-missing-base.qcow2", err)
	}
	var info struct {
		Encrypted bool `json:"encrypted"`
	}
	if err := json.Unmarshal(fixturetest.Golden(t, "fmt-qcow2-aes.qcow2.info.json"), &info); err != nil || !info.Encrypted {
		t.Fatalf("golden says encrypted=%v (%v)", info.Encrypted, err)
	}
	_, err = image.Open(filepath.Join(dir, "fmt-qcow2-aes.qcow2"))
	if !errors.Is(err, qcow2.ErrEncrypted) {
		t.Errorf("encrypted image: err = %v; want ErrEncrypted", err)
	}
	var ext struct {
		Format struct {
			Data struct {
				DataFile string `json:"data-file"`
			} `json:"data"`
		} `json:"format-specific"`
	}
	if err := json.Unmarshal(fixturetest.Golden(t, "fmt-qcow2x-ext.qcow2.info.json"), &ext); err != nil || ext.Format.Data.DataFile == "" {
		t.Fatalf("golden: no data-file in qemu-img info (%v)", err)
	}
	_, err = image.Open(filepath.Join(dir, "fmt-qcow2x-ext.qcow2"))
	if !errors.Is(err, qcow2.ErrUnsupported) || !strings.Contains(err.Error(), "external data file") {
		t.Errorf("external data file: err = %v; want ErrUnsupported", err)
	}
}

// TestWritableRefusesContainers: OpenWritable refuses anything but raw,
// and Open with Raw reads the container file as it is.
func TestWritableRefusesContainers(t *testing.T) {
	dir := fmtDir(t)
	for _, f := range []string{"fmt-qcow2.qcow2", "fmt-vmdk-sparse.vmdk", "fmt-vhd-dynamic.vhd", "fmt-raw.img.gz"} {
		src := filepath.Join(dir, f)
		cp := filepath.Join(t.TempDir(), f)
		if err := fixturetest.CopySparse(src, cp); err != nil {
			t.Fatal(err)
		}
		before := fixturetest.SHA256File(t, cp)
		im, err := image.OpenWritable(cp)
		if err == nil {
			im.Close()
			t.Errorf("%s: OpenWritable succeeded", f)
		} else if !errors.Is(err, image.ErrNotRaw) {
			t.Errorf("%s: err = %v, want ErrNotRaw", f, err)
		}
		if fixturetest.SHA256File(t, cp) != before {
			t.Errorf("%s: file changed", f)
		}
		im, err = image.OpenWithOptions(cp, &image.Options{Raw: true})
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(cp)
		if im.Format != "raw" || im.Size() != fi.Size() {
			t.Errorf("%s with Raw: format %q size %d, want raw %d", f, im.Format, im.Size(), fi.Size())
		}
		im.Close()
	}
	// A raw image still opens for writing.
	cp := filepath.Join(t.TempDir(), "raw.img")
	if err := fixturetest.CopySparse(filepath.Join(dir, "fmt-raw.img"), cp); err != nil {
		t.Fatal(err)
	}
	im, err := image.OpenWritable(cp)
	if err != nil {
		t.Fatal(err)
	}
	im.Close()
}

// TestVHDXInterleavedBAT reads regions of a 4.5 GiB VHDX with 256 MiB
// blocks, where a sector-bitmap BAT entry sits after the 16th payload
// entry, and compares them with qemu-img's raw output.
func TestVHDXInterleavedBAT(t *testing.T) {
	dir := fmtDir(t)
	im, err := image.Open(filepath.Join(dir, "fmt-vhdxbig.vhdx"))
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if im.Format != "vhdx-dynamic" || im.Size() != 4608<<20 {
		t.Fatalf("format %s size %d", im.Format, im.Size())
	}
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(string(fixturetest.Golden(t, "fmt-vhdxbig.regions"))), "\n") {
		var off, ln int64
		var want string
		if _, err := fmt.Sscan(l, &off, &ln, &want); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, ln)
		if _, err := im.ReadAt(buf, off); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		sum := sha256.Sum256(buf)
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%d bytes at %d: sha256 %s, qemu-img %s", ln, off, got, want)
		}
		n++
	}
	if n != 3 {
		t.Fatalf("%d regions in the golden", n)
	}
}

// TestCompressedContainers: a compressed container (the committed
// fmt-*.xz fixtures themselves) is decompressed and then read as the
// container: "xz+qcow2" etc.
func TestCompressedContainers(t *testing.T) {
	for file, format := range map[string]string{
		"fmt-qcow2-zstd.qcow2":   "xz+qcow2",
		"fmt-vmdk-stream.vmdk":   "xz+vmdk-streamOptimized",
		"fmt-vhd-dynamic.vhd":    "xz+vhd-dynamic",
		"fmt-vhdx-1m.vhdx":       "xz+vhdx-dynamic",
		"fmt-chain-rawtop.qcow2": "xz+qcow2", // backing file resolved next to the .xz
	} {
		t.Run(file, func(t *testing.T) {
			dir := fmtDir(t)
			// Link the .xz next to the other fixtures so that relative
			// backing files resolve.
			xzPath := filepath.Join(dir, file+".xz")
			if _, err := os.Lstat(xzPath); err != nil {
				if err := os.Symlink(filepath.Join(fixturetest.ImagesDir(), file+".xz"), xzPath); err != nil {
					t.Fatal(err)
				}
			}
			want := goldenSum(t, file)
			im, err := image.OpenWithOptions(xzPath, &image.Options{TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			if im.Format != format || im.Size() != want.vsize {
				t.Fatalf("Format %q size %d, want %q %d", im.Format, im.Size(), format, want.vsize)
			}
			if got := hashAll(t, im, im.Size()); got != want.sha {
				t.Errorf("sha256 %s, qemu-img %s", got, want.sha)
			}
		})
	}
}

// TestBrokenSets: files missing from multi-file images are named in the
// error.
func TestBrokenSets(t *testing.T) {
	dir := fmtDir(t)
	tmp := t.TempDir()
	for _, f := range []string{"fmt-vmdk-2gbsparse.vmdk", "fmt-vmdk-flat.vmdk", "fmt-chain-top.qcow2", "fmt-chain-mid.qcow2"} {
		if err := fixturetest.CopySparse(filepath.Join(dir, f), filepath.Join(tmp, f)); err != nil {
			t.Fatal(err)
		}
	}
	for f, missing := range map[string]string{
		"fmt-vmdk-2gbsparse.vmdk": "fmt-vmdk-2gbsparse-s001.vmdk",
		"fmt-vmdk-flat.vmdk":      "fmt-vmdk-flat-flat.vmdk",
		"fmt-chain-top.qcow2":     "fmt-chain-base.qcow2", // mid is there, base is not
	} {
		_, err := image.Open(filepath.Join(tmp, f))
		if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("%s without %s: err = %v", f, missing, err)
		}
	}
	// A truncated fixed VHD is an error, not zeros.
	vhdPath := filepath.Join(tmp, "short.vhd")
	b, err := os.ReadFile(filepath.Join(dir, "fmt-vhd-fixed.vhd"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(vhdPath, append(append([]byte{}, b[:1<<20]...), b[len(b)-512:]...), 0o644)
	if _, err := image.Open(vhdPath); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated fixed VHD: err = %v", err)
	}
}
