package dump

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// These tests use Debian's restore (dump 0.4b47) as the oracle: our
// streams must list, extract and apply incrementally exactly like the
// source tree.

func needRestore(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("restore"); err != nil {
		t.Fatalf("restore(8) is required (Debian package dump): %v", err)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("the restore oracle tests need root (chown, mknod)")
	}
}

func runRestore(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("restore", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TERM=dumb", "TMPDIR="+t.TempDir())
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("restore %v in %s: %v\n%s", args, dir, err, out)
	}
	return string(out)
}

func randBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

var t0 = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// buildSource makes the level-0 tree: every kind of inode the brief lists.
func buildSource() *memSource {
	s := newMemSource(t0.Add(-time.Hour))
	s.file("/empty", 0o644, nil)
	s.file("/small.txt", 0o644, []byte("hello, dump\n"))
	s.file("/multi.bin", 0o600, randBytes(1, 5000))
	s.file("/big.bin", 0o644, randBytes(2, 700*1024+123)) // > 512 records: TS_ADDR
	s.file("/.hidden", 0o640, []byte("dotfile"))
	s.mkdir("/dir", 0o755)
	s.mkdir("/dir/sub", 0o700)
	s.mkdir("/dir/sub/deep", 0o755)
	s.file("/dir/sub/deep/file", 0o644, []byte("deep"))
	s.file("/ünïcødé 日本語.txt", 0o644, []byte("unicode"))
	s.file("/name with spaces", 0o644, []byte("spaces"))
	s.sparse("/sparse", 5<<20, map[int64][]byte{0: randBytes(3, 100), 2<<20 + 512: randBytes(4, 3000)})
	s.sparse("/sparse-tail", 3<<20, map[int64][]byte{4096: []byte("head")}) // ends in a hole
	// An unwritten extent whose blocks hold stale bytes: must read as zeros.
	uw := s.sparse("/unwritten", 64<<10, map[int64][]byte{0: []byte("real data")})
	n := s.nodes[uw]
	copy(n.data[8192:], bytes.Repeat([]byte("STALE!"), 1000))
	n.mapped = append(n.mapped, Extent{Logical: 8192, Physical: 1 << 30, Length: 16384, Unwritten: true})
	s.symlink("/short-link", "small.txt")
	s.symlink("/dir/long-link", strings.Repeat("long/", 50)+"target")
	s.file("/linked", 0o644, []byte("hard linked"))
	s.link("/linked", "/dir/linked-too")
	s.link("/linked", "/dir/sub/linked-three")
	s.special("/fifo", ModeFifo|0o644, 0, 0)
	s.special("/null-dev", ModeChr|0o666, 1, 3)
	s.special("/big-dev", ModeBlk|0o600, 259, 300) // needs the new encoding
	suid := s.file("/setuid", 0o4755, []byte("#!/bin/sh\n"))
	s.mkdir("/sticky", 0o1777)
	s.file("/noperm", 0o000, []byte("secret"))
	owned := s.file("/owned", 0o644, []byte("by 1000"))
	s.nodes[owned].UID, s.nodes[owned].GID = 1000, 1000
	s.nodes[suid].UID, s.nodes[suid].GID = 1000, 100
	old := s.file("/old", 0o644, []byte("from 2001"))
	s.nodes[old].Mtime = time.Date(2001, 9, 9, 1, 46, 40, 0, time.UTC)
	s.nodes[old].Atime = time.Date(2002, 1, 1, 0, 0, 0, 0, time.UTC)
	x := s.file("/xattrs", 0o644, []byte("has xattrs"))
	s.nodes[x].xattrs = []Xattr{
		{Name: "user.comment", Value: []byte("a comment")},
		{Name: "user.binary", Value: []byte{0, 1, 2, 255}},
		{Name: "system.posix_acl_access", Value: aclXattr(0o6, 0o4, 0o4, 1000, 0o4)},
	}
	// One EA record close to MaxEARecord: restore must accept it.
	bx := s.file("/big-xattr", 0o644, []byte("big xattr"))
	s.nodes[bx].xattrs = []Xattr{{Name: "user.big", Value: bytes.Repeat([]byte("0123456789"), 390)}}
	s.nodes[s.lookup("/dir")].xattrs = []Xattr{{Name: "user.on-dir", Value: []byte("d")}}
	s.nodes[s.lookup("/dir")].UID = 1000
	return s
}

