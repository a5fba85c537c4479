package backup

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/imgtool/imgtool/dump"
	"github.com/imgtool/imgtool/image"
	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/lvm"
	"github.com/imgtool/imgtool/vfs"
)

// Runner runs the nightly pipeline for a set of guests.
type Runner struct {
	Logger   *slog.Logger
	StateDir string
	// Level forces a dump level (0-9); -1 follows the schedule.
	Level int
	// Compress overrides the configured compression when set.
	Compress string
	// Now returns the current time (tests set it).
	Now func() time.Time
	// Host is written into the dumps (c_host) and manifests.
	Host string
}

// Result is the outcome of one guest's run.
type Result struct {
	Guest            string        `json:"guest"`
	Backups          []*Manifest   `json:"backups"`
	Skipped          []Skipped     `json:"skipped,omitempty"`
	Uncovered        []string      `json:"uncovered_disks,omitempty"`
	Paused           time.Duration `json:"paused_ns"`
	SnapshotLifetime time.Duration `json:"snapshot_lifetime_ns"`
	Deleted          []string      `json:"deleted,omitempty"`
	Copied           []string      `json:"copied,omitempty"`
	Err              string        `json:"error,omitempty"`
}

// Skipped is a volume that was not dumped, and why.
type Skipped struct {
	Source string `json:"source"`
	Volume string `json:"volume"`
	Reason string `json:"reason"`
	// LeftOut: the volume holds data that is NOT backed up (the run
	// fails with IncompleteError); otherwise an accepted skip (swap, all
	// zeros, the skip list).
	LeftOut bool `json:"left_out,omitempty"`
}

// UncoveredError reports disks of the guest definition that the config
// does not back up.
type UncoveredError struct {
	Guest string
	Disks []string
}

func (e *UncoveredError) Error() string {
	return fmt.Sprintf("guest %s: disks in the guest definition are NOT in the backup config: %s", e.Guest, strings.Join(e.Disks, ", "))
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) log() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// runCmd runs a command line with /bin/sh -c.
func runCmd(ctx context.Context, log *slog.Logger, what, cmdline string) error {
	if cmdline == "" {
		return nil
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", cmdline)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	log.Debug("command", "what", what, "cmd", cmdline, "took", time.Since(start), "output", strings.TrimSpace(string(out)))
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if len(msg) > 300 {
			msg = msg[:300] + "..."
		}
		if msg != "" {
			return fmt.Errorf("%s: `%s`: %v: %s", what, cmdline, err, msg)
		}
		return fmt.Errorf("%s: `%s`: %v", what, cmdline, err)
	}
	return nil
}

// cleanupCtx is for undo steps: they must run even when the run was
// interrupted (its context cancelled), but not forever.
func cleanupCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Minute)
}

// source is one configured disk during a run.
type source struct {
	path     string // configured
	snap     bool   // read through a snapshot
	device   string // what is read
	remove   string // expanded remove command
	cow      string // COW store to check, "" when unknown
	vars     map[string]string
	created  time.Time
	removed  bool
	lifetime time.Duration
}

func (r *Runner) sourcesOf(c *Config) ([]*source, error) {
	var out []*source
	for _, p := range c.Sources {
		s := &source{path: p, device: p}
		vg, lv, isLV := lvParts(p)
		switch c.Snapshot.Mode {
		case "always":
			s.snap = true
		case "auto":
			s.snap = isLV
		}
		if !isLV {
			vg, lv = "", strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))
		}
		size, err := parseSize(c.SnapshotSize)
		if err != nil {
			return nil, err
		}
		snap := lv + "-imgtool-snap"
		s.vars = map[string]string{"source": p, "vg": vg, "lv": lv, "snap": snap, "vgdm": dmEscape(vg),
			"snapdm": dmEscape(snap), "size": size, "name": c.Name}
		if s.snap {
			if s.device, err = expand(c.Snapshot.Device, s.vars, false); err != nil {
				return nil, err
			}
			if s.remove, err = expand(c.Snapshot.Remove, s.vars, true); err != nil {
				return nil, err
			}
			if s.cow, err = expand(c.Snapshot.COW, s.vars, false); err != nil {
				return nil, err
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// checkCOW reads the snapshot's exception-store header: a snapshot that
// overflowed has its valid flag cleared and its content is garbage.
func checkCOW(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var h [16]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return fmt.Errorf("COW store %s: reading header: %w", path, err)
	}
	magic, valid := binary.LittleEndian.Uint32(h[0:]), binary.LittleEndian.Uint32(h[4:])
	if magic != lvm.SnapMagic {
		return fmt.Errorf("COW store %s: bad magic %#x", path, magic)
	}
	if valid == 0 {
		return fmt.Errorf("snapshot OVERFLOWED or failed: COW store %s is marked invalid; its data cannot be trusted (increase snapshot_size)", path)
	}
	return nil
}

// Run backs up each guest. It returns one Result per guest and the joined
// errors. The caller holds the lock (AcquireLock) and has run Recover.
func (r *Runner) Run(ctx context.Context, cfgs []*Config) ([]*Result, error) {
	var results []*Result
	var errs []error
	if err := os.MkdirAll(r.StateDir, 0o700); err != nil {
		return nil, err
	}
	for _, c := range cfgs {
		if ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("guest %s: not started: %w", c.Name, context.Cause(ctx)))
			break
		}
		res, err := r.runGuest(ctx, c)
		if err != nil {
			res.Err = err.Error()
			errs = append(errs, err)
		}
		results = append(results, res)
	}
	return results, errors.Join(errs...)
}

