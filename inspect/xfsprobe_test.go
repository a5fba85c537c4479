package inspect

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// TestProbeXFSDescribes: inspect's XFS signature carries the version and
// features xfs_db reports, and says when the log needs recovery (the
// dirty-log fixture) and when it does not.
func TestProbeXFSDescribes(t *testing.T) {
	for _, c := range []struct{ name, state string }{{"xfs-1k", "clean"}, {"xfs-dirty-a", "needs_recovery"}, {"xfs-4ksect", "clean"}} {
		t.Run(c.name, func(t *testing.T) {
			img := fixturetest.Image(t, c.name)
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			s := Probe(f, st.Size())
			if s == nil || s.Type != "xfs" {
				t.Fatalf("probe: %+v", s)
			}
			out, err := exec.Command("xfs_db", "-r", "-c", "version", img).CombinedOutput()
			if err != nil {
				t.Fatalf("xfs_db: %v\n%s", err, out)
			}
			want := "v4"
			if strings.Contains(string(out), "V5") {
				want = "v5"
			}
			if s.Version != want || s.Info["state"] != c.state {
				t.Errorf("version %q state %q, want %q (xfs_db: %s) and %q", s.Version, s.Info["state"], want, strings.TrimSpace(string(out)), c.state)
			}
			for _, feat := range strings.Split(s.Info["features"], ",") {
				if feat != "" && !strings.Contains(strings.ToLower(string(out)), strings.ToLower(strings.TrimSuffix(feat, "_inodes"))[:3]) {
					t.Errorf("feature %q not in xfs_db's %s", feat, out)
				}
			}
			if hasNote := len(s.Notes) > 0; hasNote != (c.state == "needs_recovery") {
				t.Errorf("notes %q for state %s", s.Notes, c.state)
			}
		})
	}
}
