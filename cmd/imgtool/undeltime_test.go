package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// TestUndeleteLocalTime (issue 13.8: times are local, with the zone shown,
// unless --utc): undelete --list's and ls --deleted's MTIME column in
// Berlin is what GNU date prints for the same instant there, zone
// included; with --utc it is date's UTC, whatever TZ says. The column was
// local without a zone. The instant is --json's mtime, which is UTC.
func TestUndeleteLocalTime(t *testing.T) {
	bin := imgtoolBin(t)
	img := fixturetest.Image(t, "undel-reused")
	run := func(tz, name string, args ...string) string {
		t.Helper()
		c := exec.Command(name, args...)
		c.Env = append(os.Environ(), "TZ="+tz)
		out, err := c.Output()
		if ee, ok := err.(*exec.ExitError); err != nil && !(ok && ee.ExitCode() == exitPartial && name == bin) {
			t.Fatalf("%s %q: %v", name, args, err)
		}
		return string(out)
	}
	var doc struct {
		Candidates []struct {
			Path  string `json:"path"`
			Mtime string `json:"mtime"`
		} `json:"candidates"`
	}
	if err := json.Unmarshal([]byte(run("Europe/Berlin", bin, "undelete", "--list", "--json", img)), &doc); err != nil {
		t.Fatal(err)
	}
	secs := map[string]string{}
	for _, c := range doc.Candidates {
		if !strings.HasSuffix(c.Mtime, "Z") {
			t.Errorf("%s: --json mtime %q is not UTC", c.Path, c.Mtime)
		}
		mt, err := time.Parse(time.RFC3339Nano, c.Mtime)
		if err != nil {
			t.Fatal(err)
		}
		secs[c.Path] = strconv.FormatInt(mt.Unix(), 10)
	}
	if len(secs) < 100 {
		t.Fatalf("%d candidates", len(secs))
	}
	gnu := map[string]string{} // "TZ SECS" -> date's output
	for _, c := range []struct {
		tz   string
		args []string
	}{
		{"Europe/Berlin", []string{"undelete", "--list", img}},
		{"Europe/Berlin", []string{"ls", "--deleted", img, "/"}},
		{"Europe/Berlin", []string{"undelete", "--list", "--utc", img}},
		{"Europe/Berlin", []string{"ls", "--deleted", "--utc", img, "/"}},
	} {
		utc := strings.Contains(strings.Join(c.args, " "), "--utc")
		zone := c.tz
		if utc {
			zone = "UTC"
		}
		lines := strings.Split(strings.TrimSpace(run(c.tz, bin, c.args...)), "\n")
		if len(lines) != len(secs)+1 || !strings.Contains(lines[0], "MTIME") {
			t.Fatalf("%q: %d lines for %d candidates:\n%s", c.args, len(lines), len(secs), lines[0])
		}
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) < 7 {
				t.Errorf("%q: line %q", c.args, l)
				continue
			}
			s, ok := secs[f[6]]
			if !ok {
				t.Errorf("%q: %s is not in --json", c.args, f[6])
				continue
			}
			k := zone + " " + s
			if gnu[k] == "" {
				gnu[k] = strings.TrimSpace(run(zone, "date", "-d", "@"+s, "+%Y-%m-%d %H:%M:%S %z"))
			}
			if got := strings.Join(f[3:6], " "); got != gnu[k] {
				t.Errorf("%q in %s: %s at %q, GNU date says %q", c.args, c.tz, f[6], got, gnu[k])
			}
		}
	}
}
