package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"golang.org/x/sys/unix"
)

// These tests mount for real: the built imgtool binary serves the kernel's
// FUSE (/dev/fuse; fusermount3 from fuse3 when not root), and the checks
// run real tools (find, sha256sum, tar, grep) through the mount against
// what a kernel mount of the same fixture showed
// (fixtures/scripts/mount-golden.sh).

var (
	mountBinOnce sync.Once
	mountBin     string
	mountBinErr  error
)

// TestMain removes the binary imgtoolBin built.
func TestMain(m *testing.M) {
	code := m.Run()
	if mountBin != "" {
		os.RemoveAll(filepath.Dir(mountBin))
	}
	os.Exit(code)
}

// imgtoolBin builds the binary once per test process.
func imgtoolBin(t *testing.T) string {
	t.Helper()
	mountBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "imgtool-mount-test-")
		if err != nil {
			mountBinErr = err
			return
		}
		mountBin = filepath.Join(dir, "imgtool")
		out, err := exec.Command("go", "build", "-o", mountBin, ".").CombinedOutput()
		if err != nil {
			mountBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if mountBinErr != nil {
		t.Fatal(mountBinErr)
	}
	return mountBin
}

// mounted is a running `imgtool mount`.
type mounted struct {
	dir  string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func isMounted(dir string) bool {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// startMount runs `imgtool mount ARGS... DIR` and waits until it says it
// is mounted.
func startMount(t *testing.T, args ...string) *mounted {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return startMountCmd(t, dir, exec.Command(imgtoolBin(t), append(append([]string{"mount"}, args...), dir)...))
}

func startMountCmd(t *testing.T, dir string, cmd *exec.Cmd) *mounted {
	t.Helper()
	m := &mounted{dir: dir, cmd: cmd, log: &syncBuffer{}, done: make(chan error, 1)}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			m.log.Write([]byte(sc.Text() + "\n"))
			if !sent && strings.Contains(sc.Text(), "mounted read-only on") {
				ready <- true
				sent = true
			}
		}
		if !sent {
			ready <- false
		}
	}()
	go func() { err := cmd.Wait(); pw.Close(); m.done <- err }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-m.done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
			}
		}
		if isMounted(dir) {
			exec.Command("fusermount3", "-u", "-z", dir).Run()
		}
	})
	select {
	case ok := <-ready:
		if !ok || !isMounted(dir) {
			t.Fatalf("imgtool mount did not mount:\n%s", m.log.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("imgtool mount: no mount after 60 s:\n%s", m.log.String())
	}
	return m
}

// stop ends the mount the way a user does (SIGTERM, or umount) and checks
// that the process exits 0 and the mount is gone.
func (m *mounted) stop(t *testing.T, how string) {
	t.Helper()
	switch how {
	case "SIGTERM":
		m.cmd.Process.Signal(syscall.SIGTERM)
	case "umount":
		if out, err := exec.Command(imgtoolBin(t), "umount", m.dir).CombinedOutput(); err != nil {
			t.Fatalf("imgtool umount: %v\n%s", err, out)
		}
	}
	select {
	case err := <-m.done:
		if err != nil {
			t.Errorf("imgtool mount after %s: %v\n%s", how, err, m.log.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("imgtool mount still running 20 s after %s", how)
	}
	if isMounted(m.dir) {
		t.Errorf("%s still mounted after %s", m.dir, how)
	}
}

// listing runs fixtures/scripts/find-listing.sh (find -printf and
// sha256sum) on dir.
func listing(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command("bash", filepath.Join(fixturetest.Dir(), "scripts", "find-listing.sh"), dir).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("find-listing %s: %v\n%s", dir, err, ee.Stderr)
		}
		t.Fatal(err)
	}
	return string(out)
}

func diffText(got, want string) string {
	g := strings.Split(strings.TrimSpace(got), "\n")
	w := strings.Split(strings.TrimSpace(want), "\n")
	gs, ws := map[string]bool{}, map[string]bool{}
	for _, l := range g {
		gs[l] = true
	}
	for _, l := range w {
		ws[l] = true
	}
	var b strings.Builder
	n := 0
	for _, l := range w {
		if !gs[l] && n < 20 {
			fmt.Fprintf(&b, "- %s\n", l)
			n++
		}
	}
	for _, l := range g {
		if !ws[l] && n < 40 {
			fmt.Fprintf(&b, "+ %s\n", l)
			n++
		}
	}
	return fmt.Sprintf("%d lines, want %d\n%s", len(g), len(w), b.String())
}

// TestMountExt4 mounts the ext reader's big fixture (5,000 entries: hard
// links, symlinks, devices, sparse files, xattrs, nanosecond times) and
// compares find/sha256sum through FUSE with the kernel's own mount; then
// runs tar and grep -r concurrently through it, checks xattrs and that
// writes fail with EROFS, and unmounts with SIGTERM.
func TestMountExt4(t *testing.T) {
	m := startMount(t, fixturetest.Image(t, "ext-ext4"))
	want := string(fixturetest.Golden(t, "mount-find-ext4.txt"))
	if got := listing(t, m.dir); got != want {
		t.Errorf("find/sha256 through the mount differ from the kernel mount: %s", diffText(got, want))
	}

	// xattrs, against the source tree's manifest.
	var man []struct {
		Path   string            `json:"path"`
		Xattrs map[string]string `json:"xattrs"`
		Nlink  int               `json:"nlink"`
		Inode  uint64            `json:"inode_group"`
	}
	if err := json.Unmarshal(fixturetest.Golden(t, "ext-manifest.json"), &man); err != nil {
		t.Fatal(err)
	}
	nx := 0
	inoOf := map[uint64]uint64{} // source inode -> inode through the mount
	for _, e := range man {
		p := filepath.Join(m.dir, e.Path)
		for k, v := range e.Xattrs {
			buf := make([]byte, 65536)
			n, err := unix.Lgetxattr(p, k, buf)
			if err != nil || hex.EncodeToString(buf[:n]) != v {
				t.Errorf("%s: xattr %s = %x, %v; want %s", e.Path, k, buf[:max(n, 0)], err, v)
			}
			nx++
		}
		if e.Nlink > 1 {
			var st syscall.Stat_t
			if err := syscall.Lstat(p, &st); err != nil {
				t.Fatal(err)
			}
			if prev, ok := inoOf[e.Inode]; ok && prev != st.Ino {
				t.Errorf("%s: hard link has inode %d, its other name %d", e.Path, st.Ino, prev)
			}
			inoOf[e.Inode] = st.Ino
		}
	}
	if nx == 0 {
		t.Error("no xattr checked")
	}

	// Read-only.
	for _, p := range []string{"newfile", "sub/newfile"} {
		if err := os.WriteFile(filepath.Join(m.dir, p), []byte("x"), 0o644); !errors.Is(err, syscall.EROFS) {
			t.Errorf("create %s: %v, want EROFS", p, err)
		}
	}
	if f, err := os.OpenFile(filepath.Join(m.dir, ".hidden"), os.O_WRONLY, 0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("open .hidden for writing: %v, want EROFS", err)
		if f != nil {
			f.Close()
		}
	}

	// tar c and grep -r at the same time.
	tmp := t.TempDir()
	tarFile := filepath.Join(tmp, "t.tar")
	var wg sync.WaitGroup
	var tarErr, grepErr error
	var tarOut, grepOut []byte
	wg.Add(2)
	go func() {
		defer wg.Done()
		tarOut, tarErr = exec.Command("tar", "-C", m.dir, "--xattrs", "-cf", tarFile, ".").CombinedOutput()
	}()
	go func() {
		defer wg.Done()
		grepOut, grepErr = exec.Command("grep", "-r", "-c", "-a", "-e", "a", m.dir).Output()
	}()
	wg.Wait()
	if tarErr != nil {
		t.Fatalf("tar through the mount: %v\n%s", tarErr, tarOut)
	}
	if grepErr != nil {
		t.Fatalf("grep -r through the mount: %v", grepErr)
	}
	x := filepath.Join(tmp, "x")
	os.Mkdir(x, 0o755)
	if out, err := exec.Command("tar", "-C", x, "-xpf", tarFile).CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v\n%s", err, out)
	}
	// The tar holds the same tree (directory sizes are the local
	// filesystem's, so they are left out).
	if got, want := dropDirSizes(listing(t, x)), dropDirSizes(want); got != want {
		t.Errorf("tar of the mount differs: %s", diffText(got, want))
	}
	// grep saw every file and counted the same matches as grep on the
	// tar's copy.
	g2, err := exec.Command("grep", "-r", "-c", "-a", "-e", "a", x).Output()
	if err != nil {
		t.Fatal(err)
	}
	if a, b := sortedRel(string(grepOut), m.dir), sortedRel(string(g2), x); a != b || len(a) == 0 {
		t.Errorf("grep -r through the mount differs from grep on its tar copy")
	}

	m.stop(t, "SIGTERM")
}

