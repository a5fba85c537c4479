package ext

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// The fixtures built by fixtures/scripts/ext-fixtures.sh.
var fixtures = []string{"ext2-1k", "ext3", "ext4", "ext4-1k-inline", "ext4-nocsum", "ext4-64meta", "ext4-64k", "ext4-bigalloc"}

// manifestEntry is one path of the source tree, as python's os.lstat saw it
// before mke2fs -d copied it into every image.
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

func loadManifest(t *testing.T) []manifestEntry {
	var m []manifestEntry
	if err := json.Unmarshal(fixturetest.Golden(t, "ext-manifest.json"), &m); err != nil {
		t.Fatal(err)
	}
	if len(m) < 5000 {
		t.Fatalf("manifest has only %d entries", len(m))
	}
	return m
}

func openFixture(t testing.TB, name string) (*FS, *os.File) {
	t.Helper()
	f, size := fixturetest.Open(t, fixturetest.Image(t, "ext-"+name))
	fsys, err := Open(f, size, nil)
	if err != nil {
		t.Fatalf("%s: Open: %v", name, err)
	}
	return fsys, f
}

// extraPaths exist in the images but not in the source tree.
var extraPaths = map[string]bool{"/lost+found": true, "/prealloc": true}

func fileSHA(t *testing.T, fsys *FS, ino uint32) string {
	f, err := fsys.OpenInode(ino)
	if err != nil {
		t.Fatalf("OpenInode(%d): %v", ino, err)
	}
	h := sha256.New()
	if n, err := io.Copy(h, f); err != nil || n != f.Size() {
		t.Fatalf("inode %d: copied %d of %d: %v", ino, n, f.Size(), err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestManifest walks every fixture and compares each path with the source
// tree's manifest: type and mode, owner, size, content, link targets, mtime,
// hard links, device numbers and xattrs.
func TestManifest(t *testing.T) {
	man := loadManifest(t)
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			fsys, _ := openFixture(t, name)
			large := fsys.Superblock().InodeSize > 128
			groups := map[uint64]uint32{} // source inode -> image inode
			paths := walkInodes(t, fsys)
			for _, e := range man {
				ino, ok := paths[e.Path]
				if !ok {
					t.Errorf("%s: not found by ReadDirInode walk", e.Path)
					continue
				}
				if !strings.HasPrefix(e.Path, "/big/") || strings.HasSuffix(e.Path, "0") {
					if lino, err := fsys.Lookup(e.Path); err != nil || lino != ino {
						t.Errorf("%s: Lookup = %d, %v; walk found %d", e.Path, lino, err, ino)
					}
				}
				in, err := fsys.Inode(ino)
				if err != nil {
					t.Errorf("%s: Inode: %v", e.Path, err)
					continue
				}
				if uint32(in.Mode) != e.Mode {
					t.Errorf("%s: mode %o, want %o", e.Path, in.Mode, e.Mode)
				}
				if in.UID != e.UID || in.GID != e.GID {
					t.Errorf("%s: uid/gid %d/%d, want %d/%d", e.Path, in.UID, in.GID, e.UID, e.GID)
				}
				if prev, ok := groups[e.InodeGroup]; ok && prev != ino {
					t.Errorf("%s: inode %d, but its hard link has %d", e.Path, ino, prev)
				}
				groups[e.InodeGroup] = ino
				if !in.IsDir() {
					if int(in.Links) != e.Nlink {
						t.Errorf("%s: links %d, want %d", e.Path, in.Links, e.Nlink)
					}
					if int64(in.Size) != e.Size {
						t.Errorf("%s: size %d, want %d", e.Path, in.Size, e.Size)
					}
				}
				// mtime: debugfs changed the root's; 128-byte inodes keep
				// only 32 signed bits of seconds (mke2fs -d truncates).
				if e.Path != "/" {
					want := time.Unix(0, e.MtimeNs).UTC()
					if !large {
						want = time.Unix(int64(int32(want.Unix())), 0).UTC()
					}
					if !in.Mtime.Equal(want) {
						t.Errorf("%s: mtime %v, want %v", e.Path, in.Mtime, want)
					}
				}
				if e.SHA256 != "" {
					if got := fileSHA(t, fsys, ino); got != e.SHA256 {
						t.Errorf("%s: content sha256 %s, want %s", e.Path, got, e.SHA256)
					}
				}
				if e.Target != nil {
					got, err := fsys.Readlink(ino)
					if err != nil || got != *e.Target {
						t.Errorf("%s: Readlink = %q, %v; want %q", e.Path, got, err, *e.Target)
					}
				}
				if e.RdevMajor != nil {
					ma, mi := in.Rdev()
					if ma != *e.RdevMajor || mi != *e.RdevMinor {
						t.Errorf("%s: rdev %d:%d, want %d:%d", e.Path, ma, mi, *e.RdevMajor, *e.RdevMinor)
					}
				}
				if in.Type() != ModeSymlink {
					xs, err := fsys.Xattrs(ino)
					if err != nil {
						t.Errorf("%s: Xattrs: %v", e.Path, err)
					}
					got := map[string]string{}
					for _, x := range xs {
						if x.Name == "system.data" || (name == "ext4-64meta" && x.Name == "user.huge") {
							continue // inline data; set by debugfs (TestEAInode)
						}
						got[x.Name] = hex.EncodeToString(x.Value)
					}
					if len(got) != len(e.Xattrs) {
						t.Errorf("%s: xattrs %v, want %v", e.Path, got, e.Xattrs)
					}
					for k, v := range e.Xattrs {
						if got[k] != v {
							t.Errorf("%s: xattr %s = %q, want %q", e.Path, k, got[k], v)
						}
					}
				}
			}

			// Every path in the image is in the manifest (via io/fs).
			inMan := map[string]bool{}
			for _, e := range man {
				inMan[e.Path] = true
			}
			seen := 0
			err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				ap := "/" + p
				if p == "." {
					ap = "/"
				}
				if extraPaths[ap] {
					if d.IsDir() {
						return fs.SkipDir
					}
					return nil
				}
				if !inMan[ap] {
					t.Errorf("%s: in the image but not in the manifest", ap)
				}
				seen++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if seen != len(man) {
				t.Errorf("walked %d paths, manifest has %d", seen, len(man))
			}
		})
	}
}

