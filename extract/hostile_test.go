package extract

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"os/exec"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/vfs"
)

// badNamesFromFsck lists the directory entry names e2fsck -fn complained
// about in the hostile-ext fixture (fixtures/golden/hostile-ext.fsck), in
// its cat -v spelling (NUL as ^@).
func badNamesFromFsck(t *testing.T) []string {
	re := regexp.MustCompile(`(?m)^(?:Entry|Duplicate entry) '([^']*)'`)
	set := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(string(fixturetest.Golden(t, "hostile-ext.fsck")), -1) {
		set[m[1]] = true
	}
	var out []string
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	// The entry with a zero-length name never reaches the extractor as a
	// name: ext skips it and reports it as damage to the directory
	// (TestHostileEmptyName checks that report).
	if len(out) > 0 && out[0] == "" {
		out = out[1:]
	}
	if len(out) < 6 {
		t.Fatalf("hostile-ext.fsck names only %v", out)
	}
	return out
}

func catV(s string) string { return strings.ReplaceAll(s, "\x00", "^@") }

func openHostile(t *testing.T) (*ext.FS, string) {
	p := fixturetest.Image(t, "hostile-ext")
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	fsys, err := ext.Open(f, st.Size(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return fsys, p
}

// refusedNames returns the last path element of every refused entry.
func refusedNames(rep *Report) []string {
	var out []string
	for _, p := range rep.Problems {
		if p.Kind == Refused {
			i := strings.LastIndex(p.Path, "/")
			// a name containing '/' is reported whole: cut at the parent
			for _, dir := range []string{"/d1/", "/"} {
				if strings.HasPrefix(p.Path, dir) && !strings.Contains(strings.TrimPrefix(p.Path, dir), "d1/") {
					i = len(dir) - 1
					break
				}
			}
			out = append(out, catV(p.Path[i+1:]))
		}
	}
	sort.Strings(out)
	return out
}

// TestHostileDisk extracts the hostile image: nothing may appear outside
// DEST (a canary directory next to it, which the planted symlinks point
// at, stays as it was), no symlink is followed, and every entry e2fsck
// calls bad is refused and reported.
func TestHostileDisk(t *testing.T) {
	for _, force := range []bool{false, true} {
		fsys, img := openHostile(t)
		before := fileSHA256(t, img)
		tmp := t.TempDir()
		outside := filepath.Join(tmp, "outside")
		os.Mkdir(outside, 0o755)
		canary := filepath.Join(outside, "canary")
		os.WriteFile(canary, []byte("canary\n"), 0o644)
		old := time.Unix(1000000000, 0)
		os.Chtimes(outside, old, old)
		dest := filepath.Join(tmp, "dest")
		rep, err := Run(context.Background(), ext.NewVFS(fsys), []string{"/"}, dest, Options{Force: force, Owner: true, Xattrs: true})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Partial() {
			t.Errorf("force=%v: report not partial", force)
		}
		got := refusedNames(rep)
		want := badNamesFromFsck(t)
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("force=%v: refused %q, e2fsck's bad names %q", force, got, want)
			for _, p := range rep.Problems {
				t.Log(p)
			}
		}
		// The canary directory is untouched.
		ents, _ := os.ReadDir(outside)
		if len(ents) != 1 {
			t.Errorf("force=%v: %d entries in the directory outside DEST", force, len(ents))
		}
		if st, _ := os.Stat(outside); !st.ModTime().Equal(old) {
			t.Errorf("force=%v: the directory outside DEST was modified", force)
		}
		// Everything in DEST is inside it; symlinks were made, not followed.
		var paths []string
		filepath.Walk(dest, func(p string, info os.FileInfo, err error) error {
			if err != nil {
				t.Error(err)
				return nil
			}
			rel, _ := filepath.Rel(dest, p)
			if strings.HasPrefix(rel, "..") {
				t.Errorf("%s is outside DEST", p)
			}
			if info.Mode()&os.ModeSymlink != 0 {
				rel += "@"
			}
			paths = append(paths, rel)
			return nil
		})
		sort.Strings(paths)
		want2 := ". d1 d1/abs@ evil@ good.txt lost+found"
		if strings.Join(paths, " ") != want2 {
			t.Errorf("force=%v: DEST holds %q, want %q", force, strings.Join(paths, " "), want2)
		}
		if b, err := os.ReadFile(filepath.Join(dest, "good.txt")); err != nil || string(b) != "payload\n" {
			t.Errorf("good.txt: %q %v", b, err)
		}
		if after := fileSHA256(t, img); after != before {
			t.Errorf("image changed")
		}
	}
}

// TestHostileTar: the tar stream holds no member whose name leaves the
// archive root, and the same entries are refused.
func TestHostileTar(t *testing.T) {
	fsys, _ := openHostile(t)
	var buf bytes.Buffer
	rep, err := RunTar(context.Background(), ext.NewVFS(fsys), []string{"/"}, &buf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := refusedNames(rep), badNamesFromFsck(t); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("refused %q, e2fsck's bad names %q", got, want)
	}
	tr := tar.NewReader(&buf)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if strings.Contains(h.Name, "..") || strings.Contains(h.Name, "\x00") {
			t.Errorf("member %q", h.Name)
		}
	}
	if got := strings.Join(names, " "); got != "./ ./lost+found/ ./evil ./d1/ ./d1/abs ./good.txt" {
		t.Errorf("members: %s", got)
	}
}

