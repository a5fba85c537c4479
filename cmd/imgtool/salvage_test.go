package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// extract --salvage on an image whose every group-descriptor table copy is
// zeroed (e2fsck -n and debugfs -c cannot read it): every file of the
// source manifest comes out with its content.
func TestExtractSalvageZeroedGDT(t *testing.T) {
	for _, name := range []string{"salvage-zerogdt-ext2", "salvage-zerogdt-ext4"} {
		t.Run(name, func(t *testing.T) {
			img := fixturetest.Image(t, name)
			before := fixturetest.SHA256File(t, img)
			dest := filepath.Join(t.TempDir(), "out")
			_, errs, code := imgtool(t, "extract", "--salvage", img, "/", dest)
			if code != exitOK && code != exitPartial {
				t.Fatalf("exit %d: %s", code, errs)
			}
			if _, err := os.Stat(filepath.Join(dest, "salvage-report.json")); err != nil {
				t.Errorf("no report: %v", err)
			}
			n := 0
			for _, line := range strings.Split(string(fixturetest.Golden(t, "salvage-zerogdt.manifest")), "\n") {
				f := strings.Split(line, "\t")
				if len(f) != 4 || strings.HasPrefix(line, "#") || f[1] != "file" {
					continue
				}
				b, err := os.ReadFile(filepath.Join(dest, f[0]))
				if err != nil {
					t.Errorf("%s: %v", f[0], err)
					continue
				}
				sum := sha256.Sum256(b)
				if hex.EncodeToString(sum[:]) != f[3] {
					t.Errorf("%s: content differs from the source", f[0])
				}
				n++
			}
			if n < 10 {
				t.Fatalf("only %d files in the manifest were checked", n)
			}
			if fixturetest.SHA256File(t, img) != before {
				t.Fatal("salvage wrote to the image")
			}
		})
	}
}

// extract --salvage on XFS (issue 14.7): xfs-1k with its primary
// superblock and the inode of /files zeroed. The probe no longer sees a
// filesystem; salvage finds XFS's secondary superblock, exits 3 (losses),
// puts the 9 inodes /files named under #orphans with their content, and
// writes salvage-report.json with the secondary's offset and 9 orphans.
func TestExtractSalvageXFS(t *testing.T) {
	img := fixturetest.Copy(t, "xfs-1k")
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	const filesInode = 72701 // /files, a shortform directory (xfs_db -c 'path /files')
	const inodeOff = 0x237fa00
	for _, z := range []struct{ off, n int64 }{{0, 512}, {inodeOff, 512}} {
		if _, err := fh.WriteAt(make([]byte, z.n), z.off); err != nil {
			t.Fatal(err)
		}
	}
	fh.Close()
	dest := filepath.Join(t.TempDir(), "out")
	_, errs, code := imgtool(t, "extract", "--salvage", img, "/", dest)
	if code != exitPartial {
		t.Fatalf("exit %d, want %d: %s", code, exitPartial, errs)
	}
	js, err := os.ReadFile(filepath.Join(dest, "salvage-report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Superblock int64 `json:"superblock_offset"`
		Orphans    int   `json:"orphans"`
		Entries    []struct {
			Path   string `json:"path"`
			Ino    uint64 `json:"inode"`
			Detail string `json:"detail"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(js, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Superblock <= 0 || rep.Superblock%(16<<20) != 0 || rep.Orphans != 9 {
		t.Errorf("report: superblock at %d, %d orphans; want a secondary at an AG boundary (16 MiB AGs), 9", rep.Superblock, rep.Orphans)
	}
	named := false
	for _, e := range rep.Entries {
		named = named || (e.Path == "/files" && e.Ino == filesInode && strings.Contains(e.Detail, fmt.Sprint(inodeOff)))
	}
	if !named {
		t.Errorf("report does not name /files (inode %d, offset %d): %s", filesInode, inodeOff, js)
	}
	// files/random (inode 72702) and files/frag-a (72709), from the
	// kernel's manifest (fixtures/golden/xfs-1k.manifest.xz).
	for ino, want := range map[int]string{
		72702: "8d749394c256fd8d33de253998825d69496e6fe4ec655060bad3ab74e12b1036",
		72709: "77211dc8a689813867aed33c7bd086bba4771e3f20d99244b73c9c12324c3497",
	} {
		b, err := os.ReadFile(filepath.Join(dest, "#orphans", fmt.Sprint(ino)))
		if sum := sha256.Sum256(b); err != nil || hex.EncodeToString(sum[:]) != want {
			t.Errorf("#orphans/%d: %d bytes (%v), content differs from the kernel's", ino, len(b), err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(dest, "#orphans")); len(ents) != 9 {
		t.Errorf("%d entries in #orphans, want 9", len(ents))
	}
}
