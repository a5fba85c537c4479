package backup

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// holdLock takes STATEDIR/lock through its own open file description, as
// a forked child of a killed run would still hold it, with pid written in
// the file, and lets it go after d.
func holdLock(t *testing.T, dir string, pid int, d time.Duration) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(pid)+"\n"), 0)
	time.AfterFunc(d, func() { f.Close() })
}

// TestLockDeadHolder: a lock held while the pid in its file is dead (a
// killed run's child between fork and exec) is waited for, briefly, and
// taken; a lock whose pid is alive fails at once with ErrLocked, naming
// the pid.
func TestLockDeadHolder(t *testing.T) {
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	dead := c.Process.Pid // reaped: no such process (reuse within the test is unlikely)

	dir := t.TempDir()
	holdLock(t, dir, dead, 300*time.Millisecond)
	l, err := AcquireLock(dir)
	if err != nil {
		t.Fatalf("lock of dead pid %d held 300 ms: %v; want it taken after the wait", dead, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "lock")); string(b) != strconv.Itoa(os.Getpid())+"\n" {
		t.Errorf("lock file says %q, want our pid", b)
	}
	l.Release()

	dir = t.TempDir()
	// Released after 500 ms: a lock taken means it was waited for.
	holdLock(t, dir, os.Getpid(), 500*time.Millisecond)
	_, err = AcquireLock(dir)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "held by pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("lock of a live pid: %v; want ErrLocked at once, naming the pid", err)
	}
}
