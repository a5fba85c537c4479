package backup

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"golang.org/x/sys/unix"
)

// The otherfs fixtures hold one source tree, described by
// fixtures/golden/otherfs-manifest.json (python's lstat, sha256 and
// readlink of the tree the tools copied).
type otherEntry struct {
	Path    string  `json:"path"`
	Type    string  `json:"type"`
	Mode    uint32  `json:"mode"`
	UID     uint32  `json:"uid"`
	GID     uint32  `json:"gid"`
	Size    int64   `json:"size"`
	MtimeNs int64   `json:"mtime_ns"`
	Ino     uint64  `json:"ino"`
	SHA256  string  `json:"sha256"`
	Target  *string `json:"target"`
}

// FAT, squashfs and ISO 9660 volumes are backed up like ext: the dump,
// restored by stock restore (-r and -x) from the backup file, reproduces
// the fixture's source manifest: paths, types, content; modes, owners,
// mtimes and symlink targets where the format stores them; the documented
// defaults where it does not (FAT: 0755 directories, 0644 files, 0:0).
func TestBackupOtherFSStockRestore(t *testing.T) {
	need(t, "restore")
	var man []otherEntry
	if err := json.Unmarshal(fixturetest.Golden(t, "otherfs-manifest.json"), &man); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"otherfs-fat32", "otherfs-squashfs", "otherfs-iso"} {
		t.Run(name, func(t *testing.T) {
			img := fixturetest.Image(t, name)
			dir := t.TempDir()
			c := localConfig(t, dir, img, "")
			r := &Runner{StateDir: filepath.Join(dir, "state"), Level: 1, Host: "h", Logger: slog.New(slog.DiscardHandler),
				Now: func() time.Time { return time.Date(2026, 1, 2, 2, 0, 0, 0, time.Local) }}
			res, err := r.Run(context.Background(), []*Config{c})
			if err != nil {
				t.Fatalf("backup: %v", err)
			}
			if len(res[0].Backups) != 1 {
				t.Fatalf("backups %+v, skipped %+v", res[0].Backups, res[0].Skipped)
			}
			m := res[0].Backups[0]
			// No base yet: level 0 whatever was asked.
			if m.Level != 0 {
				t.Errorf("level %d", m.Level)
			}
			if n, err := Verify(filepath.Join(dir, "backup", "g"), false); err != nil || n != 1 {
				t.Errorf("verify: %d %v", n, err)
			}
			raw := filepath.Join(dir, "raw.dump")
			decompressTo(t, filepath.Join(dir, "backup", "g", m.File), m.Compress, raw)

			fat := strings.Contains(name, "fat")
			want := map[string]otherEntry{}
			for _, e := range man {
				if fat && (e.Path == "/links" || strings.HasPrefix(e.Path, "/links/") || e.Path == "/ünïcödé.txt") {
					continue // the FAT fixture script leaves these out
				}
				want[e.Path] = e
			}
			for _, mode := range []string{"-r", "-x"} {
				out := t.TempDir()
				args := []string{mode, "-y", "-f", raw}
				if mode == "-x" {
					args = []string{"-x", "-a", "-o", "-y", "-f", raw}
				}
				sh(t, out, "restore", args...)
				os.Remove(filepath.Join(out, "restoresymtable"))
				compareOther(t, name+" restore "+mode, out, want, fat, strings.Contains(name, "squashfs"))
			}
		})
	}
}

func decompressTo(t *testing.T, src, compress, dst string) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := NewDecompressor(compress, bufio.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	o, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := io.Copy(o, zr); err != nil {
		t.Fatal(err)
	}
}

func compareOther(t *testing.T, what, dest string, want map[string]otherEntry, fat, hardlinks bool) {
	t.Helper()
	got := map[string]bool{}
	filepath.Walk(dest, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		rel := strings.TrimPrefix(p, dest)
		if rel == "" {
			rel = "/"
		}
		got[rel] = true
		return nil
	})
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: extra %q", what, p)
		}
	}
	srcIno := map[uint64]uint64{}
	for p, e := range want {
		if !got[p] {
			t.Errorf("%s: missing %q", what, p)
			continue
		}
		full := filepath.Join(dest, p)
		var st unix.Stat_t
		if err := unix.Lstat(full, &st); err != nil {
			t.Fatal(err)
		}
		typ := map[uint32]string{unix.S_IFDIR: "dir", unix.S_IFREG: "file", unix.S_IFLNK: "symlink"}[st.Mode&unix.S_IFMT]
		if typ != e.Type {
			t.Errorf("%s: %s: type %s, source %s", what, p, typ, e.Type)
			continue
		}
		if typ == "file" {
			b, err := os.ReadFile(full)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			if int64(len(b)) != e.Size || hex.EncodeToString(sum[:]) != e.SHA256 {
				t.Errorf("%s: %s: %d bytes, content differs from the source (%d bytes)", what, p, len(b), e.Size)
			}
			if p == "/big.sparse" && st.Blocks*512 > 2<<20+64<<10 {
				t.Errorf("%s: %s: %d bytes allocated: holes not kept", what, p, st.Blocks*512)
			}
		}
		mode, uid, gid := e.Mode, e.UID, e.GID
		if fat {
			// FAT stores none of these: the documented defaults.
			mode, uid, gid = 0o644, 0, 0
			if typ == "dir" {
				mode = 0o755
			}
		}
		if typ != "symlink" && st.Mode&0o7777 != mode {
			t.Errorf("%s: %s: mode %#o, want %#o", what, p, st.Mode&0o7777, mode)
		}
		if st.Uid != uid || st.Gid != gid {
			t.Errorf("%s: %s: owner %d:%d, want %d:%d", what, p, st.Uid, st.Gid, uid, gid)
		}
		mt, src := time.Unix(st.Mtim.Unix()), time.Unix(0, e.MtimeNs)
		if p != "/" && typ == "file" {
			if fat && !mt.Equal(src.Truncate(2*time.Second)) || !fat && mt.Unix() != src.Unix() {
				t.Errorf("%s: %s: mtime %v, source %v", what, p, mt, src)
			}
		}
		if e.Target != nil {
			if tg, err := os.Readlink(full); err != nil || tg != *e.Target {
				t.Errorf("%s: %s: target %q %v, source %q", what, p, tg, err, *e.Target)
			}
		}
		if hardlinks && typ == "file" {
			if prev, ok := srcIno[e.Ino]; ok && prev != st.Ino {
				t.Errorf("%s: %s: not hard-linked with the other name of source inode %d", what, p, e.Ino)
			}
			srcIno[e.Ino] = st.Ino
		}
	}
}

// A FAT volume has no stable inode numbers: a forced incremental becomes
// a level 0, and says why.
func TestBackupFATLevelZeroOnly(t *testing.T) {
	img := fixturetest.Image(t, "otherfs-fat32")
	dir := t.TempDir()
	c := localConfig(t, dir, img, "")
	for i, lvl := range []int{0, 1} {
		r := &Runner{StateDir: filepath.Join(dir, "state"), Level: lvl, Host: "h", Logger: slog.New(slog.DiscardHandler),
			Now: func() time.Time { return time.Date(2026, 1, 1+i, 2, 0, 0, 0, time.Local) }}
		res, err := r.Run(context.Background(), []*Config{c})
		if err != nil {
			t.Fatal(err)
		}
		if got := res[0].Backups[0].Level; got != 0 {
			t.Errorf("run %d (--level %d): level %d, want 0", i, lvl, got)
		}
	}
}
