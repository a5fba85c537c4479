package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
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
