package main

import (
	"encoding/json"
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
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
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
