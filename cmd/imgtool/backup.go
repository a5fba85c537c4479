package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/imgtool/imgtool/backup"
	"github.com/imgtool/imgtool/internal/human"
	"github.com/spf13/cobra"
)

// Exit codes of imgtool backup, beyond root.go's.
const (
	// exitUncovered: the guest definition lists a disk the config does
	// not back up (the configured disks were still backed up).
	exitUncovered = 4
	// exitLocked: another imgtool backup run holds the lock.
	exitLocked = 5
	// exitIncomplete: a volume that holds data was not backed up (a
	// filesystem it cannot dump, LUKS without a key, an unreadable LV, an
	// unknown signature, damage that stopped its dump) and is not in the
	// guest's skip list, or was backed up without what its filesystem
	// could not read; everything else was.
	exitIncomplete = 6
)

type backupFlags struct {
	g         *globalFlags
	configDir string
	stateDir  string
	json      bool
	syslog    bool
	now       string
}

func newBackupCmd(g *globalFlags) *cobra.Command {
	f := &backupFlags{g: g}
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Nightly backup of guests: snapshot, dump(8) at Tower-of-Hanoi levels, compress, rotate, copy, verify",
		Long: `imgtool backup backs up Xen/KVM guests from cron. Each guest has a TOML file
in the config directory (name, sources = every disk, pause/resume commands,
snapshot size, dest, hosts, retention, compression, schedule).

A run pauses the guest, snapshots its LVs, resumes it, reads every filesystem
imgtool can read (ext2/3/4, XFS, FAT, squashfs, ISO 9660) in every disk straight from the snapshot (partitions and nested LVM
included; no kpartx, no mount), writes dump(8) streams at the scheduled level
(level 0 on the 1st, then 3 2 5 4 7 6 9 8 9 ...), removes the snapshot, applies
retention, copies to the other hosts and verifies.

Every volume is either dumped or named: swap, all-zero volumes and those in
the guest's skip = [...] are skipped quietly; any other volume that holds
data and cannot be dumped (a filesystem type it cannot read, LUKS without a
key, an unreadable LV, an unknown signature) is named in the run's one-line
reason and the run exits 6 after backing up everything else. "plan" prints a
line for each.

Destinations: a directory, or dest = "s3://BUCKET/PREFIX" (any S3 server;
[s3] endpoint, path_style, region, profile, part_size; credentials from the
AWS environment and shared config). "imgtool backup config" lists every key
with its default. --json makes run, plan, verify and list print JSON.

Exit codes: 0 ok, 1 error (verify: also a guest with nothing to verify), 2 usage
(an invalid flag value too, or an invalid value, unknown key or bad TOML in a
config file), 4 a disk of the guest definition is not
in the config, 5 another run holds the lock (here, or another host holds the
guest's lock in the bucket), 6 a volume holding data was NOT backed up, or was
backed up without inodes or directory entries its filesystem could not read.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.configDir, "config-dir", "/etc/imgtool/backup.d", "directory of per-guest TOML files")
	pf.StringVar(&f.stateDir, "state-dir", "/var/lib/imgtool/backup", "lock and crash-recovery state")
	pf.BoolVar(&f.json, "json", false, "print the summary as JSON")
	pf.BoolVar(&f.syslog, "syslog", false, "log to syslog (daemon facility) instead of stderr")
	pf.StringVar(&f.now, "now", "", "pretend the date is this (RFC 3339 or YYYY-MM-DD), for planning and tests")
	cmd.AddCommand(f.runCmd(), f.planCmd(), f.verifyCmd(), f.listCmd(), f.recoverCmd(), configRefCmd())
	return cmd
}

// cronLogger is run's logger when its stderr goes to cron's mail (not a
// terminal, no -v, no --syslog): the records are held, and shown only if
// the run succeeds. A failed run prints one line, its reason, in one
// format (issue 13.12): every failure a record reports (a disk NOT backed
// up, a guest disk missing from the config) is in that reason, and -v
// shows the log as it happens.
func (f *backupFlags) cronLogger(cmd *cobra.Command) (log *slog.Logger, held *bytes.Buffer, err error) {
	if f.g.verbose || f.syslog || isTerminal(cmd.ErrOrStderr()) {
		log, err = f.logger(cmd)
		return log, nil, err
	}
	held = &bytes.Buffer{}
	return slog.New(slog.NewTextHandler(held, &slog.HandlerOptions{Level: slog.LevelWarn})), held, nil
}

func (f *backupFlags) logger(cmd *cobra.Command) (*slog.Logger, error) {
	level := slog.LevelWarn
	if f.g.verbose {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if f.syslog {
		w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "imgtool-backup")
		if err != nil {
			return nil, fmt.Errorf("syslog: %w", err)
		}
		opts.Level = slog.LevelInfo
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), opts)), nil
}

func (f *backupFlags) date() (time.Time, error) {
	if f.now == "" {
		return time.Now(), nil
	}
	if t, err := time.Parse(time.RFC3339, f.now); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation("2006-01-02", f.now, time.Local)
	if err != nil {
		return t, usageErrorf("--now %q: want RFC 3339 or YYYY-MM-DD", f.now)
	}
	return t.Add(time.Duration(time.Now().Hour())*time.Hour + time.Duration(time.Now().Minute())*time.Minute + time.Duration(time.Now().Second())*time.Second), nil
}

func (f *backupFlags) configs(names []string) ([]*backup.Config, error) {
	all, err := backup.LoadConfigDir(f.configDir)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("no guest configs (*.conf, *.toml) in %s", f.configDir)
	}
	return backup.Select(all, names)
}

// oneLine makes a joined error fit the one-line reason cron mails show.
func oneLine(err error) error {
	if err == nil {
		return nil
	}
	msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
	return &codeError{exitCode(err), errors.New(msg)}
}

// exitCode: a config file with an invalid value (2, as the same value
// as a flag) wins over a real failure (1), which wins over a lock (5), a
// volume left out (6) and an uncovered disk (4), in that order.
func exitCode(err error) int {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		code := 0
		for _, e := range j.Unwrap() {
			if e == nil {
				continue
			}
			c := exitCode(e)
			if code == 0 || rank(c) > rank(code) {
				code = c
			}
		}
		if code != 0 {
			return code
		}
	}
	var ue *backup.UncoveredError
	var ie *backup.IncompleteError
	var ce *backup.ConfigError
	switch {
	case errors.As(err, &ce):
		return exitUsage // as the same value given as a flag (issue 13.10)
	case errors.Is(err, backup.ErrLocked):
		return exitLocked
	case errors.As(err, &ie):
		return exitIncomplete
	case errors.As(err, &ue):
		return exitUncovered
	}
	return exitError
}

func rank(code int) int {
	switch code {
	case exitUsage:
		return 5
	case exitError:
		return 4
	case exitLocked:
		return 3
	case exitIncomplete:
		return 2
	}
	return 1
}

// printLeftOut writes one line per volume left out, for cron mail.
func printLeftOut(w io.Writer, err error) {
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				if x != nil {
					walk(x)
				}
			}
			return
		}
		var ie *backup.IncompleteError
		if errors.As(e, &ie) {
			for _, l := range ie.Lines() {
				fmt.Fprintln(w, "imgtool: "+l)
			}
		}
	}
	walk(err)
}

func (f *backupFlags) runCmd() *cobra.Command {
	var level int
	var compress string
	cmd := &cobra.Command{
		Use:   "run [NAME...]",
		Short: "Back up the named guests (all when none): cron-safe",
		Long: `Back up the named guests (all when none). Made for cron: silent on success
(-v prints a summary and logs each step); a failure prints one line, the
reason, on stderr and exits non-zero. When stderr is not a terminal and -v is
not given, the log is held and printed only after a successful run, so a
failure's one line is never mixed with log lines.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, held, err := f.cronLogger(cmd)
			if err != nil {
				return err
			}
			if level < -1 || level > 9 {
				return usageErrorf("--level %d: want 0-9", level)
			}
			switch compress {
			case "", backup.CompressZstd, backup.CompressXZ, backup.CompressNone:
			default:
				return usageErrorf("--compress %q: want zstd, xz or none", compress)
			}
			cfgs, err := f.configs(args)
			if err != nil {
				return oneLine(err)
			}
			date, err := f.date()
			if err != nil {
				return err
			}
			lock, err := backup.AcquireLock(f.stateDir)
			if err != nil {
				return oneLine(err)
			}
			defer lock.Release()
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			all, _ := backup.LoadConfigDir(f.configDir)
			if did, err := backup.Recover(ctx, f.stateDir, all, log); err != nil {
				return oneLine(fmt.Errorf("recovering from an interrupted run: %w", err))
			} else {
				for _, d := range did {
					log.Warn("recovered: " + d)
				}
			}
			// A run's live heap is small (one directory, one buffer, the
			// compressor) except at zstd's best level, whose 34 MiB of
			// tables hold no pointers: collecting at 20% growth instead of
			// 100% costs no measurable time and bounds the RSS (measured
			// warm: the 1M-small-file dump at best 117 -> 72 MB, 63 MB with
			// adaptiveZstd's limit; /usr/share 54 -> 40 MB). GOGC in the
			// environment still wins.
			if os.Getenv("GOGC") == "" {
				defer debug.SetGCPercent(debug.SetGCPercent(20))
			}
			host, _ := os.Hostname()
			offset := time.Until(date)
			r := &backup.Runner{Logger: log, StateDir: f.stateDir, Level: level, Compress: compress, Host: host,
				Now: func() time.Time { return time.Now().Add(offset) }}
			results, err := r.Run(ctx, cfgs)
			if held == nil {
				printLeftOut(cmd.ErrOrStderr(), err)
			} else if err == nil {
				cmd.ErrOrStderr().Write(held.Bytes())
			}
			if f.json {
				if err := writeJSON(cmd.OutOrStdout(), struct {
					Guests []*backup.Result `json:"guests"`
				}{results}); err != nil {
					return err
				}
			} else if f.g.verbose {
				printSummary(cmd.OutOrStdout(), results)
			}
			return oneLine(err)
		},
	}
	cmd.Flags().IntVar(&level, "level", -1, "dump level 0-9 instead of the schedule's")
	cmd.Flags().StringVar(&compress, "compress", "", "zstd, xz or none (overrides the config)")
	return cmd
}

