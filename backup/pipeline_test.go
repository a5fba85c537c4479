package backup

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildGuestDisk makes a guest disk image with real tools: an MBR with an
// ext4 partition (p1) and a swap partition (p2).
func buildGuestDisk(t *testing.T, dir string) string {
	t.Helper()
	need(t, "sfdisk", "mke2fs", "mkswap")
	src := filepath.Join(dir, "guest-src")
	os.MkdirAll(filepath.Join(src, "etc"), 0o755)
	os.WriteFile(filepath.Join(src, "etc/hostname"), []byte("guest\n"), 0o644)
	os.WriteFile(filepath.Join(src, "data.bin"), patterned("guest", 300000), 0o644)
	disk := filepath.Join(dir, "disk.img")
	p1, p2 := filepath.Join(dir, "p1.img"), filepath.Join(dir, "p2.img")
	sh(t, dir, "mke2fs", "-q", "-F", "-t", "ext4", "-d", src, p1, "16M")
	sh(t, dir, "truncate", "-s", "4M", p2)
	sh(t, dir, "mkswap", p2)
	sh(t, dir, "truncate", "-s", "21M", disk)
	sh(t, dir, "sh", "-c", "printf 'start=2048,size=32768,type=83\nstart=34816,size=8192,type=82\n' | sfdisk -q "+disk)
	sh(t, dir, "dd", "if="+p1, "of="+disk, "bs=512", "seek=2048", "conv=notrunc,sparse", "status=none")
	sh(t, dir, "dd", "if="+p2, "of="+disk, "bs=512", "seek=34816", "conv=notrunc", "status=none")
	return disk
}

