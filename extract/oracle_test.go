package extract

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/internal/zero"
	"golang.org/x/sys/unix"
)

// The fixtures built by fixtures/scripts/ext-fixtures.sh; the source tree
// they were made from is described by fixtures/golden/ext-manifest.json
// (python's lstat/sha256/readlink/getxattr of the tree mke2fs -d copied),
// and each image by debugfs's own output (ext-NAME.stat).
var fixtures = []string{"ext2-1k", "ext3", "ext4", "ext4-1k-inline", "ext4-nocsum", "ext4-64meta", "ext4-64k", "ext4-bigalloc"}

type manifestEntry struct {
	Path       string            `json:"path"`
	Mode       uint32            `json:"mode"`
	UID        uint32            `json:"uid"`
	GID        uint32            `json:"gid"`
	Size       int64             `json:"size"`
	MtimeNs    int64             `json:"mtime_ns"`
	Nlink      int               `json:"nlink"`
	InodeGroup uint64            `json:"inode_group"`
	SHA256     string            `json:"sha256"`
	Target     *string           `json:"target"`
	RdevMajor  *uint32           `json:"rdev_major"`
	RdevMinor  *uint32           `json:"rdev_minor"`
	Xattrs     map[string]string `json:"xattrs"`
}

func loadManifest(t testing.TB) []manifestEntry {
	var m []manifestEntry
	if err := json.Unmarshal(fixturetest.Golden(t, "ext-manifest.json"), &m); err != nil {
		t.Fatal(err)
	}
	if len(m) < 5000 {
		t.Fatalf("manifest has only %d entries", len(m))
	}
	return m
}

// debugfsStat is what debugfs's `stat PATH` said about one path.
type debugfsStat struct {
	ino        uint32
	blockcount int64
	atimeSec   int64 // -1 when not shown
	atimeNs    int64
}

// loadDebugfsStat parses fixtures/golden/ext-NAME.stat.
func loadDebugfsStat(t testing.TB, name string) map[string]*debugfsStat {
	sect := regexp.MustCompile(`^debugfs: stat "?(.*?)"?$`)
	head := regexp.MustCompile(`^Inode: (\d+)`)
	links := regexp.MustCompile(`^Links: \d+\s+Blockcount: (\d+)`)
	atime := regexp.MustCompile(`^\s*atime: 0x([0-9a-f]+)(?::([0-9a-f]+))?`)
	out := map[string]*debugfsStat{}
	var cur *debugfsStat
	for _, line := range strings.Split(string(fixturetest.Golden(t, "ext-"+name+".stat")), "\n") {
		if m := sect.FindStringSubmatch(line); m != nil {
			cur = &debugfsStat{atimeSec: -1}
			out[m[1]] = cur
			continue
		}
		if cur == nil {
			continue
		}
		if m := head.FindStringSubmatch(line); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 32)
			cur.ino = uint32(n)
		}
		if m := links.FindStringSubmatch(line); m != nil {
			cur.blockcount, _ = strconv.ParseInt(m[1], 10, 64)
		}
		if m := atime.FindStringSubmatch(line); m != nil {
			s, _ := strconv.ParseUint(m[1], 16, 32)
			cur.atimeSec = int64(int32(uint32(s)))
			if m[2] != "" {
				x, _ := strconv.ParseUint(m[2], 16, 32)
				cur.atimeSec += int64(x&3) << 32
				cur.atimeNs = int64(x >> 2)
			}
		}
	}
	if len(out) < 40 {
		t.Fatalf("%s: only %d debugfs stat sections", name, len(out))
	}
	return out
}

func openFixture(t testing.TB, name string) (*ext.FS, string) {
	t.Helper()
	p := fixturetest.Image(t, "ext-"+name)
	f, size := fixturetest.Open(t, p)
	fsys, err := ext.Open(f, size, nil)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return fsys, p
}