func printSummary(w io.Writer, results []*backup.Result) {
	for _, r := range results {
		status := "ok"
		if r.Err != "" {
			status = "FAILED: " + r.Err
		}
		fmt.Fprintf(w, "guest %s: %s; paused %v, longest snapshot lifetime %v\n", r.Guest, status,
			r.Paused.Round(time.Millisecond), r.SnapshotLifetime.Round(time.Millisecond))
		for _, m := range r.Backups {
			fmt.Fprintf(w, "  dumped  %s#%s level %d: %d of %d inodes, %s -> %s\n", m.Source, m.Volume, m.Level, m.Files, m.Inodes,
				human.BytesUpTo(m.RawBytes, 'T'), m.File)
		}
		for _, s := range r.Skipped {
			if s.LeftOut {
				fmt.Fprintf(w, "  NOT BACKED UP %s#%s: %s\n", s.Source, s.Volume, s.Reason)
			} else if s.Partial {
				fmt.Fprintf(w, "  INCOMPLETE %s#%s: %s\n", s.Source, s.Volume, s.Reason)
			} else {
				fmt.Fprintf(w, "  skipped %s#%s: %s\n", s.Source, s.Volume, s.Reason)
			}
		}
		for _, u := range r.Uncovered {
			fmt.Fprintf(w, "  WARNING: disk %s is NOT backed up\n", u)
		}
		for _, d := range r.Deleted {
			fmt.Fprintf(w, "  deleted %s (retention)\n", d)
		}
		for _, c := range r.Copied {
			fmt.Fprintf(w, "  copied  %s\n", c)
		}
	}
}

