package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io/fs"
	mrand "math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/imgtool/imgtool/backup"
	"github.com/imgtool/imgtool/backup/s3test"
)

// These tests run the built imgtool binary as a subprocess, so that signals
// and SIGKILL hit a real process.

func buildImgtool(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "imgtool")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// backupWorld is a guest with one image-file disk (a bare ext4 made by
// mke2fs -d), fake pause/resume/snapshot commands that record their calls,
// a dest and a local "remote".
type backupWorld struct {
	dir, cfgDir, state, dest, log, snapDev string
}

func newBackupWorld(t *testing.T, dataMB int) *backupWorld {
	t.Helper()
	w := &backupWorld{dir: t.TempDir()}
	src := filepath.Join(w.dir, "src")
	os.MkdirAll(src, 0o755)
	for i := 0; i < 8; i++ {
		b := make([]byte, dataMB<<20/8)
		rand.Read(b)
		os.WriteFile(filepath.Join(src, fmt.Sprintf("f%d", i)), b, 0o644)
	}
	img := filepath.Join(w.dir, "guest.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-d", src, img, fmt.Sprintf("%dM", dataMB+16)).CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	fake, _ := filepath.Abs("../../backup/testdata/fake.sh")
	w.cfgDir, w.state, w.dest = filepath.Join(w.dir, "conf.d"), filepath.Join(w.dir, "state"), filepath.Join(w.dir, "backup")
	w.log, w.snapDev = filepath.Join(w.dir, "calls.log"), filepath.Join(w.dir, "guest-imgtool-snap.img")
	os.MkdirAll(w.cfgDir, 0o755)
	cfg := fmt.Sprintf(`name = "g"
sources = [%[1]q]
pause = "%[2]s pause {name}"
resume = "%[2]s resume {name}"
dest = %[3]q
hosts = [%[4]q]
[retention]
keep_full = 3
[snapshot]
mode = "always"
create = "%[2]s create {source} %[5]s/{snap}.img %[5]s/{snap}.cow"
remove = "%[2]s remove %[5]s/{snap}.img %[5]s/{snap}.cow"
device = "%[5]s/{snap}.img"
cow = "%[5]s/{snap}.cow"
`, img, fake, w.dest, filepath.Join(w.dir, "remote"), w.dir)
	os.WriteFile(filepath.Join(w.cfgDir, "g.conf"), []byte(cfg), 0o644)
	return w
}

func (w *backupWorld) cmd(bin string, args ...string) *exec.Cmd {
	c := exec.Command(bin, append([]string{"backup", "--config-dir", w.cfgDir, "--state-dir", w.state}, args...)...)
	c.Env = append(os.Environ(), "FAKE_LOG="+w.log)
	return c
}

func (w *backupWorld) calls() string {
	b, _ := os.ReadFile(w.log)
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			out = append(out, f[0])
		}
	}
	return strings.Join(out, " ")
}

func TestBackupSIGTERMResumes(t *testing.T) {
	bin := buildImgtool(t)
	w := newBackupWorld(t, 4)
	// SIGTERM while the snapshot is being created (the guest is paused).
	c := w.cmd(bin, "run")
	c.Env = append(c.Env, "FAKE_SLEEP=create")
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(w.calls(), "create") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	c.Process.Signal(syscall.SIGTERM)
	err := c.Wait()
	if err == nil {
		t.Fatal("run interrupted by SIGTERM exited 0")
	}
	if got := w.calls(); got != "pause create resume remove" {
		t.Errorf("calls after SIGTERM: %q, want pause create resume remove", got)
	}
	if _, err := os.Stat(filepath.Join(w.state, "g.state")); !os.IsNotExist(err) {
		t.Errorf("state file left after a handled SIGTERM")
	}
	if lines := strings.Split(strings.TrimSpace(stderr.String()), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "imgtool: ") {
		t.Errorf("want a one-line reason on stderr, got:\n%s", stderr.String())
	}
}

