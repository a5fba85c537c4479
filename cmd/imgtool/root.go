package main

import (
	"errors"
	"fmt"
	"github.com/imgtool/imgtool/termsafe"
	"io"
	"log/slog"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version may be set at build time with -ldflags "-X main.version=..."
// (scripts/build.sh does, for the builds go does not stamp: a git worktree,
// GOFLAGS=-buildvcs=false); otherwise versionString reads the module
// version and VCS revision that the go command records in the binary
// (debug.ReadBuildInfo).
var version = ""

// versionString is what --version prints after "imgtool version ":
// "v1.2.3 go1.26.8", or for a build from a checkout "(devel) 1a2b3c4d5e6f
// 2026-12-05T07:00:00Z go1.26.8" with "+dirty" after the revision when the
// tree had changes.
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if version != "" {
		if ok && bi != nil {
			return version + " " + bi.GoVersion
		}
		return version
	}
	return buildVersion(bi, ok)
}

func buildVersion(bi *debug.BuildInfo, ok bool) string {
	if !ok || bi == nil {
		return "unknown (no build information in the binary)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += " " + rev
		if dirty {
			v += "+dirty"
		}
		if at != "" {
			v += " " + at
		}
	}
	return v + " " + bi.GoVersion
}

// Exit codes (architecture doc): 0 ok, 1 error, 2 usage, 3 partial.
const (
	exitOK      = 0
	exitError   = 1
	exitUsage   = 2
	exitPartial = 3
)

// exitError carries a specific exit code out of a command.
type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string { return e.err.Error() }
func (e *codeError) Unwrap() error { return e.err }

func usageErrorf(format string, a ...any) error {
	return &codeError{exitUsage, fmt.Errorf(format, a...)}
}

type globalFlags struct {
	verbose bool
	quiet   bool
}

func newRoot(stdout, stderr io.Writer) (*cobra.Command, *globalFlags) {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "imgtool",
		Short: "Look inside disk images: partitions, LVM2, MD RAID, LUKS, ext2/3/4, XFS, FAT, squashfs, ISO — no root, no kernel help",
		Long: `imgtool reads partition tables, LVM2, MD RAID, LUKS and the ext2/3/4, XFS,
FAT, squashfs and ISO 9660 filesystems itself, straight from an image file
(raw, qcow2, VMDK, VHD, VHDX), block device or LVM snapshot. It never writes
to the image unless a command is given --write.

Volumes are addressed by path from the image root: p1, p5 (logical),
VolGroup00/LogVol00, VolGroup00/domu1/VolGroup00/LogVol00, LABEL=/boot, UUID=...
Files are VOLUME:/path, or /path when the image holds one filesystem.

LUKS1/LUKS2 volumes are unlocked in userspace by every command that reads an
image: --key-file FILE (repeatable), --keys-from-stdin (a passphrase a line),
else a terminal prompt; without a key a volume is listed as locked. A volume
whose header was made apart (cryptsetup luksFormat --header) is opened with
--luks-header [VOLUME=]FILE: FILE is the header, VOLUME (e.g. p1, VG/LV;
without it, the first image's whole disk) the encrypted data.`,
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			level := slog.LevelWarn
			if g.verbose {
				level = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log what is being done to stderr (slog, debug level)")
	root.PersistentFlags().BoolVarP(&g.quiet, "quiet", "q", false, "print no success summary (problems and errors are still printed)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &codeError{exitUsage, err}
	})
	for _, add := range commands {
		root.AddCommand(add(g))
	}
	return root, g
}

// commands is the command list, in the order of the architecture's CLI
// contract: reading, browsing, volumes, backup.
var commands = []func(*globalFlags) *cobra.Command{
	newInspectCmd,
	newLsCmd,
	newCatCmd,
	newStatCmd,
	newDDCmd,
	newExtractCmd,
	newUndeleteCmd,
	newTuiCmd,
	newMountCmd,
	newUmountCmd,
	newLVMCmd,
	newMDCmd,
	newDrbdCmd,
	newBackupCmd,
	newRestoreCmd,
}

func run(args []string, stdout, stderr io.Writer) int {
	return runWithStdin(args, nil, stdout, stderr)
}

// runWithStdin is run with stdin (nil: the process's).
func runWithStdin(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// Everything on stderr — errors, reports, notes, logs — may embed a
	// name from the image: escape what a terminal would obey (termsafe).
	stderr = termsafe.Writer(stderr)
	root, _ := newRoot(stdout, stderr)
	if stdin != nil {
		root.SetIn(stdin)
	}
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "imgtool: %v\n", err)
	var ce *codeError
	if errors.As(err, &ce) {
		return ce.code
	}
	// cobra's own argument-count and unknown-command errors are usage errors.
	if isCobraUsage(err) {
		return exitUsage
	}
	return exitError
}
