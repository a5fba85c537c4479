package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