func TestBackupLockRefusesSecondRun(t *testing.T) {
	bin := buildImgtool(t)
	w := newBackupWorld(t, 1)
	lock, err := backup.AcquireLock(w.state)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	start := time.Now()
	out, err := w.cmd(bin, "run").CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitLocked {
		t.Fatalf("second run: %v, want exit %d\n%s", err, exitLocked, out)
	}
	if !strings.Contains(string(out), "another imgtool backup run is in progress") || time.Since(start) > 5*time.Second {
		t.Errorf("second run output %q after %v", out, time.Since(start))
	}
	if w.calls() != "" {
		t.Errorf("a locked-out run ran commands: %q", w.calls())
	}
}

// TestBackupCrashRecovery kills runs with SIGKILL at random points; each is
// followed by a normal run, which must recover (resume, remove the
// snapshot, delete partial files) and succeed; no partial file may ever
// pass for a backup.
func TestBackupCrashRecovery(t *testing.T) {
	bin := buildImgtool(t)
	w := newBackupWorld(t, 24)
	rng := mrand.New(mrand.NewSource(time.Now().UnixNano()))
	gdir := filepath.Join(w.dest, "g")
	killedPaused := 0
	for i := 0; i < 20; i++ {
		os.Remove(w.log)
		day := fmt.Sprintf("2026-01-%02d", i+1)
		c := w.cmd(bin, "run", "--now", day)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Intn(600)) * time.Millisecond)
		c.Process.Kill()
		c.Wait()
		killedCalls := w.calls()
		if strings.HasPrefix(killedCalls, "pause") && !strings.Contains(killedCalls, "resume") {
			killedPaused++
		}
		// Nothing incomplete may be taken for a backup.
		if _, err := backup.Verify(gdir, false); err != nil {
			t.Errorf("round %d: after SIGKILL: verify: %v", i, err)
		}
		os.Remove(w.log)
		out, err := w.cmd(bin, "run", "--now", day, "-v").CombinedOutput()
		if err != nil {
			t.Fatalf("round %d: run after SIGKILL (calls before: %q): %v\n%s", i, killedCalls, err, out)
		}
		calls := w.calls()
		if strings.HasPrefix(killedCalls, "pause") && !strings.Contains(killedCalls, "resume") && !strings.HasPrefix(calls, "resume") {
			t.Errorf("round %d: guest left paused by the killed run (%q) was not resumed first: %q", i, killedCalls, calls)
		}
		if _, err := os.Stat(w.snapDev); !os.IsNotExist(err) {
			t.Errorf("round %d: snapshot left behind", i)
		}
		if n, err := backup.Verify(gdir, false); err != nil || n == 0 {
			t.Errorf("round %d: verify after recovery: %d, %v", i, n, err)
		}
		ents, _ := os.ReadDir(gdir)
		for _, e := range ents {
			n := e.Name()
			if strings.HasPrefix(n, ".") {
				t.Errorf("round %d: leftover %s", i, n)
			}
			if strings.Contains(n, ".dump") && !strings.HasSuffix(n, ".json") {
				if _, err := os.Stat(filepath.Join(gdir, n+".json")); err != nil {
					t.Errorf("round %d: data file %s without manifest", i, n)
				}
			}
		}
	}
	t.Logf("%d of 20 runs were killed while the guest was paused", killedPaused)
}

// TestBackupPlanAndRunWarnUncovered: the guest definition lists a second
// disk the config does not cover; plan and run say so loudly and exit 4,
// and run still backs up the configured disk.
func TestBackupPlanAndRunWarnUncovered(t *testing.T) {
	bin := buildImgtool(t)
	w := newBackupWorld(t, 1)
	def := filepath.Join(w.dir, "g.cfg")
	cfgs, _ := filepath.Glob(filepath.Join(w.cfgDir, "*.conf"))
	b, _ := os.ReadFile(cfgs[0])
	src := strings.Split(strings.Split(string(b), "sources = [\"")[1], "\"")[0]
	os.WriteFile(def, []byte(fmt.Sprintf("name = 'g'\ndisk = ['file:%s,xvda,w', 'phy:/dev/vg0/g-data,xvdb,w']\n", src)), 0o644)
	os.WriteFile(cfgs[0], []byte(strings.Replace(string(b), "hosts =", fmt.Sprintf("guest_definition = %q\nhosts =", def), 1)), 0o644)

	out, err := w.cmd(bin, "plan", "--now", "2026-03-01").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitUncovered {
		t.Fatalf("plan: %v, want exit %d\n%s", err, exitUncovered, out)
	}
	if !strings.Contains(string(out), "/dev/vg0/g-data") || !strings.Contains(string(out), "NOT") || !strings.Contains(string(out), "dump level 0") {
		t.Errorf("plan output:\n%s", out)
	}
	out, err = w.cmd(bin, "run", "--now", "2026-03-01").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitUncovered {
		t.Fatalf("run: %v, want exit %d\n%s", err, exitUncovered, out)
	}
	if n, err := backup.Verify(filepath.Join(w.dest, "g"), false); err != nil || n != 1 {
		t.Errorf("the covered disk was not backed up: %d, %v", n, err)
	}
	list := w.cmd(bin, "list")
	list.Env = append(list.Env, "TZ=Europe/Berlin")
	out, err = list.CombinedOutput()
	if err != nil || !strings.Contains(string(out), ".L0.dump.zst") {
		t.Errorf("list: %v\n%s", err, out)
	}
	// Dates are local with the zone shown (CET in March), as ls -l's.
	if !regexp.MustCompile(`2026-03-0[12] \d\d:\d\d:\d\d \+0100`).Match(out) {
		t.Errorf("list does not show the date in local time with its zone:\n%s", out)
	}
}