func fileSHA256(t testing.TB, p string) string {
	t.Helper()
	// O_NOATIME: reading must not change the atime being checked.
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOATIME, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// verifyOpts says which properties the extraction method can keep.
type verifyOpts struct {
	atime  bool // GNU tar does not restore atime
	sparse bool // tar output has no holes
	xattrs bool
}

// verifyTree compares the extracted tree in dir with the manifest and
// debugfs's stat of image name.
func verifyTree(t *testing.T, dir, name string, vo verifyOpts) {
	t.Helper()
	man := loadManifest(t)
	dstat := loadDebugfsStat(t, name)
	fsys, _ := openFixture(t, name)
	large := fsys.Superblock().InodeSize > 128
	var destFS unix.Statfs_t
	if err := unix.Statfs(dir, &destFS); err != nil {
		t.Fatal(err)
	}
	srcBS := fsys.BlockSize()
	groups := map[uint64]uint64{} // manifest inode group -> dest inode
	owners := map[uint64]uint64{}
	inMan := map[string]bool{}
	for _, e := range man {
		inMan[e.Path] = true
		p := filepath.Join(dir, e.Path)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Errorf("%s: %v", e.Path, err)
			continue
		}
		if st.Mode != e.Mode {
			t.Errorf("%s: mode %o, want %o", e.Path, st.Mode, e.Mode)
		}
		if st.Uid != e.UID || st.Gid != e.GID {
			t.Errorf("%s: owner %d:%d, want %d:%d", e.Path, st.Uid, st.Gid, e.UID, e.GID)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if g, ok := groups[e.InodeGroup]; ok && g != st.Ino {
				t.Errorf("%s: inode %d, but its hard link is %d", e.Path, st.Ino, g)
			}
			groups[e.InodeGroup] = st.Ino
			if o, ok := owners[st.Ino]; ok && o != e.InodeGroup {
				t.Errorf("%s: shares dest inode %d with a different source inode", e.Path, st.Ino)
			}
			owners[st.Ino] = e.InodeGroup
			if int(st.Nlink) != e.Nlink {
				t.Errorf("%s: %d links, want %d", e.Path, st.Nlink, e.Nlink)
			}
			if st.Size != e.Size {
				t.Errorf("%s: size %d, want %d", e.Path, st.Size, e.Size)
			}
		}
		if e.Path != "/" { // debugfs -w changed the root's mtime
			want := time.Unix(0, e.MtimeNs)
			if !large {
				want = time.Unix(int64(int32(want.Unix())), 0)
			}
			if got := time.Unix(st.Mtim.Unix()); !got.Equal(want) {
				t.Errorf("%s: mtime %v, want %v", e.Path, got.UTC(), want.UTC())
			}
		}
		ds := dstat[e.Path]
		if vo.atime && ds != nil && ds.atimeSec >= 0 {
			if st.Atim.Sec != ds.atimeSec || st.Atim.Nsec != ds.atimeNs {
				t.Errorf("%s: atime %d.%09d, debugfs %d.%09d", e.Path, st.Atim.Sec, st.Atim.Nsec, ds.atimeSec, ds.atimeNs)
			}
		}
		if e.SHA256 != "" {
			if got := fileSHA256(t, p); got != e.SHA256 {
				t.Errorf("%s: sha256 %s, want %s", e.Path, got, e.SHA256)
			}
			if vo.sparse && ds != nil {
				// The copy never allocates more than the source: compare in
				// the coarser of the two block sizes.
				// Slack of two destination blocks: an inline-data file (no
				// blocks in the source) needs one, and a destination
				// filesystem may count an xattr block in st_blocks.
				limit := ds.blockcount * 512
				if bs := int64(destFS.Bsize); bs > srcBS {
					limit *= bs / srcBS
				}
				limit += 2 * int64(destFS.Bsize)
				if st.Blocks*512 > limit {
					t.Errorf("%s: %d bytes allocated, source %d (%d)", e.Path, st.Blocks*512, ds.blockcount*512, limit)
				}
			}
			if vo.sparse && e.Size >= 40<<20 && st.Blocks*512 > e.Size/20 {
				t.Errorf("%s: %d bytes allocated for %d (holes not kept)", e.Path, st.Blocks*512, e.Size)
			}
		}
		if e.Target != nil {
			got, err := os.Readlink(p)
			if err != nil || got != *e.Target {
				t.Errorf("%s: readlink %q, %v; want %q", e.Path, got, err, *e.Target)
			}
		}
		if e.RdevMajor != nil {
			if unix.Major(st.Rdev) != *e.RdevMajor || unix.Minor(st.Rdev) != *e.RdevMinor {
				t.Errorf("%s: rdev %d:%d, want %d:%d", e.Path, unix.Major(st.Rdev), unix.Minor(st.Rdev), *e.RdevMajor, *e.RdevMinor)
			}
		}
		if e.Target == nil {
			got := listXattrs(t, p)
			if name == "ext4-64meta" && e.Path == "/xattr-small" {
				// debugfs ea_set stored it in an ea_inode; its ea_list gives the size.
				m := regexp.MustCompile(`user\.huge \((\d+)\)`).FindSubmatch(fixturetest.Golden(t, "ext-ext4-64meta.ea"))
				if m == nil {
					t.Fatal("no user.huge in ext-ext4-64meta.ea")
				}
				size, _ := strconv.Atoi(string(m[1]))
				if want := strings.Repeat("45", size); got["user.huge"] != want && vo.xattrs {
					t.Errorf("%s: user.huge (ea_inode, %d bytes 'E') not restored: %d hex digits", e.Path, size, len(got["user.huge"]))
				}
				delete(got, "user.huge")
			}
			want := e.Xattrs
			if !vo.xattrs {
				want = nil
			}
			if len(got) != len(want) {
				t.Errorf("%s: xattrs %v, want %v", e.Path, got, want)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s: xattr %s = %q, want %q", e.Path, k, got[k], v)
				}
			}
		}
	}
	// prealloc: unwritten extents over stale data extract as zeros, and
	// (sparse) allocate nothing.
	if _, ok := dstat["/prealloc"]; ok {
		b, err := os.ReadFile(filepath.Join(dir, "prealloc"))
		if err != nil || len(b) != 65536 || !zero.Is(b) {
			t.Errorf("/prealloc: %d bytes, zero=%v, %v", len(b), zero.Is(b), err)
		}
		if bytes.Contains(b, []byte("STALE")) {
			t.Errorf("/prealloc: stale data leaked")
		}
		var st unix.Stat_t
		if vo.sparse && unix.Lstat(filepath.Join(dir, "prealloc"), &st) == nil && st.Blocks != 0 {
			t.Errorf("/prealloc: %d blocks allocated for unwritten extents", st.Blocks)
		}
	}
	// Nothing else was made.
	n := 0
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		rel := "/" + strings.TrimPrefix(p, dir)
		rel = filepath.Clean(rel)
		if rel == "/lost+found" || rel == "/prealloc" {
			return nil
		}
		if !inMan[rel] {
			t.Errorf("%s: extracted but not in the source tree", rel)
		}
		n++
		return nil
	})
	if n != len(man) {
		t.Errorf("%d entries extracted, manifest has %d", n, len(man))
	}
}

