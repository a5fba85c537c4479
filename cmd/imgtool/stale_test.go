package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// TestNoQuietlyPartialView (issue 18.2): whenever the view is known to be
// incomplete, older than the disk, or read past damage, extract exits 3
// and says why, and cat says so on stderr.
func TestNoQuietlyPartialView(t *testing.T) {
	// A checksum failure on the path: one byte of an inode's crtime
	// flipped in a copy of a clean metadata_csum ext4.
	csum := fixturetest.Copy(t, "undel-ext4")
	raw, err := os.ReadFile(csum)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := ext.Open(bytes.NewReader(raw), int64(len(raw)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ino, err := fsys.Lookup("/docs/after-the-rm")
	if err != nil {
		t.Fatal(err)
	}
	off, err := fsys.InodeOffset(ino)
	if err != nil {
		t.Fatal(err)
	}
	raw[off+0x90] ^= 0x40 // i_crtime: only the checksum notices
	if err := os.WriteFile(csum, raw, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, img string
		args      []string
		want      string
	}{
		{"fast commits cut short", fixturetest.Copy(t, "fc-badcrc"), nil, "fast-commit replay stopped"},
		{"journal not replayed", fixturetest.Copy(t, "journal-ext4"), []string{"--no-journal"}, "not replayed"},
		{"checksum failure", csum, nil, "checksum mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"extract", tc.img, "/", t.TempDir() + "/out"}, tc.args...)
			_, errs, code := imgtool(t, args...)
			if code != exitPartial || !strings.Contains(errs, tc.want) {
				t.Errorf("extract: exit %d, want %d with %q:\n%s", code, exitPartial, tc.want, errs)
			}
		})
	}
	_, errs, code := imgtool(t, "cat", csum, "/docs/after-the-rm")
	if code != 0 || !strings.Contains(errs, "checksum mismatch") {
		t.Errorf("cat past a checksum failure: exit %d, stderr %q", code, errs)
	}
}
