package extract

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imgtool/imgtool/vfs"
)

// Options tune an extraction. The zero value extracts contents, modes and
// times, no owners and no xattrs, refusing to overwrite.
type Options struct {
	// Force replaces existing non-directory entries in DEST (existing
	// directories are always merged into, as tar does). A directory is
	// never replaced.
	Force bool
	// Xattrs restores extended attributes (user.* always; trusted.* and
	// security.* need root). POSIX ACLs (system.posix_acl_*) are converted
	// from ext4's on-disk format to the kernel's xattr format.
	Xattrs bool
	// Owner restores numeric owners (uid/gid). Ownership is always
	// numeric: the guest's user names mean nothing on this host. Set it
	// when running as root (the CLI does).
	Owner bool
	// Devices creates character and block device nodes (root only);
	// without it they are reported as lost. FIFOs and sockets are always
	// created.
	Devices bool
	// NoSetuid clears the setuid and setgid bits of everything extracted
	// (the sticky bit stays), so that a file from an untrusted image does
	// not become a set-id program on the host.
	NoSetuid bool
	// NoDevices leaves character and block device nodes out even as root
	// (each one is reported as refused): a node from an untrusted image
	// can name any device of the host, such as its disks.
	NoDevices bool
	// Workers is the number of goroutines copying file contents to disk
	// (0: 2). The walk itself is one goroutine. Ignored for tar.
	Workers int
	// Progress, when set, is called about every ProgressEvery (default
	// 200ms) from a separate goroutine, and once more at the end with
	// Done set. It must not block for long.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// Count walks the sources once more, concurrently, to fill in
	// Progress.TotalFiles and TotalBytes (for an ETA).
	Count bool
}

// Extractor extracts inodes of one filesystem into a destination (a
// directory or a tar stream). Run and RunTar drive it over directory
// trees; a salvage walker can drive it directly with Add and AddTree,
// naming where each inode goes. An Extractor is used from one goroutine;
// it runs its own workers.
type Extractor struct {
	fsys vfs.FS
	// synthetic: the source's Inos are not on-disk inode numbers (not
	// reported); owners and devices: the format stores them (Caps).
	synthetic, owners, devices bool
	euid, egid                 uint32
	opts                       Options
	sink                       sink
	rep                        *Report
	// links maps an inode with several names to the destination path of
	// the first name extracted, for hard links.
	links map[vfs.Ino][]string
	// dirsDone guards against directory loops and directories with
	// several names in a damaged filesystem.
	dirsDone map[vfs.Ino]bool

	files, bytes atomic.Int64
	current      atomic.Pointer[string]
	totalFiles   atomic.Int64
	totalBytes   atomic.Int64
	start        time.Time
	stopProgress chan struct{}
	stopCount    context.CancelFunc // ends the counting walk, if any
	progressDone sync.WaitGroup
	closed       bool
}

// maxDepth bounds directory nesting: the walk holds one open directory
// per level.
const maxDepth = 512

// sink writes entries to a destination. names is the destination path
// below the root, each element already checked by checkName. Errors are
// per entry unless wrapped in fatalError.
type sink interface {
	dir(names []string, src string, in *vfs.Stat) error
	file(names []string, src string, in *vfs.Stat) error // opens the content itself (possibly in a worker)
	symlink(names []string, src string, in *vfs.Stat, target string) error
	hardlink(names []string, src string, in *vfs.Stat, first []string) error
	special(names []string, src string, in *vfs.Stat) error
	close() error
}

// fatalError stops the whole run (the tar stream broke, DEST vanished).
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

func newExtractor(fsys vfs.FS, opts Options) *Extractor {
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = 200 * time.Millisecond
	}
	x := &Extractor{
		fsys:     fsys,
		opts:     opts,
		rep:      &Report{},
		links:    map[vfs.Ino][]string{},
		dirsDone: map[vfs.Ino]bool{},
		start:    time.Now(),
	}
	caps := fsys.Info().Caps
	x.synthetic, x.owners, x.devices = !caps.Inodes, caps.Owners, caps.Devices
	x.euid, x.egid = uint32(os.Geteuid()), uint32(os.Getegid())
	empty := ""
	x.current.Store(&empty)
	return x
}

