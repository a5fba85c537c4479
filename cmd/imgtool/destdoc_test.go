package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// TestExtractDestDocumented (issue 13.13: document whether VOL:/home DEST
// makes DEST/home or fills DEST, and why): extract --help says that it
// fills DEST, and why, and it does: a directory source's entries land in
// DEST whether DEST existed or not, and a second run does not nest.
func TestExtractDestDocumented(t *testing.T) {
	help, _, code := imgtool(t, "extract", "--help")
	flat := strings.Join(strings.Fields(help), " ")
	for _, want := range []string{"VOL:/home DEST fills DEST", "it does not make DEST/home", "second run merges instead of nesting"} {
		if code != exitOK || !strings.Contains(flat, want) {
			t.Errorf("extract --help does not say %q", want)
		}
	}
	img := fixturetest.Image(t, "dom0")
	const lv = "VolGroup00/domu1/VolGroup00/LogVol00"
	for _, pre := range []bool{false, true} {
		dest := filepath.Join(t.TempDir(), "d")
		if pre {
			os.Mkdir(dest, 0o755)
		}
		for i := 0; i < 2; i++ {
			if _, errs, code := imgtool(t, "extract", "--force", img, lv+":/home", dest); code != exitOK {
				t.Fatalf("extract: exit %d: %s", code, errs)
			}
		}
		if _, err := os.Stat(filepath.Join(dest, "alice", "notes.txt")); err != nil {
			t.Errorf("DEST existed %v: %v", pre, err)
		}
		for _, nested := range []string{"home", filepath.Join("alice", "home")} {
			if _, err := os.Stat(filepath.Join(dest, nested)); err == nil {
				t.Errorf("DEST existed %v: DEST/%s made", pre, nested)
			}
		}
	}
}
