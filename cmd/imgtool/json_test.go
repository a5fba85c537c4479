package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// jsonKey checks that out is one JSON document of imgtool's shape (an
// object whose first key is "version": 1, docs/json.md) and returns the
// raw value of key.
func jsonKey(t *testing.T, out, key string) []byte {
	t.Helper()
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Errorf("not a JSON object: %v\n%.300s", err, out)
		return nil
	}
	if !strings.HasPrefix(out, "{\n  \"version\": 1,") || string(doc["version"]) != "1" {
		t.Errorf("the document does not start with \"version\": 1:\n%.300s", out)
	}
	return doc[key]
}

// TestJSONEverywhere (issue 13.9): every --json output, and every JSON
// report file, is one object with "version": 1 first, its lists are []
// even when empty (never null), and docs/json.md documents it.
func TestJSONEverywhere(t *testing.T) {
	tiny := fixturetest.Image(t, "ext-tiny-ext4")
	dom0 := fixturetest.Image(t, "dom0")
	raid1 := strings.Fields(string(fixturetest.Golden(t, "lvm-raid1.differ")))[0]
	md := mdArgs(t, "r5lvm", 3)
	bk := jsonBackupWorld(t)
	emptyDir := filepath.Join(t.TempDir(), "empty-conf.d")
	os.Mkdir(emptyDir, 0o755)
	rep := filepath.Join(t.TempDir(), "report.json")
	salv := filepath.Join(t.TempDir(), "salv")
	cases := []struct {
		doc   string   // the command's heading in docs/json.md
		args  []string // imgtool's arguments
		code  int      // expected exit status
		file  string   // the document is this file, not stdout
		lists []string // top-level keys that must be lists
	}{
		{"inspect", []string{"inspect", "--json", dom0}, 0, "", []string{"roots", "operating_systems"}},
		{"inspect", []string{"inspect", "--json", "--no-os", tiny}, 0, "", []string{"roots"}},
		{"ls", []string{"ls", "--json", tiny, "/"}, 0, "", []string{"entries"}},
		{"ls", []string{"ls", "--json", tiny, "/lost+found"}, 0, "", []string{"entries"}},
		{"ls", []string{"ls", "-R", "-d", "--json", tiny, "/"}, 0, "", []string{"entries"}},
		{"stat", []string{"stat", "--json", tiny, "/"}, 0, "", []string{"extents", "xattrs"}},
		{"lvm list", []string{"lvm", "list", "--json", tiny}, 0, "", []string{"pvs", "vgs", "lvs"}},
		{"lvm list", []string{"lvm", "list", "--json", dom0}, 0, "", []string{"pvs", "vgs", "lvs"}},
		{"lvm check", []string{"lvm", "check", "--json", fixturetest.Image(t, "lvm-raid1"), raid1}, exitError, "", []string{"segments"}},
		{"md check", append([]string{"md", "check", "--json", md[0], "md-r5lvm"}, md[1:]...), 0, "", []string{"members"}},
		{"drbd show", []string{"drbd", "show", "--json", fixturetest.Image(t, "drbd-newer-a")}, 0, "", []string{"history_uuids", "flag_names"}},
		{"drbd compare", []string{"drbd", "compare", "--json", fixturetest.Image(t, "drbd-sb-a"), fixturetest.Image(t, "drbd-sb-b")}, exitDRBDSplit, "", nil},
		{"undelete", []string{"undelete", "--list", "--json", fixturetest.Image(t, "undel-reused")}, exitPartial, "", []string{"candidates"}},
		{"undelete", []string{"ls", "--deleted", "--json", tiny, "/"}, 0, "", []string{"candidates"}},
		{"extract --report", []string{"extract", "--report", rep, tiny, "/", filepath.Join(t.TempDir(), "x")}, 0, rep, []string{"problems"}},
		{"extract --salvage --report", []string{"extract", "--salvage", "--report", rep + "2", fixturetest.Image(t, "salvage-zerogdt-ext4"), "/", salv}, -1, rep + "2", []string{"entries", "notes"}},
		{"extract --salvage --report", []string{"extract", "--salvage", fixturetest.Image(t, "salvage-zerogdt-ext4"), "/", salv + "2"}, -1, filepath.Join(salv+"2", "salvage-report.json"), []string{"entries", "notes"}},
		{"backup plan", append(bk, "plan", "--json", "g"), 0, "", []string{"guests"}},
		{"backup run", append(bk, "run", "--json", "g"), 0, "", []string{"guests"}},
		{"backup verify", append(bk, "verify", "--json", "g"), 0, "", []string{"guests"}},
		{"backup list", append(bk, "list", "--json", "g"), 0, "", []string{"backups"}},
		{"backup list", []string{"backup", "--config-dir", bk[2], "--state-dir", t.TempDir(), "list", "--json", "nobackups"}, 0, "", []string{"backups"}},
	}
	docs, err := os.ReadFile(filepath.Join(fixturetest.Dir(), "..", "docs", "json.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		out, errs, code := imgtool(t, c.args...)
		if c.code >= 0 && code != c.code {
			t.Errorf("%q: exit %d, want %d: %s", c.args, code, c.code, errs)
			continue
		}
		if c.file != "" {
			b, err := os.ReadFile(c.file)
			if err != nil {
				t.Errorf("%q: %v", c.args, err)
				continue
			}
			out = string(b)
		}
		for _, k := range c.lists {
			if v := jsonKey(t, out, k); !bytes.HasPrefix(v, []byte("[")) {
				t.Errorf("%q: %q is %.40q, not a list", c.args, k, v)
			}
		}
		jsonKey(t, out, "")
		if strings.Contains(out, "null") {
			t.Errorf("%q: null in the output:\n%s", c.args, out)
		}
		if !bytes.Contains(docs, []byte("## `"+c.doc+"`")) {
			t.Errorf("docs/json.md has no section ## `%s`", c.doc)
		}
	}
}

// jsonBackupWorld is `backup --config-dir D --state-dir S` for a guest
// "g" with one ext4 image and no snapshot, and a second config "nobackups"
// whose dest is empty.
func jsonBackupWorld(t *testing.T) []string {
	dir := t.TempDir()
	img := fixturetest.Copy(t, "ext-tiny-ext4")
	cfgDir := filepath.Join(dir, "conf.d")
	os.MkdirAll(cfgDir, 0o755)
	for name, dest := range map[string]string{"g": "backup", "nobackups": "empty"} {
		os.MkdirAll(filepath.Join(dir, dest), 0o755)
		cfg := fmt.Sprintf("name = %q\nsources = [%q]\ndest = %q\n[snapshot]\nmode = \"never\"\n", name, img, filepath.Join(dir, dest))
		os.WriteFile(filepath.Join(cfgDir, name+".conf"), []byte(cfg), 0o644)
	}
	return []string{"backup", "--config-dir", cfgDir, "--state-dir", filepath.Join(dir, "state"), "--now", "2026-03-01"}
}