// startProgress runs the progress ticker (and the counting walk).
func (x *Extractor) startProgress(ctx context.Context, srcPaths []string) {
	if x.opts.Progress == nil {
		return
	}
	if x.opts.Count && srcPaths != nil {
		cctx, cancel := context.WithCancel(ctx)
		x.stopCount = cancel
		x.progressDone.Add(1)
		go func() {
			defer x.progressDone.Done()
			f, b := Count(cctx, x.fsys, srcPaths)
			if cctx.Err() == nil {
				x.totalFiles.Store(f)
				x.totalBytes.Store(b)
			}
		}()
	}
	x.stopProgress = make(chan struct{})
	x.progressDone.Add(1)
	go func() {
		defer x.progressDone.Done()
		t := time.NewTicker(x.opts.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				x.opts.Progress(x.snapshot(false))
			case <-x.stopProgress:
				return
			}
		}
	}()
}

func (x *Extractor) snapshot(done bool) Progress {
	return Progress{
		Files:      x.files.Load(),
		Bytes:      x.bytes.Load(),
		TotalFiles: x.totalFiles.Load(),
		TotalBytes: x.totalBytes.Load(),
		Errors:     x.errorCount(),
		Elapsed:    time.Since(x.start),
		Current:    *x.current.Load(),
		Done:       done,
	}
}

func (x *Extractor) errorCount() int {
	x.rep.mu.Lock()
	defer x.rep.mu.Unlock()
	return x.rep.Errors()
}

func (x *Extractor) problem(src string, ino vfs.Ino, kind Kind, err error) {
	if x.synthetic {
		ino = 0
	}
	x.rep.add(Problem{Path: src, Ino: ino, Kind: kind, Err: err})
}

// Add extracts inode ino (source path src, for reports) to names below
// the destination root, without descending into it if it is a
// directory (the directory is created and its metadata applied when the
// extraction leaves it). Per-entry problems go into the report; the
// error is non-nil only when the whole run must stop.
func (x *Extractor) Add(ctx context.Context, names []string, src string, ino vfs.Ino) error {
	_, err := x.add(ctx, names, src, ino, nil)
	return err
}

// AddTree extracts inode ino to names and, if it is a directory,
// everything below it, depth first, streaming (one directory's entries
// in memory per level).
func (x *Extractor) AddTree(ctx context.Context, names []string, src string, ino vfs.Ino) error {
	return x.tree(ctx, names, src, ino, nil, 0)
}