func dropDirSizes(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		if f := strings.SplitN(l, " ", 8); len(f) == 8 && f[0] == "d" {
			f[4] = "-"
			lines[i] = strings.Join(f, " ")
		}
	}
	return strings.Join(lines, "\n")
}

func sortedRel(s, prefix string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, prefix)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestMountFAT mounts the FAT32 fixture and compares paths, types, sizes,
// sha256 and mtimes (FAT's 2 s) with the tree mcopy copied. (This kernel
// has no vfat module, so the oracle is the source manifest.)
func TestMountFAT(t *testing.T) {
	m := startMount(t, fixturetest.Image(t, "otherfs-fat32"))
	var man []struct {
		Path    string `json:"path"`
		Type    string `json:"type"`
		Size    int64  `json:"size"`
		MtimeNs int64  `json:"mtime_ns"`
		SHA256  string `json:"sha256"`
	}
	if err := json.Unmarshal(fixturetest.Golden(t, "otherfs-manifest.json"), &man); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, e := range man {
		// Left out of the FAT image by the fixture script: symlinks and a
		// name FAT's 8.3 + LFN path there does not carry.
		if e.Path == "/links" || strings.HasPrefix(e.Path, "/links/") || e.Path == "/ünïcödé.txt" {
			continue
		}
		d := e.Type
		if e.Type == "file" {
			d += fmt.Sprintf(" %d %s", e.Size, e.SHA256)
		}
		if e.Path != "/" {
			d += fmt.Sprintf(" mtime %d", e.MtimeNs/2e9)
		}
		want[e.Path] = d
	}
	got := map[string]string{}
	filepath.Walk(m.dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		rel := strings.TrimPrefix(p, m.dir)
		if rel == "" {
			rel = "/"
		}
		d := "dir"
		if !fi.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Errorf("%s: %v", rel, err)
			}
			sum := sha256.Sum256(b)
			d = fmt.Sprintf("file %d %x", fi.Size(), sum)
		}
		if rel != "/" {
			d += fmt.Sprintf(" mtime %d", fi.ModTime().UnixNano()/2e9)
		}
		got[rel] = d
		return nil
	})
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: got %q, want %q", p, got[p], w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("extra %s", p)
		}
	}
	m.stop(t, "umount")
}

