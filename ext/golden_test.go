package ext

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// TestStatAgainstDebugfs compares Inode with `debugfs stat` for every path:
// inode number, flags, generation, size, xattr block, links, block count,
// extra_isize and every time (seconds from debugfs's own date, so the
// epoch bits are checked; nanoseconds from its raw extra field).
func TestStatAgainstDebugfs(t *testing.T) {
	head := regexp.MustCompile(`^Inode: (\d+)\s+Type: \S+\s+Mode:\s+(\d+)\s+Flags: 0x([0-9a-f]+)`)
	gen := regexp.MustCompile(`^Generation: (\d+)`)
	size := regexp.MustCompile(`Size: (\d+)$`)
	acl := regexp.MustCompile(`^File ACL: (\d+)`)
	links := regexp.MustCompile(`^Links: (\d+)\s+Blockcount: (\d+)`)
	tm := regexp.MustCompile(`^\s*(a|c|m|cr)time: 0x([0-9a-f]+)(?::([0-9a-f]+))? -- (.*)$`)
	extra := regexp.MustCompile(`^Size of extra inode fields: (\d+)`)
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			fsys, _ := openFixture(t, name)
			n := 0
			for p, text := range debugfsSections(t, "ext-"+name+".stat") {
				ino, err := fsys.Lookup(p)
				if err != nil {
					t.Errorf("%s: %v", p, err)
					continue
				}
				in, err := fsys.Inode(ino)
				if err != nil {
					t.Errorf("%s: %v", p, err)
					continue
				}
				n++
				seenExtra := false
				for _, line := range strings.Split(text, "\n") {
					check := func(what string, got any, want string) {
						if fmt.Sprint(got) != want {
							t.Errorf("%s: %s = %v, debugfs says %s (%q)", p, what, got, want, line)
						}
					}
					if m := head.FindStringSubmatch(line); m != nil {
						check("ino", in.Ino, m[1])
						check("mode", fmt.Sprintf("%04o", in.Mode&0o7777), fmt.Sprintf("%04s", strings.TrimLeft(m[2], "0")))
						check("flags", strconv.FormatUint(uint64(in.Flags), 16), m[3])
					}
					if m := gen.FindStringSubmatch(line); m != nil {
						check("generation", in.Generation, m[1])
					}
					if strings.HasPrefix(line, "User:") {
						if m := size.FindStringSubmatch(line); m != nil {
							check("size", in.Size, m[1])
						}
					}
					if m := acl.FindStringSubmatch(line); m != nil {
						check("file acl", in.FileACL, m[1])
					}
					if m := links.FindStringSubmatch(line); m != nil {
						check("links", in.Links, m[1])
						check("blockcount", in.Blocks, m[2])
					}
					if m := extra.FindStringSubmatch(line); m != nil {
						check("extra_isize", in.ExtraIsize, m[1])
						seenExtra = true
					}
					if m := tm.FindStringSubmatch(line); m != nil {
						var got time.Time
						switch m[1] {
						case "a":
							got = in.Atime
						case "c":
							got = in.Ctime
						case "m":
							got = in.Mtime
						case "cr":
							got = in.Crtime
							if !in.HasCrtime {
								t.Errorf("%s: no crtime, debugfs shows one", p)
							}
						}
						d, err := time.Parse("Mon Jan _2 15:04:05 2006", strings.TrimSpace(m[4]))
						if err != nil {
							t.Fatalf("%s: date %q: %v", p, m[4], err)
						}
						check(m[1]+"time seconds", got.Unix(), fmt.Sprint(d.Unix()))
						if m[3] != "" {
							x, _ := strconv.ParseUint(m[3], 16, 32)
							check(m[1]+"time ns", got.Nanosecond(), fmt.Sprint(x>>2))
						}
					}
				}
				if !seenExtra && in.ExtraIsize != 0 {
					t.Errorf("%s: extra_isize %d, debugfs shows none", p, in.ExtraIsize)
				}
			}
			if n < 40 {
				t.Errorf("only %d inodes compared", n)
			}
		})
	}
}

