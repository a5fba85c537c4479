package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// TestExtractShadowedName (issue 13.4: every entry a reader skips is a
// reported loss): hostile-ext's root has a symlink "evil" and, after it, a
// directory "evil" (debugfs lists both). `extract IMG /evil DEST` reaches
// the symlink only; the directory is reported as refused and the exit is 3,
// to a directory and to --tar alike. It said "no errors" and exited 0.
func TestExtractShadowedName(t *testing.T) {
	img := fixturetest.Image(t, "hostile-ext")
	out, err := exec.Command("debugfs", "-R", "ls -l /", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	var dirIno string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[len(f)-1] == "evil" && strings.HasPrefix(f[1], "40") {
			dirIno = f[0]
		}
	}
	if dirIno == "" {
		t.Fatalf("debugfs lists no directory evil:\n%s", out)
	}
	want := "refused: /evil (inode " + dirIno + "): name evil appears twice"
	for _, args := range [][]string{
		{"extract", img, "/evil", filepath.Join(t.TempDir(), "out")},
		{"extract", img, "/evil", "--tar", "-"},
	} {
		if _, errs, code := imgtool(t, args...); code != exitPartial || !strings.Contains(errs, want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", args, code, errs, exitPartial, want)
		}
	}
}
