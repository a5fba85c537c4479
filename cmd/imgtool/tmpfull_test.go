package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"golang.org/x/sys/unix"
)

// TestBombTmpTooSmall (issue 13.3: a clear error, or a --tmp DIR hint):
// 33 KB of zstd that expands to 1 GiB of 0xFF, opened with --tmp on a
// 2 MiB tmpfs, is refused with an error naming the image, the directory
// and --tmp DIR, exit 1, and leaves the tmpfs empty instead of full.
func TestBombTmpTooSmall(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("mounting a small tmpfs needs root (as .ci/run does)")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=2m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, 0) })
	bomb := filepath.Join(fixturetest.ImagesDir(), "bomb-ff.img.zst")
	_, errs, code := imgtool(t, "inspect", "--tmp", dir, bomb)
	for _, want := range []string{bomb, dir, "too little free space", "--tmp DIR"} {
		if !strings.Contains(errs, want) {
			t.Errorf("error %q does not name %q", errs, want)
		}
	}
	if code != exitError {
		t.Errorf("exit %d, want %d", code, exitError)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if used := (st.Blocks - st.Bfree) * uint64(st.Bsize); used > 64<<10 {
		t.Errorf("the tmpfs holds %d bytes after the refusal", used)
	}
}