// aclXattr builds a VFS-format ACL: owner, group, other, plus one named
// user with its permissions and the mask.
func aclXattr(owner, group, other uint16, uid uint32, uperm uint16) []byte {
	b := le.AppendUint32(nil, aclXattrVersion)
	add := func(tag, perm uint16, id uint32) {
		b = le.AppendUint16(b, tag)
		b = le.AppendUint16(b, perm)
		b = le.AppendUint32(b, id)
	}
	add(aclUserObj, owner, 0xFFFFFFFF)
	add(aclUser, uperm, uid)
	add(aclGroupObj, group, 0xFFFFFFFF)
	add(aclMask, uperm|group, 0xFFFFFFFF)
	add(aclOther, other, 0xFFFFFFFF)
	return b
}

// clone deep-copies the source, to keep the state of each level.
func (s *memSource) clone() *memSource {
	c := &memSource{maxIno: s.maxIno, nodes: map[uint32]*memNode{}, next: s.next, now: s.now}
	for ino, n := range s.nodes {
		m := *n
		m.data = append([]byte(nil), n.data...)
		m.mapped = append([]Extent(nil), n.mapped...)
		if n.mapped == nil {
			m.mapped = nil
		}
		m.xattrs = append([]Xattr(nil), n.xattrs...)
		if n.ents != nil {
			m.ents = map[string]uint32{}
			for k, v := range n.ents {
				m.ents[k] = v
			}
		}
		c.nodes[ino] = &m
	}
	return c
}

func writeDump(t *testing.T, src Source, opts WriteOptions) (string, Stats) {
	t.Helper()
	if opts.Host == "" {
		opts.Host = "imgtool-test"
	}
	var buf bytes.Buffer
	st, err := Write(&buf, src, opts)
	if err != nil {
		t.Fatalf("Write level %d: %v", opts.Level, err)
	}
	if int64(buf.Len()) != st.Bytes || st.Records%NTRec != 0 {
		t.Fatalf("Write: %d bytes, stats say %d bytes / %d records", buf.Len(), st.Bytes, st.Records)
	}
	p := filepath.Join(t.TempDir(), fmt.Sprintf("level%d.dump", opts.Level))
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p, st
}

// parseTOC parses `restore -t` output into path -> inode.
func parseTOC(t *testing.T, out string) map[string]uint32 {
	t.Helper()
	toc := map[string]uint32{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		f := strings.SplitN(strings.TrimLeft(line, " "), "\t", 2)
		if len(f) != 2 {
			continue
		}
		ino, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil {
			continue
		}
		toc[f[1]] = uint32(ino)
	}
	return toc
}

func TestRestoreListsLevel0(t *testing.T) {
	needRestore(t)
	src := buildSource()
	file, st := writeDump(t, src, WriteOptions{Level: 0, Date: t0, Label: "lvl0"})
	out := runRestore(t, t.TempDir(), "-t", "-f", file)
	got := parseTOC(t, out)
	want := src.walk()
	if !mapsEqual(got, want) {
		t.Errorf("restore -t lists\n%v\nwant\n%v\nfull output:\n%s", got, want, out)
	}
	if !strings.Contains(out, "Level 0 dump of an unlisted file system on imgtool-test:") || !strings.Contains(out, "Label: lvl0") {
		t.Errorf("restore -t header:\n%s", out)
	}
	if st.Dumped != len(uniqueInodes(want)) || st.Inodes != st.Dumped {
		t.Errorf("stats: %d inodes, %d dumped, tree has %d", st.Inodes, st.Dumped, len(uniqueInodes(want)))
	}
	if len(st.Warnings) != 0 {
		t.Errorf("warnings: %v", st.Warnings)
	}
}

func uniqueInodes(m map[string]uint32) map[uint32]bool {
	u := map[uint32]bool{}
	for _, v := range m {
		u[v] = true
	}
	return u
}

func mapsEqual(a, b map[string]uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestRestoreExtractsLevel0(t *testing.T) {
	needRestore(t)
	src := buildSource()
	file, _ := writeDump(t, src, WriteOptions{Level: 0, Date: t0})
	dir := t.TempDir()
	runRestore(t, dir, "-x", "-a", "-o", "-y", "-f", file)
	compareTree(t, src, dir, nil)
	// restore's own compare mode agrees too.
	// (We drop layout flags such as EXT4_EXTENTS_FL from the tape, which
	// restore -C reports as "flags changed" against an ext4 target.)
	cmd := exec.Command("restore", "-C", "-y", "-f", file, "-D", dir)
	cmd.Dir = dir
	out, _ := cmd.CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if (strings.Contains(line, "changed") || strings.Contains(line, "different")) && !strings.Contains(line, "flags changed from 0x00000000 to 0x00080000") {
			t.Errorf("restore -C: %s", line)
		}
	}
}