// pending is a dump written to the store but not yet committed (a temp
// file, an unfinished multipart upload), or spooled raw to a local file
// until the snapshot is gone.
type pending struct {
	m     *Manifest
	src   *source
	up    Upload // nil while spooled
	spool string // raw spool file, "" once compressed
}

func (r *Runner) runGuest(ctx context.Context, c *Config) (res *Result, err error) {
	log := r.log().With("guest", c.Name)
	res = &Result{Guest: c.Name}
	compress := c.Compress
	if r.Compress != "" {
		compress = r.Compress
	}
	if _, err := compressExt(compress); err != nil {
		return res, err
	}
	spool := c.Spool == "always" || (c.Spool == "auto" && compress == CompressXZ)

	var uncovered error
	if c.GuestDefinition != "" {
		missing, err := Uncovered(c)
		if err != nil {
			return res, err
		}
		if len(missing) > 0 {
			res.Uncovered = missing
			uncovered = &UncoveredError{c.Name, missing}
			log.Error("GUEST DISK NOT BACKED UP", "disks", missing, "definition", c.GuestDefinition)
		}
	}

	srcs, err := r.sourcesOf(c)
	if err != nil {
		return res, err
	}
	st := &State{PID: os.Getpid(), Guest: c.Name, Started: r.now()}
	// The destination first: a bucket that is missing or refuses the
	// credentials fails the run before the guest is paused.
	store, err := GuestStore(ctx, c)
	if err != nil {
		return res, err
	}
	if ds, ok := store.(*DirStore); ok {
		ds.Temps = func(p string) error {
			st.Temps = append(st.Temps, p)
			return st.save(r.StateDir)
		}
	}
	unlock, err := store.Lock(ctx, r.Host)
	if err != nil {
		return res, err
	}
	defer func() {
		cctx, cancel := cleanupCtx()
		defer cancel()
		if e := unlock(cctx); e != nil {
			log.Error("releasing the store lock", "err", e)
			if err == nil {
				err = fmt.Errorf("guest %s: releasing the lock: %w", c.Name, e)
			}
		}
	}()
	if did, err := store.Clean(ctx); err != nil {
		return res, err
	} else {
		for _, d := range did {
			log.Warn("recovered: " + d)
		}
	}
	spoolDir := r.StateDir
	if ds, ok := store.(*DirStore); ok {
		spoolDir = ds.Dir
		if err := os.MkdirAll(spoolDir, 0o750); err != nil {
			return res, err
		}
	}
	pauseCmd, err := expand(c.Pause, map[string]string{"name": c.Name}, true)
	if err != nil {
		return res, err
	}
	resumeCmd, err := expand(c.Resume, map[string]string{"name": c.Name}, true)
	if err != nil {
		return res, err
	}
	var pausedAt time.Time
	var pend []*pending

	resume := func(cctx context.Context) error {
		if !st.Paused {
			return nil
		}
		err := runCmd(cctx, log, "resume", resumeCmd)
		if err != nil {
			return err
		}
		res.Paused = time.Since(pausedAt)
		log.Info("guest resumed", "paused_for", res.Paused.Round(time.Millisecond))
		st.Paused = false
		return st.save(r.StateDir)
	}
	removeSnap := func(cctx context.Context, s *source) error {
		if !s.snap || s.removed || s.created.IsZero() {
			return nil
		}
		if err := runCmd(cctx, log, "remove snapshot", s.remove); err != nil {
			return err
		}
		s.removed = true
		s.lifetime = time.Since(s.created)
		res.SnapshotLifetime = max(res.SnapshotLifetime, s.lifetime)
		log.Info("snapshot removed", "device", s.device, "lifetime", s.lifetime.Round(time.Millisecond))
		var keep []SnapState
		for _, ss := range st.Snapshots {
			if ss.Device != s.device {
				keep = append(keep, ss)
			}
		}
		st.Snapshots = keep
		return st.save(r.StateDir)
	}
	// Undo everything on every path: resume, remove snapshots, delete temps.
	defer func() {
		cctx, cancel := cleanupCtx()
		defer cancel()
		var cerrs []error
		if e := resume(cctx); e != nil {
			cerrs = append(cerrs, fmt.Errorf("RESUME FAILED, guest %s may still be paused: %w", c.Name, e))
		}
		for _, s := range srcs {
			if e := removeSnap(cctx, s); e != nil {
				cerrs = append(cerrs, fmt.Errorf("snapshot %s NOT removed: %w", s.device, e))
			}
		}
		for _, p := range pend {
			if p.up != nil {
				if e := p.up.Abort(cctx); e != nil {
					log.Warn("discarding an unfinished upload", "file", p.m.File, "err", e)
				}
			}
			if p.spool != "" {
				os.Remove(p.spool)
			}
		}
		if len(cerrs) == 0 {
			os.Remove(statePath(r.StateDir, c.Name))
		}
		if len(cerrs) > 0 {
			err = errors.Join(append([]error{err}, cerrs...)...)
		}
		if err == nil {
			var left []Skipped
			for _, sk := range res.Skipped {
				if sk.LeftOut {
					left = append(left, sk)
				}
			}
			if len(left) > 0 {
				err = errors.Join(&IncompleteError{Guest: c.Name, LeftOut: left}, uncovered)
			} else if uncovered != nil {
				err = uncovered
			}
		}
		if err != nil && !strings.HasPrefix(err.Error(), "guest ") {
			err = fmt.Errorf("guest %s: %w", c.Name, err)
		}
	}()

	if err := st.save(r.StateDir); err != nil {
		return res, err
	}
	needPause := false
	for _, s := range srcs {
		needPause = needPause || s.snap || c.Pause != ""
	}
	if pauseCmd != "" && needPause {
		st.Paused, st.Resume = true, resumeCmd
		if err := st.save(r.StateDir); err != nil {
			return res, err
		}
		pausedAt = time.Now()
		if err := runCmd(ctx, log, "pause", pauseCmd); err != nil {
			return res, err
		}
		log.Info("guest paused")
	}
	for _, s := range srcs {
		if !s.snap {
			continue
		}
		create, err := expand(c.Snapshot.Create, s.vars, true)
		if err != nil {
			return res, err
		}
		st.Snapshots = append(st.Snapshots, SnapState{Device: s.device, Remove: s.remove})
		if err := st.save(r.StateDir); err != nil {
			return res, err
		}
		s.created = time.Now()
		if err := runCmd(ctx, log, "create snapshot", create); err != nil {
			return res, err
		}
		log.Info("snapshot created", "source", s.path, "device", s.device)
	}
	live := false
	for _, s := range srcs {
		live = live || !s.snap
	}
	// With a snapshot of every disk the guest can run again now; a disk
	// read without a snapshot is read while the guest stays paused.
	if !live {
		if err := resume(ctx); err != nil {
			return res, err
		}
	} else if st.Paused {
		log.Info("guest stays paused while disks without a snapshot are read")
	}

	date := r.now().Truncate(time.Second)
	all, _, err := ReadManifestsFrom(ctx, store)
	if err != nil {
		return res, err
	}
	usable := usableManifests(ctx, store, all)
	w := &dumpTarget{store: store, spool: spool, spoolDir: spoolDir, compress: compress, date: date, usable: usable, st: st}
	for _, s := range srcs {
		ps, sk, err := r.readSource(ctx, log, c, s, w)
		pend = append(pend, ps...)
		res.Skipped = append(res.Skipped, sk...)
		if err != nil {
			return res, err
		}
		if s.snap && s.cow != "" {
			if err := checkCOW(s.cow); err != nil {
				if errors.Is(err, os.ErrNotExist) {
					log.Warn("cannot check the snapshot's COW valid flag", "cow", s.cow)
				} else {
					return res, fmt.Errorf("source %s: %w", s.path, err)
				}
			}
		}
		if err := removeSnap(ctx, s); err != nil {
			return res, err
		}
	}
	if err := resume(ctx); err != nil {
		return res, err
	}
	// Compress what was spooled, now that no snapshot is held.
	for _, p := range pend {
		if p.spool != "" {
			if err := r.compressSpool(ctx, store, p, compress); err != nil {
				return res, err
			}
		}
	}
	// Put the files in place: data first, then the manifest.
	for _, p := range pend {
		if err := p.up.Commit(ctx); err != nil {
			return res, err
		}
		if err := writeManifest(ctx, store, p.m); err != nil {
			store.Remove(ctx, p.m.File)
			return res, err
		}
		res.Backups = append(res.Backups, p.m)
		log.Info("backup written", "file", store.Location()+"/"+p.m.File, "level", p.m.Level, "files", p.m.Files, "bytes", p.m.Bytes)
	}
	pend = nil
	if err := r.finishGuest(ctx, log, c, store, res); err != nil {
		return res, err
	}
	return res, nil
}

