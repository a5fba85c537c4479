package backup

import (
	"bufio"
	"bytes"
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
	// Partial: the volume IS backed up, without what its filesystem could
	// not read (Manifest.Lost); the run fails with IncompleteError too.
	Partial bool `json:"partial,omitempty"`
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

// guestRun is the state of one guest's run, shared by the steps of
// runGuest.
type guestRun struct {
	r   *Runner
	c   *Config
	log *slog.Logger
	res *Result
	st  *State

	compress  string
	spool     bool
	uncovered error // the guest definition names disks not backed up
	srcs      []*source
	store     Store
	spoolDir  string
	pauseCmd  string
	resumeCmd string
	pausedAt  time.Time
	pend      []*pending
}

// runGuest backs up one guest, in these steps:
//  1. settings, the guest-definition coverage check, the sources and the
//     destination (a missing or refusing bucket fails before the pause);
//  2. the store lock, recovery of what an earlier run left in the store,
//     and the pause/resume commands;
//  3. pause the guest and create the snapshots, resuming as soon as every
//     disk has one;
//  4. read each source into pending dumps, removing each snapshot when
//     done with it;
//  5. compress what was spooled, commit the dumps and their manifests, and
//     finishGuest (dumpdates, verify, retention, copies).
//
// On every path it resumes the guest, removes the snapshots and discards
// unfinished uploads and spool files (cleanup), then releases the lock.
func (r *Runner) runGuest(ctx context.Context, c *Config) (res *Result, err error) {
	g := &guestRun{r: r, c: c, log: r.log().With("guest", c.Name), res: &Result{Guest: c.Name}}
	res = g.res
	if err := g.setup(ctx); err != nil {
		return res, err
	}
	unlock, err := g.store.Lock(ctx, r.Host)
	if err != nil {
		return res, err
	}
	defer func() {
		cctx, cancel := cleanupCtx()
		defer cancel()
		if e := unlock(cctx); e != nil {
			g.log.Error("releasing the store lock", "err", e)
			if err == nil {
				err = fmt.Errorf("guest %s: releasing the lock: %w", c.Name, e)
			}
		}
	}()
	if err := g.prepareStore(ctx); err != nil {
		return res, err
	}
	// Undo everything on every path: resume, remove snapshots, delete temps.
	defer func() { err = g.cleanup(err) }()

	if err := g.st.save(r.StateDir); err != nil {
		return res, err
	}
	if err := g.pauseAndSnapshot(ctx); err != nil {
		return res, err
	}
	if err := g.readSources(ctx); err != nil {
		return res, err
	}
	if err := g.commit(ctx); err != nil {
		return res, err
	}
	return res, nil
}

// setup is step 1: settings, coverage, sources and the destination.
func (g *guestRun) setup(ctx context.Context) error {
	r, c := g.r, g.c
	g.compress = c.Compress
	if r.Compress != "" {
		g.compress = r.Compress
	}
	if _, err := compressExt(g.compress); err != nil {
		return err
	}
	g.spool = c.Spool == "always" || (c.Spool == "auto" && g.compress == CompressXZ)

	if c.GuestDefinition != "" {
		missing, err := Uncovered(c)
		if err != nil {
			return err
		}
		if len(missing) > 0 {
			g.res.Uncovered = missing
			g.uncovered = &UncoveredError{c.Name, missing}
			g.log.Error("GUEST DISK NOT BACKED UP", "disks", missing, "definition", c.GuestDefinition)
		}
	}

	srcs, err := r.sourcesOf(c)
	if err != nil {
		return err
	}
	g.srcs = srcs
	st := &State{PID: os.Getpid(), Guest: c.Name, Started: r.now()}
	g.st = st
	// The destination first: a bucket that is missing or refuses the
	// credentials fails the run before the guest is paused.
	store, err := GuestStore(ctx, c)
	if err != nil {
		return err
	}
	if ds, ok := store.(*DirStore); ok {
		ds.Temps = func(p string) error {
			st.Temps = append(st.Temps, p)
			return st.save(r.StateDir)
		}
	}
	g.store = store
	return nil
}

// prepareStore is step 2 (after the lock): recover the store, find the
// spool directory and expand the pause/resume commands.
func (g *guestRun) prepareStore(ctx context.Context) error {
	if did, err := g.store.Clean(ctx); err != nil {
		return err
	} else {
		for _, d := range did {
			g.log.Warn("recovered: " + d)
		}
	}
	g.spoolDir = g.r.StateDir
	if ds, ok := g.store.(*DirStore); ok {
		g.spoolDir = ds.Dir
		if err := os.MkdirAll(g.spoolDir, 0o750); err != nil {
			return err
		}
	}
	var err error
	g.pauseCmd, err = expand(g.c.Pause, map[string]string{"name": g.c.Name}, true)
	if err != nil {
		return err
	}
	g.resumeCmd, err = expand(g.c.Resume, map[string]string{"name": g.c.Name}, true)
	return err
}

// resume runs the resume command if the guest is paused.
func (g *guestRun) resume(cctx context.Context) error {
	if !g.st.Paused {
		return nil
	}
	err := runCmd(cctx, g.log, "resume", g.resumeCmd)
	if err != nil {
		return err
	}
	g.res.Paused = time.Since(g.pausedAt)
	g.log.Info("guest resumed", "paused_for", g.res.Paused.Round(time.Millisecond))
	g.st.Paused = false
	return g.st.save(g.r.StateDir)
}

// removeSnap removes s's snapshot if this run created it and it is still
// there.
func (g *guestRun) removeSnap(cctx context.Context, s *source) error {
	if !s.snap || s.removed || s.created.IsZero() {
		return nil
	}
	if err := runCmd(cctx, g.log, "remove snapshot", s.remove); err != nil {
		return err
	}
	s.removed = true
	s.lifetime = time.Since(s.created)
	g.res.SnapshotLifetime = max(g.res.SnapshotLifetime, s.lifetime)
	g.log.Info("snapshot removed", "device", s.device, "lifetime", s.lifetime.Round(time.Millisecond))
	var keep []SnapState
	for _, ss := range g.st.Snapshots {
		if ss.Device != s.device {
			keep = append(keep, ss)
		}
	}
	g.st.Snapshots = keep
	return g.st.save(g.r.StateDir)
}

// cleanup runs on every path once the store is prepared: it resumes the
// guest, removes the snapshots and discards what was not committed, and
// returns err joined with what failed, the left-out volumes and the
// uncovered disks, prefixed with the guest's name.
func (g *guestRun) cleanup(err error) error {
	c := g.c
	cctx, cancel := cleanupCtx()
	defer cancel()
	var cerrs []error
	if e := g.resume(cctx); e != nil {
		cerrs = append(cerrs, fmt.Errorf("RESUME FAILED, guest %s may still be paused: %w", c.Name, e))
	}
	for _, s := range g.srcs {
		if e := g.removeSnap(cctx, s); e != nil {
			cerrs = append(cerrs, fmt.Errorf("snapshot %s NOT removed: %w", s.device, e))
		}
	}
	for _, p := range g.pend {
		discard(cctx, g.log, p)
	}
	if len(cerrs) == 0 {
		os.Remove(statePath(g.r.StateDir, c.Name))
	}
	if len(cerrs) > 0 {
		err = errors.Join(append([]error{err}, cerrs...)...)
	}
	if err == nil {
		var left, partial []Skipped
		for _, sk := range g.res.Skipped {
			if sk.LeftOut {
				left = append(left, sk)
			}
			if sk.Partial {
				partial = append(partial, sk)
			}
		}
		if len(left)+len(partial) > 0 {
			err = errors.Join(&IncompleteError{Guest: c.Name, LeftOut: left, Partial: partial}, g.uncovered)
		} else if g.uncovered != nil {
			err = g.uncovered
		}
	}
	if err != nil && !strings.HasPrefix(err.Error(), "guest ") {
		err = fmt.Errorf("guest %s: %w", c.Name, err)
	}
	return err
}

// pauseAndSnapshot is step 3: pause the guest if a snapshot or the config
// asks for it, create the snapshots, and resume unless a disk without a
// snapshot is still to be read.
func (g *guestRun) pauseAndSnapshot(ctx context.Context) error {
	r, c, st, log := g.r, g.c, g.st, g.log
	needPause := false
	for _, s := range g.srcs {
		needPause = needPause || s.snap || c.Pause != ""
	}
	if g.pauseCmd != "" && needPause {
		st.Paused, st.Resume = true, g.resumeCmd
		if err := st.save(r.StateDir); err != nil {
			return err
		}
		g.pausedAt = time.Now()
		if err := runCmd(ctx, log, "pause", g.pauseCmd); err != nil {
			return err
		}
		log.Info("guest paused")
	}
	for _, s := range g.srcs {
		if !s.snap {
			continue
		}
		create, err := expand(c.Snapshot.Create, s.vars, true)
		if err != nil {
			return err
		}
		st.Snapshots = append(st.Snapshots, SnapState{Device: s.device, Remove: s.remove})
		if err := st.save(r.StateDir); err != nil {
			return err
		}
		s.created = time.Now()
		if err := runCmd(ctx, log, "create snapshot", create); err != nil {
			return err
		}
		log.Info("snapshot created", "source", s.path, "device", s.device)
	}
	live := false
	for _, s := range g.srcs {
		live = live || !s.snap
	}
	// With a snapshot of every disk the guest can run again now; a disk
	// read without a snapshot is read while the guest stays paused.
	if !live {
		if err := g.resume(ctx); err != nil {
			return err
		}
	} else if st.Paused {
		log.Info("guest stays paused while disks without a snapshot are read")
	}
	return nil
}

// readSources is step 4: dump every source against the usable manifests,
// checking each snapshot's COW flag and removing it when done, then resume
// the guest.
func (g *guestRun) readSources(ctx context.Context) error {
	date := g.r.now().Truncate(time.Second)
	all, _, err := ReadManifestsFrom(ctx, g.store)
	if err != nil {
		return err
	}
	usable := usableManifests(ctx, g.store, all)
	w := &dumpTarget{store: g.store, spool: g.spool, spoolDir: g.spoolDir, compress: g.compress, date: date, usable: usable, st: g.st}
	for _, s := range g.srcs {
		ps, sk, err := g.r.readSource(ctx, g.log, g.c, s, w)
		g.pend = append(g.pend, ps...)
		g.res.Skipped = append(g.res.Skipped, sk...)
		if err != nil {
			return err
		}
		if s.snap && s.cow != "" {
			if err := checkCOW(s.cow); err != nil {
				if errors.Is(err, os.ErrNotExist) {
					g.log.Warn("cannot check the snapshot's COW valid flag", "cow", s.cow)
				} else {
					return fmt.Errorf("source %s: %w", s.path, err)
				}
			}
		}
		if err := g.removeSnap(ctx, s); err != nil {
			return err
		}
	}
	return g.resume(ctx)
}

// commit is step 5: compress what was spooled (no snapshot is held any
// more), put the files in place (data first, then the manifest) and
// finish the guest.
func (g *guestRun) commit(ctx context.Context) error {
	for _, p := range g.pend {
		if p.spool != "" {
			if err := g.r.compressSpool(ctx, g.store, p, g.compress); err != nil {
				return err
			}
		}
	}
	for _, p := range g.pend {
		if err := p.up.Commit(ctx); err != nil {
			return err
		}
		if err := writeManifest(ctx, g.store, p.m); err != nil {
			g.store.Remove(ctx, p.m.File)
			return err
		}
		g.res.Backups = append(g.res.Backups, p.m)
		g.log.Info("backup written", "file", g.store.Location()+"/"+p.m.File, "level", p.m.Level, "files", p.m.Files, "bytes", p.m.Bytes)
	}
	g.pend = nil
	return g.r.finishGuest(ctx, g.log, g.c, g.store, g.res)
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
// content of keyFile when it is not "", and with the detached header
// header ("[VOLUME=]FILE", luks_headers) when it is not "".
func openTree(path string, log *slog.Logger, keyFile, header string) (*inspect.Tree, io.Closer, error) {
	var keys inspect.KeyOptions
	if keyFile != "" {
		k, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("key file: %w", err)
		}
		defer clear(k)
		keys.Keys = [][]byte{k}
	}
	if header != "" {
		h, err := readDetachedHeader(header)
		if err != nil {
			return nil, nil, err
		}
		keys.Headers = []inspect.DetachedHeader{h}
	}
	im, err := image.Open(path)
	if err != nil {
		return nil, nil, err
	}
	t, err := inspect.Inspect([]inspect.Source{{Name: path, R: im, Size: im.Size(), Format: im.Format}}, &inspect.Options{Logger: log, Keys: keys})
	if err != nil {
		im.Close()
		return nil, nil, err
	}
	return t, im, nil
}

// maxHeaderFile bounds a detached header file (as imgtool --luks-header):
// LUKS2 metadata is at most 2 x 4 MiB, cryptsetup's keyslot area 16 MiB
// by default.
const maxHeaderFile = 64 << 20

// readDetachedHeader reads a luks_headers value, [VOLUME=]FILE, with the
// rule of imgtool --luks-header: a value that names an existing file is
// the header of the source's whole disk, else it splits at its first "=".
func readDetachedHeader(spec string) (inspect.DetachedHeader, error) {
	addr, file := "", spec
	if _, err := os.Stat(spec); err != nil {
		if a, f, ok := strings.Cut(spec, "="); ok {
			addr, file = strings.Trim(a, "/"), f
		}
	}
	f, err := os.Open(file)
	if err != nil {
		return inspect.DetachedHeader{}, fmt.Errorf("luks header: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxHeaderFile+1))
	if err != nil {
		return inspect.DetachedHeader{}, fmt.Errorf("luks header %s: %w", file, err)
	}
	if len(b) > maxHeaderFile {
		return inspect.DetachedHeader{}, fmt.Errorf("luks header %s: larger than %d bytes", file, maxHeaderFile)
	}
	return inspect.DetachedHeader{Address: addr, Name: file, R: bytes.NewReader(b), Size: int64(len(b))}, nil
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
	t, closer, err := openTree(s.device, log, c.KeyFiles[s.path], c.LUKSHeaders[s.path])
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
		if de := (*damageError)(nil); errors.As(err, &de) {
			// Damage met mid-dump: the partial stream is dropped and the
			// volume left out, loudly; the other volumes are still dumped.
			discard(ctx, log, p)
			reason := v.Content.Type + ": the dump stopped at damage: " + de.err.Error()
			sk = append(sk, Skipped{Source: s.path, Volume: v.DisplayAddress(), Reason: reason, LeftOut: true})
			log.Error("volume NOT backed up", "source", s.path, "volume", v.DisplayAddress(), "reason", reason)
			continue
		}
		if p != nil {
			ps = append(ps, p)
		}
		if err == nil && p.m.LostCount > 0 {
			reason := fmt.Sprintf("%s: backed up WITHOUT %d item(s) its filesystem could not read: %s", v.Content.Type, p.m.LostCount, p.m.Lost[0])
			sk = append(sk, Skipped{Source: s.path, Volume: v.DisplayAddress(), Reason: reason, Partial: true})
			log.Error("volume backed up INCOMPLETE", "source", s.path, "volume", v.DisplayAddress(), "lost", p.m.Lost)
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
		return 0, &sinkError{fmt.Errorf("interrupted: %w", context.Cause(w.ctx))}
	}
	n, err := w.w.Write(p)
	w.n += int64(n)
	if err != nil {
		err = &sinkError{err}
	}
	return n, err
}

// discard drops an unfinished dump: its upload aborted, its spool file
// removed.
func discard(ctx context.Context, log *slog.Logger, p *pending) {
	if p == nil {
		return
	}
	if p.up != nil {
		if e := p.up.Abort(ctx); e != nil {
			log.Warn("discarding an unfinished upload", "file", p.m.File, "err", e)
		}
	}
	if p.spool != "" {
		os.Remove(p.spool)
	}
}

// sinkError is a failure to write a dump (the destination, the
// compressor, an interrupt), as opposed to damage met reading the source.
type sinkError struct{ err error }

func (e *sinkError) Error() string { return e.err.Error() }
func (e *sinkError) Unwrap() error { return e.err }

// damageError is a dump stopped by the source: an inode or directory the
// filesystem could not read. The volume is left out, loudly, and the
// others are still dumped.
type damageError struct{ err error }

func (e *damageError) Error() string { return e.err.Error() }
func (e *damageError) Unwrap() error { return e.err }

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
	if se := (*sinkError)(nil); err != nil && ctx.Err() == nil && !errors.As(err, &se) {
		err = &damageError{err}
		zw.Close() // its workers; the stream is discarded
	}
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
	m.Warnings, m.Lost, m.LostCount = stats.Warnings, stats.Lost, stats.LostCount
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
