package undelete

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// deletedList reads fixtures/golden/NAME.deleted: the files the fixture
// script deleted, with the sha256 recorded before the rm.
func deletedList(t *testing.T, name string) (byPath map[string]string, bySum map[string]int) {
	byPath, bySum = map[string]string{}, map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(fixturetest.Golden(t, name+".deleted")))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		byPath["/"+f[0]] = f[2]
		bySum[f[2]]++
		bySum["size "+f[1]]++
	}
	if len(byPath) < 100 {
		t.Fatalf("%s.deleted: %d entries", name, len(byPath))
	}
	return byPath, bySum
}

func sha(t *testing.T, r io.Reader) string {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// exactCount counts the files under dir whose content is one of the
// deleted files' (each deleted file counted once).
func exactCount(t *testing.T, dir string, bySum map[string]int) int {
	left := map[string]int{}
	for k, v := range bySum {
		left[k] = v
	}
	n := 0
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		// Only files of a size some deleted file had (ext4magic writes
		// 4 GiB sparse files for what it cannot size).
		if fi, err := d.Info(); err != nil || bySum[fmt.Sprintf("size %d", fi.Size())] == 0 {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return nil
		}
		defer f.Close()
		if s := sha(t, f); left[s] > 0 {
			left[s]--
			n++
		}
		return nil
	})
	return n
}

