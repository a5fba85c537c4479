package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imgtool/imgtool/extract"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"golang.org/x/sys/unix"
)

// The ext fixtures (fixtures/scripts/ext-fixtures.sh). Their goldens are
// debugfs's own output: ext-NAME.ls (`ls -p DIR`), .stat, .ex, and the
// source tree's manifest ext-manifest.json.
var extFixtures = []string{"ext2-1k", "ext3", "ext4", "ext4-1k-inline", "ext4-nocsum", "ext4-64meta", "ext4-64k", "ext4-bigalloc"}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
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

// keepImage fails the test if the image's bytes change during it.
func keepImage(t *testing.T, img string) {
	before := sha256File(t, img)
	t.Cleanup(func() {
		if after := sha256File(t, img); after != before {
			t.Errorf("%s changed: %s -> %s", img, before, after)
		}
	})
}

// debugfsSections splits a debugfs -f transcript into "command arg" -> output.
func debugfsSections(t *testing.T, golden, cmd string) map[string]string {
	re := regexp.MustCompile(`^debugfs: ` + cmd + ` "?(.*?)"?$`)
	out := map[string]string{}
	cur := ""
	for _, line := range strings.Split(string(fixturetest.Golden(t, golden)), "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			cur = m[1]
			out[cur] = ""
			continue
		}
		if cur != "" {
			out[cur] += line + "\n"
		}
	}
	return out
}

// TestLsAgainstDebugfs: `ls -l --json` of every directory agrees with
// debugfs `ls -p` on names, inode numbers, modes, owners and sizes.
func TestLsAgainstDebugfs(t *testing.T) {
	for _, name := range extFixtures {
		t.Run(name, func(t *testing.T) {
			img := fixturetest.Image(t, "ext-"+name)
			keepImage(t, img)
			n := 0
			for dir, text := range debugfsSections(t, "ext-"+name+".ls", "ls -p") {
				out, errs, code := imgtool(t, "ls", img, dir, "-l", "--json")
				if code != 0 {
					t.Errorf("ls %s: exit %d: %s", dir, code, errs)
					continue
				}
				var got []lsEntry
				if err := json.Unmarshal(jsonKey(t, out, "entries"), &got); err != nil {
					t.Fatalf("ls %s: %v\n%s", dir, err, out)
				}
				byName := map[string]lsEntry{}
				for _, e := range got {
					byName[e.Name] = e
				}
				want := 0
				for _, line := range strings.Split(text, "\n") {
					// /ino/mode/uid/gid/name/size/
					f := strings.Split(line, "/")
					if len(f) != 8 || f[5] == "." || f[5] == ".." || f[1] == "0" {
						continue // debugfs shows an inline directory's free space as inode 0
					}
					want++
					e, ok := byName[f[5]]
					if !ok {
						t.Errorf("%s: %q missing from ls", dir, f[5])
						continue
					}
					n++
					mode, _ := strconv.ParseUint(f[2], 8, 32)
					check := func(what string, got any, want string) {
						if fmt.Sprint(got) != want {
							t.Errorf("%s/%s: %s %v, debugfs %s", dir, f[5], what, got, want)
						}
					}
					check("inode", e.Inode, f[1])
					check("mode", e.Mode, fmt.Sprintf("%04o", mode&0o7777))
					check("uid", e.UID, f[3])
					check("gid", e.GID, f[4])
					if f[6] != "" { // debugfs leaves directories' size out
						check("size", e.Size, f[6])
					}
					if e.Mode == "" || e.ModeString[1:] != modeString(uint32(mode))[1:] {
						t.Errorf("%s/%s: mode string %q", dir, f[5], e.ModeString)
					}
				}
				if want != len(got) {
					t.Errorf("%s: ls shows %d entries, debugfs %d", dir, len(got), want)
				}
			}
			if n < 5000 {
				t.Errorf("only %d entries compared", n)
			}
		})
	}
}