func (x *Extractor) tree(ctx context.Context, names []string, src string, ino vfs.Ino, in *vfs.Stat, depth int) error {
	in, err := x.add(ctx, names, src, ino, in)
	if err != nil || in == nil || !in.IsDir() {
		return err
	}
	if depth >= maxDepth {
		x.problem(src, ino, Lost, fmt.Errorf("directory nested deeper than %d levels; not descended", maxDepth))
		return nil
	}
	ents, err := x.fsys.ReadDir(ino)
	if err != nil {
		// The entries read before the damage are still extracted.
		x.problem(src, ino, Damaged, fmt.Errorf("reading directory: %w", err))
	}
	seen := make(map[string]struct{}, len(ents))
	for _, e := range ents {
		// ReadDir leaves out a directory's own "." and "..": any such
		// name it returns is damage or an attack, refused by CheckName.
		if err := ctx.Err(); err != nil {
			return err
		}
		child := JoinSrc(src, e.Name)
		if err := CheckName(e.Name); err != nil {
			x.problem(child, e.Ino, Refused, err)
			continue
		}
		// Two entries with one name (damage, or a symlink "evil" followed
		// by a directory "evil" to write through it): the first wins.
		if _, dup := seen[e.Name]; dup {
			x.problem(child, e.Ino, Refused, fmt.Errorf("name %s appears twice in the directory; the first entry was extracted", quotePath(e.Name)))
			continue
		}
		seen[e.Name] = struct{}{}
		sub := append(names[:len(names):len(names)], e.Name)
		if err := x.tree(ctx, sub, child, e.Ino, nil, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// add extracts one inode and returns it (nil when it could not be read or
// the entry was not created).
func (x *Extractor) add(ctx context.Context, names []string, src string, ino vfs.Ino, in *vfs.Stat) (*vfs.Stat, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, n := range names {
		if err := CheckName(n); err != nil {
			x.problem(src, ino, Refused, err)
			return nil, nil
		}
	}
	x.current.Store(&src)
	if in == nil {
		var err error
		in, err = x.fsys.Stat(ino)
		if err != nil {
			x.problem(src, ino, Lost, err)
			return nil, nil
		}
	}
	in = x.defaults(in)
	if x.opts.NoDevices && (in.Type() == vfs.ModeChar || in.Type() == vfs.ModeBlock) {
		x.problem(src, ino, Refused, errors.New("device node not created (--no-devices/--safe)"))
		return nil, nil
	}
	if x.opts.NoSetuid && in.Mode&0o6000 != 0 {
		c := *in
		c.Mode &^= 0o6000
		in = &c
	}
	var err error
	counted := true
	switch in.Type() {
	case vfs.ModeDir:
		if x.dirsDone[ino] {
			x.problem(src, ino, Refused, errors.New("directory inode already extracted under another name (a loop or a directory hard link in a damaged filesystem)"))
			return nil, nil
		}
		x.dirsDone[ino] = true
		if err = x.sink.dir(names, src, in); err == nil {
			x.rep.Dirs++
		}
	case vfs.ModeReg:
		if in.Nlink > 1 {
			if first, ok := x.links[ino]; ok {
				if err = x.sink.hardlink(names, src, in, first); err == nil {
					x.rep.Hardlinks++
				}
				break
			}
		}
		if err = x.sink.file(names, src, in); err == nil {
			x.rep.Files++
			counted = false // the sink counts it when its content is done
			if in.Nlink > 1 {
				x.links[ino] = append([]string(nil), names...)
			}
		}
	case vfs.ModeLink:
		var target string
		target, err = x.fsys.Readlink(ino)
		if err == nil && strings.IndexByte(target, 0) >= 0 {
			x.problem(src, ino, Refused, errors.New("symlink target contains a NUL byte"))
			return nil, nil
		}
		if err == nil {
			if err = x.sink.symlink(names, src, in, target); err == nil {
				x.rep.Symlinks++
			}
		}
	case vfs.ModeFIFO, vfs.ModeSocket, vfs.ModeChar, vfs.ModeBlock:
		if err = x.sink.special(names, src, in); err == nil {
			x.rep.Specials++
		}
	default:
		err = fmt.Errorf("inode %d: unknown file type %#o in mode %#o (zeroed or unused inode?)", ino, in.Type(), in.Mode)
	}
	if err != nil {
		var fe *fatalError
		if errors.As(err, &fe) {
			return nil, fe.err
		}
		var pe *problemError
		if errors.As(err, &pe) {
			x.problem(src, ino, pe.kind, pe.err)
		} else {
			x.problem(src, ino, Lost, err)
		}
		return nil, nil
	}
	if counted {
		x.files.Add(1)
	}
	return in, nil
}

// defaults fills in what the format does not store so that extraction
// changes nothing it cannot know: without owners the owner is the
// extracting user (no chown happens).
func (x *Extractor) defaults(in *vfs.Stat) *vfs.Stat {
	if x.owners || (in.UID == x.euid && in.GID == x.egid) {
		return in
	}
	c := *in
	c.UID, c.GID = x.euid, x.egid
	return &c
}

// deviceNumbers returns a device node's numbers, or an error when the
// format's reader does not give them (a node made from them would be a
// wrong device).
func (x *Extractor) deviceNumbers(in *vfs.Stat) (maj, min uint32, err error) {
	if !x.devices {
		return 0, 0, fmt.Errorf("device node: the %s reader does not give its device numbers", x.fsys.Info().Type)
	}
	return in.RdevMajor, in.RdevMinor, nil
}

// problemError carries a Problem kind other than Lost out of a sink.
type problemError struct {
	kind Kind
	err  error
}

func (e *problemError) Error() string { return e.err.Error() }
func (e *problemError) Unwrap() error { return e.err }

func refused(format string, a ...any) error {
	return &problemError{Refused, fmt.Errorf(format, a...)}
}

// Close waits for the workers, applies the metadata of the directories
// still open, finishes the tar stream, and returns the report.
func (x *Extractor) Close() (*Report, error) {
	if x.closed {
		return x.rep, errors.New("extract: already closed")
	}
	x.closed = true
	err := x.sink.close()
	if x.stopCount != nil {
		x.stopCount() // a run faster than its count: no totals
	}
	if x.stopProgress != nil {
		close(x.stopProgress)
		x.progressDone.Wait()
	}
	x.rep.Elapsed = time.Since(x.start)
	if x.opts.Progress != nil {
		x.opts.Progress(x.snapshot(true))
	}
	return x.rep, err
}

// JoinSrc joins a directory path of the source filesystem and an entry name.
func JoinSrc(dir, name string) string {
	if dir == "/" || dir == "" {
		return "/" + name
	}
	return dir + "/" + name
}

// CheckName refuses directory entry names that could address anything
// but a new entry in the directory being written: empty, ".", "..", or
// containing '/' or NUL. Such names do not occur in a healthy ext
// filesystem; they are damage or an attack. The same rule holds for
// every Source (a squashfs or ISO name is bytes too).
func CheckName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case name == "." || name == "..":
		return fmt.Errorf("name %q would address a directory above or itself", name)
	case strings.IndexByte(name, '/') >= 0:
		return fmt.Errorf("name %q contains '/'", name)
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("name %q contains a NUL byte", name)
	}
	return nil
}

// source is one source path resolved to an inode.
type source struct {
	path string
	ino  vfs.Ino
	in   *vfs.Stat
	// shadowed are the other entries of the parent directory with the
	// source's name (damage, or a symlink "evil" beside a directory
	// "evil"): the path reaches only the one Lookup finds, so they are
	// not extracted, and are reported (issue 13.4: a skipped entry is a
	// loss; 13.6: a marked directory skipped so in the TUI is listed).
	shadowed []vfs.Ino
}

func resolveSources(fsys vfs.FS, srcPaths []string) ([]source, error) {
	var out []source
	dirs := dirNames{}
	for _, p := range srcPaths {
		clean := path.Clean("/" + p)
		ino, err := fsys.Lookup(clean)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", clean, err)
		}
		in, err := fsys.Stat(ino)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", clean, err)
		}
		out = append(out, source{clean, ino, in, dirs.shadowed(fsys, clean, ino)})
	}
	return out, nil
}