// walkInodes maps every path to its inode number with ReadDirInode.
func walkInodes(t *testing.T, fsys *FS) map[string]uint32 {
	out := map[string]uint32{"/": RootIno}
	var walk func(dir string, ino uint32, depth int)
	walk = func(dir string, ino uint32, depth int) {
		if depth > 20 {
			t.Fatalf("%s: too deep", dir)
		}
		ents, err := fsys.ReadDirInode(ino)
		if err != nil {
			t.Errorf("%s: ReadDirInode: %v", dir, err)
		}
		for _, e := range ents {
			if e.Name == "." || e.Name == ".." {
				continue
			}
			p := strings.TrimSuffix(dir, "/") + "/" + e.Name
			out[p] = e.Ino
			if e.FileType == FTDir {
				walk(p, e.Ino, depth+1)
			}
		}
	}
	walk("/", RootIno, 0)
	return out
}

// debugfsSections splits a golden captured with `debugfs -f` into the
// output of each command, keyed by the command's argument (a path).
func debugfsSections(t *testing.T, golden string) map[string]string {
	out := map[string]string{}
	var key string
	var cur strings.Builder
	flush := func() {
		if key != "" {
			out[key] = cur.String()
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(fixturetest.Golden(t, golden)))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "debugfs: "); ok {
			flush()
			i := strings.IndexByte(rest, ' ')
			arg := rest[i+1:]
			arg = strings.TrimPrefix(arg, "-p ")
			key = strings.Trim(arg, `"`)
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	if len(out) == 0 {
		t.Fatalf("%s: no sections", golden)
	}
	return out
}

// TestLsAgainstDebugfs compares ReadDirInode with `debugfs ls -p` for every
// directory: names, inode numbers, modes, uid/gid and sizes.
func TestLsAgainstDebugfs(t *testing.T) {
	// the tiny images include one without the filetype feature, where the
	// entry types come from the inodes
	for _, name := range append(slices.Clone(fixtures), "tiny-ext4", "tiny-ext2", "tiny-inline", "tiny-nofiletype") {
		t.Run(name, func(t *testing.T) {
			fsys, _ := openFixture(t, name)
			secs := debugfsSections(t, "ext-"+name+".ls")
			for dir, text := range secs {
				ino, err := fsys.Lookup(dir)
				if err != nil {
					t.Errorf("%s: %v", dir, err)
					continue
				}
				ents, err := fsys.ReadDirInode(ino)
				if err != nil {
					t.Errorf("%s: ReadDirInode: %v", dir, err)
					continue
				}
				got := map[string]DirEntry{}
				for _, e := range ents {
					got[e.Name] = e
				}
				want := 0
				for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
					f := strings.Split(strings.TrimSuffix(strings.TrimPrefix(line, "/"), "/"), "/")
					if len(f) != 6 {
						t.Fatalf("%s: bad ls -p line %q", dir, line)
					}
					if f[0] == "0" {
						continue // an unused entry (empty inline directory)
					}
					want++
					wino, _ := strconv.ParseUint(f[0], 10, 32)
					wmode, _ := strconv.ParseUint(f[1], 8, 32)
					e, ok := got[f[4]]
					if !ok {
						t.Errorf("%s: %q missing", dir, f[4])
						continue
					}
					if uint64(e.Ino) != wino {
						t.Errorf("%s/%s: inode %d, debugfs %d", dir, f[4], e.Ino, wino)
					}
					in, err := fsys.Inode(e.Ino)
					if err != nil {
						t.Errorf("%s/%s: %v", dir, f[4], err)
						continue
					}
					if uint64(in.Mode) != wmode || fmt.Sprint(in.UID) != f[2] || fmt.Sprint(in.GID) != f[3] {
						t.Errorf("%s/%s: mode %o %d/%d, debugfs %s", dir, f[4], in.Mode, in.UID, in.GID, line)
					}
					if f[5] != "" && fmt.Sprint(in.Size) != f[5] {
						t.Errorf("%s/%s: size %d, debugfs %s", dir, f[4], in.Size, f[5])
					}
					if e.FileType != modeToFT(in.Mode) {
						t.Errorf("%s/%s: dirent type %d, inode mode %o", dir, f[4], e.FileType, in.Mode)
					}
				}
				if want != len(ents) {
					t.Errorf("%s: %d entries, debugfs lists %d", dir, len(ents), want)
				}
			}
		})
	}
}

