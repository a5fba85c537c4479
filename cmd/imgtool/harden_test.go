package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"golang.org/x/sys/unix"
)

// TestEmptyNameIsALoss (issue 13.4): the hostile-ext entry with name_len 0
// (inode 17) makes ls and extract say so and exit 3, not pass in silence.
func TestEmptyNameIsALoss(t *testing.T) {
	img := fixturetest.Image(t, "hostile-ext")
	_, errs, code := imgtool(t, "ls", img, "/")
	if code != exitPartial || !strings.Contains(errs, "inode 17 has an empty name") {
		t.Errorf("ls: exit %d, stderr %q; want 3 and the skipped inode 17", code, errs)
	}
	_, errs, code = imgtool(t, "extract", img, "/", filepath.Join(t.TempDir(), "out"))
	if code != exitPartial || !strings.Contains(errs, "inode 17 has an empty name") {
		t.Errorf("extract: exit %d, stderr %q; want 3 and the skipped inode 17", code, errs)
	}
}

// TestTerminalSafeNames (issue 13.5): names holding ESC[2J, a 0x9B byte,
// U+009B and U+202E reach neither stdout (ls) nor stderr (extract's
// errors and report) as they are: one rule (termsafe) escapes them.
func TestTerminalSafeNames(t *testing.T) {
	if _, err := exec.LookPath("mke2fs"); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	names := []string{"clear\x1b[2J", "csi\x9b31m", "csi\u009b32m", "evil\u202etxt.exe"}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(src, n), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(t.TempDir(), "names.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-d", src, img, "4M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	bad := func(s string) bool {
		return strings.ContainsAny(s, "\x1b\u009b\u202e") || strings.Contains(s, "\x9b")
	}
	out, errs, code := imgtool(t, "ls", "-l", img, "/")
	if code != exitOK || bad(out) || bad(errs) {
		t.Errorf("ls: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	for _, want := range []string{`"clear\x1b[2J"`, `"csi\x9b31m"`, `"csi\u009b32m"`, `"evil\u202etxt.exe"`} {
		if !strings.Contains(out, want) {
			t.Errorf("ls does not show %s; got\n%s", want, out)
		}
	}
	// Extract twice into the same DEST: the second run refuses every file
	// by name (it exists), on stderr.
	dest := filepath.Join(t.TempDir(), "out")
	imgtool(t, "extract", img, "/", dest)
	_, errs, code = imgtool(t, "extract", img, "/", dest)
	if code != exitPartial || bad(errs) || !strings.Contains(errs, `evil\u202etxt.exe`) {
		t.Errorf("extract again: exit %d, stderr %q", code, errs)
	}
	_, errs, _ = imgtool(t, "stat", img, "/nope\x1b[2J\u202e")
	if bad(errs) || !strings.Contains(errs, `\x1b[2J`) {
		t.Errorf("stat of a missing hostile name: stderr %q", errs)
	}
}

// TestExtractSafe (issue 13.6): the default stays tar-like (as root: device
// nodes made, setuid kept); --safe leaves devices out (reported, exit 3)
// and clears setuid/setgid, for a directory and for --tar.
func TestExtractSafe(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("mknod and a root extraction need root (as .ci/run does)")
	}
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	if err := unix.Mknod(filepath.Join(src, "mem"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 1))); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(src, "suid"), []byte("#!/bin/sh\n"), 0o755)
	os.Chmod(filepath.Join(src, "suid"), 0o4755|os.ModeSetuid)
	os.Mkdir(filepath.Join(src, "sgid"), 0o755)
	os.Chmod(filepath.Join(src, "sgid"), 0o2755|os.ModeSetgid)
	img := filepath.Join(t.TempDir(), "safe.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-d", src, img, "4M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	mode := func(p string) (uint32, bool) {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return 0, false
		}
		return st.Mode, true
	}
	plain := filepath.Join(t.TempDir(), "plain")
	if _, errs, code := imgtool(t, "extract", img, "/", plain); code != exitOK {
		t.Fatalf("extract: exit %d: %s", code, errs)
	}
	if m, ok := mode(filepath.Join(plain, "mem")); !ok || m&unix.S_IFMT != unix.S_IFCHR {
		t.Errorf("default extract as root: mem mode %#o; want the device node", m)
	}
	if m, _ := mode(filepath.Join(plain, "suid")); m&0o4000 == 0 {
		t.Errorf("default extract: suid mode %#o; want setuid kept", m)
	}
	safe := filepath.Join(t.TempDir(), "safe")
	_, errs, code := imgtool(t, "extract", "--safe", img, "/", safe)
	if code != exitPartial || !strings.Contains(errs, "/mem") || !strings.Contains(errs, "--no-devices") {
		t.Errorf("extract --safe: exit %d, stderr %q; want 3 and mem refused", code, errs)
	}
	if _, ok := mode(filepath.Join(safe, "mem")); ok {
		t.Errorf("extract --safe made the device node")
	}
	if m, _ := mode(filepath.Join(safe, "suid")); m&0o7777 != 0o755 {
		t.Errorf("extract --safe: suid mode %#o, want 0755", m&0o7777)
	}
	if m, _ := mode(filepath.Join(safe, "sgid")); m&0o7777 != 0o755 {
		t.Errorf("extract --safe: sgid mode %#o, want 0755", m&0o7777)
	}
	out, _, _ := imgtool(t, "extract", "--safe", img, "/", "--tar", "-")
	tr := tar.NewReader(strings.NewReader(out))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Typeflag == tar.TypeChar || h.Mode&0o6000 != 0 {
			t.Errorf("--tar --safe: member %s type %c mode %#o", h.Name, h.Typeflag, h.Mode)
		}
	}
}