// dirNames caches, by parent path, the inodes each name of the directory
// has: many sources often share one parent (the TUI's marks).
type dirNames map[string]map[string][]vfs.Ino

// shadowed returns the other entries of clean's parent directory named
// as clean is, which the path does not reach (it reaches ino).
func (d dirNames) shadowed(fsys vfs.FS, clean string, ino vfs.Ino) []vfs.Ino {
	if clean == "/" {
		return nil
	}
	parent, name := path.Split(clean)
	names, ok := d[parent]
	if !ok {
		names = map[string][]vfs.Ino{}
		if pino, err := fsys.Lookup(path.Clean(parent)); err == nil {
			ents, _ := fsys.ReadDir(pino) // damage is the walk's to report
			for _, e := range ents {
				names[e.Name] = append(names[e.Name], e.Ino)
			}
		}
		d[parent] = names
	}
	var out []vfs.Ino
	for _, other := range names[name] {
		if other != ino {
			out = append(out, other)
		}
	}
	return out
}

// reportShadowed records, for each source, the entries its name hides.
func (x *Extractor) reportShadowed(srcs []source) {
	for _, s := range srcs {
		for _, ino := range s.shadowed {
			x.problem(s.path, ino, Refused, fmt.Errorf("name %s appears twice in the directory; the entry the path reaches (inode %d) was extracted", quotePath(path.Base(s.path)), s.ino))
		}
	}
}