// TestStatAgainstDebugfs: stat --json agrees with debugfs stat (inode,
// links, block count, size, flags, times with nanoseconds) and debugfs ex
// (leaf extents, unwritten flag) for every path.
func TestStatAgainstDebugfs(t *testing.T) {
	head := regexp.MustCompile(`^Inode: (\d+)\s+Type: \S+\s+Mode:\s+(\d+)\s+Flags: 0x([0-9a-f]+)`)
	links := regexp.MustCompile(`^Links: (\d+)\s+Blockcount: (\d+)`)
	size := regexp.MustCompile(`^User:\s+(\d+)\s+Group:\s+(\d+).*Size: (\d+)$`)
	tm := regexp.MustCompile(`^\s*(a|c|m|cr)time: 0x([0-9a-f]+)(?::([0-9a-f]+))?`)
	leaf := regexp.MustCompile(`^\s*(\d+)/\s*(\d+)\s+\d+/\s*\d+\s+(\d+) -\s*(\d+)\s+(\d+) -\s*(\d+)\s+(\d+)\s*(Uninit)?`)
	for _, name := range extFixtures {
		t.Run(name, func(t *testing.T) {
			img := fixturetest.Image(t, "ext-"+name)
			keepImage(t, img)
			exs := debugfsSections(t, "ext-"+name+".ex", "ex")
			n := 0
			for p, text := range debugfsSections(t, "ext-"+name+".stat", "stat") {
				out, errs, code := imgtool(t, "stat", img, p, "--json")
				if code != 0 {
					t.Errorf("stat %s: exit %d: %s", p, code, errs)
					continue
				}
				var st statInfo
				if err := json.Unmarshal([]byte(out), &st); err != nil {
					t.Fatal(err)
				}
				n++
				check := func(what string, got any, want string) {
					if fmt.Sprint(got) != want {
						t.Errorf("%s: %s %v, debugfs %s", p, what, got, want)
					}
				}
				for _, line := range strings.Split(text, "\n") {
					if m := head.FindStringSubmatch(line); m != nil {
						check("inode", st.Inode, m[1])
						check("flags", strconv.FormatUint(uint64(st.Flags), 16), m[3])
						mode, _ := strconv.ParseUint(m[2], 8, 32)
						check("mode", st.Mode, fmt.Sprintf("%04o", mode))
					}
					if m := links.FindStringSubmatch(line); m != nil {
						check("links", st.Links, m[1])
						check("blocks", st.Blocks, m[2])
					}
					if m := size.FindStringSubmatch(line); m != nil {
						check("uid", st.UID, m[1])
						check("gid", st.GID, m[2])
						check("size", st.Size, m[3])
					}
					if m := tm.FindStringSubmatch(line); m != nil {
						sec, _ := strconv.ParseUint(m[2], 16, 32)
						s := int64(int32(uint32(sec)))
						var ns int64
						if m[3] != "" {
							x, _ := strconv.ParseUint(m[3], 16, 32)
							s += int64(x&3) << 32
							ns = int64(x >> 2)
						}
						got := map[string]string{"a": st.Atime, "c": st.Ctime, "m": st.Mtime, "cr": st.Crtime}[m[1]]
						gt, err := time.Parse(time.RFC3339Nano, got)
						if err != nil {
							t.Errorf("%s: %stime %q: %v", p, m[1], got, err)
						} else if gt.Unix() != s || int64(gt.Nanosecond()) != ns {
							t.Errorf("%s: %stime %s, debugfs %d.%09d", p, m[1], got, s, ns)
						}
					}
				}
				ex, ok := exs[p]
				if !ok || !strings.Contains(text, "EXTENTS:") {
					continue
				}
				var want []statExtent
				for _, line := range strings.Split(ex, "\n") {
					m := leaf.FindStringSubmatch(line)
					if m == nil || m[1] != m[2] {
						continue // header or index node
					}
					lo, _ := strconv.ParseUint(m[3], 10, 64)
					ph, _ := strconv.ParseUint(m[5], 10, 64)
					ln, _ := strconv.ParseUint(m[7], 10, 64)
					want = append(want, statExtent{lo, ph, ln, m[8] != ""})
				}
				if fmt.Sprint(want) != fmt.Sprint(st.Extents) {
					t.Errorf("%s: extents %v, debugfs ex %v", p, st.Extents, want)
				}
			}
			if n < 40 {
				t.Errorf("only %d paths compared", n)
			}
		})
	}
}