// openPTY returns the two ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminals: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// TestBinaryToTerminal (issue 13.7): dd, extract --tar - and cat of a
// binary file refuse a terminal stdout (exit 2), as GNU tar and gzip do;
// cat of a text file, a redirected stdout and --force go through.
func TestBinaryToTerminal(t *testing.T) {
	img := fixturetest.Image(t, "hostile-ext")
	_, tty := openPTY(t)
	runTTY := func(args ...string) (string, int) {
		var errb strings.Builder
		code := run(args, tty, &errb)
		return errb.String(), code
	}
	for _, args := range [][]string{
		{"dd", img, ""},
		{"extract", img, "/", "--tar", "-"},
		{"extract", "--salvage", img, "/", "--tar", "-"},
	} {
		errs, code := runTTY(args...)
		if code != exitUsage || !strings.Contains(errs, "refusing to write") {
			t.Errorf("%v to a terminal: exit %d, %q", args, code, errs)
		}
	}
	// cat: a text file goes to the terminal, a binary one does not.
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	os.WriteFile(filepath.Join(src, "text"), []byte("hello, terminal\n"), 0o644)
	os.WriteFile(filepath.Join(src, "bin"), []byte("\x7fELF\x02\x01\x01\x00\x00\x00"), 0o644)
	fsimg := filepath.Join(t.TempDir(), "cat.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-d", src, fsimg, "4M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	if errs, code := runTTY("cat", fsimg, "/text"); code != exitOK {
		t.Errorf("cat of a text file to a terminal: exit %d, %q", code, errs)
	}
	if errs, code := runTTY("cat", fsimg, "/bin"); code != exitUsage || !strings.Contains(errs, "binary file") {
		t.Errorf("cat of a binary file to a terminal: exit %d, %q", code, errs)
	}
	if errs, code := runTTY("cat", "--force", fsimg, "/bin"); code != exitOK {
		t.Errorf("cat --force of a binary file to a terminal: exit %d, %q", code, errs)
	}
	// Redirected (a buffer, not a terminal): written.
	if out, _, code := imgtool(t, "cat", fsimg, "/bin"); code != exitOK || !strings.HasPrefix(out, "\x7fELF") {
		t.Errorf("cat of a binary file to a pipe: exit %d", code)
	}
	if out, _, code := imgtool(t, "dd", fsimg, ""); code != exitOK || len(out) != 4<<20 {
		t.Errorf("dd to a pipe: exit %d, %d bytes", code, len(out))
	}
}

