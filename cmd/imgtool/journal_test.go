package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// lsTree lists every path with its size, via `imgtool ls -R --json`.
func lsTree(t *testing.T, args ...string) []string {
	out, errs, code := imgtool(t, append([]string{"ls", "-R", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("ls %v: exit %d: %s", args, code, errs)
	}
	var entries []map[string]any
	if err := json.Unmarshal(jsonKey(t, out, "entries"), &entries); err != nil {
		t.Fatalf("ls --json: %v\n%s", err, out)
	}
	var paths []string
	for _, e := range entries {
		p, _ := e["path"].(string)
		if p == "" {
			p, _ = e["name"].(string)
		}
		paths = append(paths, p+" "+strings.TrimSpace(jsonString(e["size"])))
	}
	sort.Strings(paths)
	return paths
}

func jsonString(v any) string { b, _ := json.Marshal(v); return string(b) }

// A filesystem whose journal needs recovery reads as the kernel would see
// it after mount: the same tree e2fsck -fy leaves on a copy. --no-journal
// shows the on-disk state, which differs.
func TestJournalReplayedByDefault(t *testing.T) {
	img := fixturetest.Image(t, "journal-ext4")
	fixed := fixturetest.Copy(t, "journal-ext4")
	if out, err := exec.Command("e2fsck", "-fy", fixed).CombinedOutput(); err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 1 {
			t.Fatalf("e2fsck: %v\n%s", err, out)
		}
	}
	replayed := lsTree(t, img, "/")
	want := lsTree(t, fixed, "/")
	raw := lsTree(t, img, "/", "--no-journal")
	if strings.Join(replayed, "\n") != strings.Join(want, "\n") {
		t.Errorf("replayed view:\n%s\ne2fsck -fy copy:\n%s", strings.Join(replayed, "\n"), strings.Join(want, "\n"))
	}
	if strings.Join(raw, "\n") == strings.Join(want, "\n") {
		t.Error("--no-journal shows the replayed state; the fixture's journal changes nothing?")
	}
	out, _, _ := imgtool(t, "inspect", img)
	if !strings.Contains(out, "journal replayed in memory") {
		t.Errorf("inspect does not report the replay:\n%s", out)
	}
}

// --journal-dev supplies a filesystem's external journal: without it the
// on-disk state is shown and the missing device reported; with it every
// reader (ls, inspect, extract --salvage) sees the replayed tree, which
// equals what e2fsck -fy -j DEV leaves on copies of both.
func TestJournalDevFlag(t *testing.T) {
	fs, jdev := fixturetest.Image(t, "journal-extdev-fs"), fixturetest.Image(t, "journal-extdev-jdev")
	fixed, fixedJ := fixturetest.Copy(t, "journal-extdev-fs"), fixturetest.Copy(t, "journal-extdev-jdev")
	if out, err := exec.Command("e2fsck", "-fy", "-j", fixedJ, fixed).CombinedOutput(); err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 1 {
			t.Fatalf("e2fsck: %v\n%s", err, out)
		}
	}
	sumFS, sumJ := sha256File(t, fs), sha256File(t, jdev)
	want := lsTree(t, fixed, "/")
	_, errs, code := imgtool(t, "ls", "-R", "--json", fs, "/")
	if code != 0 || !strings.Contains(errs, "external device") || !strings.Contains(errs, "--journal-dev") {
		t.Errorf("without --journal-dev: exit %d, stderr %q; want the tree and the missing device named", code, errs)
	}
	if raw := lsTree(t, fs, "/"); strings.Join(raw, "\n") == strings.Join(want, "\n") {
		t.Fatal("the on-disk tree already equals e2fsck's: the fixture's journal changes nothing")
	}
	if got := lsTree(t, fs, "/", "--journal-dev", jdev); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("with --journal-dev:\n%s\ne2fsck -fy -j copy:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if out, _, _ := imgtool(t, "inspect", "--journal-dev", jdev, fs); !strings.Contains(out, "journal replayed in memory") {
		t.Errorf("inspect --journal-dev does not report the replay:\n%s", out)
	}
	dest := t.TempDir() + "/out"
	if _, errs, code := imgtool(t, "extract", "--salvage", "--journal-dev", jdev, fs, "/", dest); code != 0 && code != 3 {
		t.Fatalf("extract --salvage: exit %d: %s", code, errs)
	}
	var rep struct {
		Replayed bool `json:"journal_replayed"`
	}
	b, err := os.ReadFile(dest + "/salvage-report.json")
	if err != nil || json.Unmarshal(b, &rep) != nil || !rep.Replayed {
		t.Errorf("salvage report: journal_replayed %v (%v)", rep.Replayed, err)
	}
	if sha256File(t, fs) != sumFS || sha256File(t, jdev) != sumJ {
		t.Error("the image or the journal device was written")
	}
}
