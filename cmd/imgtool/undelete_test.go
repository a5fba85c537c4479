package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// TestUndeleteCLI: on the kernel-made image with blocks reused after the
// rm, `undelete --list --json` lists every deleted file without writing,
// `undelete IMG /victim DEST` writes exactly the intact candidates under
// /victim, each equal to the sha256 recorded before the rm, and exits 3
// because some were not intact; the image is not written.
func TestUndeleteCLI(t *testing.T) {
	img := fixturetest.Copy(t, "undel-reused")
	before := fixturetest.SHA256File(t, img)
	want := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(fixturetest.Golden(t, "undel-reused.deleted")))
	for sc.Scan() {
		if f := strings.Split(sc.Text(), "\t"); len(f) == 3 && !strings.HasPrefix(f[0], "#") {
			want["/"+f[0]] = f[2]
		}
	}

	out, errs, code := imgtool(t, "undelete", img, "--list", "--json")
	if code != exitPartial {
		t.Fatalf("--list: exit %d, want %d (some candidates are partial): %s", code, exitPartial, errs)
	}
	var rep struct {
		Candidates []struct {
			Path       string   `json:"path"`
			Intact     bool     `json:"intact"`
			Confidence string   `json:"confidence"`
			Reused     int64    `json:"reused_blocks"`
			Problems   []string `json:"problems"`
		} `json:"candidates"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	intactUnder, lowUnder := 0, 0
	lowSeen := false
	for _, c := range rep.Candidates {
		if _, ok := want[c.Path]; !ok {
			t.Errorf("candidate %s is not a deleted file", c.Path)
		}
		if c.Intact && strings.HasPrefix(c.Path, "/victim/") {
			intactUnder++
		}
		if !c.Intact && strings.HasPrefix(c.Path, "/victim/") {
			lowUnder++
		}
		if !c.Intact {
			lowSeen = true
			if c.Confidence != "low" || c.Reused == 0 || len(c.Problems) == 0 {
				t.Errorf("%s: not intact but confidence %s, %d reused, problems %q", c.Path, c.Confidence, c.Reused, c.Problems)
			}
		}
	}
	if len(rep.Candidates) != len(want) || !lowSeen {
		t.Errorf("%d candidates for %d deleted files; a low one seen: %v", len(rep.Candidates), len(want), lowSeen)
	}

	dest := t.TempDir()
	_, errs, code = imgtool(t, "undelete", img, "/victim", dest)
	if wantCode := map[bool]int{true: exitPartial, false: 0}[lowUnder > 0]; code != wantCode {
		t.Fatalf("exit %d, want %d (%d partial under /victim): %s", code, wantCode, lowUnder, errs)
	}
	n := 0
	err := filepath.WalkDir(dest, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel := "/" + filepath.ToSlash(strings.TrimPrefix(p, dest+"/"))
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != want[rel] {
			t.Errorf("%s: sha256 %s, recorded before the rm %s", rel, got, want[rel])
		}
		if !strings.HasPrefix(rel, "/victim/") {
			t.Errorf("%s written, outside /victim", rel)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != intactUnder || n < 100 {
		t.Errorf("%d files written, %d intact candidates under /victim", n, intactUnder)
	}
	if fixturetest.SHA256File(t, img) != before {
		t.Errorf("the image was written")
	}
}

// TestLsDeleted: ls --deleted lists the deleted files under a path (the
// undelete scan, nothing written), ls without it does not show them.
func TestLsDeleted(t *testing.T) {
	img := fixturetest.Copy(t, "undel-ext4")
	out, errs, code := imgtool(t, "ls", img, "/victim/inner", "--deleted")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	n := strings.Count(out, "/victim/inner/file-")
	if n != 60 || !strings.Contains(errs, "nothing written") {
		t.Errorf("%d deleted files under /victim/inner listed, want 60 (the fixture's):\n%s%s", n, out, errs)
	}
	if _, _, code := imgtool(t, "ls", img, "/victim"); code == 0 {
		t.Errorf("ls of the deleted /victim succeeded")
	}
}