// From the command line, a guest backed up to a bucket is listed, verified
// and restored by any host with the credentials; a run that finds the
// guest locked by another host exits 5.
func TestBackupS3CLI(t *testing.T) {
	srv := s3test.Start(t)
	bin := buildImgtool(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "etc"), 0o755)
	os.WriteFile(filepath.Join(src, "etc/motd"), []byte("from the bucket\n"), 0o644)
	img := filepath.Join(dir, "guest.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-d", src, img, "8M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	cfgDir := filepath.Join(dir, "conf.d")
	os.MkdirAll(cfgDir, 0o755)
	os.WriteFile(filepath.Join(cfgDir, "g.conf"), []byte(fmt.Sprintf(`name = "g"
sources = [%q]
dest = "s3://%s/nightly"
[snapshot]
mode = "never"
[s3]
endpoint = %q
path_style = true
`, img, s3test.Bucket, srv.Endpoint())), 0o644)
	run := func(args ...string) (string, int) {
		c := exec.Command(bin, args...)
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		err := c.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), code
	}
	base := []string{"backup", "--config-dir", cfgDir, "--state-dir", filepath.Join(dir, "state")}
	if out, code := run(append(base, "run")...); code != 0 {
		t.Fatalf("backup run: exit %d\n%s", code, out)
	}
	// Another host: a fresh state directory, nothing local but the config.
	other := []string{"backup", "--config-dir", cfgDir, "--state-dir", filepath.Join(dir, "state2")}
	out, code := run(append(other, "list")...)
	if code != 0 || !strings.Contains(out, ".L0.dump.zst") {
		t.Errorf("backup list: exit %d\n%s", code, out)
	}
	if out, code := run(append(other, "-v", "verify")...); code != 0 || !strings.Contains(out, "1 backups checked, 0 problems") {
		t.Errorf("backup verify: exit %d\n%s", code, out)
	}
	out, code = run(append(other, "verify", "--json")...)
	var vr []struct {
		Guest, Store string
		Checked      int
		OK           bool
		Errors       []string
	}
	if err := json.Unmarshal(jsonKey(t, out, "guests"), &vr); err != nil || code != 0 || len(vr) != 1 || !vr[0].OK || vr[0].Checked != 1 ||
		vr[0].Store != "s3://"+s3test.Bucket+"/nightly/g/" {
		t.Errorf("verify --json: exit %d, %v\n%s", code, err, out)
	}
	// run --json: the results, and nothing else, on stdout.
	c := exec.Command(bin, append(base, "run", "--json", "--level", "1")...)
	stdout, err := c.Output()
	var rr []backup.Result
	if jerr := json.Unmarshal(jsonKey(t, string(stdout), "guests"), &rr); err != nil || jerr != nil || len(rr) != 1 || len(rr[0].Backups) != 1 || rr[0].Backups[0].Level != 1 {
		t.Errorf("run --json: %v %v\n%s", err, jerr, stdout)
	}
	dest := filepath.Join(dir, "restored")
	if out, code := run("restore", dest, "--from", "s3://"+s3test.Bucket+"/nightly/g", "--volume", "",
		"--s3-endpoint", srv.Endpoint(), "--s3-path-style"); code != 0 {
		t.Fatalf("restore from the bucket: exit %d\n%s", code, out)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "etc/motd")); err != nil || string(b) != "from the bucket\n" {
		t.Errorf("restored etc/motd: %q %v", b, err)
	}
	// Another host holds the guest's lock: exit 5, one line naming it.
	if out, code := run("backup", "config"); code != 0 || !strings.Contains(out, "part_size        = \"8M\"") {
		t.Errorf("backup config: exit %d\n%s", code, out)
	}
	if _, err := srv.Client().PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(s3test.Bucket), Key: aws.String("nightly/g/lock"),
		Body: strings.NewReader(`{"host":"elsewhere","pid":7}`)}); err != nil {
		t.Fatal(err)
	}
	out, code = run(append(base, "run", "--level", "1")...)
	if code != exitLocked || !strings.Contains(out, `host "elsewhere"`) || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("run while another host holds the lock: exit %d\n%s", code, out)
	}
}