// dumpe2fsFields parses `dumpe2fs -h` into "Key: value" pairs.
func dumpe2fsFields(t *testing.T, name string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(string(fixturetest.Golden(t, "ext-"+name+".dumpe2fs")), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// TestSuperblockAgainstDumpe2fs compares Superblock with `dumpe2fs -h`.
func TestSuperblockAgainstDumpe2fs(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			fsys, _ := openFixture(t, name)
			sb := fsys.Superblock()
			d := dumpe2fsFields(t, name)
			check := func(key string, got any) {
				t.Helper()
				if w, ok := d[key]; !ok || fmt.Sprint(got) != w {
					t.Errorf("%s: got %v, dumpe2fs %q", key, got, w)
				}
			}
			check("Filesystem volume name", sb.VolumeName)
			check("Filesystem UUID", uuidString(sb.UUID))
			check("Inode count", sb.InodesCount)
			check("Block count", sb.BlocksCount)
			check("Reserved block count", sb.RBlocksCount)
			check("Free blocks", sb.FreeBlocksCount)
			check("Free inodes", sb.FreeInodesCount)
			check("First block", sb.FirstDataBlock)
			check("Block size", sb.BlockSize)
			check("Blocks per group", sb.BlocksPerGroup)
			check("Inodes per group", sb.InodesPerGroup)
			check("Inode size", sb.InodeSize)
			check("First inode", sb.FirstIno)
			check("Mount count", sb.MountCount)
			if sb.HasJournal() {
				check("Journal inode", sb.JournalInum)
			}
			if _, ok := d["Group descriptor size"]; ok {
				check("Group descriptor size", sb.DescSize)
			}
			state := "not clean"
			if sb.Clean() {
				state = "clean"
			}
			check("Filesystem state", state)
			check("Filesystem created", sb.Created.Format("Mon Jan _2 15:04:05 2006"))
			if d["Last mounted on"] != "<not available>" || sb.LastMounted != "" {
				t.Errorf("last mounted %q, dumpe2fs %q", sb.LastMounted, d["Last mounted on"])
			}
			want := strings.Fields(d["Filesystem features"])
			got := sb.Features()
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("features %v, dumpe2fs %v", got, want)
			}
			if sb.NeedsRecovery() {
				t.Errorf("needs_recovery set on a clean image")
			}
			if uint64(len(fsys.Groups())) != (sb.BlocksCount-uint64(sb.FirstDataBlock)+uint64(sb.BlocksPerGroup)-1)/uint64(sb.BlocksPerGroup) {
				t.Errorf("%d groups", len(fsys.Groups()))
			}
		})
	}
}

func uuidString(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// TestNoNotesOnCleanImages reads every inode, directory, xattr set and file
// of each fixture: e2fsck -fn passed on all of them, so any Note (a checksum
// mismatch, bad extra_isize) is a bug in the reader's checksum code.
func TestNoNotesOnCleanImages(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			fsys, _ := openFixture(t, name)
			paths := walkInodes(t, fsys)
			for p, ino := range paths {
				if _, err := fsys.Xattrs(ino); err != nil {
					t.Errorf("%s: %v", p, err)
				}
				if _, err := fsys.BlockMap(ino); err != nil {
					t.Errorf("%s: %v", p, err)
				}
			}
			for _, n := range fsys.Notes() {
				t.Errorf("note: %v", n)
			}
			if len(paths) < 5000 {
				t.Errorf("only %d paths", len(paths))
			}
		})
	}
}

// TestUnwrittenReadsZeros: /prealloc's unwritten extents lie over blocks
// that hold the "STALE-DATA!" pattern (the fixture script made sure); the
// reader must return zeros.
func TestUnwrittenReadsZeros(t *testing.T) {
	for _, name := range []string{"ext4", "ext4-nocsum", "ext4-64meta", "ext4-64k", "ext4-bigalloc"} {
		t.Run(name, func(t *testing.T) {
			fsys, img := openFixture(t, name)
			ino, err := fsys.Lookup("/prealloc")
			if err != nil {
				t.Fatal(err)
			}
			// the physical blocks according to debugfs
			secs := debugfsSections(t, "ext-"+name+".blocks")
			blocks := strings.Fields(secs["/prealloc"])
			if len(blocks) == 0 {
				t.Fatal("no blocks for /prealloc in the golden")
			}
			raw := make([]byte, fsys.BlockSize())
			stale := 0
			for _, b := range blocks {
				n, _ := strconv.ParseInt(b, 10, 64)
				if _, err := img.ReadAt(raw, n*fsys.BlockSize()); err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(raw, []byte("STALE-DATA!")) {
					stale++
				}
			}
			if stale != len(blocks) {
				t.Fatalf("only %d of %d blocks hold the stale pattern: the fixture does not test anything", stale, len(blocks))
			}
			m, err := fsys.BlockMap(ino)
			if err != nil || len(m) == 0 {
				t.Fatalf("BlockMap: %v %v", m, err)
			}
			for _, e := range m {
				if !e.Unwritten {
					t.Errorf("extent %+v is not unwritten", e)
				}
			}
			f, err := fsys.OpenInode(ino)
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
			if err != nil {
				t.Fatal(err)
			}
			if len(data) != 65536 {
				t.Fatalf("read %d bytes, want 65536", len(data))
			}
			if !bytes.Equal(data, make([]byte, 65536)) {
				t.Fatalf("unwritten extent read as non-zero data: %q...", data[:32])
			}
		})
	}
}