type manifestEntry struct {
	Path   string  `json:"path"`
	Mode   uint32  `json:"mode"`
	SHA256 string  `json:"sha256"`
	Target *string `json:"target"`
}

// TestCatAgainstManifest: cat of every regular file (and through every
// symlink that resolves inside the filesystem) has the source's sha256.
func TestCatAgainstManifest(t *testing.T) {
	var man []manifestEntry
	if err := json.Unmarshal(fixturetest.Golden(t, "ext-manifest.json"), &man); err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for _, e := range man {
		sums[e.Path] = e.SHA256
	}
	for _, name := range []string{"ext2-1k", "ext4-1k-inline", "ext4"} {
		t.Run(name, func(t *testing.T) {
			img := fixturetest.Image(t, "ext-"+name)
			keepImage(t, img)
			n := 0
			for _, e := range man {
				if e.SHA256 == "" || (strings.HasPrefix(e.Path, "/big/") && !strings.HasSuffix(e.Path, "00")) {
					continue
				}
				out, errs, code := imgtool(t, "cat", img, e.Path)
				sum := sha256.Sum256([]byte(out))
				if code != 0 || hex.EncodeToString(sum[:]) != e.SHA256 {
					t.Errorf("cat %s: exit %d, sha256 %x, want %s: %s", e.Path, code, sum, e.SHA256, errs)
				}
				n++
			}
			// sym-fast -> seq.txt, relative, inside the filesystem.
			out, _, code := imgtool(t, "cat", img, "/sym-fast")
			if sum := sha256.Sum256([]byte(out)); code != 0 || hex.EncodeToString(sum[:]) != sums["/seq.txt"] {
				t.Errorf("cat /sym-fast: exit %d, does not give /seq.txt", code)
			}
			// /sym-abs -> /etc/passwd resolves in the image, where it does not exist.
			if _, errs, code := imgtool(t, "cat", img, "/sym-abs"); code != exitError || !strings.Contains(errs, "no such file") {
				t.Errorf("cat /sym-abs: exit %d %q (must not read the host's /etc/passwd)", code, errs)
			}
			if _, errs, code := imgtool(t, "cat", img, "/sub"); code != exitError || !strings.Contains(errs, "directory") {
				t.Errorf("cat /sub: exit %d %q", code, errs)
			}
			// prealloc: unwritten extents over stale data read as zeros.
			if name == "ext4" {
				out, _, code := imgtool(t, "cat", img, "/prealloc")
				if code != 0 || len(out) != 65536 || strings.Trim(out, "\x00") != "" {
					t.Errorf("cat /prealloc: exit %d, %d bytes, not all zero", code, len(out))
				}
			}
			if n < 20 {
				t.Errorf("only %d files compared", n)
			}
		})
	}
}

