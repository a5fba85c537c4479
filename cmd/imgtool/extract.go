package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/imgtool/imgtool/internal/human"
	"github.com/imgtool/imgtool/termsafe"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/imgtool/imgtool/extract"
	"github.com/imgtool/imgtool/vfs"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

type extractFlags struct {
	tar          string
	xattrs       bool
	numericOwner bool
	force        bool
	workers      int
	report       string
	noProgress   bool
	salvage      bool
	noDevices    bool
	noSetuid     bool
	safe         bool
	quiet        bool // -q: no success summary
}

// safety applies --safe, --no-devices and --no-setuid to o.
func (xf *extractFlags) safety(o *extract.Options) {
	o.NoDevices = xf.noDevices || xf.safe
	o.NoSetuid = xf.noSetuid || xf.safe
}

func newExtractCmd(g *globalFlags) *cobra.Command {
	var f imageFlags
	var xf extractFlags
	cmd := &cobra.Command{
		Use:   "extract IMAGE [VOL:]/path DEST | --tar FILE|-",
		Short: "Copy a file or a whole tree out of a filesystem inside an image",
		Long: `Copy a file or a directory tree out of a filesystem (ext2/3/4, XFS, FAT,
squashfs, ISO 9660) straight from the image, keeping modes (setuid, sticky),
numeric owners (when run as root), atime and mtime to the nanosecond, symlinks, hard links, sparse files (holes
and preallocated ranges stay holes, never stale data), FIFOs, device nodes
(root) and, with --xattrs, extended attributes (user.*; trusted.* and
security.* need root; POSIX ACLs included). Dotfiles are always included.

DEST: for a directory, DEST becomes that directory (created if missing,
merged into if it exists, like cp -rT and tar -C): VOL:/home DEST fills DEST,
it does not make DEST/home. That way the result is where DEST says whether
or not DEST existed, and a second run merges instead of nesting (cp -r would
make DEST/home the second time). For a file, DEST is the new file, or an
existing directory to put it in. Either way DEST's parent must exist: it is
not created, and the error names DEST.

Safety: nothing is written outside DEST. Names with '/', "." or "..", empty
names and names with NUL are refused; symlinks are created as symlinks and
never followed while extracting (entries are created relative to directory
file descriptors with O_NOFOLLOW); existing files are kept unless --force
(directories are merged, never replaced).

The default is tar-like: as root, device nodes are created and setuid and
setgid bits are kept. For an untrusted image use --safe, which is
--no-devices (character and block devices are not created; each is listed
as refused, so the exit code is 3) plus --no-setuid (setuid and setgid bits
are cleared on every file and directory; the sticky bit stays). Both apply
to --tar too.

Ownership is always numeric: user and group names from a guest mean nothing
on this host. --numeric-owner is accepted for tar compatibility and changes
nothing.

--tar FILE|- writes a POSIX (PAX) tar instead, with nanosecond times, numeric
owners, hard links, devices and (--xattrs) SCHILY.xattr records. Files with
holes become GNU.sparse 1.0 members (as GNU tar --sparse --posix writes them):
only their data goes into the stream, and tar -xS restores the holes.

Errors with single files do not stop the run; at the end a summary goes to
stderr, every problem is listed (path, inode, why), and the exit code is 3
when anything was lost, refused or only partly restored. A progress line is
shown on stderr when it is a terminal.

FAT12/16/32, squashfs and ISO 9660 volumes are extracted by the same engine
with the same safety rules, keeping what the format stores: FAT names and
2-second mtimes (no modes or owners: files get 0644, directories 0755);
squashfs modes (without setuid/setgid/sticky, which go-diskfs drops), owners,
mtimes, symlinks and hard links; Rock Ridge modes, owners, mtimes and
symlinks. No xattrs are read from these formats.`,
		Example: `  imgtool extract disk.img VolGroup00/LogVol00:/home /srv/restore/home
  imgtool extract disk.img p1:/grub/grub.cfg ./grub.cfg
  imgtool extract disk.img VolGroup00/LogVol00:/home --tar - | ssh host tar -x -p -C /restore`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			xf.quiet = g.quiet
			if xf.workers < 1 {
				return usageErrorf("--workers %d: want 1 or more", xf.workers)
			}
			return runExtract(cmd, args, &f, &xf)
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&xf.tar, "tar", "", "write a PAX tar stream to FILE (- for stdout) instead of a directory")
	fl.BoolVar(&xf.xattrs, "xattrs", false, "restore extended attributes (and ACLs)")
	fl.BoolVar(&xf.numericOwner, "numeric-owner", false, "accepted for tar compatibility: owners are always numeric")
	fl.BoolVar(&xf.force, "force", false, "replace existing files in DEST (never directories)")
	fl.IntVar(&xf.workers, "workers", 2, "goroutines copying file contents")
	fl.StringVar(&xf.report, "report", "", "also write the report as JSON to FILE")
	fl.BoolVar(&xf.noDevices, "no-devices", false, "do not create character or block device nodes, even as root (each is reported)")
	fl.BoolVar(&xf.noSetuid, "no-setuid", false, "clear setuid and setgid bits on everything extracted")
	fl.BoolVar(&xf.safe, "safe", false, "for untrusted images, especially as root: --no-devices and --no-setuid")
	fl.BoolVar(&xf.noProgress, "no-progress", false, "no progress line even on a terminal")
	fl.BoolVar(&xf.salvage, "salvage", false, "rescue a damaged ext2/3/4 or XFS filesystem: whole tree read tolerantly, unreachable inodes into DEST/#orphans, salvage-report.json")
	return cmd
}

