package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"golang.org/x/sys/unix"
)

// TestTuiUTCFlag (issue 13.8): `imgtool tui` on a terminal shows notes.txt's
// mtime (touch -d '2009-03-14 15:09:26' in UTC, fixtures/scripts/dom0.sh)
// in the local zone with its offset, as GNU date prints that instant in
// Berlin; `imgtool tui --utc` shows date's UTC. (The tui package's
// TestTimesLocalWithZone checks every place a time is shown.)
func TestTuiUTCFlag(t *testing.T) {
	bin := imgtoolBin(t)
	for _, c := range []struct {
		utc  bool
		want string // TZ=... date -d @1237043366 '+%Y-%m-%d %H:%M:%S %z'
	}{
		{false, gnuDate(t, "Europe/Berlin", "1237043366")},
		{true, gnuDate(t, "UTC", "1237043366")},
	} {
		master, tty := openPTY(t)
		if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 30, Col: 120}); err != nil {
			t.Fatal(err)
		}
		args := []string{"tui", "--open", "VolGroup00/domu1/VolGroup00/LogVol00:/home/alice/notes.txt"}
		if c.utc {
			args = append(args, "--utc")
		}
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "TZ=Europe/Berlin", "TERM=xterm-256color")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
		cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true, Setctty: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var out bytes.Buffer
		go func() {
			b := make([]byte, 64<<10)
			for {
				n, err := master.Read(b)
				mu.Lock()
				out.Write(b[:n])
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
		seen := false
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && !seen; time.Sleep(50 * time.Millisecond) {
			mu.Lock()
			seen = strings.Contains(ansi.Strip(out.String()), c.want)
			mu.Unlock()
		}
		master.Write([]byte("q"))
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if !seen {
			mu.Lock()
			t.Errorf("tui %q in Berlin: %q (GNU date) not shown:\n%s", args[3:], c.want, ansi.Strip(out.String()))
			mu.Unlock()
		}
	}
}

// gnuDate is `TZ=tz date -d @secs '+%Y-%m-%d %H:%M:%S %z'`.
func gnuDate(t *testing.T, tz, secs string) string {
	t.Helper()
	c := exec.Command("date", "-d", "@"+secs, "+%Y-%m-%d %H:%M:%S %z")
	c.Env = append(os.Environ(), "TZ="+tz)
	out, err := c.Output()
	if err != nil {
		t.Fatalf("date: %v", err)
	}
	return strings.TrimSpace(string(out))
}
