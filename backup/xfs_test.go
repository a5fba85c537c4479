package backup

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/vfs"
	"github.com/imgtool/imgtool/xfs"
	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"
)

type fileVolume struct {
	*os.File
	n int64
}

func (v fileVolume) Size() int64 { return v.n }

// maxCtime is the newest ctime of the XFS filesystem in img.
func maxCtime(t *testing.T, img string) time.Time {
	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	f, err := xfs.Open(fileVolume{fh, st.Size()}, "incr", vfs.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var m time.Time
	f.WalkInodes(context.Background(), func(_ vfs.Ino, s *vfs.Stat, err error) error {
		if err == nil && s.Ctime.After(m) {
			m = s.Ctime
		}
		return nil
	})
	return m
}

// An XFS filesystem backed up at level 0, changed (xfs-incr-1 is the same
// filesystem after creates, deletes, an append, a rename, chmod/chown and
// an xattr), then at level 1: stock `restore -r` of both, in order,
// reproduces the changed tree as the kernel showed it (content, type,
// mode, owner, mtime, symlink targets), and the level 1 holds only what
// changed.
func TestBackupXFSLevel0Then1StockRestore(t *testing.T) {
	need(t, "restore")
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	if err := fixturetest.CopySparse(fixturetest.Image(t, "xfs-incr-0"), disk); err != nil {
		t.Fatal(err)
	}
	c := localConfig(t, dir, disk, "")
	t0 := maxCtime(t, disk).Add(500 * time.Millisecond)
	r := &Runner{StateDir: filepath.Join(dir, "state"), Level: 0, Host: "h", Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return t0 }}
	res, err := r.Run(context.Background(), []*Config{c})
	if err != nil || len(res[0].Backups) != 1 {
		t.Fatalf("level 0: %v %+v", err, res)
	}
	l0 := res[0].Backups[0]
	if l0.FSType != "xfs" || l0.Level != 0 {
		t.Fatalf("level 0 manifest %+v", l0)
	}
	if err := fixturetest.CopySparse(fixturetest.Image(t, "xfs-incr-1"), disk); err != nil {
		t.Fatal(err)
	}
	t1 := maxCtime(t, disk).Add(time.Second)
	if !t1.After(t0) {
		t.Fatalf("the changed image has no later ctime (%v, %v)", t0, t1)
	}
	r.Level, r.Now = 1, func() time.Time { return t1 }
	res, err = r.Run(context.Background(), []*Config{c})
	if err != nil || len(res[0].Backups) != 1 {
		t.Fatalf("level 1: %v %+v", err, res)
	}
	l1 := res[0].Backups[0]
	if l1.Level != 1 {
		t.Fatalf("level 1 manifest %+v", l1)
	}
	if l1.Files >= l0.Files/2 {
		t.Errorf("level 1 dumped %d inodes, level 0 %d: not incremental", l1.Files, l0.Files)
	}
	t.Logf("level 0: %d inodes dumped; level 1: %d", l0.Files, l1.Files)
	out := t.TempDir()
	for _, m := range []*Manifest{l0, l1} {
		raw := filepath.Join(dir, fmt.Sprintf("l%d.dump", m.Level))
		decompressTo(t, filepath.Join(dir, "backup", "g", m.File), m.Compress, raw)
		sh(t, out, "restore", "-r", "-y", "-f", raw)
	}
	os.Remove(filepath.Join(out, "restoresymtable"))
	compareXFSManifest(t, out, "xfs-incr-1")
}

// compareXFSManifest compares a restored tree with an XFS fixture
// manifest (fixtures/scripts/xfs-lib.sh): every entry with its type,
// mode, owner, size, content or target, mtime to the microsecond (dump's
// precision; not for directories and symlinks, which restore -r dates
// itself), and nothing else.
func compareXFSManifest(t *testing.T, root, name string) {
	t.Helper()
	fh, err := os.Open(filepath.Join(fixturetest.Dir(), "golden", name+".manifest.xz"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	zr, err := xz.NewReader(fh)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
			c := strings.Split(l, "\t")
			want[c[0]] = c
		}
	}
	if len(want) < 10 {
		t.Fatalf("manifest has %d rows", len(want))
	}
	got := map[string]bool{}
	filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err == nil && p != root {
			rel, _ := filepath.Rel(root, p)
			got[rel] = true
		}
		return nil
	})
	var paths []string
	for p := range want {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		w := want[p]
		delete(got, p)
		var st unix.Stat_t
		full := filepath.Join(root, p)
		if err := unix.Lstat(full, &st); err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		g := []string{p, "?", fmt.Sprintf("%o", st.Mode&0o7777), fmt.Sprint(st.Uid), fmt.Sprint(st.Gid)}
		var sum string
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			g[1] = "dir"
			sum = "-"
		case unix.S_IFLNK:
			g[1] = "symlink"
			sum, _ = os.Readlink(full)
		case unix.S_IFREG:
			g[1] = "file"
			b, _ := os.ReadFile(full)
			sum = sha256hex(b)
		}
		if strings.Join(g, " ") != strings.Join(w[:5], " ") || sum != w[10] {
			t.Errorf("%s: got %v %s, want %v %s", p, g, short(sum), w[:5], short(w[10]))
		}
		// dump(8) inodes carry microseconds.
		var wns int64
		fmt.Sscan(w[7], &wns)
		if g[1] == "file" && st.Mtim.Nano()/1000 != wns/1000 {
			t.Errorf("%s: mtime %d, kernel %s", p, st.Mtim.Nano(), w[7])
		}
	}
	for p := range got {
		t.Errorf("%s: restored, not in the changed tree", p)
	}
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func short(s string) string {
	if len(s) > 16 {
		return s[:16]
	}
	return s
}