// TestLsRecursiveAndErrors: -R lists the whole tree (each manifest path
// once), plain ls prints names, and addressing errors name the volume.
func TestLsRecursiveAndErrors(t *testing.T) {
	var man []manifestEntry
	if err := json.Unmarshal(fixturetest.Golden(t, "ext-manifest.json"), &man); err != nil {
		t.Fatal(err)
	}
	img := fixturetest.Image(t, "ext-ext4")
	keepImage(t, img)
	out, errs, code := imgtool(t, "ls", img, "/", "-R", "--json")
	if code != 0 {
		t.Fatalf("ls -R: exit %d: %s", code, errs)
	}
	var got []lsEntry
	if err := json.Unmarshal(jsonKey(t, out, "entries"), &got); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range got {
		seen[e.Path]++
	}
	for _, e := range man {
		if e.Path != "/" && seen[e.Path] != 1 {
			t.Errorf("%s listed %d times", e.Path, seen[e.Path])
		}
	}
	if len(got) != len(man)-1+2 { // no "/", plus lost+found and prealloc
		t.Errorf("ls -R: %d entries, manifest %d", len(got), len(man))
	}
	out, _, code = imgtool(t, "ls", img, "/sub")
	if code != 0 || out != "hl-c\n" {
		t.Errorf("ls /sub: %d %q", code, out)
	}
	if _, errs, code := imgtool(t, "ls", img, "/nope"); code != exitError || !strings.Contains(errs, "/nope: no such file") {
		t.Errorf("ls /nope: %d %q", code, errs)
	}
	dom0 := fixturetest.Image(t, "dom0")
	if _, errs, code := imgtool(t, "ls", dom0, "/"); code != exitError || !strings.Contains(errs, "choose one of") {
		t.Errorf("ls on a multi-filesystem image without a volume: %d %q", code, errs)
	}
	if _, errs, code := imgtool(t, "ls", img, "etc"); code != exitUsage {
		t.Errorf("ls with a bad file address: %d %q", code, errs)
	}
}

// TestExtractCLI: the extract command end to end: a tree (compared with
// the manifest on sha256 and mode), a single file into a directory and
// to a new path, refusing to overwrite without --force, tar to stdout
// read back by GNU tar, and the exit codes.
func TestExtractCLI(t *testing.T) {
	var man []manifestEntry
	if err := json.Unmarshal(fixturetest.Golden(t, "ext-manifest.json"), &man); err != nil {
		t.Fatal(err)
	}
	img := fixturetest.Image(t, "ext-ext4")
	keepImage(t, img)
	tmp := t.TempDir()
	dest := filepath.Join(tmp, "tree")
	_, errs, code := imgtool(t, "extract", img, "/", dest, "--xattrs", "--numeric-owner")
	if code != 0 || !strings.Contains(errs, "no errors") {
		t.Fatalf("extract: exit %d: %s", code, errs)
	}
	for _, e := range man {
		p := filepath.Join(dest, e.Path)
		st, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%s: %v", e.Path, err)
			continue
		}
		if e.SHA256 != "" && sha256File(t, p) != e.SHA256 {
			t.Errorf("%s: content differs", e.Path)
		}
		if got := uint32(st.Mode().Perm()); got != e.Mode&0o777 {
			t.Errorf("%s: perm %o, want %o", e.Path, got, e.Mode&0o777)
		}
	}
	// Again: every file exists now.
	_, errs, code = imgtool(t, "extract", img, "/sub", filepath.Join(dest, "sub"))
	if code != exitPartial || !strings.Contains(errs, "--force") || !strings.Contains(errs, "/sub/hl-c") {
		t.Errorf("extract over existing files: exit %d: %s", code, errs)
	}
	if _, errs, code = imgtool(t, "extract", img, "/sub", filepath.Join(dest, "sub"), "--force"); code != 0 {
		t.Errorf("extract --force: exit %d: %s", code, errs)
	}
	// A file into an existing directory, and to a new name.
	if _, errs, code = imgtool(t, "extract", img, "/seq.txt", tmp); code != 0 || sha256File(t, filepath.Join(tmp, "seq.txt")) != sha(man, "/seq.txt") {
		t.Errorf("extract file into dir: exit %d: %s", code, errs)
	}
	if _, errs, code = imgtool(t, "extract", img, "/sym-fast", filepath.Join(tmp, "link")); code != 0 {
		t.Errorf("extract symlink: exit %d: %s", code, errs)
	} else if target, err := os.Readlink(filepath.Join(tmp, "link")); err != nil || target != "seq.txt" {
		t.Errorf("extracted symlink: %q %v", target, err)
	}
	// Tar to stdout, unpacked by GNU tar.
	out, errs, code := imgtool(t, "extract", img, "/.config", "--tar", "-")
	if code != 0 {
		t.Fatalf("--tar -: exit %d: %s", code, errs)
	}
	tdir := filepath.Join(tmp, "fromtar")
	os.Mkdir(tdir, 0o755)
	cmd := exec.Command("tar", "-x", "-p", "-C", tdir)
	cmd.Stdin = strings.NewReader(out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GNU tar: %v: %s", err, b)
	}
	if sha256File(t, filepath.Join(tdir, "app/settings")) != sha(man, "/.config/app/settings") {
		t.Errorf("tar: settings differs")
	}
	// Usage errors.
	if _, _, code = imgtool(t, "extract", img, "/"); code != exitUsage {
		t.Errorf("no DEST, no --tar: exit %d", code)
	}
	if _, _, code = imgtool(t, "extract", img, "/", dest, "--tar", "-"); code != exitUsage {
		t.Errorf("DEST and --tar: exit %d", code)
	}
	if _, errs, code = imgtool(t, "extract", img, "/nope", dest); code != exitError || !strings.Contains(errs, "/nope") {
		t.Errorf("missing source: exit %d %q", code, errs)
	}
}

