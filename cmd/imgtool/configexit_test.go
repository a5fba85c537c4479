package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// TestBackupConfigValueExit2 (issue 13.10): an invalid value in a backup
// config file is the same mistake as the invalid flag value, so it exits 2
// (usage) too, before any work, with one line naming the file; it exited 1.
// Reading the config directory (it does not exist) stays an error, 1.
func TestBackupConfigValueExit2(t *testing.T) {
	img := fixturetest.Copy(t, "ext-tiny-ext4")
	for _, c := range []struct {
		extra string // appended to a valid config
		flag  []string
		want  string // in the message
	}{
		{`compress = "lz4"`, []string{"run", "--compress", "lz4"}, `"lz4"`},
		{"[schedule]\nsequence = [3, 12]", []string{"plan", "--level", "12"}, "12"},
		{"[schedule]\nfull_day = 31", nil, "full_day 31"},
		{`spool = "sometimes"`, nil, `"sometimes"`},
		{"[snapshot]\nmode = \"maybe\"", nil, `"maybe"`},
		{`compres = "xz"`, nil, "compres"}, // an unknown key
		{`compress = 9`, nil, "compress"},  // the wrong type
		{`compress = "xz`, nil, "g.conf"},  // TOML syntax
		{"[retention]\nkeep_days = \"7\"", nil, "keep_days"},
	} {
		dir := t.TempDir()
		cfgDir := filepath.Join(dir, "conf.d")
		os.MkdirAll(cfgDir, 0o755)
		os.MkdirAll(filepath.Join(dir, "backup"), 0o755)
		cfg := fmt.Sprintf("name = \"g\"\nsources = [%q]\ndest = %q\n%s\n", img, filepath.Join(dir, "backup"), c.extra)
		conf := filepath.Join(cfgDir, "g.conf")
		os.WriteFile(conf, []byte(cfg), 0o644)
		base := []string{"backup", "--config-dir", cfgDir, "--state-dir", filepath.Join(dir, "state"), "--now", "2026-03-01"}
		for _, sub := range []string{"run", "plan", "verify", "list"} {
			_, errs, code := imgtool(t, append(base, sub, "g")...)
			if code != exitUsage || !strings.Contains(errs, conf) || !strings.Contains(errs, c.want) || strings.Count(errs, "\n") != 1 {
				t.Errorf("%s with %q in the config: exit %d, want %d with one line naming %s and %s: %q", sub, c.extra, code, exitUsage, conf, c.want, errs)
			}
		}
		if ents, _ := os.ReadDir(filepath.Join(dir, "backup")); len(ents) != 0 {
			t.Errorf("%q: backup run wrote %d entries before refusing the config", c.extra, len(ents))
		}
		if c.flag == nil {
			continue
		}
		// The same value as a flag, on a valid config: the same code.
		os.WriteFile(conf, []byte(fmt.Sprintf("name = \"g\"\nsources = [%q]\ndest = %q\n", img, filepath.Join(dir, "backup"))), 0o644)
		if _, errs, code := imgtool(t, append(append(base, c.flag...), "g")...); code != exitUsage {
			t.Errorf("%q as a flag: exit %d, want %d: %s", c.flag, code, exitUsage, errs)
		}
	}
	// Two files naming one guest: a config mistake too.
	dir := t.TempDir()
	for _, n := range []string{"a.conf", "b.conf"} {
		os.WriteFile(filepath.Join(dir, n), []byte(fmt.Sprintf("name = \"g\"\nsources = [%q]\ndest = %q\n", img, dir)), 0o644)
	}
	if _, errs, code := imgtool(t, "backup", "--config-dir", dir, "plan"); code != exitUsage || !strings.Contains(errs, "configured twice") {
		t.Errorf("a guest in two files: exit %d, want %d: %s", code, exitUsage, errs)
	}
	// Not a value: the directory cannot be read.
	if _, errs, code := imgtool(t, "backup", "--config-dir", filepath.Join(dir, "missing"), "plan"); code != exitError {
		t.Errorf("missing config dir: exit %d, want %d: %s", code, exitError, errs)
	}
}