func runExtract(cmd *cobra.Command, args []string, f *imageFlags, xf *extractFlags) error {
	if (len(args) == 3) == (xf.tar != "") {
		return usageErrorf("give either DEST or --tar FILE|-")
	}
	if xf.salvage {
		return runSalvage(cmd, args, f, xf)
	}
	h, err := openFS(cmd, args[0], args[1], f)
	if err != nil {
		return err
	}
	defer h.Close()
	root := os.Geteuid() == 0
	opts := extract.Options{
		Force:   xf.force,
		Xattrs:  xf.xattrs,
		Owner:   root,
		Devices: root,
		Workers: xf.workers,
	}
	xf.safety(&opts)
	stderr := cmd.ErrOrStderr()
	var bar *progressBar
	if !xf.noProgress && isTerminal(stderr) {
		bar = &progressBar{w: stderr}
		opts.Progress = bar.update
		opts.Count = true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	var rep *extract.Report
	if xf.tar != "" {
		var w io.Writer = cmd.OutOrStdout()
		var file *os.File
		if xf.tar == "-" {
			if err := refuseTerminal(w, "a tar archive", xf.force); err != nil {
				return err
			}
		} else {
			file, err = os.OpenFile(xf.tar, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil && xf.force {
				file, err = os.Create(xf.tar)
			}
			if err != nil {
				return err
			}
			w = file
		}
		rep, err = extract.RunTar(ctx, h.fs, []string{h.path}, w, opts)
		if file != nil {
			if cerr := file.Close(); err == nil {
				err = cerr
			}
		}
	} else {
		rep, err = extract.Run(ctx, h.fs, []string{h.path}, args[2], opts)
	}
	if bar != nil {
		bar.finish()
	}
	if rep == nil {
		var de *extract.DestError
		if errors.As(err, &de) {
			return err // DEST's fault, not the source's
		}
		if err != nil {
			return h.errAt(h.path, err)
		}
		return nil
	}
	for _, p := range rep.Problems {
		ino := ""
		if p.Ino != 0 {
			ino = fmt.Sprintf(" (inode %d)", p.Ino)
		}
		fmt.Fprintf(stderr, "imgtool: %s: %s%s: %s%s\n", p.Kind, h.where(p.Path), ino, p.Reason(), h.absolute(p.Err))
	}
	if rep.MoreProblems > 0 {
		fmt.Fprintf(stderr, "imgtool: ... and %d more problems\n", rep.MoreProblems)
	}
	// The reader's notes (checksum mismatches, skipped entries) did not
	// stop anything, but the data read past them may be wrong: said here,
	// and the exit status is 3. Those of the open (the journal replay)
	// were shown then.
	damage := h.sayNewNotes()
	slog.Debug("extract finished", "volume", h.vol.DisplayAddress(), "path", h.path, "files", rep.Files, "dirs", rep.Dirs, "bytes", rep.Bytes, "problems", len(rep.Problems))
	if !xf.quiet || rep.Partial() || err != nil {
		fmt.Fprintf(stderr, "imgtool: extracted %s: %s\n", h.where(h.path), rep.Summary())
	}
	if xf.report != "" {
		if werr := writeReport(xf.report, h, rep); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		return &codeError{exitPartial, fmt.Errorf("%s: stopped: %w", h.where(h.path), err)}
	}
	if rep.Partial() {
		return &codeError{exitPartial, fmt.Errorf("%s: %d problems (listed above): the copy is incomplete", h.where(h.path), rep.Errors())}
	}
	if damage > 0 {
		return &codeError{exitPartial, fmt.Errorf("%s: extracted past damage (%d reader notes above): the copy may hold wrong data", h.where(h.path), damage)}
	}
	if h.stale() {
		return &codeError{exitPartial, fmt.Errorf("%s: extracted from a stale view of the filesystem (said above): the copy may be older than the disk's last state", h.where(h.path))}
	}
	return nil
}

// reportJSON is --report's format.
type reportJSON struct {
	Volume       string        `json:"volume"`
	Path         string        `json:"path"`
	Files        int64         `json:"files"`
	Dirs         int64         `json:"dirs"`
	Symlinks     int64         `json:"symlinks"`
	Hardlinks    int64         `json:"hardlinks"`
	Specials     int64         `json:"specials"`
	Bytes        int64         `json:"bytes"`
	DataBytes    int64         `json:"data_bytes"`
	Seconds      float64       `json:"seconds"`
	Problems     []problemJSON `json:"problems"`
	MoreProblems int           `json:"more_problems,omitempty"`
}

type problemJSON struct {
	Path   string  `json:"path"`
	Inode  vfs.Ino `json:"inode,omitempty"`
	Kind   string  `json:"kind"`
	Reason string  `json:"reason"`
}

func writeReport(file string, h *fsHandle, rep *extract.Report) error {
	r := reportJSON{
		Volume: h.vol.Address, Path: h.path,
		Files: rep.Files, Dirs: rep.Dirs, Symlinks: rep.Symlinks, Hardlinks: rep.Hardlinks, Specials: rep.Specials,
		Bytes: rep.Bytes, DataBytes: rep.DataBytes, Seconds: rep.Elapsed.Seconds(),
		Problems: []problemJSON{}, MoreProblems: rep.MoreProblems,
	}
	for _, p := range rep.Problems {
		r.Problems = append(r.Problems, problemJSON{p.Path, p.Ino, string(p.Kind), p.Reason()})
	}
	return writeJSONFile(file, r)
}

// isTerminal reports whether w is a terminal (TCGETS succeeds).
func isTerminal(w io.Writer) bool {
	f, ok := termsafe.Unwrap(w).(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progressBar draws one status line on a terminal.
type progressBar struct {
	mu    sync.Mutex
	w     io.Writer
	drawn bool
}

func (b *progressBar) update(p extract.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p.Done {
		return
	}
	var s strings.Builder
	if p.TotalBytes > 0 {
		frac := min(float64(p.Bytes)/float64(p.TotalBytes), 1)
		const width = 24
		n := int(frac * width)
		s.WriteString("[" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "] ")
		fmt.Fprintf(&s, "%3.0f%% ", frac*100)
	}
	fmt.Fprintf(&s, "%d", p.Files)
	if p.TotalFiles > 0 {
		fmt.Fprintf(&s, "/%d", p.TotalFiles)
	}
	fmt.Fprintf(&s, " files  %s", human.Bytes(p.Bytes))
	if p.TotalBytes > 0 {
		fmt.Fprintf(&s, "/%s", human.Bytes(p.TotalBytes))
	}
	fmt.Fprintf(&s, "  %s/s", human.Bytes(int64(p.Rate())))
	if eta := p.ETA(); eta >= 0 {
		fmt.Fprintf(&s, "  ETA %s", eta.Round(time.Second))
	}
	if p.Errors > 0 {
		fmt.Fprintf(&s, "  %d errors", p.Errors)
	}
	line := s.String()
	if len(line) > 110 {
		line = line[:110]
	}
	fmt.Fprintf(b.w, "\r\033[K%s", line)
	b.drawn = true
}

func (b *progressBar) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
	}
}