func sha(man []manifestEntry, p string) string {
	for _, e := range man {
		if e.Path == p {
			return e.SHA256
		}
	}
	return "?"
}

// TestExtractHostileCLI: on the hostile image (names with '/', NUL, "..",
// symlinks planted before same-named directories) extract exits 3, lists
// what it refused, and writes nothing outside DEST.
func TestExtractHostileCLI(t *testing.T) {
	img := fixturetest.Image(t, "hostile-ext")
	keepImage(t, img)
	for _, args := range [][]string{{}, {"--force"}, {"--tar", "-"}} {
		tmp := t.TempDir()
		outside := filepath.Join(tmp, "outside")
		os.Mkdir(outside, 0o755)
		dest := filepath.Join(tmp, "dest")
		cmdArgs := append([]string{"extract", img, "/"}, args...)
		if len(args) == 0 || args[0] != "--tar" {
			cmdArgs = append(cmdArgs, dest)
		}
		_, errs, code := imgtool(t, cmdArgs...)
		if code != exitPartial {
			t.Errorf("%v: exit %d, want %d: %s", args, code, exitPartial, errs)
		}
		for _, want := range []string{`refused: /a/b (inode 15)`, `"/NUL\x00NAME"`, `/d1/../../escaped`, `refused: /evil (inode 13)`, `refused: /d1/abs (inode 23)`, "problems"} {
			if !strings.Contains(errs, want) {
				t.Errorf("%v: stderr lacks %q:\n%s", args, want, errs)
			}
		}
		if ents, _ := os.ReadDir(outside); len(ents) != 0 {
			t.Errorf("%v: something was written outside DEST: %v", args, ents)
		}
		if len(args) == 0 || args[0] != "--tar" {
			if target, err := os.Readlink(filepath.Join(dest, "evil")); err != nil || target != "../outside" {
				t.Errorf("%v: evil: %q %v", args, target, err)
			}
		}
	}
}