// TestBlocksAgainstDebugfs compares BlockMap with `debugfs blocks` (the
// physical blocks in logical order) and, on extent filesystems, with the
// leaf lines of `debugfs ex`.
func TestBlocksAgainstDebugfs(t *testing.T) {
	exLine := regexp.MustCompile(`^\s*(\d+)/\s*(\d+)\s+\d+/\s*\d+\s+(\d+)\s+-\s+(\d+)\s+(\d+)\s+-\s+(\d+)\s+(\d+)\s*(\S*)`)
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			fsys, _ := openFixture(t, name)
			checked := 0
			for p, text := range debugfsSections(t, "ext-"+name+".blocks") {
				ino, err := fsys.Lookup(p)
				if err != nil {
					t.Errorf("%s: %v", p, err)
					continue
				}
				m, err := fsys.BlockMap(ino)
				if err != nil {
					t.Errorf("%s: BlockMap: %v", p, err)
					continue
				}
				meta, err := fsys.MetadataBlocks(ino)
				if err != nil {
					t.Errorf("%s: MetadataBlocks: %v", p, err)
				}
				isMeta := map[string]bool{}
				for _, b := range meta {
					isMeta[strconv.FormatUint(b, 10)] = true
				}
				var got []string
				for _, e := range m {
					for i := uint64(0); i < e.Len; i++ {
						got = append(got, strconv.FormatUint(e.Physical+i, 10))
					}
				}
				// debugfs lists the indirect / extent-index blocks too,
				// each before the blocks it maps.
				var wantData, wantMeta []string
				for _, b := range strings.Fields(text) {
					if isMeta[b] {
						wantMeta = append(wantMeta, b)
					} else {
						wantData = append(wantData, b)
					}
				}
				if g, w := strings.Join(got, " "), strings.Join(wantData, " "); g != w {
					t.Errorf("%s: blocks\n got %.200s\nwant %.200s", p, g, w)
				}
				if len(wantMeta) != len(meta) {
					t.Errorf("%s: metadata blocks %v, debugfs lists %v", p, meta, wantMeta)
				}
				checked++
			}
			if checked < 30 {
				t.Errorf("only %d block lists checked", checked)
			}
			if !fsys.Superblock().hasExtents() {
				return
			}
			leaves := 0
			for p, text := range debugfsSections(t, "ext-"+name+".ex") {
				ino, err := fsys.Lookup(p)
				if err != nil {
					t.Errorf("%s: %v", p, err)
					continue
				}
				m, _ := fsys.BlockMap(ino)
				var want []Extent
				for _, line := range strings.Split(text, "\n") {
					s := exLine.FindStringSubmatch(line)
					if s == nil || s[1] != s[2] { // not a leaf line
						continue
					}
					u := func(i int) uint64 { v, _ := strconv.ParseUint(s[i], 10, 64); return v }
					want = append(want, Extent{Logical: u(3), Physical: u(5), Len: u(7), Unwritten: s[8] == "Uninit"})
					if u(4)-u(3)+1 != u(7) || u(6)-u(5)+1 != u(7) {
						t.Fatalf("%s: inconsistent ex line %q", p, line)
					}
				}
				leaves += len(want)
				if fmt.Sprint(m) != fmt.Sprint(want) {
					t.Errorf("%s: extents\n got %v\nwant %v", p, m, want)
				}
			}
			if leaves < 15 {
				t.Errorf("only %d leaf extents checked", leaves)
			}
		})
	}
}