// finishGuest runs once the backups are in place: dumpdates, a quick
// verify, retention and the copies to the other hosts.
func (r *Runner) finishGuest(ctx context.Context, log *slog.Logger, c *Config, store Store, res *Result) error {
	all, _, err := ReadManifestsFrom(ctx, store)
	if err != nil {
		return err
	}
	if err := writeDumpDates(ctx, store, all); err != nil {
		return err
	}
	// Quick verify of what was just written.
	for _, m := range res.Backups {
		if err := VerifyObject(ctx, store, m, true); err != nil {
			return fmt.Errorf("verify after writing: %w", err)
		}
	}
	for _, m := range Retain(all, r.now(), c.Retention) {
		// The manifest first: a data object without one is never used.
		for _, f := range []string{m.File + ".json", m.File} {
			if err := store.Remove(ctx, f); err != nil {
				return err
			}
		}
		res.Deleted = append(res.Deleted, m.File)
		log.Info("retention: deleted", "file", m.File, "level", m.Level, "date", m.Date)
	}
	if len(res.Deleted) > 0 {
		all, _, _ = ReadManifestsFrom(ctx, store)
		if err := writeDumpDates(ctx, store, all); err != nil {
			return err
		}
	}
	for _, h := range c.Hosts {
		for _, m := range res.Backups {
			if err := copyToHost(ctx, log, store, m, h, c.Name, c.S3); err != nil {
				return err
			}
			res.Copied = append(res.Copied, h+": "+m.File)
		}
	}
	return nil
}