// TestExtractReportAndProgress: --report writes the problems as JSON;
// the progress line shows counts, totals, rate and ETA; stat and ls name
// a damaged or missing path with its address.
func TestExtractReportAndProgress(t *testing.T) {
	img := fixturetest.Image(t, "hostile-ext")
	tmp := t.TempDir()
	rfile := filepath.Join(tmp, "report.json")
	_, errs, code := imgtool(t, "extract", img, "/", filepath.Join(tmp, "d"), "--report", rfile)
	if code != exitPartial {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var r reportJSON
	b, err := os.ReadFile(rfile)
	if err != nil || json.Unmarshal(b, &r) != nil {
		t.Fatalf("report: %v %s", err, b)
	}
	refused := 0
	for _, p := range r.Problems {
		if p.Kind == "refused" && p.Reason != "" && p.Inode != 0 {
			refused++
		}
	}
	if refused != 7 || r.Files != 1 || r.Dirs != 3 || r.Symlinks != 2 {
		t.Errorf("report: %d refused, %d files: %s", refused, r.Files, b)
	}

	var buf strings.Builder
	bar := &progressBar{w: &buf}
	bar.update(extract.Progress{Files: 10, TotalFiles: 40, Bytes: 1 << 20, TotalBytes: 4 << 20, Elapsed: time.Second})
	bar.finish()
	for _, want := range []string{"25%", "10/40 files", "1.0 MiB/4.0 MiB", "1.0 MiB/s", "ETA 3s", "\r\033[K"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("progress line %q lacks %q", buf.String(), want)
		}
	}
	if isTerminal(&buf) {
		t.Error("a strings.Builder is not a terminal")
	}
}

// TestLsNestedGuest: a file address through the nested guest's clashing
// VG; the listing agrees with debugfs `ls -l /home/alice` of that
// filesystem (captured by fixtures/scripts/dom0.sh) on inode, mode, owner
// and size.
func TestLsNestedGuest(t *testing.T) {
	img := fixturetest.Image(t, "dom0")
	keepImage(t, img)
	out, errs, code := imgtool(t, "ls", img, "VolGroup00/domu1/VolGroup00/LogVol00:/home/alice", "-l", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var got []lsEntry
	if err := json.Unmarshal(jsonKey(t, out, "entries"), &got); err != nil {
		t.Fatal(err)
	}
	byName := map[string]lsEntry{}
	for _, e := range got {
		byName[e.Name] = e
	}
	n := 0
	for _, line := range strings.Split(string(fixturetest.Golden(t, "dom0-guestroot-ls.txt")), "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || f[8] == "." || f[8] == ".." {
			continue
		}
		e, ok := byName[f[8]]
		mode, _ := strconv.ParseUint(f[1], 8, 32)
		if !ok || fmt.Sprint(e.Inode) != f[0] || e.Mode != fmt.Sprintf("%04o", mode&0o7777) ||
			fmt.Sprint(e.UID) != f[3] || fmt.Sprint(e.GID) != f[4] || fmt.Sprint(e.Size) != f[5] {
			t.Errorf("%s: %+v, debugfs %q", f[8], e, line)
		}
		n++
	}
	if n != len(got) || n < 5 {
		t.Errorf("compared %d, ls gave %d", n, len(got))
	}
	if _, errs, code := imgtool(t, "cat", img, "VolGroup00/domu1/VolGroup00/LogVol00:/nope"); code != exitError ||
		!strings.Contains(errs, "VolGroup00/domu1/VolGroup00/LogVol00:/nope") {
		t.Errorf("error does not name the address: %q", errs)
	}
	if _, errs, code := imgtool(t, "ls", img, "VolGroup00/LogVol01:/"); code != exitError || !strings.Contains(errs, "swap") {
		t.Errorf("ls on swap: %d %q", code, errs)
	}
}

// TestExtractCorruptCLI: with the inode table block holding /seq.txt's
// inode zeroed (located by debugfs imap, on a private copy), extract
// reports the lost entries with the inode's offset, finishes the rest,
// exits 3, and stat on a damaged inode exits non-zero without a panic.
func TestExtractCorruptCLI(t *testing.T) {
	img := fixturetest.Copy(t, "ext-ext4")
	out, err := exec.Command("debugfs", "-R", "imap /seq.txt", img).CombinedOutput()
	m := regexp.MustCompile(`located at block (\d+), offset`).FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("debugfs imap: %v %s", err, out)
	}
	blk, _ := strconv.ParseInt(string(m[1]), 10, 64)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(make([]byte, 4096), blk*4096)
	f.Close()
	_, errs, code := imgtool(t, "extract", img, "/", filepath.Join(t.TempDir(), "out"))
	if code != exitPartial || !strings.Contains(errs, "lost: /seq.txt") || !strings.Contains(errs, "at offset 0x") {
		t.Errorf("exit %d: %s", code, errs)
	}
	if _, errs, code := imgtool(t, "cat", img, "/seq.txt"); code == 0 || strings.Contains(errs, "panic") {
		t.Errorf("cat of a zeroed inode: exit %d %q", code, errs)
	}
	if _, errs, code := imgtool(t, "ls", img, "/", "-l"); code != 0 && code != exitPartial || strings.Contains(errs, "panic") {
		t.Errorf("ls: exit %d %q", code, errs)
	}
}