// TestCorruptInodeTable zeroes the inode table block holding /seq.txt's
// inode (located by debugfs imap on a private copy): extraction reports
// the lost entries, goes on with the rest, and does not panic.
func TestCorruptInodeTable(t *testing.T) {
	for _, name := range []string{"ext4", "ext2-1k"} {
		t.Run(name, func(t *testing.T) {
			img := fixturetest.Copy(t, "ext-"+name)
			out, err := runTool("debugfs", "-R", "imap /seq.txt", img)
			if err != nil {
				t.Fatalf("debugfs imap: %v %s", err, out)
			}
			m := regexp.MustCompile(`located at block (\d+), offset`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("debugfs imap: %s", out)
			}
			fsys0, _ := openFixture(t, name)
			bs := fsys0.BlockSize()
			var blk int64
			for _, c := range m[1] {
				blk = blk*10 + int64(c-'0')
			}
			f, err := os.OpenFile(img, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(make([]byte, bs), blk*bs); err != nil {
				t.Fatal(err)
			}
			st, _ := f.Stat()
			fsys, err := ext.Open(f, st.Size(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rep, err := Run(context.Background(), ext.NewVFS(fsys), []string{"/"}, filepath.Join(tmpfsDir(t), "out"), Options{Devices: true})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Partial() {
				t.Fatal("a zeroed inode table block gave no problems")
			}
			found := false
			for _, p := range rep.Problems {
				if p.Path == "/seq.txt" {
					found = true
				}
			}
			if !found {
				t.Errorf("/seq.txt not reported: %v", rep.Problems)
			}
			if rep.Files < 5000 {
				t.Errorf("only %d files extracted: the damage stopped the run", rep.Files)
			}
			t.Log(rep.Summary())
			for _, p := range rep.Problems {
				t.Log(p)
			}
		})
	}
}

func runTool(name string, args ...string) (string, error) {
	b, err := exec.Command(name, args...).CombinedOutput()
	return string(b), err
}

// TestAddForSalvage drives the Extractor directly, as a salvage walker
// would: inodes placed under made-up directories, bad names refused.
func TestAddForSalvage(t *testing.T) {
	fsys, _ := openFixture(t, "ext4")
	ino, err := fsys.Lookup("/seq.txt")
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := fsys.Lookup("/.config")
	dest := filepath.Join(tmpfsDir(t), "rescue")
	x, err := NewDisk(context.Background(), ext.NewVFS(fsys), dest, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		names []string
		ino   uint32
		tree  bool
	}{
		{[]string{"#lost", "#" + "5034"}, ino, false},
		{[]string{"#lost", "cfg"}, sub, true},
		{[]string{"..", "escape"}, ino, false},
		{[]string{"#lost", "a/b"}, ino, false},
	} {
		if step.tree {
			err = x.AddTree(context.Background(), step.names, "inode", vfs.Ino(step.ino))
		} else {
			err = x.Add(context.Background(), step.names, "inode", vfs.Ino(step.ino))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	rep, err := x.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 2 || rep.Problems[0].Kind != Refused || rep.Problems[1].Kind != Refused {
		t.Errorf("problems %v, want the two bad names refused", rep.Problems)
	}
	man := loadManifest(t)
	for _, c := range []struct{ path, src string }{{"#lost/#5034", "/seq.txt"}, {"#lost/cfg/app/settings", "/.config/app/settings"}} {
		for _, e := range man {
			if e.Path == c.src && fileSHA256(t, filepath.Join(dest, c.path)) != e.SHA256 {
				t.Errorf("%s differs from %s", c.path, c.src)
			}
		}
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(dest), "escape")); err == nil {
		t.Errorf("\"..\" escaped DEST")
	}
}

// TestHostileEmptyName (issue 13.4): the entry with name_len 0 (inode 17 in
// debugfs's listing, "zero-length name" in e2fsck's) is a reported loss in
// the directory /, with the inode and the byte offset of the entry, never
// a silent skip.
func TestHostileEmptyName(t *testing.T) {
	ls := string(fixturetest.Golden(t, "hostile-ext.ls"))
	fsck := string(fixturetest.Golden(t, "hostile-ext.fsck"))
	if !strings.Contains(ls, "/17/100644/0/0//8/") || !strings.Contains(fsck, "Entry '' in / (2) has a zero-length name") {
		t.Fatalf("goldens do not show the empty name as inode 17 in /")
	}
	fsys, _ := openHostile(t)
	rep, err := Run(context.Background(), ext.NewVFS(fsys), []string{"/"}, filepath.Join(t.TempDir(), "dest"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range rep.Problems {
		r := p.Reason()
		if p.Path == "/" && strings.Contains(r, "inode 17 has an empty name") && strings.Contains(r, "at offset 0x") {
			found = true
		}
	}
	if !found || !rep.Partial() {
		t.Errorf("no loss reported for the nameless inode 17 in /; problems:")
		for _, p := range rep.Problems {
			t.Log(p)
		}
	}
}