// usableManifests are the backups whose files exist with the recorded size:
// the candidates for a base.
func usableManifests(ctx context.Context, st Store, all []*Manifest) []*Manifest {
	var out []*Manifest
	for _, m := range all {
		if n, err := st.Size(ctx, m.File); err == nil && n == m.Bytes {
			out = append(out, m)
		}
	}
	return out
}

func writeDumpDates(ctx context.Context, st Store, all []*Manifest) error {
	var b strings.Builder
	b.WriteString("# imgtool backup dumpdates: identity (guest|source#volume|fs uuid), level, date\n")
	for _, d := range DumpDates(all) {
		b.WriteString(d.String() + "\n")
	}
	return st.WriteFile(ctx, "dumpdates", []byte(b.String()))
}

// ChooseLevel picks the level and base of a dump of id: the forced level,
// else the schedule's; a level above 0 needs a usable base (the newest
// lower-level dump, whose own chain is complete), else it becomes 0. A
// base from the same second is usable: dates are whole seconds (dump's
// c_date), and the writer takes every inode changed at or after the base
// date, so nothing of that second is missed.
func ChooseLevel(sched Schedule, forced int, date time.Time, id string, usable []*Manifest) (level int, base *Manifest, why string) {
	level = sched.LevelFor(date)
	why = "schedule"
	if forced >= 0 {
		level, why = forced, "forced"
	}
	if level == 0 {
		return 0, nil, why
	}
	for _, m := range usable {
		if m.ID() == id && m.Level < level && !m.Date.After(date) && (base == nil || m.Date.After(base.Date)) {
			base = m
		}
	}
	if base == nil {
		return 0, nil, "no usable base"
	}
	if _, err := Chain(usable, base); err != nil {
		return 0, nil, "base chain broken: " + err.Error()
	}
	return level, base, why
}