// otherManifestEntry is fixtures/golden/otherfs-manifest.json: the source
// tree of the otherfs fixtures (python's lstat, sha256, readlink).
type otherManifestEntry struct {
	Path    string  `json:"path"`
	Type    string  `json:"type"`
	Mode    uint32  `json:"mode"`
	UID     uint32  `json:"uid"`
	GID     uint32  `json:"gid"`
	MtimeNs int64   `json:"mtime_ns"`
	SHA256  string  `json:"sha256"`
	Target  *string `json:"target"`
}

// TestOtherFSCLI: on the GPT disk holding a FAT32 ESP (p1), a squashfs
// (p2) and an ISO 9660 with Rock Ridge and Joliet (p3), all made from one
// source tree, `ls -R --json` lists exactly the source's paths and
// `extract` gives the source tree back. Compared per format: paths and
// content sha256 always (FAT: without /links, which FAT cannot hold, and
// the non-ASCII name the script leaves out); FAT mtimes to 2 s; squashfs
// and Rock Ridge: permission bits, owners (as root), mtimes to the
// second and symlink targets. The bare squashfs image is read without a
// volume ("the only filesystem").
func TestOtherFSCLI(t *testing.T) {
	var man []otherManifestEntry
	if err := json.Unmarshal(fixturetest.Golden(t, "otherfs-manifest.json"), &man); err != nil {
		t.Fatal(err)
	}
	img := fixturetest.Image(t, "otherfs-gpt")
	keepImage(t, img)
	for _, c := range []struct{ vol, kind string }{{"p1:", "fat32"}, {"p2:", "squashfs"}, {"p3:", "iso9660"}, {"", "squashfs-bare"}} {
		t.Run(c.kind, func(t *testing.T) {
			im := img
			if c.vol == "" {
				im = fixturetest.Image(t, "otherfs-squashfs")
			}
			fat := c.kind == "fat32"
			want := map[string]otherManifestEntry{}
			for _, e := range man {
				if fat && (e.Path == "/links" || strings.HasPrefix(e.Path, "/links/") || e.Path == "/ünïcödé.txt") {
					continue
				}
				want[e.Path] = e
			}
			out, errs, code := imgtool(t, "ls", im, c.vol+"/", "-R", "--json")
			if code != 0 {
				t.Fatalf("ls -R: exit %d: %s", code, errs)
			}
			var got []lsEntry
			if err := json.Unmarshal(jsonKey(t, out, "entries"), &got); err != nil {
				t.Fatal(err)
			}
			listed := map[string]int{}
			for _, e := range got {
				listed[e.Path]++
				if w, ok := want[e.Path]; ok && e.Type != map[string]string{"dir": "directory", "file": "regular", "symlink": "symlink"}[w.Type] {
					t.Errorf("ls %s: type %s, source %s", e.Path, e.Type, w.Type)
				}
			}
			for p := range want {
				if p != "/" && listed[p] != 1 {
					t.Errorf("ls -R: %s listed %d times", p, listed[p])
				}
			}
			if len(got) != len(want)-1 {
				t.Errorf("ls -R: %d entries, source %d (without /)", len(got), len(want)-1)
			}

			dest := filepath.Join(t.TempDir(), "out")
			if _, errs, code := imgtool(t, "extract", im, c.vol+"/", dest, "--no-progress"); code != 0 {
				t.Fatalf("extract: exit %d: %s", code, errs)
			}
			n := 0
			filepath.Walk(dest, func(p string, fi os.FileInfo, err error) error {
				if err != nil {
					t.Error(err)
					return nil
				}
				n++
				rel := strings.TrimPrefix(p, dest)
				if rel == "" {
					rel = "/"
				}
				w, ok := want[rel]
				if !ok {
					t.Errorf("extract: extra %s", rel)
					return nil
				}
				var st unix.Stat_t
				unix.Lstat(p, &st)
				if w.Type == "file" && sha256File(t, p) != w.SHA256 {
					t.Errorf("extract %s: sha256 differs from the source", rel)
				}
				src := time.Unix(0, w.MtimeNs)
				mt := time.Unix(st.Mtim.Unix())
				if fat {
					if rel != "/" && !mt.Equal(src.Truncate(2*time.Second)) {
						t.Errorf("extract %s: mtime %v, source %v (2 s)", rel, mt, src)
					}
					return nil
				}
				if mt.Unix() != src.Unix() {
					t.Errorf("extract %s: mtime %v, source %v", rel, mt, src)
				}
				if w.Type != "symlink" && st.Mode&0o7777 != w.Mode {
					t.Errorf("extract %s: mode %#o, source %#o", rel, st.Mode&0o7777, w.Mode)
				}
				if os.Geteuid() == 0 && (st.Uid != w.UID || st.Gid != w.GID) {
					t.Errorf("extract %s: owner %d:%d, source %d:%d", rel, st.Uid, st.Gid, w.UID, w.GID)
				}
				if w.Target != nil {
					if tg, _ := os.Readlink(p); tg != *w.Target {
						t.Errorf("extract %s: target %q, source %q", rel, tg, *w.Target)
					}
				}
				return nil
			})
			if n != len(want) {
				t.Errorf("extract: %d entries, source %d", n, len(want))
			}
		})
	}
	// cat through a symlink (followed inside the filesystem), stat of it.
	if out, _, code := imgtool(t, "cat", img, "p3:/links/to-readme"); code != 0 || out != "read me first\n" {
		t.Errorf("cat p3:/links/to-readme: %d %q", code, out)
	}
	out, _, code := imgtool(t, "stat", img, "p2:/links/absolute", "--json")
	var st statInfo
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Target != "/etc/passwd" || st.Format != "squashfs" || st.Type != "symlink" {
		t.Errorf("stat p2:/links/absolute: %d %s", code, out)
	}
	if _, errs, code := imgtool(t, "cat", img, "p2:/links/absolute"); code != exitError || !strings.Contains(errs, "p2:/links/absolute") {
		t.Errorf("cat of a link out of the filesystem: %d %q", code, errs)
	}
}

// TestSigsFATCLI lists the FAT12 and FAT16 partitions of the sigs disk
// (mkfs.vfat only: empty roots) and stats their roots.
func TestSigsFATCLI(t *testing.T) {
	img := fixturetest.Image(t, "sigs")
	keepImage(t, img)
	for vol, kind := range map[string]string{"p1": "fat12", "p2": "fat16", "LABEL=FAT16VOL": "fat16"} {
		out, errs, code := imgtool(t, "ls", img, vol+":/", "-R", "--json")
		var got []lsEntry
		if code != 0 || json.Unmarshal(jsonKey(t, out, "entries"), &got) != nil || len(got) != 0 {
			t.Errorf("ls %s: exit %d %q %q", vol, code, out, errs)
		}
		out, errs, code = imgtool(t, "stat", img, vol+":/", "--json")
		var st statInfo
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Format != kind || st.Type != "directory" {
			t.Errorf("stat %s: exit %d %q %q", vol, code, out, errs)
		}
	}
}