// A volume it cannot dump makes run and plan exit 6 with one line naming
// it; listed in skip it is fine.
func TestBackupIncompleteExit(t *testing.T) {
	bin := buildImgtool(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o644)
	img := filepath.Join(dir, "btrfs.img")
	os.WriteFile(img, nil, 0o644)
	os.Truncate(img, 120<<20)
	if out, err := exec.Command("mkfs.btrfs", "-q", "-r", src, img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.btrfs: %v\n%s", err, out)
	}
	cfgDir := filepath.Join(dir, "conf.d")
	os.MkdirAll(cfgDir, 0o755)
	write := func(extra string) {
		os.WriteFile(filepath.Join(cfgDir, "g.conf"), []byte(fmt.Sprintf("name = \"g\"\nsources = [%q]\ndest = %q\n%s\n[snapshot]\nmode = \"never\"\n",
			img, filepath.Join(dir, "backup"), extra)), 0o644)
	}
	run := func(args ...string) (string, string, int) {
		c := exec.Command(bin, append([]string{"backup", "--config-dir", cfgDir, "--state-dir", filepath.Join(dir, "state")}, args...)...)
		var out, errb bytes.Buffer
		c.Stdout, c.Stderr = &out, &errb
		err := c.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), errb.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), 0
	}
	write("")
	for _, sub := range []string{"run", "plan"} {
		_, stderr, code := run(sub)
		wantLine := "imgtool: guest g: NOT backed up: " + img + "#btrfs.img: btrfs: imgtool cannot dump this filesystem type"
		if sub == "run" {
			// Under cron a failed run prints one line: the reason, which
			// names every volume left out (issue 13.12).
			wantLine = "imgtool: guest g: 1 volume(s) NOT backed up: " + img + "#btrfs.img: btrfs: imgtool cannot dump this filesystem type"
			if strings.Count(stderr, "\n") != 1 {
				t.Errorf("run: %d lines on stderr, want one:\n%s", strings.Count(stderr, "\n"), stderr)
			}
		}
		if code != exitIncomplete || !strings.Contains(stderr, wantLine+"\n") {
			t.Errorf("%s: exit %d, want %d and the line %q:\n%s", sub, code, exitIncomplete, wantLine, stderr)
		}
	}
	write(`skip = ["btrfs.img"]`)
	if out, stderr, code := run("-v", "run"); code != 0 || !strings.Contains(out, "skipped "+img+"#btrfs.img: listed in skip") {
		t.Errorf("run with the volume in skip: exit %d\n%s%s", code, out, stderr)
	}
}

