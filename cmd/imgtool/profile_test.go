package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCPUProfileEnv: IMGTOOL_CPUPROFILE=FILE writes a pprof profile (a
// gzip stream) of the run and keeps the run's exit code.
func TestCPUProfileEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.prof")
	t.Setenv("IMGTOOL_CPUPROFILE", path)
	if code := profiled(func() int { return 3 }); code != 3 {
		t.Errorf("exit code %d, want the run's 3", code)
	}
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("profile %q: %d bytes, %v; want a gzip'd pprof profile", path, len(b), err)
	}
}
