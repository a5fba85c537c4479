package salvage

import (
	"os"
	"path/filepath"
	"testing"
)

// TestReportFilesNeverOverwrite: a salvaged filesystem may itself hold a
// file named salvage-report.json (or a symlink of that name planted to
// redirect the write); the report then goes to a numbered name and the
// extracted entry is left alone.
func TestReportFilesNeverOverwrite(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, ReportName)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, SummaryName), []byte("from the image"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := &Report{FilesRecovered: 3, Entries: []Entry{{Path: "/a", Ino: 12, Type: "file", Status: StatusLost, Reasons: []Reason{BadInode}}}}
	paths, err := rep.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "salvage-report.1.json"), filepath.Join(dir, "salvage-report.1.txt")}
	if len(paths) != 2 || paths[0] != want[0] || paths[1] != want[1] {
		t.Errorf("report written to %v, want %v", paths, want)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("symlink followed: victim now %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, SummaryName)); string(b) != "from the image" {
		t.Errorf("extracted file overwritten: %q", b)
	}
}