func fakeScript(t *testing.T) string {
	p, err := filepath.Abs("testdata/fake.sh")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// writeTestConfig writes a guest config using the fake commands.
func writeTestConfig(t *testing.T, w, disk, extra string) string {
	t.Helper()
	fake := fakeScript(t)
	cfgDir := filepath.Join(w, "conf.d")
	os.MkdirAll(cfgDir, 0o755)
	cfg := fmt.Sprintf(`name = "guest1"
sources = [%q]
pause = "%s pause {name}"
resume = "%s resume {name}"
dest = %q
hosts = [%q]
%s
[snapshot]
mode = "always"
create = "%s create {source} %s/{snap}.img %s/{snap}.cow"
remove = "%s remove %s/{snap}.img %s/{snap}.cow"
device = "%s/{snap}.img"
cow = "%s/{snap}.cow"
`, disk, fake, fake, filepath.Join(w, "backup"), filepath.Join(w, "remote"), extra, fake, w, w, fake, w, w, w, w)
	if err := os.WriteFile(filepath.Join(cfgDir, "guest1.conf"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgDir
}

func readLog(t *testing.T, p string) []string {
	b, _ := os.ReadFile(p)
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			out = append(out, strings.Fields(l)[0])
		}
	}
	return out
}

func runAt(t *testing.T, cfgDir, stateDir string, at time.Time, level int) ([]*Result, error) {
	t.Helper()
	cfgs, err := LoadConfigDir(cfgDir)
	if err != nil {
		t.Fatal(err)
	}
	lock, err := AcquireLock(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	if _, err := Recover(context.Background(), stateDir, cfgs, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	r := &Runner{StateDir: stateDir, Level: level, Now: func() time.Time { return at }, Host: "test"}
	return r.Run(context.Background(), cfgs)
}

func TestPipeline(t *testing.T) {
	w := t.TempDir()
	disk := buildGuestDisk(t, w)
	logf := filepath.Join(w, "calls.log")
	t.Setenv("FAKE_LOG", logf)
	cfgDir := writeTestConfig(t, w, disk, "[retention]\nkeep_days = 1\n")
	state := filepath.Join(w, "state")
	dest := filepath.Join(w, "backup", "guest1")

	day := func(m time.Month, d int) time.Time { return time.Date(2026, m, d, 2, 0, 0, 0, time.Local) }
	var files []string
	for i, at := range []time.Time{day(1, 1), day(1, 2), day(1, 3), day(2, 1), day(2, 2)} {
		os.Remove(logf)
		res, err := runAt(t, cfgDir, state, at, -1)
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if got := strings.Join(readLog(t, logf), " "); got != "pause create resume remove" {
			t.Errorf("run %d: calls %q, want pause create resume remove", i, got)
		}
		r := res[0]
		if len(r.Backups) != 1 || r.Backups[0].Volume != "p1" {
			t.Fatalf("run %d: backups %+v", i, r.Backups)
		}
		if len(r.Skipped) != 1 || r.Skipped[0].Volume != "p2" || r.Skipped[0].Reason != "swap" {
			t.Errorf("run %d: skipped %+v, want p2 swap", i, r.Skipped)
		}
		want := []int{0, 3, 2, 0, 3}[i]
		if m := r.Backups[0]; m.Level != want {
			t.Errorf("run %d (%s): level %d, want %d", i, at.Format("Jan 2"), m.Level, want)
		}
		files = append(files, r.Backups[0].File)
		if i == 0 {
			// The source did not change: --deep finds the same content.
			if err := VerifyDeep(dest, r.Backups[0], disk); err != nil {
				t.Errorf("deep verify: %v", err)
			}
			cfgs, _ := LoadConfigDir(cfgDir)
			plan := (&Runner{Level: -1}).Plan(cfgs[0], day(1, 2))
			var got []string
			for _, v := range plan.Volumes {
				name := v.Volume
				if v.Kind == "disk" {
					name = "disk" // the root's display name is inspect's business
				}
				got = append(got, fmt.Sprintf("%s:%v:%d:%s", name, v.Dump, v.Level, v.Reason))
			}
			if want := "disk:false:0:,p1:true:3:,p2:false:0:swap"; strings.Join(got, ",") != want {
				t.Errorf("plan: %s, want %s", strings.Join(got, ","), want)
			}
		}
		// The copy on the "remote" is complete and verified.
		if sum, _, err := fileSHA256(filepath.Join(w, "remote", "guest1", r.Backups[0].File)); err != nil || sum != r.Backups[0].SHA256 {
			t.Errorf("run %d: remote copy sha %s (%v), want %s", i, sum, err, r.Backups[0].SHA256)
		}
	}
	// Retention (keep_days = 1) at Feb 2: the Feb 2 level 3 is kept, and the
	// Feb 1 level 0 it depends on although it is older than a day; January goes.
	ms, _, _ := ReadManifests(dest)
	var have []string
	for _, m := range ms {
		have = append(have, m.File)
	}
	if strings.Join(have, " ") != files[3]+" "+files[4] {
		t.Errorf("after retention: %v, want %v", have, files[3:])
	}
	if n, err := Verify(dest, false); err != nil || n != 2 {
		t.Errorf("verify: %d checked, %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(state, "guest1.state")); !os.IsNotExist(err) {
		t.Errorf("state file left after a clean run: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "dumpdates")); !strings.Contains(string(b), "guest1|"+disk+"#p1|") {
		t.Errorf("dumpdates not keyed by guest|source#volume|uuid:\n%s", b)
	}

	// A failing dump: the guest is resumed and the snapshot removed anyway,
	// and no backup appears.
	os.Remove(logf)
	t.Setenv("FAKE_BREAK", "1")
	_, err := runAt(t, cfgDir, state, day(2, 3), -1)
	if err == nil {
		t.Fatal("run on a broken snapshot succeeded")
	}
	if got := strings.Join(readLog(t, logf), " "); got != "pause create resume remove" {
		t.Errorf("failed run: calls %q, want pause create resume remove", got)
	}
	t.Setenv("FAKE_BREAK", "")
	if ms2, _, _ := ReadManifests(dest); len(ms2) != 2 {
		t.Errorf("failed run left %d manifests, want 2", len(ms2))
	}
	if ents, _ := filepath.Glob(filepath.Join(dest, tmpPrefix+"*")); len(ents) > 0 {
		t.Errorf("temp files left: %v", ents)
	}

	// An overflowed snapshot fails loudly.
	os.Remove(logf)
	t.Setenv("FAKE_OVERFLOW", "1")
	_, err = runAt(t, cfgDir, state, day(2, 4), -1)
	if err == nil || !strings.Contains(err.Error(), "OVERFLOWED") {
		t.Fatalf("overflowed snapshot: err %v", err)
	}
	if got := strings.Join(readLog(t, logf), " "); got != "pause create resume remove" {
		t.Errorf("overflow run: calls %q", got)
	}
	t.Setenv("FAKE_OVERFLOW", "")
	if ms2, _, _ := ReadManifests(dest); len(ms2) != 2 {
		t.Errorf("overflowed run left %d manifests, want 2", len(ms2))
	}
}

func TestScheduleTable(t *testing.T) {
	var s Schedule
	want := []int{0, 3, 2, 5, 4, 7, 6, 9, 8, 9, 3, 2, 5}
	for d := 1; d <= len(want); d++ {
		if got := s.LevelFor(time.Date(2026, 3, d, 23, 0, 0, 0, time.Local)); got != want[d-1] {
			t.Errorf("March %d: level %d, want %d", d, got, want[d-1])
		}
	}
	s = Schedule{FullDay: 15, Sequence: []int{1, 2}}
	for _, c := range []struct{ m, d, l int }{{3, 15, 0}, {3, 16, 1}, {3, 17, 2}, {3, 18, 1}, {4, 14, 2}, {4, 15, 0}} {
		if got := s.LevelFor(time.Date(2026, time.Month(c.m), c.d, 1, 0, 0, 0, time.Local)); got != c.l {
			t.Errorf("%d/%d: level %d, want %d", c.m, c.d, got, c.l)
		}
	}
}

func TestUncoveredDisk(t *testing.T) {
	w := t.TempDir()
	xml := `<domain><devices><disk type="block" device="disk"><source dev="/dev/vg0/web-root"/></disk>
<disk type="file" device="disk"><source file="/var/lib/img/web-data.img"/></disk>
<disk device="cdrom"><source file="/iso/x.iso"/></disk></devices></domain>`
	xen := "name = 'web'\ndisk = [ 'phy:/dev/vg0/web-root,xvda,w',\n  'file:/var/lib/img/web-data.img,xvdb,w' ]\n"
	for _, def := range []string{xml, xen} {
		p := filepath.Join(w, "def")
		os.WriteFile(p, []byte(def), 0o644)
		c := &Config{Sources: []string{"/dev/mapper/vg0-web--root"}, GuestDefinition: p}
		u, err := Uncovered(c)
		if err != nil || strings.Join(u, ",") != "/var/lib/img/web-data.img" {
			t.Errorf("uncovered %v, %v; want the data disk only", u, err)
		}
	}
}