// openTree opens a source and inspects it, opening LUKS volumes with the
// content of keyFile when it is not "".
func openTree(path string, log *slog.Logger, keyFile string) (*inspect.Tree, io.Closer, error) {
	var keys inspect.KeyOptions
	if keyFile != "" {
		k, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("key file: %w", err)
		}
		defer clear(k)
		keys.Keys = [][]byte{k}
	}
	im, err := image.Open(path)
	if err != nil {
		return nil, nil, err
	}
	t, err := inspect.Inspect([]inspect.Source{{Name: path, R: im, Size: im.Size()}}, &inspect.Options{Logger: log, Keys: keys})
	if err != nil {
		im.Close()
		return nil, nil, err
	}
	return t, im, nil
}

// dumpTarget is where and how a run writes its dumps.
type dumpTarget struct {
	store    Store
	spool    bool
	spoolDir string
	compress string
	date     time.Time
	usable   []*Manifest
	st       *State
}

func (r *Runner) readSource(ctx context.Context, log *slog.Logger, c *Config, s *source, w *dumpTarget) (ps []*pending, sk []Skipped, err error) {
	start := time.Now()
	t, closer, err := openTree(s.device, log, c.KeyFiles[s.path])
	if err != nil {
		return nil, nil, fmt.Errorf("source %s: %w", s.path, err)
	}
	defer closer.Close()
	for _, v := range t.Volumes() {
		verdict, reason := classify(v, s.path, c.Skip)
		switch verdict {
		case Container:
			continue
		case Skip:
			sk = append(sk, Skipped{Source: s.path, Volume: v.DisplayAddress(), Reason: reason})
			log.Info("volume skipped", "source", s.path, "volume", v.DisplayAddress(), "reason", reason)
			continue
		case LeftOut:
			sk = append(sk, Skipped{Source: s.path, Volume: v.DisplayAddress(), Reason: reason, LeftOut: true})
			log.Error("volume NOT backed up", "source", s.path, "volume", v.DisplayAddress(), "reason", reason)
			continue
		}
		p, err := r.dumpVolume(ctx, log, c, s, v, w)
		if p != nil {
			ps = append(ps, p)
		}
		if oe := (*openError)(nil); errors.As(err, &oe) {
			// A filesystem too damaged to open is left out, loudly; the
			// other volumes are still dumped.
			reason := v.Content.Type + ": cannot be opened: " + oe.err.Error()
			sk = append(sk, Skipped{Source: s.path, Volume: v.DisplayAddress(), Reason: reason, LeftOut: true})
			log.Error("volume NOT backed up", "source", s.path, "volume", v.DisplayAddress(), "reason", reason)
			continue
		}
		if err != nil {
			return ps, sk, fmt.Errorf("source %s volume %s: %w", s.path, v.DisplayAddress(), err)
		}
	}
	log.Info("source read", "source", s.path, "took", time.Since(start).Round(time.Millisecond))
	return ps, sk, nil
}

// openError is a filesystem that could not be opened for dumping.
type openError struct{ err error }

func (e *openError) Error() string { return e.err.Error() }

// ctxWriter fails writes once ctx is done: SIGTERM stops a dump between
// two buffered writes.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
	n   int64
}

func (w *ctxWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, fmt.Errorf("interrupted: %w", context.Cause(w.ctx))
	}
	n, err := w.w.Write(p)
	w.n += int64(n)
	return n, err
}

