package salvage

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// TestDamagedFixture salvages salvage-damaged (see its script): an
// unlinked file, a directory loop, a cross-linked block, a bad inode
// checksum and an extent past the end of the filesystem. Every untouched
// file must come out byte-exact (against the source tree's manifest), the
// unlinked one under #orphans/<inode>, and the report must name each
// damage on the right inode, as e2fsck -fn does.
func TestDamagedFixture(t *testing.T) {
	want := fixturetest.Manifest(t, "salvage-damaged.manifest")
	inos := map[string]uint32{}
	for _, l := range strings.Split(strings.TrimSpace(string(fixturetest.Golden(t, "salvage-damaged.inodes"))), "\n") {
		f := strings.Split(l, "\t")
		n, err := strconv.ParseUint(f[1], 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		inos[f[0]] = uint32(n)
	}
	e2fsck := string(fixturetest.Golden(t, "salvage-damaged.e2fsck"))
	img := fixturetest.Image(t, "salvage-damaged")
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	dest := filepath.Join(t.TempDir(), "out")
	rep, err := Run(context.Background(), f, st.Size(), dest, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep.Summary(0))

	// Content: everything but the damaged files at their paths; the
	// orphan under #orphans.
	var intact []fixturetest.ManifestRow
	for _, w := range want {
		switch w.Path {
		case "x2", "sparse.bin", "orphan.txt":
			continue
		}
		intact = append(intact, w)
	}
	fixturetest.CheckTree(t, dest, intact)
	for _, w := range want {
		if w.Path == "orphan.txt" {
			w.Path = OrphansDir + "/" + strconv.Itoa(int(inos["/orphan.txt"]))
			fixturetest.CheckTree(t, dest, []fixturetest.ManifestRow{w})
		}
	}
	if _, err := os.Lstat(filepath.Join(dest, "d1/sub/loop")); err == nil {
		t.Error("d1/sub/loop (the loop) was extracted")
	}

	byIno := map[uint32]Entry{}
	for _, e := range rep.Entries {
		if _, ok := byIno[e.Ino]; !ok || e.has(Cycle) {
			byIno[e.Ino] = e
		}
	}
	expect := func(path string, r Reason, status string, e2 string) {
		t.Helper()
		e, ok := byIno[inos[path]]
		if !ok || !e.has(r) || (status != "" && e.Status != status) {
			t.Errorf("%s (inode %d): entry %+v; want reason %s, status %q", path, inos[path], e, r, status)
		}
		if e2 != "" && !strings.Contains(e2fsck, e2) {
			t.Errorf("oracle: e2fsck -fn does not say %q", e2)
		}
	}
	expect("/orphan.txt", Unreachable, StatusRecovered, "")
	expect("/f3", Checksum, StatusSuspect, "Inode 18 passes checks, but checksum does not match inode")
	expect("/sparse.bin", Truncated, StatusPartial, "Inode 20 has an invalid extent")
	expect("/x2", CrossLinked, StatusSuspect, "multiply-claimed blocks")
	expect("/x1", CrossLinked, StatusSuspect, "")
	expect("/d1", Cycle, "", "")
	// sparse.bin's tail is two extents (blocks 292 and 293-295); the
	// first was pointed outside the filesystem: one block is lost.
	if e := byIno[inos["/sparse.bin"]]; e.Recovered != 6040 || e.Lost != 1024 {
		t.Errorf("/sparse.bin: %d bytes recovered, %d lost; want 6040 (all but block 292), 1024", e.Recovered, e.Lost)
	}
	b, err := os.ReadFile(filepath.Join(dest, "sparse.bin"))
	if err != nil || len(b) != 303000 || strings.Count(string(b[:3000]), "H") != 3000 ||
		strings.Count(string(b[300000:300032]), "\x00") != 32 || strings.Count(string(b[300032:]), "T") != 2968 {
		t.Errorf("sparse.bin: %d bytes, err %v; want the head, 32 zeros (block 292), then the tail", len(b), err)
	}
	if e := byIno[inos["/x1"]]; e.Path != "/x1" {
		t.Errorf("first claimer of the cross-linked blocks named %q, want /x1", e.Path)
	}
	if rep.Orphans != 1 || rep.Cycles != 1 || rep.CrossLinked == 0 || rep.FilesLost != 0 || rep.FilesPartial != 1 {
		t.Errorf("totals: %d orphans, %d cycles, %d cross-linked blocks, %d lost, %d partial; want 1, 1, >0, 0, 1",
			rep.Orphans, rep.Cycles, rep.CrossLinked, rep.FilesLost, rep.FilesPartial)
	}
}