// TestVersionFromBuildInfo (issue 13.11): --version says what was built
// (module version, VCS revision and time, dirty tree, Go version), from
// debug.ReadBuildInfo, never a bare "dev".
func TestVersionFromBuildInfo(t *testing.T) {
	out, _, code := imgtool(t, "--version")
	if code != exitOK || strings.TrimSpace(out) == "imgtool version dev" || !strings.Contains(out, runtime.Version()) {
		t.Errorf("--version: exit %d, %q", code, out)
	}
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0f5e5d50d470154d14ec92fa4b2273bd921e46b6"},
		{Key: "vcs.time", Value: "2026-12-05T07:43:11Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	if got, want := buildVersion(bi, true), "(devel) 0f5e5d50d470+dirty 2026-12-05T07:43:11Z go1.26.8"; got != want {
		t.Errorf("buildVersion = %q, want %q", got, want)
	}
	bi = &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}}
	if got := buildVersion(bi, true); got != "v1.4.0 go1.26.8" {
		t.Errorf("buildVersion of a released module = %q", got)
	}
}

// TestExitStatusDocumented (issue 13.10): ls and stat say in their help
// what exit 3 means.
func TestExitStatusDocumented(t *testing.T) {
	for _, c := range []string{"ls", "stat"} {
		out, _, code := imgtool(t, c, "--help")
		if code != exitOK || !strings.Contains(out, "Exit status:") || !strings.Contains(out, "3 when") {
			t.Errorf("%s --help does not document exit 3:\n%s", c, out)
		}
	}
}

// TestExtractDest (issue 13.13): a DEST whose parent is missing is DEST's
// error (named), the same for a file and a directory source, and a
// directory source fills DEST.
func TestExtractDest(t *testing.T) {
	img := fixturetest.Image(t, "tar-sparse")
	missing := filepath.Join(t.TempDir(), "no", "parent", "x")
	for _, src := range []string{"/small", "/", "/lost+found"} {
		_, errs, code := imgtool(t, "extract", img, src, missing)
		if code != exitError || !strings.Contains(errs, "destination "+missing) || !strings.Contains(errs, "parent directory") {
			t.Errorf("extract %s to a missing parent: exit %d, %q", src, code, errs)
		}
		if _, err := os.Stat(filepath.Dir(missing)); err == nil {
			t.Errorf("extract %s created DEST's parent", src)
		}
	}
	dest := filepath.Join(t.TempDir(), "fill")
	for i := 0; i < 2; i++ {
		if _, errs, code := imgtool(t, "extract", "--force", img, "/", dest); code != exitOK {
			t.Fatalf("extract / DEST: exit %d, %s", code, errs)
		}
	}
	if _, err := os.Stat(filepath.Join(dest, "small")); err != nil {
		t.Errorf("a directory source does not fill DEST: %v", err)
	}
}

