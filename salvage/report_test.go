package salvage

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
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

// TestReportFileVersion: salvage-report.json has "version": 1 as its first
// key, as every JSON document imgtool writes (docs/json.md), its entries
// are [] when there are none, and it still reads back into a Report.
func TestReportFileVersion(t *testing.T) {
	for _, rep := range []*Report{
		{FilesRecovered: 3, Notes: []string{"n"}, Entries: []Entry{{Path: "/a", Ino: 12, Type: "file", Status: StatusLost, Reasons: []Reason{BadInode}}}},
		{FilesRecovered: 5},
	} {
		dir := t.TempDir()
		if _, err := rep.WriteFiles(dir); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, ReportName))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), "{\n  \"version\": 1,\n") {
			t.Errorf("%s does not start with \"version\": 1:\n%.200s", ReportName, b)
		}
		if strings.Contains(string(b), "null") {
			t.Errorf("null in %s:\n%s", ReportName, b)
		}
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		if string(doc["version"]) != "1" || !strings.HasPrefix(string(doc["entries"]), "[") {
			t.Errorf("version %s, entries %.20s; want 1 and a list", doc["version"], doc["entries"])
		}
		var back Report
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if back.FilesRecovered != rep.FilesRecovered || len(back.Entries) != len(rep.Entries) || len(back.Notes) != len(rep.Notes) {
			t.Errorf("read back %+v, wrote %+v", back, *rep)
		}
		if rep.Entries == nil && len(back.Entries) != 0 {
			t.Errorf("the report written changed the caller's Report")
		}
	}
}

// TestSummaryTerminalSafe (issue 13.5): salvage-report.txt, which a user
// reads with cat or less, shows names holding ESC[2J, the byte 0x9B,
// U+009B (CSI) and U+202E by termsafe's rule, Go-quoted, as the CLI and the
// TUI do; the C1 and bidi controls went through as they were.
func TestSummaryTerminalSafe(t *testing.T) {
	names := []string{"/clear\x1b[2J", "/csi\x9b31m", "/csi\u009b32m", "/evil\u202etxt.exe"}
	rep := &Report{JournalError: "bad block for \"/j\u202e\""}
	for i, n := range names {
		rep.Entries = append(rep.Entries, Entry{Path: n, Ino: uint32(12 + i), Type: "file", Status: StatusLost, Reasons: []Reason{BadInode},
			Detail: "inode of " + n + " unreadable"})
	}
	dir := t.TempDir()
	if _, err := rep.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, SummaryName))
	if err != nil {
		t.Fatal(err)
	}
	txt := string(b)
	if strings.ContainsAny(txt, "\x1b\u009b\u202e") || strings.Contains(txt, "\x9b") {
		t.Errorf("%s holds a terminal control as it is:\n%q", SummaryName, txt)
	}
	for _, want := range []string{`"/clear\x1b[2J"`, `"/csi\x9b31m"`, `"/csi\u009b32m"`, `"/evil\u202etxt.exe"`, `unreadable`} {
		if !strings.Contains(txt, want) {
			t.Errorf("%s does not show %s:\n%s", SummaryName, want, txt)
		}
	}
}
