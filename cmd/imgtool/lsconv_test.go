package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLsDirInodeLocalTime (issue 13.8): ls -d lists a directory itself,
// -i puts the inode number first, and times are local with the zone shown
// unless --utc, as GNU ls and stat show them. The oracles: GNU ls and stat
// on the tree mke2fs -d copied (in TZ=Europe/Berlin, winter and summer
// time), and debugfs for the inode numbers. imgtool runs as a binary with
// TZ in its environment, as a user runs it.
func TestLsDirInodeLocalTime(t *testing.T) {
	bin := imgtoolBin(t)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(filepath.Join(src, "d"), 0o750); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(src, "d", "g"), []byte("g\n"), 0o644)
	os.WriteFile(filepath.Join(src, "f"), []byte("hello\n"), 0o640)
	winter := time.Date(2024, 3, 1, 13, 2, 11, 0, time.UTC) // mke2fs -d keeps whole seconds
	summer := time.Date(2024, 7, 1, 22, 30, 5, 0, time.UTC) // the next day in Berlin
	os.Chtimes(filepath.Join(src, "f"), winter, winter)
	os.Chtimes(filepath.Join(src, "d"), summer, summer)
	img := filepath.Join(t.TempDir(), "t.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-I", "256", "-d", src, img, "8M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	berlin := append(os.Environ(), "TZ=Europe/Berlin")
	run := func(env []string, name string, args ...string) string {
		t.Helper()
		c := exec.Command(name, args...)
		c.Env = env
		out, err := c.Output()
		if err != nil {
			t.Fatalf("%s %q: %v", name, args, err)
		}
		return string(out)
	}
	// Inode numbers as debugfs reads them.
	inos := map[string]string{}
	for _, l := range strings.Split(run(nil, "debugfs", "-R", "ls -l /", img), "\n") {
		if f := strings.Fields(l); len(f) >= 2 {
			inos[f[len(f)-1]] = f[0]
		}
	}
	const style = "--time-style=+%Y-%m-%d %H:%M:%S %z"
	for _, c := range []struct {
		name string
		env  []string
		utc  bool
	}{{"d", berlin, false}, {"f", berlin, false}, {"d", append(os.Environ(), "TZ=UTC"), true}, {"f", append(os.Environ(), "TZ=UTC"), true}} {
		gnu := strings.Fields(run(c.env, "ls", "-ld", style, filepath.Join(src, c.name)))
		args := []string{"ls", "-ldi", img, "/" + c.name}
		if c.utc {
			args = append(args, "--utc")
		}
		// --utc must not depend on TZ: run it in Berlin.
		got := strings.Fields(run(berlin, bin, args...))
		if len(gnu) != 9 || len(got) != 10 {
			t.Fatalf("%s: GNU ls %q, imgtool %q", c.name, gnu, got)
		}
		want := []string{inos[c.name], gnu[0], gnu[1], "0", "0", got[5], gnu[5], gnu[6], gnu[7], c.name}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("imgtool %q:\n got %q\nwant %q", args, got, want)
		}
	}
	if got := run(berlin, bin, "ls", "-ld", img, "/d"); strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, " d\n") {
		t.Errorf("ls -ld /d lists more than the directory: %q", got)
	}
	// -i without -l: "INODE NAME", for every entry.
	for _, l := range strings.Split(strings.TrimSpace(run(berlin, bin, "ls", "-i", img, "/")), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 || inos[f[1]] != f[0] {
			t.Errorf("ls -i line %q; debugfs says inode %s", l, inos[f[len(f)-1]])
		}
	}
	// stat: GNU stat's %y, with nanoseconds and the zone.
	wantY := strings.TrimSpace(run(berlin, "stat", "-c", "%y", filepath.Join(src, "f")))
	if out := run(berlin, bin, "stat", img, "/f"); !strings.Contains(out, "Modify: "+wantY+"\n") {
		t.Errorf("stat in Berlin: want Modify: %s, got\n%s", wantY, out)
	}
	wantY = strings.TrimSpace(run(append(os.Environ(), "TZ=UTC"), "stat", "-c", "%y", filepath.Join(src, "f")))
	if out := run(berlin, bin, "stat", "--utc", img, "/f"); !strings.Contains(out, "Modify: "+wantY+"\n") {
		t.Errorf("stat --utc: want Modify: %s, got\n%s", wantY, out)
	}
	// JSON keeps RFC 3339 in UTC: it carries its zone.
	if out := run(berlin, bin, "ls", "--json", img, "/"); !strings.Contains(out, `"mtime":"2024-03-01T13:02:11Z"`) {
		t.Errorf("ls --json in Berlin:\n%s", out)
	}
}