func (f *backupFlags) planCmd() *cobra.Command {
	var level int
	cmd := &cobra.Command{
		Use:   "plan [NAME...]",
		Short: "Show every disk, partition, LV and filesystem of each guest, and what a run would dump today",
		RunE: func(cmd *cobra.Command, args []string) error {
			if level < -1 || level > 9 {
				return usageErrorf("--level %d: want 0-9", level)
			}
			cfgs, err := f.configs(args)
			if err != nil {
				return oneLine(err)
			}
			date, err := f.date()
			if err != nil {
				return err
			}
			r := &backup.Runner{Level: level}
			var reps []*backup.PlanReport
			var errs []error
			for _, c := range cfgs {
				rep := r.Plan(c, date)
				reps = append(reps, rep)
				if len(rep.Uncovered) > 0 {
					errs = append(errs, &backup.UncoveredError{Guest: c.Name, Disks: rep.Uncovered})
					fmt.Fprintf(cmd.ErrOrStderr(), "imgtool: WARNING: guest %s: disks %s of %s are NOT in the backup config\n",
						c.Name, strings.Join(rep.Uncovered, ", "), c.GuestDefinition)
				}
				for _, e := range rep.Errors {
					errs = append(errs, fmt.Errorf("guest %s: %s", c.Name, e))
				}
				if len(rep.LeftOut) > 0 {
					ie := &backup.IncompleteError{Guest: c.Name, LeftOut: rep.LeftOut}
					errs = append(errs, ie)
					printLeftOut(cmd.ErrOrStderr(), ie)
				}
				if !f.json {
					rep.WriteText(cmd.OutOrStdout())
				}
			}
			if f.json {
				if err := writeJSON(cmd.OutOrStdout(), struct {
					Guests []*backup.PlanReport `json:"guests"`
				}{reps}); err != nil {
					return err
				}
			}
			return oneLine(errors.Join(errs...))
		},
	}
	cmd.Flags().IntVar(&level, "level", -1, "plan this level instead of the schedule's")
	return cmd
}

func configRefCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "config",
		Short: "Print every key of a guest's config file with its default",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := io.WriteString(cmd.OutOrStdout(), backup.ConfigReference)
			return err
		},
	}
}

// verifyReport is one guest's verify --json record.
type verifyReport struct {
	Guest   string   `json:"guest"`
	Store   string   `json:"store,omitempty"`
	Checked int      `json:"checked"`
	OK      bool     `json:"ok"`
	Errors  []string `json:"errors"`
}

func errLines(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func (f *backupFlags) verifyCmd() *cobra.Command {
	var deep, quick bool
	cmd := &cobra.Command{
		Use:   "verify [NAME...]",
		Short: "Check every backup: sha256, decompress, parse every record and checksum, compare with the manifest",
		RunE: func(cmd *cobra.Command, args []string) error {
			cfgs, err := f.configs(args)
			if err != nil {
				return oneLine(err)
			}
			var errs []error
			var reps []verifyReport
			total := 0
			ctx := cmd.Context()
			for _, c := range cfgs {
				rep := verifyReport{Guest: c.Name}
				var gerrs []error
				st, err := backup.GuestStore(ctx, c)
				if err != nil {
					gerrs = append(gerrs, fmt.Errorf("guest %s: %w", c.Name, err))
				} else {
					rep.Store = st.Location()
					n, err := backup.VerifyStore(ctx, st, quick)
					total += n
					rep.Checked = n
					if err != nil {
						gerrs = append(gerrs, fmt.Errorf("guest %s: %w", c.Name, err))
					}
					if err := backup.VerifyCoverage(ctx, c, st); err != nil {
						gerrs = append(gerrs, err)
					}
					if deep {
						ms, _, _ := backup.ReadManifestsFrom(ctx, st)
						for _, m := range ms {
							if m.Level == 0 {
								if err := backup.VerifyDeepStore(ctx, st, m, m.Source); err != nil {
									gerrs = append(gerrs, err)
								}
							}
						}
					}
				}
				if len(gerrs) == 0 && rep.Checked == 0 {
					// Nothing checked is not a pass (issue 13.10): no
					// backup at all, and no source here to say whether
					// one was due.
					gerrs = append(gerrs, fmt.Errorf("guest %s: nothing to verify: %s holds no backup", c.Name, rep.Store))
				}
				for _, e := range gerrs {
					rep.Errors = append(rep.Errors, errLines(e)...)
				}
				rep.OK = len(gerrs) == 0
				reps = append(reps, rep)
				errs = append(errs, gerrs...)
			}
			if f.json {
				if err := writeJSON(cmd.OutOrStdout(), struct {
					Guests []verifyReport `json:"guests"`
				}{reps}); err != nil {
					return err
				}
			} else if f.g.verbose {
				fmt.Fprintf(cmd.OutOrStdout(), "%d backups checked, %d problems\n", total, len(errs))
			}
			return oneLine(errors.Join(errs...))
		},
	}
	cmd.Flags().BoolVar(&deep, "deep", false, "also compare level-0 backups' content with their source (use on an unchanged source)")
	cmd.Flags().BoolVar(&quick, "quick", false, "only sha256 and the dump header")
	return cmd
}

func (f *backupFlags) listCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list [NAME...]",
		Short: "Table of the backup chains",
		RunE: func(cmd *cobra.Command, args []string) error {
			cfgs, err := f.configs(args)
			if err != nil {
				return oneLine(err)
			}
			if f.json {
				var all []*backup.Manifest
				for _, c := range cfgs {
					st, err := backup.GuestStore(cmd.Context(), c)
					if err != nil {
						return oneLine(err)
					}
					ms, _, err := backup.ReadManifestsFrom(cmd.Context(), st)
					if err != nil {
						return oneLine(err)
					}
					all = append(all, ms...)
				}
				return writeJSON(cmd.OutOrStdout(), struct {
					Backups []*backup.Manifest `json:"backups"`
				}{all})
			}
			byDest := map[string][]string{}
			s3c := map[string]backup.S3Config{}
			var order []string
			for _, c := range cfgs {
				if _, ok := byDest[c.Dest]; !ok {
					order = append(order, c.Dest)
					s3c[c.Dest] = c.S3
				}
				byDest[c.Dest] = append(byDest[c.Dest], c.Name)
			}
			for _, d := range order {
				if err := backup.ListStores(cmd.Context(), cmd.OutOrStdout(), d, byDest[d], s3c[d]); err != nil {
					return oneLine(err)
				}
			}
			return nil
		},
	}
}

func (f *backupFlags) recoverCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "recover",
		Short: "After a crash: resume paused guests, remove our stale snapshots, delete temp and partial files",
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := f.logger(cmd)
			if err != nil {
				return err
			}
			lock, err := backup.AcquireLock(f.stateDir)
			if err != nil {
				return oneLine(err)
			}
			defer lock.Release()
			cfgs, _ := backup.LoadConfigDir(f.configDir)
			did, err := backup.Recover(context.Background(), f.stateDir, cfgs, log)
			for _, d := range did {
				fmt.Fprintln(cmd.OutOrStdout(), d)
			}
			if len(did) == 0 && err == nil && f.g.verbose {
				fmt.Fprintln(cmd.OutOrStdout(), "nothing to recover")
			}
			return oneLine(err)
		},
	}
}