// compareTree checks an extracted tree against the source: the same set of
// paths, types, permissions, owners, mtimes, contents, link targets,
// devices, xattrs, hard-link groups, and holes that stay holes.
func compareTree(t *testing.T, src *memSource, dir string, ignore map[string]bool) {
	t.Helper()
	want := src.walk()
	// No extra files.
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = "./" + rel
		if rel == "./." {
			rel = "."
		}
		if _, ok := want[rel]; !ok && !ignore[rel] {
			t.Errorf("extra file %s", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	extIno := map[uint32]uint64{} // source inode -> extracted inode
	extSeen := map[uint64]uint32{}
	for p, ino := range want {
		n := src.nodes[ino]
		full := filepath.Join(dir, p)
		var sb syscall.Stat_t
		if err := syscall.Lstat(full, &sb); err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if sb.Mode&ModeFmt != n.Mode&ModeFmt {
			t.Errorf("%s: type %#o, want %#o", p, sb.Mode&ModeFmt, n.Mode&ModeFmt)
			continue
		}
		if !n.IsSymlink() && sb.Mode&0o7777 != n.Mode&0o7777 && p != "." {
			t.Errorf("%s: mode %#o, want %#o", p, sb.Mode&0o7777, n.Mode&0o7777)
		}
		if sb.Uid != n.UID || sb.Gid != n.GID {
			t.Errorf("%s: owner %d:%d, want %d:%d", p, sb.Uid, sb.Gid, n.UID, n.GID)
		}
		if !n.IsSymlink() && p != "." && sb.Mtim.Sec != n.Mtime.Unix() {
			t.Errorf("%s: mtime %d, want %d", p, sb.Mtim.Sec, n.Mtime.Unix())
		}
		if !n.IsDir() {
			if prev, ok := extIno[ino]; ok && prev != sb.Ino {
				t.Errorf("%s: hard link group broken (inode %d, another link has %d)", p, sb.Ino, prev)
			}
			if other, ok := extSeen[sb.Ino]; ok && other != ino {
				t.Errorf("%s: shares an inode with source inode %d, want %d", p, other, ino)
			}
			extIno[ino] = sb.Ino
			extSeen[sb.Ino] = ino
			if uint32(sb.Nlink) != n.Nlink {
				t.Errorf("%s: nlink %d, want %d", p, sb.Nlink, n.Nlink)
			}
		}
		switch n.Mode & ModeFmt {
		case ModeReg:
			got, err := os.ReadFile(full)
			if err != nil {
				t.Errorf("%s: %v", p, err)
				break
			}
			wantData := fileContent(n)
			if sha(got) != sha(wantData) {
				t.Errorf("%s: content sha256 %s (%d bytes), want %s (%d bytes)", p, sha(got), len(got), sha(wantData), len(wantData))
			}
			if n.mapped != nil {
				var mapped int64
				for _, e := range n.mapped {
					if !e.Unwritten {
						mapped += e.Length
					}
				}
				// Allocation is in 4 KiB blocks; allow a block per extent.
				limit := mapped + int64(len(n.mapped)+1)*8192
				if sb.Blocks*512 > limit {
					t.Errorf("%s: %d bytes allocated, holes not kept (data %d)", p, sb.Blocks*512, mapped)
				}
			}
		case ModeLink:
			target, err := os.Readlink(full)
			if err != nil || target != n.target {
				t.Errorf("%s: link target %q (%v), want %q", p, target, err, n.target)
			}
		case ModeChr, ModeBlk:
			if unix.Major(sb.Rdev) != n.RdevMajor || unix.Minor(sb.Rdev) != n.RdevMinor {
				t.Errorf("%s: device %d,%d, want %d,%d", p, unix.Major(sb.Rdev), unix.Minor(sb.Rdev), n.RdevMajor, n.RdevMinor)
			}
		}
		for _, x := range n.xattrs {
			buf := make([]byte, 4096)
			k, err := unix.Lgetxattr(full, x.Name, buf)
			if err != nil || !bytes.Equal(buf[:k], x.Value) {
				t.Errorf("%s: xattr %s = %x (%v), want %x", p, x.Name, buf[:max(k, 0)], err, x.Value)
			}
		}
	}
}

// fileContent is what a regular file must read as: data where mapped (and
// written), zeros elsewhere.
func fileContent(n *memNode) []byte {
	if n.mapped == nil {
		return n.data
	}
	out := make([]byte, len(n.data))
	for _, e := range n.mapped {
		if !e.Unwritten {
			copy(out[e.Logical:e.Logical+e.Length], n.data[e.Logical:])
		}
	}
	return out
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestRestoreIncrementalChain applies levels 0, 1 and 2 with restore -r
// and compares the tree after each level with the source at that time.
func TestRestoreIncrementalChain(t *testing.T) {
	needRestore(t)
	src := buildSource()
	dates := []time.Time{t0, t0.Add(2 * time.Hour), t0.Add(4 * time.Hour)}
	var snaps []*memSource
	var files []string

	f0, _ := writeDump(t, src, WriteOptions{Level: 0, Date: dates[0]})
	snaps, files = append(snaps, src.clone()), append(files, f0)

	// Changes between level 0 and level 1.
	src.now = t0.Add(time.Hour)
	src.file("/created", 0o644, []byte("new after level 0"))
	mod := src.nodes[src.lookup("/small.txt")]
	mod.data = []byte("changed content, longer than before\n")
	mod.Size = uint64(len(mod.data))
	src.touch(mod.Ino)
	chm := src.nodes[src.lookup("/multi.bin")]
	chm.Mode = ModeReg | 0o640
	chm.Ctime = src.now
	src.remove("/empty")
	src.rename("/dir/sub/deep/file", "/dir/moved-file")
	src.rename("/name with spaces", "/dir/sub/renamed")
	src.link("/owned", "/dir/sub/deep/owned-link")
	sp := src.nodes[src.lookup("/sparse")]
	sp.data = append(sp.data, make([]byte, 3<<20)...)
	sp.Size = uint64(len(sp.data))
	src.setChunks(sp, map[int64][]byte{7 << 20: randBytes(5, 2000)})
	src.touch(sp.Ino)
	src.mkdir("/newdir", 0o750)
	src.file("/newdir/inside", 0o644, []byte("inside"))
	f1, st1 := writeDump(t, src, WriteOptions{Level: 1, Date: dates[1], BaseDate: dates[0]})
	snaps, files = append(snaps, src.clone()), append(files, f1)
	// Level 1 holds the changed inodes and the directories leading to
	// them, and not the untouched files.
	if st1.Dumped >= len(uniqueInodes(src.walk())) || st1.Dumped < 10 {
		t.Errorf("level 1 dumped %d inodes of %d", st1.Dumped, len(uniqueInodes(src.walk())))
	}

	// Changes between level 1 and level 2.
	src.now = t0.Add(3 * time.Hour)
	src.remove("/dir/sub/deep/owned-link")
	src.remove("/newdir/inside")
	src.remove("/newdir")
	src.rename("/dir/sub", "/subdir-moved")
	big := src.nodes[src.lookup("/big.bin")]
	copy(big.data[600*1024:], []byte("patched in level 2"))
	src.touch(big.Ino)
	src.symlink("/dir/new-link", "../linked")
	f2, _ := writeDump(t, src, WriteOptions{Level: 2, Date: dates[2], BaseDate: dates[1]})
	snaps, files = append(snaps, src.clone()), append(files, f2)

	dir := t.TempDir()
	for i, f := range files {
		runRestore(t, dir, "-r", "-y", "-f", f)
		t.Run(fmt.Sprintf("after-level-%d", i), func(t *testing.T) {
			compareTree(t, snaps[i], dir, map[string]bool{"./restoresymtable": true})
		})
	}
	// Each level lists what restore expects of an incremental.
	out := runRestore(t, t.TempDir(), "-t", "-f", f2)
	toc := parseTOC(t, out)
	if _, ok := toc["./dir/new-link"]; !ok {
		t.Errorf("level 2 lacks the new symlink:\n%s", out)
	}
	if _, ok := toc["./old"]; ok {
		t.Errorf("level 2 lists an unchanged file:\n%s", out)
	}
}

func sortedKeys(m map[string]uint32) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}
