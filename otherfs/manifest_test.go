package otherfs

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// The fixtures built by fixtures/scripts/otherfs-fixtures.sh from one
// source tree, described by fixtures/golden/otherfs-manifest.json
// (python's lstat, sha256 and readlink of the tree the tools copied).

// ManifestEntry is one path of the source tree.
type manifestEntry struct {
	Path    string  `json:"path"`
	Type    string  `json:"type"` // dir, file, symlink
	Mode    uint32  `json:"mode"` // permission bits (S_IMODE)
	UID     uint32  `json:"uid"`
	GID     uint32  `json:"gid"`
	Size    int64   `json:"size"`
	MtimeNs int64   `json:"mtime_ns"`
	Nlink   int     `json:"nlink"`
	Ino     uint64  `json:"ino"`
	SHA256  string  `json:"sha256"`
	Target  *string `json:"target"`
}

func loadManifest(t testing.TB) []manifestEntry {
	var m []manifestEntry
	if err := json.Unmarshal(fixturetest.Golden(t, "otherfs-manifest.json"), &m); err != nil {
		t.Fatal(err)
	}
	if len(m) < 20 {
		t.Fatalf("manifest has only %d entries", len(m))
	}
	return m
}

// fatExcluded are the source paths the script leaves out of the FAT copy:
// FAT has no symlinks or hard links (the links directory), and mtools in
// the build locale stores a non-ASCII name as raw bytes in an 8.3 entry
// instead of a long name.
func fatExcluded(p string) bool {
	return p == "/links" || strings.HasPrefix(p, "/links/") || p == "/ünïcödé.txt"
}

// expected is the manifest restricted to what format k holds, keyed by
// io/fs name ("." for the root).
func expected(t testing.TB, k Kind) map[string]manifestEntry {
	out := map[string]manifestEntry{}
	for _, e := range loadManifest(t) {
		if k.IsFAT() && fatExcluded(e.Path) {
			continue
		}
		out[clean(e.Path)] = e
	}
	return out
}