func listXattrs(t *testing.T, p string) map[string]string {
	out := map[string]string{}
	buf := make([]byte, 1<<16)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		t.Errorf("%s: listxattr: %v", p, err)
		return out
	}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 1<<16)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Errorf("%s: getxattr %s: %v", p, name, err)
			continue
		}
		out[name] = hex.EncodeToString(v[:m])
	}
	return out
}

// tmpfsDir returns a temporary directory on tmpfs (/dev/shm): it keeps
// holes, takes user xattrs of any size (the ea_inode fixture has a
// 20000-byte one that ext4 without ea_inode cannot store), and is fast.
func tmpfsDir(t testing.TB) string {
	d, err := os.MkdirTemp("/dev/shm", "imgtool-extract-")
	if err != nil {
		t.Fatalf("need /dev/shm (tmpfs) for extraction tests: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("these tests restore owners and device nodes: run them as root (as .ci/run does)")
	}
}

// TestRunAgainstManifest extracts every fixture with all metadata and
// compares the result with the source tree and debugfs.
func TestRunAgainstManifest(t *testing.T) {
	requireRoot(t)
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			fsys, img := openFixture(t, name)
			before := fileSHA256(t, img)
			dest := filepath.Join(tmpfsDir(t), "out")
			var last Progress
			calls := 0
			rep, err := Run(context.Background(), ext.NewVFS(fsys), []string{"/"}, dest, Options{
				Owner: true, Devices: true, Xattrs: true, Count: true,
				Progress: func(p Progress) { last = p; calls++ },
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range rep.Problems {
				t.Errorf("problem: %s", p)
			}
			want := int64(len(loadManifest(t)) + 1) // + lost+found
			if _, err := fsys.Lookup("/prealloc"); err == nil {
				want++
			}
			if f, _ := Count(context.Background(), ext.NewVFS(fsys), []string{"/"}); f != want {
				t.Errorf("Count: %d entries, want %d", f, want)
			}
			// The totals come from a concurrent walk: a run faster than
			// it ends without them.
			if !last.Done || calls == 0 || last.Files != want || (last.TotalFiles != want && last.TotalFiles != 0) {
				t.Errorf("last progress %+v after %d calls", last, calls)
			}
			verifyTree(t, dest, name, verifyOpts{atime: true, sparse: true, xattrs: true})
			if after := fileSHA256(t, img); after != before {
				t.Errorf("image changed: %s -> %s", before, after)
			}
			t.Log(rep.Summary())
		})
	}
}

// TestTarWithGNUTar streams each fixture as tar and unpacks it with GNU tar.
func TestTarWithGNUTar(t *testing.T) {
	requireRoot(t)
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			fsys, img := openFixture(t, name)
			before := fileSHA256(t, img)
			tmp := tmpfsDir(t)
			tf, err := os.Create(filepath.Join(tmp, "x.tar"))
			if err != nil {
				t.Fatal(err)
			}
			rep, err := RunTar(context.Background(), ext.NewVFS(fsys), []string{"/"}, tf, Options{Xattrs: true})
			tf.Close()
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range rep.Problems {
				if !strings.Contains(p.Reason(), "socket") {
					t.Errorf("problem: %s", p)
				}
			}
			dest := filepath.Join(tmp, "out")
			os.Mkdir(dest, 0o755)
			cmd := exec.Command("tar", "-x", "-p", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-f", tf.Name(), "-C", dest)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("GNU tar: %v\n%s", err, out)
			}
			verifyTree(t, dest, name, verifyOpts{xattrs: true})
			if after := fileSHA256(t, img); after != before {
				t.Errorf("image changed")
			}
		})
	}
}