// TestUndelete: on kernel-made ext4 and ext3 images where 220 files were
// deleted, every file reported intact is byte-exact (zero wrong files),
// names are found for them, and imgtool recovers at least as many deleted
// files byte-exact as each of extundelete and ext4magic (run on copies,
// when installed: scripts/setup.sh installs both).
func TestUndelete(t *testing.T) {
	for _, name := range []string{"undel-ext4", "undel-ext3", "undel-ext2", "undel-reused"} {
		t.Run(name, func(t *testing.T) {
			img := fixturetest.Image(t, name)
			byPath, bySum := deletedList(t, name)
			raw, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Now()
			res, err := Scan(bytes.NewReader(raw), int64(len(raw)))
			t.Logf("scan %v", time.Since(t0).Round(time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			intact, named, wrong, reused := 0, 0, 0, 0
			for _, c := range res.Candidates {
				if c.Reused > 0 {
					reused++
				}
				if !c.Intact {
					continue
				}
				intact++
				got := sha(t, io.NewSectionReader(res.Open(c), 0, c.Size))
				want, ok := byPath[c.Path]
				switch {
				case ok && got == want:
					named++
				case ok:
					wrong++
					t.Errorf("%s (inode %d, tx %d, %s): intact but sha256 %s, recorded %s", c.Path, c.Ino, c.TID, c.Confidence, got, want)
				case bySum[got] == 0:
					wrong++
					t.Errorf("%s (inode %d): intact but matches no deleted file", c.Path, c.Ino)
				}
			}
			t.Logf("hashed %v", time.Since(t0).Round(time.Millisecond))
			dest := t.TempDir()
			recs, err := res.Recover(dest, func(c *Candidate) bool { return c.Intact })
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if r.Err != nil {
					t.Errorf("%s: %v", r.Path, r.Err)
				}
			}
			ours := exactCount(t, dest, bySum)
			t.Logf("%d candidates, %d intact, %d with reused blocks, %d byte-exact at their own path, %d byte-exact recovered, %d wrong", len(res.Candidates), intact, reused, named, ours, wrong)
			if name == "undel-reused" {
				if reused == 0 {
					t.Errorf("12 MB written after the rm, yet no candidate has reused blocks")
				}
				return // the peers are compared on the other images
			}
			// ext2 under today's kernel (the ext4 driver) zeroes the
			// block pointers of a deleted inode as ext3 does, and has no
			// journal: nothing is recoverable, and the peers agree.
			if ours < len(byPath)/2 && name != "undel-ext2" {
				t.Errorf("only %d of %d deleted files recovered byte-exact", ours, len(byPath))
			}
			if named < ours*9/10 && ours > 0 {
				t.Errorf("only %d of %d recovered files have their own name", named, ours)
			}
			for _, peer := range peers {
				if _, err := exec.LookPath(peer.bin); err != nil {
					if os.Getenv("CI") != "" {
						t.Errorf("%s not installed (scripts/setup.sh installs it)", peer.bin)
					}
					continue
				}
				t0 := time.Now()
				n := peer.run(t, raw)
				t.Logf("%s ran %v", peer.bin, time.Since(t0).Round(time.Millisecond))
				out := exactCount(t, n, bySum)
				t.Logf("%s: %d byte-exact", peer.bin, out)
				if ours < out {
					t.Errorf("%s recovers %d byte-exact, imgtool %d", peer.bin, out, ours)
				}
			}
		})
	}
}

type peer struct {
	bin string
	run func(t *testing.T, raw []byte) string // returns the directory of recovered files
}

var peers = []peer{
	{"extundelete", func(t *testing.T, raw []byte) string {
		dir := t.TempDir()
		img := filepath.Join(dir, "img")
		if err := os.WriteFile(img, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "extundelete", img, "--restore-all")
		cmd.Dir = dir
		_ = cmd.Run() // it exits non-zero or crashes on some images: what it wrote counts
		os.Remove(img)
		return filepath.Join(dir, "RECOVERED_FILES")
	}},
	{"ext4magic", func(t *testing.T, raw []byte) string {
		dir := t.TempDir()
		img := filepath.Join(dir, "img")
		if err := os.WriteFile(img, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "out")
		os.Mkdir(out, 0o755)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_ = exec.CommandContext(ctx, "ext4magic", img, "-r", "-d", out).Run()
		os.Remove(img)
		return out
	}},
}

// TestCorpusNoCrash: Scan every image of e2fsprogs' test suite (corrupted
// on purpose): errors are fine, a panic or a hang is not.
func TestCorpusNoCrash(t *testing.T) {
	dir := fixturetest.CorpusDir()
	names, _ := filepath.Glob(filepath.Join(dir, "*", "image.gz"))
	if len(names) == 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("e2fsprogs corpus not present at %s", dir)
		}
		t.Skipf("e2fsprogs corpus not present at %s (it lives outside the repository)", dir)
	}
	stop := fixturetest.Watchdog(5 * time.Minute)
	defer stop()
	found := 0
	for _, gz := range names {
		name := filepath.Base(filepath.Dir(gz))
		img := fixturetest.CorpusImage(t, name, t.TempDir())
		raw, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Scan(bytes.NewReader(raw), int64(len(raw)))
		if err != nil {
			continue
		}
		for _, c := range res.Candidates {
			if c.Intact {
				_, _ = io.Copy(io.Discard, io.NewSectionReader(res.Open(c), 0, min(c.Size, 1<<20)))
			}
		}
		found += len(res.Candidates)
	}
	t.Logf("%d images, %d deleted-file candidates in all", len(names), found)
}

// FuzzScan mutates bytes of small images with journals (8 MiB, 1 KiB
// blocks: inode tables, directory and journal blocks alike; which picks
// the image) and scans them: no panic, no hang.
func FuzzScan(f *testing.F) {
	var imgs [][]byte
	for _, name := range []string{"journal-ext4", "journal-ext3"} {
		raw, err := os.ReadFile(fixturetest.Image(f, name))
		if err != nil {
			f.Fatal(err)
		}
		imgs = append(imgs, raw)
	}
	f.Add(uint8(0), uint32(0), []byte{})
	f.Add(uint8(1), uint32(1<<20), []byte{0xff, 0xff, 0xff, 0xff})
	f.Add(uint8(0), uint32(5<<10), []byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, which uint8, off uint32, patch []byte) {
		raw := imgs[int(which)%len(imgs)]
		img := bytes.Clone(raw)
		o := int(off) % len(img)
		copy(img[o:], patch)
		res, err := Scan(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			return
		}
		for _, c := range res.Candidates {
			_, _ = io.Copy(io.Discard, io.NewSectionReader(res.Open(c), 0, min(c.Size, 1<<16)))
		}
	})
}