// TestBackupDamage: a disk of two partitions, the first damaged with
// debugfs. Before, any damage stopped the dump of the first and with it
// the read of the whole disk: the second partition was not backed up
// either, and the run exited 1. Now:
//   - an inode the filesystem cannot read (a type ext does not have) is
//     left out of the first partition's dump, which is kept and listed as
//     backed up INCOMPLETE;
//   - a file whose data cannot be mapped (an ext2 block pointer past the
//     end) is dumped as zeros: backed up INCOMPLETE too;
//   - damage met while writing an inode (a slow symlink whose block
//     pointer is past the end) stops that dump, which is dropped: NOT
//     backed up;
//
// either way the second partition is dumped, and the run exits 6 with one
// line naming the first partition and the damage.
func TestBackupDamage(t *testing.T) {
	bin := buildImgtool(t)
	for _, c := range []struct {
		name, fstype, damage, want, also string
		dumps                            []string
	}{
		{"inode", "ext4", "sif /odd mode 0170644", `backed up INCOMPLETE: %s#p1: ext4: backed up WITHOUT 1 item(s) its filesystem could not read: dump: inode `, `("odd" in directory 2)`, []string{"p1", "p2"}},
		{"data", "ext2", "sif /odd block[0] 99999999", `backed up INCOMPLETE: %s#p1: ext2: backed up WITHOUT 1 item(s) its filesystem could not read: inode `, "block 99999999 beyond the block count", []string{"p1", "p2"}},
		{"symlink", "ext2", "sif /link block[0] 99999999", `NOT backed up: %s#p1: ext2: the dump stopped at damage: dump: readlink inode`, "block 99999999", []string{"p2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var parts []string
			for i, name := range []string{"odd", "fine"} {
				src := filepath.Join(dir, fmt.Sprint("src", i))
				os.MkdirAll(src, 0o755)
				os.WriteFile(filepath.Join(src, name), []byte(name+"\n"), 0o644)
				os.Symlink(strings.Repeat("long-target/", 8), filepath.Join(src, "link")) // 96 bytes: a block of its own
				img := filepath.Join(dir, fmt.Sprint("p", i, ".img"))
				if out, err := exec.Command("mke2fs", "-q", "-F", "-t", c.fstype, "-d", src, img, "8M").CombinedOutput(); err != nil {
					t.Fatalf("mke2fs: %v\n%s", err, out)
				}
				parts = append(parts, img)
			}
			if out, err := exec.Command("debugfs", "-w", "-R", c.damage, parts[0]).CombinedOutput(); err != nil {
				t.Fatalf("debugfs: %v\n%s", err, out)
			}
			disk := filepath.Join(dir, "disk.img")
			os.WriteFile(disk, nil, 0o644)
			os.Truncate(disk, 18<<20)
			sf := exec.Command("sfdisk", "-q", disk)
			sf.Stdin = strings.NewReader("start=2048,size=16384\nstart=18432,size=16384\n")
			if out, err := sf.CombinedOutput(); err != nil {
				t.Fatalf("sfdisk: %v\n%s", err, out)
			}
			for i, p := range parts {
				if out, err := exec.Command("dd", "if="+p, "of="+disk, "bs=512", fmt.Sprint("seek=", 2048+16384*i), "conv=notrunc", "status=none").CombinedOutput(); err != nil {
					t.Fatalf("dd: %v\n%s", err, out)
				}
			}
			cfgDir, dest := filepath.Join(dir, "conf.d"), filepath.Join(dir, "backup")
			os.MkdirAll(cfgDir, 0o755)
			os.WriteFile(filepath.Join(cfgDir, "g.conf"), []byte(fmt.Sprintf("name = \"g\"\nsources = [%q]\ndest = %q\n[snapshot]\nmode = \"never\"\n", disk, dest)), 0o644)
			cmd := exec.Command(bin, "backup", "--config-dir", cfgDir, "--state-dir", filepath.Join(dir, "state"), "run")
			var errb bytes.Buffer
			cmd.Stderr = &errb
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			stderr := errb.String()
			want := fmt.Sprintf(c.want, disk)
			if code != exitIncomplete || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, want) || !strings.Contains(stderr, c.also) {
				t.Errorf("exit %d, want %d and one line with %q and %q:\n%s", code, exitIncomplete, want, c.also, stderr)
			}
			var dumps []string
			filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() && strings.HasSuffix(d.Name(), ".dump.zst") {
					dumps = append(dumps, d.Name())
				}
				return nil
			})
			slices.Sort(dumps)
			if len(dumps) != len(c.dumps) {
				t.Fatalf("dumps written: %q; want those of %q", dumps, c.dumps)
			}
			for i, d := range dumps {
				if !strings.Contains(d, "_"+c.dumps[i]+".") {
					t.Errorf("dumps written: %q; want those of %q", dumps, c.dumps)
				}
			}
		})
	}
}
