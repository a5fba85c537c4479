package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/backup"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// TestExitCodesConventions (issue 13.10): an invalid flag value is a
// usage error (2), found before any work is done; drbd compare exits
// non-zero on split brain; backup verify with nothing to verify says so
// and exits non-zero instead of passing.
func TestExitCodesConventions(t *testing.T) {
	bk := jsonBackupWorld(t)
	tiny := fixturetest.Image(t, "ext-tiny-ext4")
	for _, args := range [][]string{
		append(bk, "run", "--compress", "lz4", "g"),
		append(bk, "plan", "--level", "12", "g"),
		{"extract", "--workers", "0", tiny, "/", filepath.Join(t.TempDir(), "w0")},
	} {
		if _, errs, code := imgtool(t, args...); code != exitUsage || !strings.Contains(errs, "--") {
			t.Errorf("%q: exit %d, want %d: %s", args[len(args)-4:], code, exitUsage, errs)
		}
	}
	if _, _, code := imgtool(t, "drbd", "compare", fixturetest.Image(t, "drbd-sb-a"), fixturetest.Image(t, "drbd-sb-b")); code == exitOK {
		t.Errorf("drbd compare of a split brain exits 0")
	}
	// A guest whose disks are not on this host (a backup server) and whose
	// dest holds nothing: verify has nothing to check.
	dir := t.TempDir()
	cfgDir := filepath.Join(dir, "conf.d")
	os.MkdirAll(cfgDir, 0o755)
	os.MkdirAll(filepath.Join(dir, "empty"), 0o755)
	os.WriteFile(filepath.Join(cfgDir, "g.conf"), []byte(fmt.Sprintf("name = \"g\"\nsources = [%q]\ndest = %q\n",
		filepath.Join(dir, "not-here.img"), filepath.Join(dir, "empty"))), 0o644)
	base := []string{"backup", "--config-dir", cfgDir, "--state-dir", filepath.Join(dir, "state")}
	_, errs, code := imgtool(t, append(base, "verify")...)
	if code == exitOK || !strings.Contains(errs, "nothing to verify") || strings.Count(errs, "\n") != 1 {
		t.Errorf("verify with no backups: exit %d, stderr %q; want non-zero and one warning", code, errs)
	}
	out, _, code := imgtool(t, append(base, "verify", "--json")...)
	if code == exitOK || !strings.Contains(out, `"ok": false`) || !strings.Contains(out, "nothing to verify") {
		t.Errorf("verify --json with no backups: exit %d\n%s", code, out)
	}
}

// TestBackupConfigDocumentsDefaults (issue 13.11): `imgtool backup config`
// lists every key backup.Config decodes (found by reflection over its toml
// tags, table by table) and, for each key with a default, the default the
// code applies to a minimal config (name, sources, dest).
func TestBackupConfigDocumentsDefaults(t *testing.T) {
	ref, _, code := imgtool(t, "backup", "config")
	if code != exitOK {
		t.Fatalf("backup config: exit %d", code)
	}
	p := filepath.Join(t.TempDir(), "g.conf")
	os.WriteFile(p, []byte("name = \"g\"\nsources = [\"/dev/vg0/g\"]\ndest = \"/backup\"\n"), 0o644)
	c, err := backup.LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	// section returns the reference's lines of table ("" the top level).
	section := func(table string) string {
		s := ref
		if table != "" {
			i := strings.Index(s, "\n["+table+"]")
			if i < 0 {
				t.Errorf("table [%s] is not in backup config", table)
				return ""
			}
			s = s[i+1:]
		}
		if j := strings.Index(s[1:], "\n["); j >= 0 {
			s = s[:j+1]
		}
		return s
	}
	checked := 0
	var walk func(table string, v reflect.Value)
	walk = func(table string, v reflect.Value) {
		sect := section(table)
		for i := range v.NumField() {
			f := v.Type().Field(i)
			key := strings.Split(f.Tag.Get("toml"), ",")[0]
			if key == "" || key == "-" {
				continue
			}
			fv := v.Field(i)
			switch fv.Kind() {
			case reflect.Struct:
				walk(key, fv)
				continue
			case reflect.Map:
				section(key)
				continue
			}
			var line string
			for _, l := range strings.Split(sect, "\n") {
				if f := strings.Fields(l); len(f) >= 3 && f[0] == key && f[1] == "=" {
					line = strings.Join(f[2:], " ")
				}
			}
			if line == "" {
				t.Errorf("key %s (table [%s]) is not in backup config", key, table)
				continue
			}
			if strings.HasPrefix(line, "(required)") {
				continue
			}
			var want string
			switch x := fv.Interface().(type) {
			case string:
				want = fmt.Sprintf("%q", x)
				if key == "part_size" && x == "" {
					want = fmt.Sprintf("\"%dM\"", backup.DefaultPartSize>>20)
				}
			case []int:
				want = strings.ReplaceAll(fmt.Sprint(x), " ", ", ")
			case []string:
				want = fmt.Sprintf("%q", x)
			default:
				want = fmt.Sprint(x)
			}
			if !strings.HasPrefix(line, want) {
				t.Errorf("[%s] %s: backup config says %q, the code's default is %s", table, key, line, want)
			}
			checked++
		}
	}
	walk("", reflect.ValueOf(*c))
	if checked < 20 {
		t.Errorf("only %d defaults checked", checked)
	}
}