func openImage(t testing.TB, name string, off, size int64) *FS {
	t.Helper()
	f, err := os.Open(fixturetest.Image(t, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if size == 0 {
		st, _ := f.Stat()
		size = st.Size() - off
	}
	fsys, err := Open(io.NewSectionReader(f, off, size), size, name)
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

// CheckAgainstManifest compares a whole filesystem with the source tree.
// Compared per format:
//
//   - all: the set of paths, entry types, regular file sizes and content
//     sha256.
//   - FAT: mtime of files and directories (not the root, which has no
//     entry) as the source's, truncated to 2 s (FAT's resolution; the
//     script runs mtools with TZ=UTC so local time is UTC).
//   - squashfs: permission bits, uid, gid, mtime to the second (squashfs
//     keeps seconds), symlink targets, hard links (names share Stat.Ino
//     exactly when they share the source inode).
//   - ISO 9660 with Rock Ridge: permission bits, uid, gid, mtime to the
//     second, symlink targets.
func checkAgainstManifest(t *testing.T, fsys *FS) {
	k := fsys.Kind()
	want := expected(t, k)
	got := map[string]*Stat{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		st, err := fsys.Entry(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		got[p] = st
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var missing, extra []string
	for p := range want {
		if got[p] == nil {
			missing = append(missing, p)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			extra = append(extra, p)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing)+len(extra) > 0 {
		t.Errorf("%s: paths differ from the source: missing %q, extra %q", k, missing, extra)
	}
	inoOf := map[uint64]uint64{} // source ino -> Stat.Ino (squashfs)
	for p, e := range want {
		st := got[p]
		if st == nil {
			continue
		}
		typ := "file"
		switch {
		case st.Mode.IsDir():
			typ = "dir"
		case st.Mode&fs.ModeSymlink != 0:
			typ = "symlink"
		case !st.Mode.IsRegular():
			typ = st.Mode.Type().String()
		}
		if typ != e.Type {
			t.Errorf("%s %s: type %s, source %s", k, p, typ, e.Type)
			continue
		}
		if typ == "file" {
			if st.Size != e.Size {
				t.Errorf("%s %s: size %d, source %d", k, p, st.Size, e.Size)
			}
			if sum := contentSHA(t, fsys, p); sum != e.SHA256 {
				t.Errorf("%s %s: sha256 %s, source %s", k, p, sum, e.SHA256)
			}
		}
		src := time.Unix(0, e.MtimeNs).UTC()
		switch {
		case k.IsFAT():
			if p != "." && !st.ModTime.Equal(src.Truncate(2*time.Second)) {
				t.Errorf("%s %s: mtime %v, source %v truncated to 2 s", k, p, st.ModTime, src)
			}
		default:
			if st.ModTime.Unix() != src.Unix() || st.ModTime.Nanosecond() != 0 {
				t.Errorf("%s %s: mtime %v, source %v (seconds)", k, p, st.ModTime, src)
			}
			if !st.HasPerm || !st.HasOwner {
				t.Errorf("%s %s: no modes or owners", k, p)
			}
			if uint32(st.Mode.Perm()) != e.Mode&0o777 || st.UID != e.UID || st.GID != e.GID {
				t.Errorf("%s %s: mode %#o %d:%d, source %#o %d:%d", k, p, st.Mode.Perm(), st.UID, st.GID, e.Mode, e.UID, e.GID)
			}
			if e.Target != nil && st.Target != *e.Target {
				t.Errorf("%s %s: target %q, source %q", k, p, st.Target, *e.Target)
			}
		}
		if k == Squashfs && typ == "file" {
			if prev, ok := inoOf[e.Ino]; ok && prev != st.Ino {
				t.Errorf("squashfs %s: hard link of source inode %d has squashfs inode %d, another name %d", p, e.Ino, st.Ino, prev)
			}
			inoOf[e.Ino] = st.Ino
		}
	}
	if k == Squashfs {
		// Distinct source inodes must stay distinct.
		seen := map[uint64]uint64{}
		for src, ino := range inoOf {
			if other, ok := seen[ino]; ok {
				t.Errorf("squashfs inode %d holds source inodes %d and %d", ino, src, other)
			}
			seen[ino] = src
		}
	}
}

func contentSHA(t *testing.T, fsys *FS, p string) string {
	f, err := fsys.Open(p)
	if err != nil {
		t.Errorf("open %s: %v", p, err)
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f.(io.Reader)); err != nil {
		t.Errorf("read %s: %v", p, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestBareImages(t *testing.T) {
	for name, k := range map[string]Kind{"otherfs-fat32": FAT32, "otherfs-squashfs": Squashfs, "otherfs-iso": ISO9660} {
		t.Run(name, func(t *testing.T) {
			fsys := openImage(t, name, 0, 0)
			if fsys.Kind() != k {
				t.Fatalf("kind %s, want %s", fsys.Kind(), k)
			}
			checkAgainstManifest(t, fsys)
		})
	}
}

// TestGPTPartitions reads the same filesystems at their partition offsets
// in the GPT disk, taken from sfdisk -J.
func TestGPTPartitions(t *testing.T) {
	var sf struct {
		PT struct {
			SectorSize int64 `json:"sectorsize"`
			Parts      []struct {
				Start, Size int64
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(fixturetest.Golden(t, "otherfs-gpt.sfdisk"), &sf); err != nil {
		t.Fatal(err)
	}
	kinds := []Kind{FAT32, Squashfs, ISO9660}
	if len(sf.PT.Parts) != len(kinds) {
		t.Fatalf("%d partitions in sfdisk's answer", len(sf.PT.Parts))
	}
	for i, p := range sf.PT.Parts {
		t.Run(string(kinds[i]), func(t *testing.T) {
			fsys := openImage(t, "otherfs-gpt", p.Start*sf.PT.SectorSize, p.Size*sf.PT.SectorSize)
			if fsys.Kind() != kinds[i] {
				t.Fatalf("kind %s, want %s", fsys.Kind(), kinds[i])
			}
			checkAgainstManifest(t, fsys)
		})
	}
}

// TestFATLabels checks the labels mkfs.vfat -n wrote (the script's
// arguments: OTHERFAT, ESP) and mdir's view of the long names.
func TestFATLabels(t *testing.T) {
	fsys := openImage(t, "otherfs-fat32", 0, 0)
	if l := fsys.Label(); l != "OTHERFAT" {
		t.Errorf("label %q", l)
	}
	mdir := string(fixturetest.Golden(t, "otherfs-fat32.mdir"))
	ents, err := fsys.ReadDirStat(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range ents {
		if st.ShortName == "" {
			t.Errorf("%s: no 8.3 name", st.Name)
		}
		// mdir prints the long name at the end of the line when there is one.
		if strings.ContainsAny(st.Name, " ") && !strings.Contains(mdir, "  "+st.Name+"\n") {
			t.Errorf("long name %q not in mdir's listing", st.Name)
		}
	}
}

func TestSymlinks(t *testing.T) {
	for _, name := range []string{"otherfs-squashfs", "otherfs-iso"} {
		fsys := openImage(t, name, 0, 0)
		if tg, err := fsys.ReadLink("links/to-readme"); err != nil || tg != "../README.txt" {
			t.Errorf("%s: readlink %q %v", name, tg, err)
		}
		// Stat and Open follow the link inside the filesystem; Lstat does not.
		if fi, err := fsys.Stat("links/to-readme"); err != nil || !fi.Mode().IsRegular() || fi.Size() != 14 {
			t.Errorf("%s: stat through the link: %v %v", name, fi, err)
		}
		if fi, err := fsys.Lstat("links/to-readme"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Errorf("%s: lstat: %v %v", name, fi, err)
		}
		if b, err := fs.ReadFile(fsys, "links/to-readme"); err != nil || string(b) != "read me first\n" {
			t.Errorf("%s: read through the link: %q %v", name, b, err)
		}
		// An absolute link resolves inside the filesystem, never on the host.
		if _, err := fsys.Stat("links/absolute"); err == nil {
			t.Errorf("%s: /etc/passwd found inside the filesystem", name)
		}
		if _, err := fsys.Stat("links/dangling"); err == nil {
			t.Errorf("%s: dangling link resolved", name)
		}
	}
}
