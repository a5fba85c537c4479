package tui

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/exp/teatest/v2"
)

// TestTimesLocalWithZone (issue 13.8: times are local, with the zone shown,
// unless --utc): in Berlin, notes.txt's row and its preview show the time
// GNU date prints for the same instant there, zone offset included; with
// Options.UTC (imgtool tui --utc) they are date's UTC, whatever the local
// zone. The TUI showed UTC without saying so.
func TestTimesLocalWithZone(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	saved := time.Local
	time.Local = berlin // as TZ=Europe/Berlin at start-up
	t.Cleanup(func() { time.Local = saved })
	date := func(tz string, secs int64, layout string) string {
		t.Helper()
		c := exec.Command("date", "-d", "@"+strconv.FormatInt(secs, 10), "+"+layout)
		c.Env = append(os.Environ(), "TZ="+tz)
		out, err := c.Output()
		if err != nil {
			t.Fatalf("date: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	tree := openTree(t, "dom0")
	for _, utc := range []bool{false, true} {
		tz := "Europe/Berlin"
		if utc {
			tz = "UTC"
		}
		m := New(tree, Options{Title: "dom0.img", UTC: utc})
		tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(120, 30),
			teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.Ascii)))
		enterGuestHome(t, tm)
		tm.Type("/notes.txt")
		tm.Send(kEnter) // leave the filter, the cursor on notes.txt
		var secs int64
		waitModel(t, tm, "notes.txt previewed", func(m *Model) bool {
			if m.Current() != "notes.txt" || !idle(m) || !strings.Contains(m.prev.vp.GetContent(), "Q1 12") {
				return false
			}
			in := m.files.current().inode()
			if in == nil {
				return false
			}
			secs = in.Mtime.Unix()
			return true
		})
		// touch -d '2009-03-14 15:09:26' in fixtures/scripts/dom0.sh (run in UTC)
		if secs != 1237043366 {
			t.Fatalf("notes.txt mtime %d, the script set 1237043366", secs)
		}
		scr := screen(t, tm)
		row := findLine(scr, "notes.txt")
		if want := date(tz, secs, "%Y-%m-%d %H:%M %z"); !strings.Contains(row, want) {
			t.Errorf("UTC %v: notes.txt row %q lacks %q (GNU date in %s)", utc, row, want, tz)
		}
		if want := date(tz, secs, "%Y-%m-%d %H:%M:%S %z"); !strings.Contains(scr, "│"+want) {
			t.Errorf("UTC %v: the preview lacks %q (GNU date in %s):\n%s", utc, want, tz, scr)
		}
		tm.Type("q")
		tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	}
}
