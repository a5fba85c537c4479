package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrLocked is returned when another run holds the lock.
var ErrLocked = errors.New("another imgtool backup run is in progress")

// Lock is an flock(2) on STATEDIR/lock, held for a whole run.
type Lock struct{ f *os.File }

// AcquireLock takes the lock without waiting: an overlapping run fails at
// once with ErrLocked (and the holder's pid when it wrote one).
//
// One case waits, briefly: the pid in the lock file is gone, yet the lock
// is held. A run killed (SIGKILL, OOM) while it was starting a command
// leaves a child between fork and exec that still holds the lock's file
// description until its exec closes it (O_CLOEXEC); the next run, started
// right after, met that in a test on a loaded machine. The lock is then
// retried for up to lockGrace.
func AcquireLock(stateDir string) (*Lock, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, err
	}
	p := filepath.Join(stateDir, "lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(lockGrace)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		b, _ := os.ReadFile(p)
		holder := strings.TrimSpace(string(b))
		if errors.Is(err, syscall.EWOULDBLOCK) && !pidAlive(holder) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (lock %s held by pid %s)", ErrLocked, p, holder)
		}
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &Lock{f: f}, nil
}

// lockGrace is how long AcquireLock waits for a lock whose writer is gone.
const lockGrace = 3 * time.Second

// pidAlive says whether the pid the lock file names is a live process; an
// empty or unparsable file counts as alive (the holder has not written
// it yet), so that only a dead writer makes AcquireLock wait.
func pidAlive(s string) bool {
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 0 {
		return true
	}
	return syscall.Kill(pid, 0) != syscall.ESRCH
}

// Release drops the lock.
func (l *Lock) Release() {
	if l != nil && l.f != nil {
		l.f.Truncate(0)
		l.f.Close()
	}
}

// State is what a run must undo if it dies: written to
// STATEDIR/GUEST.state before each step that needs undoing (pausing,
// creating a snapshot, creating a temp file) and removed at the end of a
// clean run. The next run (or `imgtool backup recover`) reads it back.
type State struct {
	PID       int         `json:"pid"`
	Guest     string      `json:"guest"`
	Started   time.Time   `json:"started"`
	Paused    bool        `json:"paused"`
	Resume    string      `json:"resume,omitempty"` // expanded resume command
	Snapshots []SnapState `json:"snapshots,omitempty"`
	Temps     []string    `json:"temps,omitempty"`
}

// SnapState is a snapshot that may exist.
type SnapState struct {
	Device string `json:"device"`
	Remove string `json:"remove"` // expanded remove command
}

func statePath(stateDir, guest string) string { return filepath.Join(stateDir, guest+".state") }

func (s *State) save(stateDir string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(statePath(stateDir, s.Guest), append(b, '\n'))
}

// Recover undoes what interrupted runs left behind, from the state files
// in stateDir: it resumes paused guests, removes their snapshots and
// deletes temp files; then, in every backup directory of cfgs, it deletes
// temp files and data files without a manifest. The caller must hold the
// lock. It returns what it did.
func Recover(ctx context.Context, stateDir string, cfgs []*Config, log *slog.Logger) ([]string, error) {
	var did []string
	var errs []error
	ents, _ := os.ReadDir(stateDir)
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".state") {
			continue
		}
		p := filepath.Join(stateDir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var st State
		if err := json.Unmarshal(b, &st); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		ok := true
		if st.Paused && st.Resume != "" {
			if err := runCmd(ctx, log, "resume", st.Resume); err != nil {
				errs = append(errs, fmt.Errorf("guest %s: resume after interrupted run (pid %d): %w", st.Guest, st.PID, err))
				ok = false
			} else {
				did = append(did, fmt.Sprintf("guest %s: resumed (left paused by pid %d)", st.Guest, st.PID))
			}
		}
		for _, s := range st.Snapshots {
			if err := runCmd(ctx, log, "remove snapshot", s.Remove); err != nil {
				if _, serr := os.Stat(s.Device); serr == nil {
					errs = append(errs, fmt.Errorf("guest %s: removing stale snapshot %s: %w", st.Guest, s.Device, err))
					ok = false
					continue
				}
			}
			did = append(did, fmt.Sprintf("guest %s: removed stale snapshot %s", st.Guest, s.Device))
		}
		for _, t := range st.Temps {
			if err := os.Remove(t); err == nil {
				did = append(did, "removed temp file "+t)
			}
		}
		if ok {
			os.Remove(p)
		}
	}
	for _, c := range cfgs {
		if IsS3(c.Dest) {
			continue // cleaned by the run itself, once it holds the bucket lock
		}
		d, err := cleanBackupDir(filepath.Join(c.Dest, c.Name))
		did = append(did, d...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return did, errors.Join(errs...)
}

// cleanBackupDir deletes temp files and data files that have no manifest
// (an interrupted finish): they are never complete backups.
func cleanBackupDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	have := map[string]bool{}
	for _, e := range ents {
		have[e.Name()] = true
	}
	var did []string
	for _, e := range ents {
		n := e.Name()
		orphan := strings.Contains(n, ".dump") && !strings.HasSuffix(n, ".json") && !have[n+".json"]
		if strings.HasPrefix(n, tmpPrefix) || orphan {
			if err := os.Remove(filepath.Join(dir, n)); err == nil {
				did = append(did, "removed incomplete "+filepath.Join(dir, n))
			}
		}
	}
	return did, nil
}