// TestMountDom0Tree mounts the whole nested demo: every ext volume's
// directory equals the kernel's mount of it, and a volume's .raw file is
// its bytes in the image.
func TestMountDom0Tree(t *testing.T) {
	img := fixturetest.Image(t, "dom0")
	start := time.Now()
	m := startMount(t, img)
	if _, err := os.ReadDir(m.dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("mount to first ls: %v (bench/mount.sh measures it)", time.Since(start))
	golden := string(fixturetest.Golden(t, "mount-find-dom0.txt"))
	sections := strings.Split(golden, "## ")[1:]
	if len(sections) != 4 {
		t.Fatalf("golden has %d sections", len(sections))
	}
	for _, s := range sections {
		addr, want, _ := strings.Cut(s, "\n")
		if got := listing(t, filepath.Join(m.dir, addr)); got != want {
			t.Errorf("%s: %s", addr, diffText(got, want))
		}
	}
	// p1.raw and the nested guest root's raw bytes against the image at
	// the offsets blkid probed.
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, line := range strings.Split(string(fixturetest.Golden(t, "dom0-blkid.txt")), "\n") {
		var addr string
		var off, size int64
		if n, _ := fmt.Sscanf(line, "== %s %d %d", &addr, &off, &size); n != 3 {
			continue
		}
		if addr != "p1" && addr != "VolGroup00/domu1/VolGroup00/LogVol00" {
			continue
		}
		want := sha256.New()
		io.Copy(want, io.NewSectionReader(f, off, size))
		b, err := os.ReadFile(filepath.Join(m.dir, addr+".raw"))
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != hex.EncodeToString(want.Sum(nil)) || int64(len(b)) != size {
			t.Errorf("%s.raw: %d bytes, not the image's %d at %d", addr, len(b), size, off)
		}
	}
	m.stop(t, "SIGTERM")
}

// TestMountDamaged: a file whose block map is destroyed gives EIO (logged
// with its volume and inode), and the rest of the filesystem is served.
func TestMountDamaged(t *testing.T) {
	m := startMount(t, fixturetest.Image(t, "tui-damaged"))
	for _, c := range []struct{ path, want string }{{"docs/ok.txt", "intact text\n"}, {"docs/zz-after.txt", "still here\n"}} {
		if b, err := os.ReadFile(filepath.Join(m.dir, c.path)); err != nil || string(b) != c.want {
			t.Errorf("%s: %q %v", c.path, b, err)
		}
	}
	if _, err := os.ReadFile(filepath.Join(m.dir, "docs/badfile")); !errors.Is(err, syscall.EIO) {
		t.Errorf("docs/badfile: %v, want EIO", err)
	}
	if _, err := os.ReadDir(filepath.Join(m.dir, "docs/baddir")); !errors.Is(err, syscall.EIO) {
		t.Errorf("docs/baddir: %v, want EIO", err)
	}
	// still serving after the errors
	if b, err := os.ReadFile(filepath.Join(m.dir, "docs/ok.txt")); err != nil || string(b) != "intact text\n" {
		t.Errorf("after the errors: %q %v", b, err)
	}
	time.Sleep(100 * time.Millisecond)
	if l := m.log.String(); !strings.Contains(l, "failed") || !strings.Contains(l, "inode=") {
		t.Errorf("no error logged with the inode:\n%s", l)
	}
	m.stop(t, "SIGTERM")
}

// TestMountGuest: mount -i shows the CentOS 5 guest with its fstab
// applied (/boot from LABEL=/boot, /home from its own LV), as the kernel
// showed those three filesystems mounted.
func TestMountGuest(t *testing.T) {
	m := startMount(t, "-i", fixturetest.Image(t, "os-centos5"))
	want := string(fixturetest.Golden(t, "mount-find-os-centos5.txt"))
	if got := listing(t, m.dir); got != want {
		t.Errorf("guest view: %s", diffText(got, want))
	}
	if !strings.Contains(m.log.String(), "LABEL=/data") {
		t.Errorf("the fstab line naming a missing device is not reported:\n%s", m.log.String())
	}
	m.stop(t, "SIGTERM")
}

// TestMountAsUser: a normal user mounts through the setuid fusermount3
// and unmounts with imgtool umount (as root the test drops to nobody with
// setpriv; as a normal user it is that user).
func TestMountAsUser(t *testing.T) {
	bin := imgtoolBin(t)
	work, err := os.MkdirTemp("", "imgtool-mount-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	img := filepath.Join(work, "fat32.img")
	if err := fixturetest.CopySparse(fixturetest.Image(t, "otherfs-fat32"), img); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(work, "mnt")
	os.Mkdir(dir, 0o755)
	var wrap []string
	if os.Geteuid() == 0 {
		for _, p := range []string{work, img, dir, filepath.Dir(bin), bin} {
			os.Chmod(p, 0o755)
			os.Chown(p, 65534, 65534)
		}
		wrap = []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}
	}
	argv := append(append([]string{}, wrap...), bin, "mount", img, dir)
	m := startMountCmd(t, dir, exec.Command(argv[0], argv[1:]...))
	b, _ := os.ReadFile("/proc/self/mountinfo")
	uidOpt := fmt.Sprintf("user_id=%d", os.Geteuid())
	if os.Geteuid() == 0 {
		uidOpt = "user_id=65534"
	}
	found := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, " "+dir+" ") && strings.Contains(line, uidOpt) && strings.Contains(line, "fuse.imgtool") {
			found = true
		}
	}
	if !found {
		t.Errorf("no fuse.imgtool mount with %s on %s:\n%s", uidOpt, dir, b)
	}
	if _, err := os.Stat(filepath.Join(m.dir, "README.txt")); err != nil && os.Geteuid() != 0 {
		t.Error(err)
	}
	umount := append(append([]string{}, wrap...), bin, "umount", dir)
	if out, err := exec.Command(umount[0], umount[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("imgtool umount as the user: %v\n%s", err, out)
	}
	m.stop(t, "already unmounted")
}

// TestMountOptions: -o allow_other reaches the kernel (with
// default_permissions, so the guest's modes are enforced for others) and
// -o uid=,gid= show every file as owned by them.
func TestMountOptions(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Log("not root: allow_other needs user_allow_other in /etc/fuse.conf; checking uid=/gid= only")
	}
	opts := "uid=4242,gid=4243"
	if os.Geteuid() == 0 {
		opts = "allow_other," + opts
	}
	m := startMount(t, "-o", opts, fixturetest.Image(t, "ext-tiny-ext4"))
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, " "+m.dir+" ") {
			continue
		}
		if os.Geteuid() == 0 && (!strings.Contains(line, "allow_other") || !strings.Contains(line, "default_permissions")) {
			t.Errorf("mount options: %s", line)
		}
		if !strings.Contains(line, " ro,") {
			t.Errorf("not read-only: %s", line)
		}
	}
	n := 0
	filepath.Walk(m.dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 4242 || st.Gid != 4243 {
			t.Errorf("%s: owner %d:%d, want 4242:4243", p, st.Uid, st.Gid)
		}
		n++
		return nil
	})
	if n < 3 {
		t.Errorf("walked %d entries", n)
	}
	m.stop(t, "SIGTERM")
}
