package dump

import (
	"bytes"
	"io"
	"sort"
	"testing"
	"time"
)

// TestLevelSelection checks which inodes an incremental dump holds, with
// restore -t as the oracle for what is on the tape: the changed inodes and
// the directories leading to them (any link to them), nothing else.
func TestLevelSelection(t *testing.T) {
	needRestore(t)
	s := newMemSource(t0.Add(-time.Hour))
	s.mkdir("/a", 0o755)
	s.mkdir("/a/b", 0o755)
	s.mkdir("/a/b/c", 0o755)
	s.file("/a/b/c/changed", 0o644, []byte("v1"))
	s.file("/a/b/same", 0o644, []byte("same"))
	s.mkdir("/other", 0o755)
	s.file("/other/same", 0o644, []byte("same"))
	s.file("/other/linked", 0o644, []byte("v1"))
	s.mkdir("/far", 0o755)
	s.link("/other/linked", "/far/link-to-changed")
	s.mkdir("/quiet", 0o755)
	s.file("/quiet/f", 0o644, []byte("q"))
	s.file("/chmodded", 0o644, []byte("mode only"))

	s.now = t0.Add(time.Hour)
	c := s.nodes[s.lookup("/a/b/c/changed")]
	c.data = []byte("v2")
	s.touch(c.Ino) // content change: the directory itself is untouched
	l := s.nodes[s.lookup("/other/linked")]
	l.data = []byte("v2")
	s.touch(l.Ino)
	m := s.nodes[s.lookup("/chmodded")]
	m.Mode = ModeReg | 0o600
	m.Ctime = s.now // ctime only

	file, st := writeDump(t, s, WriteOptions{Level: 1, Date: t0.Add(2 * time.Hour), BaseDate: t0})
	got := sortedKeys(parseTOC(t, runRestore(t, t.TempDir(), "-t", "-f", file)))
	want := []string{".", "./a", "./a/b", "./a/b/c", "./a/b/c/changed", "./chmodded",
		"./far", "./far/link-to-changed", "./other", "./other/linked"}
	sort.Strings(want)
	if len(got) != len(want) {
		t.Fatalf("level 1 holds\n%v\nwant\n%v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("level 1 holds\n%v\nwant\n%v", got, want)
		}
	}
	if st.Dumped != 9 { // far/link-to-changed and other/linked are one inode
		t.Errorf("Dumped = %d, want 9", st.Dumped)
	}

	// At the same second as the base date a change still counts (>=).
	s.now = t0.Add(2 * time.Hour)
	q := s.nodes[s.lookup("/quiet/f")]
	q.Ctime = s.now
	var buf bytes.Buffer
	if _, err := Write(&buf, s, WriteOptions{Level: 2, Date: s.now.Add(30 * time.Minute), BaseDate: s.now}); err != nil {
		t.Fatal(err)
	}
	rd, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var inos []uint32
	for {
		e, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		inos = append(inos, e.Ino)
	}
	wantInos := []uint32{RootIno, s.lookup("/quiet"), q.Ino}
	if len(inos) != 3 || inos[0] != wantInos[0] || inos[1] != wantInos[1] || inos[2] != wantInos[2] {
		t.Errorf("level 2 inodes %v, want %v", inos, wantInos)
	}
}

// TestNodump: with HonorNodump, an inode flagged nodump is left out, and a
// flagged directory takes its subtree with it; without, they are dumped.
func TestNodump(t *testing.T) {
	s := newMemSource(t0)
	s.file("/keep", 0o644, []byte("k"))
	skip := s.file("/skip", 0o644, []byte("s"))
	s.nodes[skip].Flags = NodumpFlag
	d := s.mkdir("/skipdir", 0o755)
	s.nodes[d].Flags = NodumpFlag
	inner := s.file("/skipdir/inner", 0o644, []byte("i"))
	for _, honor := range []bool{false, true} {
		var buf bytes.Buffer
		st, err := Write(&buf, s, WriteOptions{Level: 1, Date: t0.Add(time.Hour), BaseDate: t0.Add(-time.Hour), HonorNodump: honor})
		if err != nil {
			t.Fatal(err)
		}
		rd, err := NewReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		for _, ino := range []uint32{skip, d, inner} {
			if rd.InUse(ino) == honor || rd.Dumped(ino) == honor {
				t.Errorf("honor=%v: inode %d in use %v, dumped %v", honor, ino, rd.InUse(ino), rd.Dumped(ino))
			}
		}
		if !rd.Dumped(s.lookup("/keep")) || (honor && st.Dumped != 2) || (!honor && st.Dumped != 5) {
			t.Errorf("honor=%v: dumped %d", honor, st.Dumped)
		}
	}
}