// TestSparseHoles: the sparse files' block maps leave holes, and the holes
// read as zeros (the content itself is compared in TestManifest).
func TestSparseHoles(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			fsys, _ := openFixture(t, name)
			for _, p := range []string{"/sparse40", "/sparse70"} {
				ino, err := fsys.Lookup(p)
				if err != nil {
					t.Fatal(err)
				}
				m, err := fsys.BlockMap(ino)
				if err != nil {
					t.Fatal(err)
				}
				f, _ := fsys.OpenInode(ino)
				var mapped uint64
				for _, e := range m {
					mapped += e.Len
				}
				if mapped*uint64(fsys.BlockSize()) > uint64(f.Size())/100 {
					t.Errorf("%s: %d blocks mapped for %d bytes: holes not kept", p, mapped, f.Size())
				}
				// DataRanges cover exactly the mapped bytes, and reading
				// only them reproduces the manifest's content
				var inRanges int64
				h := sha256.New()
				pos := int64(0)
				for _, r := range f.DataRanges() {
					io.CopyN(h, zeroReader{}, r.Off-pos)
					io.Copy(h, io.NewSectionReader(f, r.Off, r.Len))
					pos = r.Off + r.Len
					inRanges += r.Len
				}
				io.CopyN(h, zeroReader{}, f.Size()-pos)
				if got := hex.EncodeToString(h.Sum(nil)); got != manifestSHA(t, p) {
					t.Errorf("%s: data ranges + zeros give sha256 %s, want the manifest's", p, got)
				}
				if inRanges == 0 || uint64(inRanges) > mapped*uint64(fsys.BlockSize()) {
					t.Errorf("%s: %d bytes in data ranges, %d blocks mapped", p, inRanges, mapped)
				}
				// a hole in the middle of the file reads as zeros
				buf := make([]byte, 3*fsys.BlockSize())
				if _, err := f.ReadAt(buf, 10<<20); err != nil || !bytes.Equal(buf, make([]byte, len(buf))) {
					t.Errorf("%s: hole at 10 MiB not zero: %v", p, err)
				}
			}
		})
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func manifestSHA(t *testing.T, p string) string {
	for _, e := range loadManifest(t) {
		if e.Path == p {
			return e.SHA256
		}
	}
	t.Fatalf("%s not in the manifest", p)
	return ""
}

// TestEAInode: debugfs ea_set stored user.huge (its golden gives the size)
// in a separate inode on the ea_inode fixture.
func TestEAInode(t *testing.T) {
	fsys, _ := openFixture(t, "ext4-64meta")
	ea := string(fixturetest.Golden(t, "ext-ext4-64meta.ea"))
	m := regexp.MustCompile(`user\.huge \((\d+)\)`).FindStringSubmatch(ea)
	if m == nil {
		t.Fatalf("no user.huge in the golden:\n%s", ea)
	}
	want, _ := strconv.Atoi(m[1])
	ino, err := fsys.Lookup("/xattr-small")
	if err != nil {
		t.Fatal(err)
	}
	xs, err := fsys.Xattrs(ino)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range xs {
		if x.Name == "user.huge" {
			if x.ValueInode == 0 {
				t.Errorf("user.huge is not in an ea_inode")
			}
			if len(x.Value) != want || !bytes.Equal(x.Value, bytes.Repeat([]byte("E"), want)) {
				t.Errorf("user.huge: %d bytes %.20q, want %d x 'E'", len(x.Value), x.Value, want)
			}
			return
		}
	}
	t.Errorf("user.huge missing: %v", xs)
}

// TestImageNotWritten reads a whole fixture through every API and checks the
// image file's hash did not change.
func TestImageNotWritten(t *testing.T) {
	p := fixturetest.Image(t, "ext-ext4")
	before := fixturetest.SHA256File(t, p)
	fsys, _ := openFixture(t, "ext4")
	for _, ino := range walkInodes(t, fsys) {
		fsys.Xattrs(ino)
		if f, err := fsys.OpenInode(ino); err == nil {
			io.Copy(io.Discard, io.NewSectionReader(f, 0, f.Size()))
		}
	}
	if after := fixturetest.SHA256File(t, p); after != before {
		t.Fatalf("image changed: %s -> %s", before, after)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm()&0o222 != 0 {
		t.Fatalf("cached fixture is writable (%v): the test would not catch writes", err)
	}
}

// TestJournalInode reads the journal inode (8) whole and compares it with
// `debugfs dump <8>`: a large extent- or indirect-mapped system file.
func TestJournalInode(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			fsys, _ := openFixture(t, name)
			want := strings.TrimSpace(string(fixturetest.Golden(t, "ext-"+name+".journal.sha256")))
			f, err := fsys.OpenInode(JournalIno)
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			if _, err := io.Copy(h, io.NewSectionReader(f, 0, f.Size())); err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != want {
				t.Errorf("journal (%d bytes) sha256 %s, debugfs dump gives %s", f.Size(), got, want)
			}
			if sb := fsys.Superblock(); sb.HasJournal() && (sb.JournalInum != JournalIno || f.Size() < 1<<20) {
				t.Errorf("journal inode %d, %d bytes", sb.JournalInum, f.Size())
			}
		})
	}
}