// ReportShadowed is for callers that add source paths themselves (the
// TUI's marks, with Add or AddTree): for each path, every other entry of
// its directory with the same name — which the path does not reach, so
// it is not extracted — is reported as refused, as Run and RunTar do. A
// path that does not resolve is left to the caller.
func (x *Extractor) ReportShadowed(srcPaths []string) {
	dirs := dirNames{}
	var srcs []source
	for _, p := range srcPaths {
		clean := path.Clean("/" + p)
		if ino, err := x.fsys.Lookup(clean); err == nil {
			srcs = append(srcs, source{path: clean, ino: ino, shadowed: dirs.shadowed(x.fsys, clean, ino)})
		}
	}
	x.reportShadowed(srcs)
}

// Count walks the trees under srcPaths and returns how many entries and
// how many logical bytes of regular files (each inode once) they hold.
// Unreadable parts are skipped.
func Count(ctx context.Context, fsys vfs.FS, srcPaths []string) (files, bytes int64) {
	seen := map[vfs.Ino]bool{}
	var walk func(ino vfs.Ino, depth int)
	walk = func(ino vfs.Ino, depth int) {
		if ctx.Err() != nil || depth > maxDepth {
			return
		}
		in, err := fsys.Stat(ino)
		if err != nil {
			return
		}
		files++
		switch {
		case in.IsRegular():
			if in.Nlink > 1 {
				if seen[ino] {
					return
				}
				seen[ino] = true
			}
			bytes += min(in.Size, 1<<62)
		case in.IsDir():
			if seen[ino] {
				return
			}
			seen[ino] = true
			ents, _ := fsys.ReadDir(ino)
			for _, e := range ents {
				walk(e.Ino, depth+1)
			}
		}
	}
	for _, p := range srcPaths {
		if ino, err := fsys.Lookup(path.Clean("/" + p)); err == nil {
			walk(ino, 0)
		}
	}
	return files, bytes
}

// RunTar writes the trees under srcPaths as a POSIX (PAX) tar stream to w.
// Member names are relative: a directory source's contents appear as
// "./..." (the directory itself as "./"); a file source under its base
// name. With several sources, each appears under its base name.
func RunTar(ctx context.Context, fsys vfs.FS, srcPaths []string, w io.Writer, opts Options) (*Report, error) {
	srcs, err := resolveSources(fsys, srcPaths)
	if err != nil {
		return nil, err
	}
	x := newExtractor(fsys, opts)
	x.sink = newTarSink(x, w)
	x.startProgress(ctx, srcPaths)
	x.reportShadowed(srcs)
	for _, s := range srcs {
		var names []string
		if len(srcs) > 1 || !s.in.IsDir() {
			names = []string{baseName(s.path)}
		}
		if err = x.tree(ctx, names, s.path, s.ino, s.in, 0); err != nil {
			break
		}
	}
	rep, cerr := x.Close()
	if err == nil {
		err = cerr
	}
	return rep, err
}

func baseName(p string) string {
	b := path.Base(p)
	if b == "/" || b == "." {
		return "root"
	}
	return b
}