// TestReadmeExamples (issue 13.11): every example command of the README
// that names the demo image (dom0.img, or no image: the embedded demo)
// runs as shown: exit 0, or for a "$ imgtool ..." example followed by its
// output, that output (up to each "..."), including the error it shows.
// Pipes and redirections are cut off; outputs go to a temp directory;
// --write runs on a copy. Interactive commands (tui, mount) and ones that
// need files the README does not make (lvm undo) are left out.
func TestReadmeExamples(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(fixturetest.Dir(), "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	dom0 := fixturetest.Image(t, "dom0")
	t.Chdir(t.TempDir())
	lines := strings.Split(string(readme), "\n")
	inBlock, ran := false, 0
	norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	for i, line := range lines {
		if strings.HasPrefix(line, "```") {
			inBlock = !inBlock
			continue
		}
		shown := strings.HasPrefix(line, "$ imgtool ")
		if !inBlock || !shown && !strings.HasPrefix(line, "imgtool ") {
			continue
		}
		var args []string
		for _, f := range strings.Fields(strings.TrimPrefix(line, "$ "))[1:] {
			if strings.HasPrefix(f, "#") || f == "|" || f == ">" {
				break
			}
			if !strings.HasPrefix(f, "[") {
				args = append(args, f)
			}
		}
		demo := len(args) == 1 && args[0] == "inspect"
		if !demo && (!slices.Contains(args, "dom0.img") || args[0] == "tui" || args[0] == "mount") {
			continue
		}
		img := dom0
		if strings.Contains(line, "--write") {
			img = fixturetest.Copy(t, "dom0")
		}
		for j := range args {
			if args[j] == "dom0.img" {
				args[j] = img
			}
		}
		out, errs, code := imgtool(t, args...)
		t.Logf("README line %d: imgtool %s: exit %d", i+1, strings.Join(args[:1], " "), code)
		ran++
		if !shown {
			if code != exitOK {
				t.Errorf("README line %d: %s: exit %d: %s", i+1, line, code, errs)
			}
			continue
		}
		wantErr := false
		for _, w := range lines[i+1:] {
			if strings.HasPrefix(w, "```") {
				break
			}
			wantErr = wantErr || strings.HasPrefix(w, "imgtool: ")
			if k := strings.Index(w, "..."); k >= 0 {
				w = strings.TrimSuffix(w[:k], "(")
			}
			w = strings.ReplaceAll(w, "dom0.img", filepath.Base(img))
			if got := norm(strings.ReplaceAll(out+errs, filepath.Base(img), "dom0.img")); !strings.Contains(got, norm(strings.ReplaceAll(w, filepath.Base(img), "dom0.img"))) {
				t.Errorf("README line %d: %s: output lacks %q:\n%s%s", i+1, line, w, out, errs)
			}
		}
		if wantErr == (code == exitOK) {
			t.Errorf("README line %d: %s: exit %d", i+1, line, code)
		}
	}
	if ran < 10 {
		t.Errorf("only %d README examples ran", ran)
	}
}

// TestVersionNamesTheCommit (issue 13.11): --version names the commit the
// binary was built from. A plain `go build` in a clone stamps it (read
// back through debug.ReadBuildInfo), and scripts/build.sh does so where go
// does not: in a git worktree (cmd/go looks for a .git directory) or with
// GOFLAGS=-buildvcs=false. Both are built from a clone of this checkout's
// HEAD and must print its revision.
func TestVersionNamesTheCommit(t *testing.T) {
	src := filepath.Join(fixturetest.Dir(), "..")
	head, err := exec.Command("git", "-C", src, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("the tests need a git checkout for this: %v", err)
	}
	rev := strings.TrimSpace(string(head))[:12]
	clone := filepath.Join(t.TempDir(), "clone")
	if out, err := exec.Command("git", "clone", "-q", "--no-hardlinks", src, clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	exec.Command("git", "-C", clone, "checkout", "-q", rev).Run()
	version := func(bin string) string {
		out, err := exec.Command(bin, "--version").Output()
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	bin := filepath.Join(t.TempDir(), "plain")
	c := exec.Command("go", "build", "-o", bin, "./cmd/imgtool")
	c.Dir, c.Env = clone, append(os.Environ(), "GOFLAGS=-buildvcs=auto")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if v := version(bin); !strings.Contains(v, " "+rev+" ") {
		t.Errorf("go build in a clone: --version %q lacks the revision %s", v, rev)
	}
	bin = filepath.Join(t.TempDir(), "script")
	c = exec.Command("bash", "scripts/build.sh", "-o", bin)
	c.Dir, c.Env = clone, append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("scripts/build.sh: %v\n%s", err, out)
	}
	if v := version(bin); !strings.Contains(v, "(devel) "+rev+" ") || strings.Contains(v, "+dirty") {
		t.Errorf("scripts/build.sh with -buildvcs=false: --version %q lacks the revision %s", v, rev)
	}
}

// TestBackupCronOneLine (issue 13.12): a backup run that fails under cron
// (stderr not a terminal, no -v) prints exactly one line on stderr, in
// imgtool's format, never a slog record next to it: here a guest
// definition listing a disk the config does not back up (exit 4). A
// successful run prints nothing; -v still shows the log.
func TestBackupCronOneLine(t *testing.T) {
	dir := t.TempDir()
	img := fixturetest.Copy(t, "ext-tiny-ext4")
	def := filepath.Join(dir, "g.cfg")
	os.WriteFile(def, []byte(fmt.Sprintf("name = 'g'\ndisk = ['file:%s,xvda,w', 'phy:/dev/vg0/g-data,xvdb,w']\n", img)), 0o644)
	cfgDir := filepath.Join(dir, "conf.d")
	os.MkdirAll(cfgDir, 0o755)
	conf := fmt.Sprintf("name = \"g\"\nsources = [%q]\ndest = %q\n%%s\n[snapshot]\nmode = \"never\"\n", img, filepath.Join(dir, "backup"))
	os.WriteFile(filepath.Join(cfgDir, "g.conf"), []byte(fmt.Sprintf(conf, fmt.Sprintf("guest_definition = %q", def))), 0o644)
	base := []string{"backup", "--config-dir", cfgDir, "--state-dir", filepath.Join(dir, "state")}
	_, errs, code := imgtool(t, append(base, "run", "--now", "2026-03-01")...)
	want := "imgtool: guest g: disks in the guest definition are NOT in the backup config: /dev/vg0/g-data\n"
	if code != exitUncovered || errs != want {
		t.Errorf("run with an uncovered disk: exit %d, stderr\n%s\nwant exit %d and only\n%s", code, errs, exitUncovered, want)
	}
	_, errs, _ = imgtool(t, append([]string{"-v"}, append(base, "run", "--now", "2026-03-02")...)...)
	if !strings.Contains(errs, "level=ERROR") || !strings.Contains(errs, want) {
		t.Errorf("run -v: the log is not shown:\n%s", errs)
	}
	os.WriteFile(filepath.Join(cfgDir, "g.conf"), []byte(fmt.Sprintf(conf, "")), 0o644)
	if _, errs, code := imgtool(t, append(base, "run", "--now", "2026-03-03")...); code != exitOK || errs != "" {
		t.Errorf("a successful run: exit %d, stderr %q; want silence", code, errs)
	}
}
