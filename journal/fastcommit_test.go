package journal

import (
	"bytes"
	"encoding/binary"
	"io"
	"io/fs"
	"reflect"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// fcTree is the golden tree the kernel showed after mounting a copy of a
// fast-commit fixture (fixtures/scripts/fastcommit.sh), in walk's form.
func fcTree(t *testing.T, name string) map[string]string {
	out := map[string]string{".": "dir"}
	for _, r := range fixturetest.Manifest(t, name+".manifest") {
		switch r.Type {
		case "dir":
			out[r.Path] = "dir"
		case "file":
			out[r.Path] = "file " + r.Sum
		case "symlink":
			out[r.Path] = "symlink " + r.Sum
		default:
			out[r.Path] = r.Type
		}
	}
	return out
}

// TestFastCommitReplay: the kernel-made fast-commit fixtures read, after
// the jbd2 replay and the fast-commit replay, exactly as the kernel mounts
// them; without the fast commits they do not (so each fixture tests
// something), and nothing is reported stale.
func TestFastCommitReplay(t *testing.T) {
	for _, name := range []string{"fc-basic", "fc-dir", "fc-frag", "fc-append"} {
		t.Run(name, func(t *testing.T) {
			raw := readAll(t, fixturetest.Image(t, name))
			want := fcTree(t, name)
			v, err := Open(bytes.NewReader(raw), int64(len(raw)), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			res := v.Result
			if res == nil || !res.FastCommits || res.FastCommitsReplayed == 0 {
				t.Fatalf("no fast commits replayed: %+v", res)
			}
			if len(res.FastCommitProblems) != 0 || v.ReplayErr != nil {
				t.Errorf("problems: %q, replay error %v", res.FastCommitProblems, v.ReplayErr)
			}
			sameTree(t, name, walk(t, v.FS), want)
			if notes := v.FS.Notes(); len(notes) != 0 {
				t.Errorf("the replayed view has damage notes (checksums?): %v", notes)
			}
			t.Logf("%d fast commits, %d records; %d entries", res.FastCommitsReplayed, res.FastCommitRecords, len(want))

			// The jbd2 replay alone is older.
			fsys := openExt(t, bytes.NewReader(raw), int64(len(raw)))
			ov, _, err := Replay(bytes.NewReader(raw), int64(len(raw)), fsys, &Options{NoFastCommits: true})
			if err != nil {
				t.Fatal(err)
			}
			old := walk(t, openExt(t, ov, ov.Size()))
			diff := 0
			for k, v := range want {
				if old[k] != v {
					diff++
				}
			}
			if diff == 0 {
				t.Errorf("without the fast commits the tree already equals the kernel's: the fixture tests nothing")
			}
		})
	}
}

// TestFastCommitAgainstE2fsck: e2fsck -fy (1.46+ replays fast commits) on
// a copy gives the same tree as the replayed view, on the fixtures where
// e2fsck and the kernel agree (fixtures/scripts/fastcommit.sh says where
// they do not, and the kernel is then the reference).
func TestFastCommitAgainstE2fsck(t *testing.T) {
	for _, name := range []string{"fc-basic", "fc-frag", "fc-append"} {
		t.Run(name, func(t *testing.T) {
			img := fixturetest.Image(t, name)
			raw := readAll(t, img)
			v, err := Open(bytes.NewReader(raw), int64(len(raw)), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			fy := copyFile(t, img, name+".fy")
			e2fsck(t, fy, "-fy")
			fyRaw := readAll(t, fy)
			want := walk(t, openExt(t, bytes.NewReader(fyRaw), int64(len(fyRaw))))
			sameTree(t, name+" vs e2fsck -fy", walk(t, v.FS), want)
		})
	}
}

// TestFastCommitBadCRC: a flipped byte in the second fast commit stops the
// replay after the first, as the kernel's scan stops, and the view says it
// is missing what came after.
func TestFastCommitBadCRC(t *testing.T) {
	raw := readAll(t, fixturetest.Image(t, "fc-badcrc"))
	v, err := Open(bytes.NewReader(raw), int64(len(raw)), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := v.Result
	if res.FastCommitsReplayed != 1 {
		t.Errorf("replayed %d fast commits, want 1 (the one before the damage)", res.FastCommitsReplayed)
	}
	if len(res.FastCommitProblems) == 0 || !strings.Contains(strings.Join(res.FastCommitProblems, "\n"), "checksum") {
		t.Errorf("damage not reported: %q", res.FastCommitProblems)
	}
}

// FuzzFastCommit replaces the fast-commit area of a kernel-made fixture
// with the input (TAIL checksums not checked, so that the fuzzer reaches
// the replay) and opens the result: no panic, no hang, and the replayed
// view reads.
func FuzzFastCommit(f *testing.F) {
	type seed struct {
		raw []byte
		off int
	}
	var seeds []seed
	for _, name := range []string{"fc-frag", "fc-dir", "fc-basic"} {
		raw := readAll(f, fixturetest.Image(f, name))
		off := fcAreaOffset(raw)
		if off < 0 {
			f.Fatalf("%s: no fast-commit HEAD found", name)
		}
		seeds = append(seeds, seed{raw, off})
		f.Add(uint8(len(seeds)-1), raw[off:off+3*4096])
	}
	f.Fuzz(func(t *testing.T, which uint8, area []byte) {
		s := seeds[int(which)%len(seeds)]
		raw := bytes.Clone(s.raw)
		copy(raw[s.off:s.off+min(len(area), 8*4096)], area)
		vol := bytes.NewReader(raw)
		fsys, err := ext.Open(vol, int64(len(raw)), nil)
		if err != nil {
			return
		}
		dev, sbBlock, err := openDevice(vol, int64(len(raw)), fsys, &Options{})
		if err != nil {
			return
		}
		ov, res, err := replayLog(vol, int64(len(raw)), fsys.BlockSize(), fsys.Superblock(), dev, sbBlock, false, true)
		if err != nil || res.fc == nil {
			return
		}
		replayFastCommits(ov, res)
		if v, err := ext.Open(ov, ov.Size(), nil); err == nil {
			walkQuiet(v)
		}
	})
}

// fcAreaOffset finds the block that starts with the fast-commit HEAD.
func fcAreaOffset(raw []byte) int {
	for off := 0; off+4096 <= len(raw); off += 4096 {
		if bytes.HasPrefix(raw[off:], []byte{9, 0, 8, 0, 0, 0, 0, 0}) {
			return off
		}
	}
	return -1
}

// walkQuiet reads every directory and file of fsys, ignoring errors. Each
// directory inode is entered once: a fuzzed fast commit can link a
// directory under itself, and fs.WalkDir, which knows no inodes, would
// follow such a loop (twice per level when two names do) until the path
// is too long.
func walkQuiet(fsys *ext.FS) {
	seen := map[uint32]bool{}
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			ino, err := fsys.Lookup("/" + p)
			if err != nil || seen[uint32(ino)] {
				return fs.SkipDir
			}
			seen[uint32(ino)] = true
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if f, err := fsys.Open(p); err == nil {
			_, _ = io.CopyN(io.Discard, f, 1<<20) // a fuzzed size can be huge
			f.Close()
		}
		return nil
	})
}

// TestFastCommitAreaEndsInZeros: fast commits followed by zeros (the rest
// of the area never written) replay with nothing reported missing — the
// shape of e2fsprogs' j_recover_fast_commit image, whose tags end in a
// zeroed block. A TAIL of the expected transaction whose checksum fails
// is reported (TestFastCommitBadCRC).
func TestFastCommitAreaEndsInZeros(t *testing.T) {
	le := binary.LittleEndian
	const bs = 1024
	area := make([]byte, 3*bs)
	put := func(p int, tag uint16, val []byte) int {
		le.PutUint16(area[p:], tag)
		le.PutUint16(area[p+2:], uint16(len(val)))
		copy(area[p+4:], val)
		return p + 4 + len(val)
	}
	head := make([]byte, 8)
	le.PutUint32(head[4:], 7)
	p := put(0, fcTagHead, head)
	pad := make([]byte, 20)
	p = put(p, fcTagPad, pad)
	tailAt := p
	tail := make([]byte, 8)
	le.PutUint32(tail, 7)
	put(p, fcTagTail, tail)
	le.PutUint32(area[tailAt+8:], crc32c(0, area[:tailAt+8]))
	dev := &device{r: bytes.NewReader(area), size: int64(len(area)), bs: bs, total: 3}
	sc, err := scanFastCommits(dev, 0, 3, 7, 256, false)
	if err != nil {
		t.Fatal(err)
	}
	if sc.commits != 1 || sc.stop != "" || sc.fatal != "" || !sc.pending {
		t.Errorf("commits %d, stop %q, fatal %q, pending %v", sc.commits, sc.stop, sc.fatal, sc.pending)
	}
}

// TestFastCommitUpstreamImage: e2fsprogs' own j_recover_fast_commit image
// (fetched by scripts/setup.sh) replays to e2fsck -fy's tree — a/data and
// a/new included, which the jbd2 replay alone misses — with no problem
// reported; without its fast commits the tree differs, so the image tests
// the fast-commit replay.
func TestFastCommitUpstreamImage(t *testing.T) {
	img := fixturetest.UpstreamImage(t, "j_recover_fast_commit", t.TempDir())
	raw := readAll(t, img)
	v, err := Open(bytes.NewReader(raw), int64(len(raw)), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fast commits replayed %d, records %d, problems %q", v.Result.FastCommitsReplayed, v.Result.FastCommitRecords, v.Result.FastCommitProblems)
	if v.Result.FastCommitsReplayed == 0 || len(v.Result.FastCommitProblems) != 0 {
		t.Fatalf("fast commits replayed %d, problems %q", v.Result.FastCommitsReplayed, v.Result.FastCommitProblems)
	}
	fy := copyFile(t, img, "fy.img")
	e2fsck(t, fy, "-fy")
	fyRaw := readAll(t, fy)
	want := walk(t, openExt(t, bytes.NewReader(fyRaw), int64(len(fyRaw))))
	for _, p := range []string{"a/data", "a/new"} {
		if _, ok := want[p]; !ok {
			t.Fatalf("e2fsck -fy's tree has no %s: %v", p, want)
		}
	}
	got := walk(t, v.FS)
	sameTree(t, "j_recover_fast_commit vs e2fsck -fy", got, want)

	old, err := Open(bytes.NewReader(raw), int64(len(raw)), nil, &Options{NoFastCommits: true})
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(walk(t, old.FS), want) {
		t.Fatal("the tree without fast commits already equals e2fsck's: the image tests nothing")
	}
}