// TestInspectAgreesWithReaders (issue 13.14): superblocks that blkid's
// check passes but the ext reader rejects (absurd inodes per group, 8
// blocks per group giving far more groups than the volume holds) carry a
// note in inspect whenever ls fails on them, so inspect never shows as
// clean what ls refuses.
func TestInspectAgreesWithReaders(t *testing.T) {
	orig, err := os.ReadFile(fixturetest.Image(t, "ext-tiny-ext4"))
	if err != nil {
		t.Fatal(err)
	}
	le32 := func(b []byte, off int, v uint32) {
		b[off], b[off+1], b[off+2], b[off+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	cases := map[string]func(sb []byte){
		"inodes per group 2^32-1": func(sb []byte) { le32(sb, 0x28, 0xFFFFFFFF) },
		"8 blocks per group":      func(sb []byte) { le32(sb, 0x20, 8) },
		"blocks count 2^32-1":     func(sb []byte) { le32(sb, 0x04, 0xFFFFFFFF) },
	}
	failed := 0
	for name, mutate := range cases {
		b := append([]byte(nil), orig...)
		mutate(b[1024:2048])
		img := filepath.Join(t.TempDir(), "sb.img")
		os.WriteFile(img, b, 0o644)
		_, _, lsCode := imgtool(t, "ls", img, "/")
		out, errs, code := imgtool(t, "inspect", img)
		if code != exitOK {
			t.Errorf("%s: inspect exit %d: %s", name, code, errs)
			continue
		}
		noted := strings.Contains(out, "the filesystem reader rejects it")
		if lsCode != exitOK {
			failed++
		}
		if (lsCode != exitOK) != noted {
			t.Errorf("%s: ls exit %d, but inspect's note present=%v:\n%s", name, lsCode, noted, out)
		}
	}
	if failed == 0 {
		t.Errorf("no mutation made ls fail: the test checks nothing")
	}
}

// TestReadmeCatExample (issue 13.11): the README's cat example runs on the
// image it names (the dom0 fixture) instead of failing on an ambiguous
// LABEL=/boot.
func TestReadmeCatExample(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(fixturetest.Dir(), "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var spec string
	for _, line := range strings.Split(string(readme), "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[0] == "imgtool" && f[1] == "cat" && f[2] == "dom0.img" {
			spec = f[3]
		}
	}
	if spec == "" {
		t.Fatal("no `imgtool cat dom0.img ...` example in the README")
	}
	out, errs, code := imgtool(t, "cat", fixturetest.Image(t, "dom0"), spec)
	if code != exitOK || !strings.Contains(out, "title") {
		t.Errorf("README example cat dom0.img %s: exit %d, %q, %q", spec, code, out, errs)
	}
}

// TestJSONEmptyLists (issue 13.9): an empty list is [] in --json, never
// null (lvm list of an image without LVM).
func TestJSONEmptyLists(t *testing.T) {
	out, errs, code := imgtool(t, "lvm", "list", "--json", fixturetest.Image(t, "ext-tiny-ext4"))
	if code != exitOK {
		t.Fatalf("lvm list --json: exit %d, %s", code, errs)
	}
	if strings.Contains(out, "null") || !strings.Contains(out, `"lvs": []`) {
		t.Errorf("lvm list --json of an image without LVM:\n%s", out)
	}
	type inner struct{ B []int }
	got, _ := json.Marshal(emptyLists(struct {
		A   []string
		P   *inner
		M   map[string][]int
		Raw []byte
	}{P: &inner{}, M: map[string][]int{"x": nil}}))
	if string(got) != `{"A":[],"P":{"B":[]},"M":{"x":[]},"Raw":null}` {
		t.Errorf("emptyLists: %s", got)
	}
}

// TestVerbosity (issue 13.12): -v logs (slog, debug) what inspect, ls and
// extract do; -q silences extract's success summary, not its problems.
func TestVerbosity(t *testing.T) {
	img := fixturetest.Image(t, "tar-sparse")
	for _, args := range [][]string{{"inspect", img}, {"ls", img, "/"}, {"extract", img, "/small", ""}} {
		if args[0] == "extract" {
			args[3] = filepath.Join(t.TempDir(), "s1")
		}
		_, quietErrs, _ := imgtool(t, args...)
		if args[0] == "extract" {
			args[3] = filepath.Join(t.TempDir(), "s2")
		}
		_, errs, code := imgtool(t, append([]string{"-v"}, args...)...)
		if code != exitOK || !strings.Contains(errs, "level=DEBUG") || !strings.Contains(errs, "image opened") {
			t.Errorf("-v %s: exit %d, stderr %q", args[0], code, errs)
		}
		if strings.Contains(quietErrs, "level=DEBUG") {
			t.Errorf("%s without -v logs debug lines: %q", args[0], quietErrs)
		}
	}
	_, errs, code := imgtool(t, "-q", "extract", img, "/small", filepath.Join(t.TempDir(), "q"))
	if code != exitOK || errs != "" {
		t.Errorf("-q extract: exit %d, stderr %q; want silence", code, errs)
	}
	_, errs, code = imgtool(t, "extract", img, "/small", filepath.Join(t.TempDir(), "nq"))
	if code != exitOK || !strings.Contains(errs, "extracted /small") {
		t.Errorf("extract without -q: exit %d, stderr %q; want the summary", code, errs)
	}
	_, errs, code = imgtool(t, "-q", "extract", fixturetest.Image(t, "hostile-ext"), "/", filepath.Join(t.TempDir(), "h"))
	if code != exitPartial || !strings.Contains(errs, "extracted /") {
		t.Errorf("-q extract with losses: exit %d, stderr %q; the summary must stay", code, errs)
	}
}

// TestNestedDamageOffset (issue 13): damage in the guest's root LV inside
// the dom0 disk (partition → VG → LV → guest disk → VG → LV) is reported
// with the volume address and the absolute byte of the image, by ls and
// extract. debugfs names the root directory block; the block's bytes are
// found in the image file itself, so the expected offset owes nothing to
// imgtool.
func TestNestedDamageOffset(t *testing.T) {
	const lv = "VolGroup00/domu1/VolGroup00/LogVol00"
	orig, err := os.ReadFile(fixturetest.Image(t, "dom0"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lvImg := filepath.Join(dir, "lv.img")
	if _, errs, code := imgtool(t, "dd", fixturetest.Image(t, "dom0"), lv, "-o", lvImg); code != exitOK {
		t.Fatalf("dd: %s", errs)
	}
	out, err := exec.Command("debugfs", "-R", "blocks /", lvImg).Output()
	if err != nil {
		t.Fatal(err)
	}
	var blk int64
	if _, err := fmt.Sscan(string(out), &blk); err != nil || blk == 0 {
		t.Fatalf("debugfs blocks /: %q", out)
	}
	lvBytes, _ := os.ReadFile(lvImg)
	block := lvBytes[blk*1024 : blk*1024+1024]
	abs := int64(bytes.Index(orig, block))
	if abs < 0 || bytes.Count(orig, block) != 1 {
		t.Fatalf("the root directory block is not found once in the image")
	}
	bad := append([]byte(nil), orig...)
	bad[abs+4], bad[abs+5] = 3, 0 // rec_len 3 of the first entry
	img := filepath.Join(dir, "dom0-bad.img")
	os.WriteFile(img, bad, 0o644)
	want := fmt.Sprintf("[volume %s byte %d = byte %d of %s]", lv, blk*1024, abs, img)
	_, errs, code := imgtool(t, "ls", img, lv+":/")
	if code != exitPartial || !strings.Contains(errs, want) {
		t.Errorf("ls: exit %d, %q; want %q", code, errs, want)
	}
	_, errs, code = imgtool(t, "extract", img, lv+":/", filepath.Join(dir, "out"))
	if code != exitPartial || !strings.Contains(errs, want) {
		t.Errorf("extract: exit %d, %q; want %q", code, errs, want)
	}
}

// TestLsGNUFlags (issue 13.8): ls -la works (-a is "all", not "add an
// image"), and -lh sizes are GNU ls -lh's, checked against GNU ls on the
// tree mke2fs -d copied.
func TestLsGNUFlags(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	sizes := []int64{0, 1023, 1024, 1536, 10239, 10240, 1048576, 5000000, 123456789}
	for i, n := range sizes {
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%d", i)), bytes.Repeat([]byte{'x'}, int(n)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(t.TempDir(), "h.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-d", src, img, "160M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	gnu, err := exec.Command("ls", "-lh", src).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, line := range strings.Split(string(gnu), "\n") {
		if f := strings.Fields(line); len(f) >= 9 {
			want[f[8]] = f[4]
		}
	}
	out, errs, code := imgtool(t, "ls", "-lh", img, "/")
	if code != exitOK {
		t.Fatalf("ls -lh: exit %d, %s", code, errs)
	}
	got := 0
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || want[f[len(f)-1]] == "" {
			continue
		}
		got++
		if f[4] != want[f[len(f)-1]] {
			t.Errorf("%s: ls -lh size %s, GNU ls -lh %s", f[len(f)-1], f[4], want[f[len(f)-1]])
		}
	}
	if got != len(sizes) {
		t.Errorf("compared %d of %d files:\n%s", got, len(sizes), out)
	}
	if out, errs, code := imgtool(t, "ls", "-la", img, "/"); code != exitOK || !strings.Contains(out, "f0") {
		t.Errorf("ls -la: exit %d, %q", code, errs)
	}
	if out, _, code := imgtool(t, "ls", "--help"); code != exitOK || !strings.Contains(out, "human-readable") {
		t.Errorf("ls --help: exit %d", code)
	}
}
