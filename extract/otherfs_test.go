package extract

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/otherfs"
	"golang.org/x/sys/unix"
)

// The otherfs fixtures (fixtures/scripts/otherfs-fixtures.sh) hold one
// source tree, described by fixtures/golden/otherfs-manifest.json
// (python's lstat/sha256/readlink of the tree the tools copied).
type otherManifestEntry struct {
	Path    string  `json:"path"`
	Type    string  `json:"type"`
	Mode    uint32  `json:"mode"`
	UID     uint32  `json:"uid"`
	GID     uint32  `json:"gid"`
	Size    int64   `json:"size"`
	MtimeNs int64   `json:"mtime_ns"`
	Ino     uint64  `json:"ino"`
	SHA256  string  `json:"sha256"`
	Target  *string `json:"target"`
}

func openOther(t *testing.T, name string) *otherfs.FS {
	f, err := os.Open(fixturetest.Image(t, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	fsys, err := otherfs.Open(f, st.Size(), name)
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

// TestOtherFSAgainstManifest extracts each otherfs fixture and compares
// the tree on disk with the source manifest. Compared per format:
//
//   - all: the set of paths (FAT: the source minus /links and the
//     non-ASCII name the script leaves out), types, sizes, content sha256,
//     and sparseness (the 4 MiB big.sparse, zeros but for its first and last MiB, takes at most 2 MiB + 64 KiB on disk: all-zero 1 MiB chunks become holes).
//   - FAT32: mtime truncated to 2 s (not the root, which has no entry).
//     No modes or owners (FAT has none).
//   - squashfs: permission bits, uid/gid (as root), mtime to the second,
//     symlink targets, hard links (same inode on disk exactly when the
//     source's names share one).
//   - ISO 9660 Rock Ridge: permission bits, uid/gid (as root), mtime to
//     the second, symlink targets. Hard links are not paired (extracted as
//     separate files with the same content).
func TestOtherFSAgainstManifest(t *testing.T) {
	var man []otherManifestEntry
	if err := json.Unmarshal(fixturetest.Golden(t, "otherfs-manifest.json"), &man); err != nil {
		t.Fatal(err)
	}
	root := os.Geteuid() == 0
	for _, name := range []string{"otherfs-fat32", "otherfs-squashfs", "otherfs-iso"} {
		t.Run(name, func(t *testing.T) {
			fsys := openOther(t, name)
			fat := fsys.Kind().IsFAT()
			dest := filepath.Join(t.TempDir(), "out")
			rep, err := Run(context.Background(), otherfs.NewVFS(fsys), []string{"/"}, dest, Options{Owner: root})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Partial() {
				t.Fatalf("partial: %v", rep.Problems)
			}
			want := map[string]otherManifestEntry{}
			for _, e := range man {
				if fat && (e.Path == "/links" || strings.HasPrefix(e.Path, "/links/") || e.Path == "/ünïcödé.txt") {
					continue
				}
				want[e.Path] = e
			}
			got := map[string]bool{}
			filepath.Walk(dest, func(p string, _ os.FileInfo, err error) error {
				if err != nil {
					t.Error(err)
					return nil
				}
				rel := strings.TrimPrefix(p, dest)
				if rel == "" {
					rel = "/"
				}
				got[rel] = true
				return nil
			})
			for p := range got {
				if _, ok := want[p]; !ok {
					t.Errorf("extra %q", p)
				}
			}
			srcIno := map[uint64]uint64{}
			for p, e := range want {
				if !got[p] {
					t.Errorf("missing %q", p)
					continue
				}
				full := filepath.Join(dest, p)
				var st unix.Stat_t
				if err := unix.Lstat(full, &st); err != nil {
					t.Fatal(err)
				}
				typ := map[uint32]string{unix.S_IFDIR: "dir", unix.S_IFREG: "file", unix.S_IFLNK: "symlink"}[st.Mode&unix.S_IFMT]
				if typ != e.Type {
					t.Errorf("%s: type %s, source %s", p, typ, e.Type)
					continue
				}
				if typ == "file" {
					if st.Size != e.Size {
						t.Errorf("%s: size %d, source %d", p, st.Size, e.Size)
					}
					if sum := fileSHA256(t, full); sum != e.SHA256 {
						t.Errorf("%s: sha256 differs", p)
					}
					if p == "/big.sparse" && st.Blocks*512 > 2<<20+64<<10 {
						t.Errorf("%s: %d bytes allocated for a sparse file", p, st.Blocks*512)
					}
				}
				mt := time.Unix(st.Mtim.Unix())
				src := time.Unix(0, e.MtimeNs)
				if fat {
					if p != "/" && !mt.Equal(src.Truncate(2*time.Second)) {
						t.Errorf("%s: mtime %v, source %v to 2 s", p, mt, src)
					}
					continue
				}
				if mt.Unix() != src.Unix() || mt.Nanosecond() != 0 {
					t.Errorf("%s: mtime %v, source %v to the second", p, mt, src)
				}
				if typ != "symlink" && st.Mode&0o7777 != e.Mode {
					t.Errorf("%s: mode %#o, source %#o", p, st.Mode&0o7777, e.Mode)
				}
				if root && (st.Uid != e.UID || st.Gid != e.GID) {
					t.Errorf("%s: owner %d:%d, source %d:%d", p, st.Uid, st.Gid, e.UID, e.GID)
				}
				if e.Target != nil {
					if tg, err := os.Readlink(full); err != nil || tg != *e.Target {
						t.Errorf("%s: target %q %v, source %q", p, tg, err, *e.Target)
					}
				}
				if fsys.Kind() == otherfs.Squashfs && typ == "file" {
					if prev, ok := srcIno[e.Ino]; ok && prev != st.Ino {
						t.Errorf("%s: not hard-linked with the other name of source inode %d", p, e.Ino)
					}
					srcIno[e.Ino] = st.Ino
				}
			}
			if fsys.Kind() == otherfs.Squashfs && rep.Hardlinks != 1 {
				t.Errorf("%d hard links made, the source has 1", rep.Hardlinks)
			}
		})
	}
}

// TestOtherFSTar streams the squashfs fixture as tar and checks the
// members GNU tar lists against the manifest's paths.
func TestOtherFSTar(t *testing.T) {
	fsys := openOther(t, "otherfs-squashfs")
	tarPath := filepath.Join(t.TempDir(), "x.tar")
	f, err := os.Create(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := RunTar(context.Background(), otherfs.NewVFS(fsys), []string{"/dir2"}, f, Options{})
	f.Close()
	if err != nil || rep.Partial() {
		t.Fatal(err, rep)
	}
	out, err := runTool("tar", "-tvf", tarPath, "--numeric-owner")
	if err != nil {
		t.Fatal(err, out)
	}
	for _, want := range []string{"-rwxr-xr-x 1000/100", "./run.sh", "-r--r--r-- 0/0", "./ro.txt"} {
		if !strings.Contains(out, want) {
			t.Errorf("tar -tv lacks %q:\n%s", want, out)
		}
	}
	_ = io.EOF
}