// hashCounter hashes and counts what goes to the file.
type hashCounter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (w *hashCounter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

// newSpool creates a local temp file, recorded in the state first.
func (r *Runner) newSpool(dir, name string, st *State) (*os.File, error) {
	f, err := os.CreateTemp(dir, tmpPrefix+name+".*")
	if err != nil {
		return nil, err
	}
	st.Temps = append(st.Temps, f.Name())
	if err := st.save(r.StateDir); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

func (r *Runner) dumpVolume(ctx context.Context, log *slog.Logger, c *Config, s *source, v *inspect.Volume, w *dumpTarget) (*pending, error) {
	date, compress := w.date, w.compress
	// A snapshot of a running guest is a crashed filesystem: open it
	// through its journal or log, replayed in memory as the kernel would
	// on mount (the snapshot itself is never written).
	fsys, err := v.OpenFS(vfs.OpenOptions{})
	if err != nil {
		return nil, &openError{err}
	}
	src, err := dump.NewFSSource(ctx, fsys)
	if err != nil {
		return nil, &openError{err}
	}
	info := fsys.Info()
	uuid := v.Content.UUID
	m := &Manifest{Version: ManifestVersion, Guest: c.Name, Source: s.path, Volume: v.Address, FSUUID: strings.ToLower(uuid),
		FSType: v.Content.Type, Label: info.Label, Date: date, Compress: compress, Host: r.Host}
	forced := r.Level
	level, base, why := ChooseLevel(c.Schedule, forced, date, m.ID(), w.usable)
	if level > 0 && !src.Stable() {
		// Without stable inode numbers an incremental would mismatch
		// files with its base.
		level, base, why = 0, nil, info.Type+" has no stable inode numbers: level 0 only"
	}
	m.Level = level
	if base != nil {
		m.BaseDate, m.BaseFile = base.Date, base.File
	}
	m.File = FileName(s.path, v.Address, date, level, compress)
	log.Info("dumping", "source", s.path, "volume", v.DisplayAddress(), "level", level, "why", why, "base", m.BaseFile)

	p := &pending{m: m, src: s}
	var out io.Writer
	var spoolFile *os.File
	if w.spool {
		if spoolFile, err = r.newSpool(w.spoolDir, m.File, w.st); err != nil {
			return nil, err
		}
		p.spool = spoolFile.Name()
		out = spoolFile
	} else {
		if p.up, err = w.store.Create(ctx, m.File); err != nil {
			return nil, err
		}
		out = p.up
	}
	hc := &hashCounter{w: out, h: sha256.New()}
	bw := bufio.NewWriterSize(hc, 1<<20)
	var zw io.WriteCloser = nopCloser{bw}
	if !w.spool {
		if zw, err = NewCompressorContext(ctx, compress, bw); err != nil {
			return p, err
		}
	}
	cw := &ctxWriter{ctx: ctx, w: zw}
	stats, err := dump.Write(cw, src, dump.WriteOptions{
		Level: level, Date: date, BaseDate: m.BaseDate, Label: info.Label,
		Filesys: c.Name + ":" + v.DisplayAddress(), Device: s.path + "#" + v.Address, Host: r.Host,
		HonorNodump: level >= 1,
	})
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if spoolFile != nil {
		if cerr := spoolFile.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return p, err
	}
	m.Inodes, m.Files, m.Records, m.RawBytes = stats.Inodes, stats.Dumped, stats.Records, stats.Bytes
	m.Warnings = stats.Warnings
	for _, n := range fsys.Notes() {
		m.Warnings = append(m.Warnings, n.String())
		if n.Stale {
			log.Warn("the dump shows an incomplete or older view", "volume", v.DisplayAddress(), "note", n.String())
		}
	}
	if !w.spool {
		m.Bytes, m.SHA256 = hc.n, hex.EncodeToString(hc.h.Sum(nil))
	}
	return p, nil
}

// compressSpool compresses a spooled raw dump into the store.
func (r *Runner) compressSpool(ctx context.Context, store Store, p *pending, compress string) error {
	in, err := os.Open(p.spool)
	if err != nil {
		return err
	}
	defer in.Close()
	up, err := store.Create(ctx, p.m.File)
	if err != nil {
		return err
	}
	hc := &hashCounter{w: up, h: sha256.New()}
	bw := bufio.NewWriterSize(hc, 1<<20)
	zw, err := NewCompressorContext(ctx, compress, bw)
	if err == nil {
		_, err = io.Copy(&ctxWriter{ctx: ctx, w: zw}, in)
	}
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		up.Abort(ctx)
		return err
	}
	os.Remove(p.spool)
	p.up, p.spool = up, ""
	p.m.Bytes, p.m.SHA256 = hc.n, hex.EncodeToString(hc.h.Sum(nil))
	return nil
}
