package extract

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/imgtool/imgtool/vfs"
	"golang.org/x/sys/unix"
)

// Writing to a directory safely.
//
// Every entry is created relative to an open file descriptor of its parent
// directory (mkdirat, openat, symlinkat, mknodat, linkat), never through a
// path string, and every directory is opened with O_DIRECTORY|O_NOFOLLOW.
// A symlink extracted earlier (say "evil -> /etc") is therefore never
// followed: a later entry that would go "through" it finds a symlink where
// it needs a directory and is refused. Files are created with
// O_CREAT|O_EXCL|O_NOFOLLOW, so an existing name (a file, or a symlink
// planted to redirect the write) is never opened for writing; with Force
// the old entry is unlinked first (never a directory).
//
// Directories are created 0700 and get their real owner, mode, xattrs and
// times when the walk leaves them, after everything inside was created, so
// that creating entries does not change a restored mtime and a read-only
// directory can still be filled. Regular files are created by the walking
// goroutine and handed, open, to a small pool of workers that copy the
// content (skipping holes and unwritten extents) and then apply owner,
// xattrs, mode and finally the times.

const (
	dirOpenFlags  = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fileOpenFlags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
)

// openDir is one directory on the walk's stack.
type openDir struct {
	name string
	fd   int
	src  string
	in   *vfs.Stat // metadata to apply when left; nil for directories the caller only named
	ours bool      // created by this run (so no setgid bit or default ACL of someone else's)
}

type diskSink struct {
	x           *Extractor
	root        int
	rootIn      *vfs.Stat // metadata for the root, applied at close if we created it
	rootSrc     string
	rootCreated bool
	rootACL     bool // the root inherited a default ACL from its parent
	stack       []*openDir

	// To save system calls per file: a file whose owner is already ours
	// (uid/gid equal to the effective ids, in a directory we made) needs
	// no chown, and one whose mode survives the umask and has no
	// setuid/setgid/sticky bit gets it at creation and needs no chmod.
	euid, egid uint32
	umask      uint32
	umaskKnown bool

	// Files go to the workers in batches (one channel operation, one
	// wake-up per batch rather than per file: with small files the
	// hand-off otherwise costs as much as the copy).
	jobs       chan []fileJob
	batch      []fileJob
	batchBytes int64
	wg         sync.WaitGroup
}

type fileJob struct {
	fd                   int
	src                  string
	in                   *vfs.Stat
	skipChown, skipChmod bool
}

// Run extracts the trees under srcPaths (paths in fsys) into the directory
// dest and returns what it did.
//
//   - One directory source: dest becomes that directory (created if
//     missing, merged into if it exists, like `cp -rT`); its own mode,
//     owner and times are applied to dest only when Run created it.
//   - One non-directory source: if dest is an existing directory, the file
//     goes in it under its base name; otherwise dest is the new file's path.
//   - Several sources: dest is a directory (created if missing), each
//     source goes in it under its base name.
//
// Per-entry problems are in the report (Report.Partial); the error is for
// what stops the run (a source path not found, dest not writable, ctx
// cancelled).
func Run(ctx context.Context, fsys vfs.FS, srcPaths []string, dest string, opts Options) (*Report, error) {
	srcs, err := resolveSources(fsys, srcPaths)
	if err != nil {
		return nil, err
	}
	if len(srcs) == 0 {
		return nil, errors.New("extract: no source paths")
	}
	root := dest
	var names [][]string
	st, statErr := os.Stat(dest)
	switch {
	case len(srcs) == 1 && srcs[0].in.IsDir():
		names = [][]string{nil}
	case len(srcs) == 1 && (statErr != nil || !st.IsDir()):
		root = filepath.Dir(dest)
		names = [][]string{{filepath.Base(dest)}}
	default:
		for _, s := range srcs {
			names = append(names, []string{baseName(s.path)})
		}
	}
	x := newExtractor(fsys, opts)
	// DEST itself may be created (a directory source, or several); its
	// parent must exist, as for cp and tar -C, whether the source is a
	// file or a directory: a mistyped DEST should fail, not grow a tree.
	ds, err := newDiskSink(x, root, root == dest)
	if de := (*DestError)(nil); errors.As(err, &de) {
		de.Dest = dest // name what the user gave
	}
	if err != nil {
		return nil, err
	}
	x.sink = ds
	x.startProgress(ctx, srcPaths)
	x.reportShadowed(srcs)
	for i, s := range srcs {
		if err = x.tree(ctx, names[i], s.path, s.ino, s.in, 0); err != nil {
			break
		}
	}
	rep, cerr := x.Close()
	if err == nil {
		err = cerr
	}
	return rep, err
}

// NewDisk returns an Extractor writing below the directory dest (created
// if missing), for callers that choose what goes where (a salvage
// walker). Close it to wait for the workers and get the report.
func NewDisk(ctx context.Context, fsys vfs.FS, dest string, opts Options) (*Extractor, error) {
	x := newExtractor(fsys, opts)
	ds, err := newDiskSink(x, dest, true)
	if err != nil {
		return nil, err
	}
	x.sink = ds
	x.startProgress(ctx, nil)
	return x, nil
}

// DestError is a destination that cannot be used; the error names it, not
// the source.
type DestError struct {
	Dest string
	Err  error
}

func (e *DestError) Error() string {
	if errors.Is(e.Err, os.ErrNotExist) {
		return fmt.Sprintf("destination %s: its parent directory %s does not exist (it is not created)", quotePath(e.Dest), quotePath(filepath.Dir(e.Dest)))
	}
	return fmt.Sprintf("destination %s: %v", quotePath(e.Dest), e.Err)
}

func (e *DestError) Unwrap() error { return e.Err }

// newDiskSink opens the directory root to write below; create allows
// making root itself (never its parents).
func newDiskSink(x *Extractor, root string, create bool) (*diskSink, error) {
	d := &diskSink{x: x, euid: uint32(os.Geteuid()), egid: uint32(os.Getegid())}
	d.umask, d.umaskKnown = readUmask()
	if create {
		if err := unix.Mkdir(root, 0o700); err == nil {
			d.rootCreated = true
		} else if err != unix.EEXIST {
			return nil, &DestError{root, err}
		}
	}
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &DestError{root, err}
	}
	d.root = fd
	if n, err := unix.Fgetxattr(fd, "system.posix_acl_default", nil); err == nil && n > 0 {
		d.rootACL = true
	}
	d.jobs = make(chan []fileJob, 2*x.opts.Workers)
	for range x.opts.Workers {
		d.wg.Add(1)
		go d.worker()
	}
	return d, nil
}

// parent makes sure the directories names[:len(names)-1] are open on the
// stack and returns the fd of the last one (the root for a single name).
func (d *diskSink) parent(names []string) (int, error) {
	return d.enter(names[:len(names)-1])
}

// parentOurs reports whether the innermost open directory and all above
// it up to a root made by this run were made by this run: then nothing
// (a setgid bit, a default ACL) changes the owner or mode a new file gets.
func (d *diskSink) parentOurs() bool {
	if len(d.stack) == 0 {
		return d.rootCreated && !d.rootACL
	}
	return d.stack[len(d.stack)-1].ours
}

// enter makes the stack hold exactly the directories names (creating
// missing ones) and returns the fd of the innermost.
func (d *diskSink) enter(names []string) (int, error) {
	keep := 0
	for keep < len(d.stack) && keep < len(names) && d.stack[keep].name == names[keep] {
		keep++
	}
	d.popTo(keep)
	for _, n := range names[keep:] {
		pfd := d.root
		if len(d.stack) > 0 {
			pfd = d.stack[len(d.stack)-1].fd
		}
		fd, ours, err := d.mkdirOpen(pfd, n)
		if err != nil {
			return -1, err
		}
		ours = ours && d.parentOurs()
		d.stack = append(d.stack, &openDir{name: n, fd: fd, ours: ours})
	}
	if len(d.stack) == 0 {
		return d.root, nil
	}
	return d.stack[len(d.stack)-1].fd, nil
}

// mkdirOpen creates directory name in pfd (or finds one already there)
// and opens it without following a symlink. ours is true when it made it.
func (d *diskSink) mkdirOpen(pfd int, name string) (fd int, ours bool, err error) {
	err = unix.Mkdirat(pfd, name, 0o700)
	if err != nil && err != unix.EEXIST {
		return -1, false, fmt.Errorf("mkdir %s: %w", quotePath(name), err)
	}
	ours = err == nil
	fd, oerr := unix.Openat(pfd, name, dirOpenFlags, 0)
	if oerr == nil {
		return fd, ours, nil
	}
	if oerr == unix.ELOOP || oerr == unix.ENOTDIR {
		if d.x.opts.Force {
			if uerr := unix.Unlinkat(pfd, name, 0); uerr == nil {
				if err := unix.Mkdirat(pfd, name, 0o700); err != nil {
					return -1, false, fmt.Errorf("mkdir %s: %w", quotePath(name), err)
				}
				if fd, oerr = unix.Openat(pfd, name, dirOpenFlags, 0); oerr == nil {
					return fd, true, nil
				}
			}
		}
		return -1, false, refused("%s exists in the destination and is not a directory (symlinks are never followed; --force replaces it)", quotePath(name))
	}
	return -1, false, fmt.Errorf("open directory %s: %w", quotePath(name), oerr)
}

// popTo leaves the directories above depth n, applying their metadata.
func (d *diskSink) popTo(n int) {
	for len(d.stack) > n {
		top := d.stack[len(d.stack)-1]
		d.stack = d.stack[:len(d.stack)-1]
		if top.in != nil {
			d.metaFd(top.fd, top.src, top.in)
		}
		unix.Close(top.fd)
	}
}

func (d *diskSink) dir(names []string, src string, in *vfs.Stat) error {
	if len(names) == 0 {
		d.popTo(0)
		if d.rootCreated {
			d.rootIn, d.rootSrc = in, src
		}
		return nil
	}
	if _, err := d.enter(names); err != nil {
		return err
	}
	top := d.stack[len(d.stack)-1]
	top.in, top.src = in, src
	return nil
}

// create opens a new regular file name in pfd for writing, replacing an
// existing non-directory entry only with Force.
func (d *diskSink) create(pfd int, name string, mode uint32) (int, error) {
	fd, err := unix.Openat(pfd, name, fileOpenFlags, mode)
	if err == unix.EEXIST || err == unix.ELOOP {
		if err = d.replace(pfd, name); err != nil {
			return -1, err
		}
		fd, err = unix.Openat(pfd, name, fileOpenFlags, mode)
	}
	if err != nil {
		return -1, fmt.Errorf("create %s: %w", quotePath(name), err)
	}
	return fd, nil
}

// replace removes an existing entry that is in the way, if Force allows.
func (d *diskSink) replace(pfd int, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("stat %s: %w", quotePath(name), err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return refused("%s exists in the destination as a directory; it is never replaced", quotePath(name))
	}
	if !d.x.opts.Force {
		return refused("%s exists in the destination (use --force to replace it)", quotePath(name))
	}
	if err := unix.Unlinkat(pfd, name, 0); err != nil {
		return fmt.Errorf("remove existing %s: %w", quotePath(name), err)
	}
	return nil
}

// retry runs mk; if the name exists it replaces it (with Force) and runs
// mk once more.
func (d *diskSink) retry(pfd int, name string, mk func() error) error {
	err := mk()
	if err == unix.EEXIST {
		if err = d.replace(pfd, name); err != nil {
			return err
		}
		err = mk()
	}
	return err
}

func (d *diskSink) file(names []string, src string, in *vfs.Stat) error {
	pfd, err := d.parent(names)
	if err != nil {
		return err
	}
	j := fileJob{src: src, in: in}
	mode := uint32(0o600)
	if d.parentOurs() {
		j.skipChown = in.UID == d.euid && in.GID == d.egid
		if m := uint32(in.Mode & 0o777); in.Mode&0o7000 == 0 && d.umaskKnown && m&^d.umask == m && (j.skipChown || !d.x.opts.Owner) {
			mode, j.skipChmod = m, true
		}
	}
	fd, err := d.create(pfd, names[len(names)-1], mode)
	if err != nil {
		return err
	}
	j.fd = fd
	d.batch = append(d.batch, j)
	d.batchBytes += int64(min(in.Size, 1<<40))
	if len(d.batch) >= batchFiles || d.batchBytes >= batchBytes {
		d.flush()
	}
	return nil
}

// Batch limits: a batch goes to a worker when it holds batchFiles files
// or batchBytes bytes of content, whichever comes first.
const (
	batchFiles = 32
	batchBytes = 4 << 20
)

func (d *diskSink) flush() {
	if len(d.batch) == 0 {
		return
	}
	d.jobs <- d.batch
	d.batch = make([]fileJob, 0, batchFiles)
	d.batchBytes = 0
}

func (d *diskSink) worker() {
	defer d.wg.Done()
	c := newCopier(d.x)
	for batch := range d.jobs {
		var data, logical int64
		for _, j := range batch {
			// The block map is read here, in the worker, to take work off
			// the walking goroutine.
			f, err := d.x.fsys.Open(j.in.Ino)
			if err != nil {
				d.x.problem(j.src, j.in.Ino, Damaged, fmt.Errorf("content not read (the file is left empty): %w", err))
			} else {
				n, err := c.copyFile(j.fd, f)
				if err != nil {
					d.x.problem(j.src, j.in.Ino, Damaged, err)
				}
				data += n
				logical += f.Size()
			}
			d.metaFdSkip(j.fd, j.src, j.in, j.skipChown, j.skipChmod)
			unix.Close(j.fd)
			d.x.files.Add(1)
		}
		d.x.rep.mu.Lock()
		d.x.rep.DataBytes += data
		d.x.rep.Bytes += logical
		d.x.rep.mu.Unlock()
	}
}

func (d *diskSink) symlink(names []string, src string, in *vfs.Stat, target string) error {
	pfd, err := d.parent(names)
	if err != nil {
		return err
	}
	name := names[len(names)-1]
	if err := d.retry(pfd, name, func() error { return unix.Symlinkat(target, pfd, name) }); err != nil {
		return fmt.Errorf("symlink %s: %w", quotePath(name), err)
	}
	d.metaAt(pfd, name, src, in)
	return nil
}

func (d *diskSink) special(names []string, src string, in *vfs.Stat) error {
	var dev uint64
	switch in.Type() {
	case vfs.ModeChar, vfs.ModeBlock:
		maj, min, err := d.x.deviceNumbers(in)
		if err != nil {
			return err
		}
		if !d.x.opts.Devices {
			return fmt.Errorf("device node %d:%d not created (needs root)", maj, min)
		}
		dev = unix.Mkdev(maj, min)
	}
	pfd, err := d.parent(names)
	if err != nil {
		return err
	}
	name := names[len(names)-1]
	mode := uint32(in.Mode&vfs.ModeType) | 0o600
	if err := d.retry(pfd, name, func() error { return unix.Mknodat(pfd, name, mode, int(dev)) }); err != nil {
		return fmt.Errorf("mknod %s: %w", quotePath(name), err)
	}
	d.metaAt(pfd, name, src, in)
	return nil
}

func (d *diskSink) hardlink(names []string, src string, in *vfs.Stat, first []string) error {
	pfd, err := d.parent(names)
	if err != nil {
		return err
	}
	// Open the first name's directory from the deepest directory of the
	// stack on its path (usually the whole of it: links tend to share a
	// directory), else from the root, never following a symlink.
	dir := first[:len(first)-1]
	k := 0
	for k < len(d.stack) && k < len(dir) && d.stack[k].name == dir[k] {
		k++
	}
	base := d.root
	if k > 0 {
		base = d.stack[k-1].fd
	}
	ffd := base
	if k < len(dir) {
		ffd, err = d.openPath(base, dir[k:])
		if err != nil {
			return fmt.Errorf("hard link to %s: %w", quotePath(filepath.Join(first...)), err)
		}
		defer unix.Close(ffd)
	}
	name := names[len(names)-1]
	if err := d.retry(pfd, name, func() error { return unix.Linkat(ffd, first[len(first)-1], pfd, name, 0) }); err != nil {
		return fmt.Errorf("hard link %s to %s: %w", quotePath(name), quotePath(filepath.Join(first...)), err)
	}
	return nil
}

// openPath opens the directory names below the directory base (a new fd).
func (d *diskSink) openPath(base int, names []string) (int, error) {
	fd, err := unix.Dup(base)
	if err != nil {
		return -1, err
	}
	for _, n := range names {
		nfd, err := unix.Openat(fd, n, dirOpenFlags, 0)
		unix.Close(fd)
		if err != nil {
			return -1, fmt.Errorf("open directory %s: %w", quotePath(n), err)
		}
		fd = nfd
	}
	return fd, nil
}

func (d *diskSink) close() error {
	d.flush()
	close(d.jobs)
	d.wg.Wait()
	d.popTo(0)
	if d.rootIn != nil {
		d.metaFd(d.root, d.rootSrc, d.rootIn)
	}
	return unix.Close(d.root)
}

// metaFd applies owner, xattrs, mode and times to an open file or
// directory, in that order: chown clears setuid bits, so the mode comes
// after it; the times come last because every other change touches ctime
// only, and writing would change mtime.
func (d *diskSink) metaFd(fd int, src string, in *vfs.Stat) {
	d.metaFdSkip(fd, src, in, false, false)
}

func (d *diskSink) metaFdSkip(fd int, src string, in *vfs.Stat, skipChown, skipChmod bool) {
	x := d.x
	if x.opts.Owner && !skipChown {
		if err := unix.Fchown(fd, int(in.UID), int(in.GID)); err != nil {
			x.problem(src, in.Ino, Metadata, fmt.Errorf("chown %d:%d: %w", in.UID, in.GID, err))
		}
	}
	if x.opts.Xattrs {
		d.xattrs(src, in, func(name string, val []byte) error { return unix.Fsetxattr(fd, name, val, 0) })
	}
	if !skipChmod {
		if err := unix.Fchmod(fd, uint32(in.Mode&0o7777)); err != nil {
			x.problem(src, in.Ino, Metadata, fmt.Errorf("chmod %#o: %w", in.Mode&0o7777, err))
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(in.Atime.UnixNano()), unix.NsecToTimespec(in.Mtime.UnixNano())}
	if err := futimens(fd, ts); err != nil {
		x.problem(src, in.Ino, Metadata, fmt.Errorf("set times: %w", err))
	}
}

// metaAt applies metadata to name in pfd without following it (symlinks,
// device nodes, FIFOs, sockets: none can be opened safely for writing).
func (d *diskSink) metaAt(pfd int, name, src string, in *vfs.Stat) {
	x := d.x
	if x.opts.Owner {
		if err := unix.Fchownat(pfd, name, int(in.UID), int(in.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			x.problem(src, in.Ino, Metadata, fmt.Errorf("chown %d:%d: %w", in.UID, in.GID, err))
		}
	}
	if x.opts.Xattrs {
		// /proc/self/fd/N is the directory itself; l*xattr does not follow
		// the final name.
		p := "/proc/self/fd/" + strconv.Itoa(pfd) + "/" + name
		d.xattrs(src, in, func(n string, val []byte) error { return unix.Lsetxattr(p, n, val, 0) })
	}
	if !in.IsSymlink() {
		// mknodat applied the umask. The name is what mknodat just made
		// (not a symlink), so following it is harmless.
		if err := unix.Fchmodat(pfd, name, uint32(in.Mode&0o7777), 0); err != nil {
			x.problem(src, in.Ino, Metadata, fmt.Errorf("chmod %#o: %w", in.Mode&0o7777, err))
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(in.Atime.UnixNano()), unix.NsecToTimespec(in.Mtime.UnixNano())}
	if err := unix.UtimesNanoAt(pfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		x.problem(src, in.Ino, Metadata, fmt.Errorf("set times: %w", err))
	}
}

// xattrs reads the inode's extended attributes and sets each with set.
func (d *diskSink) xattrs(src string, in *vfs.Stat, set func(name string, val []byte) error) {
	xs, err := d.x.fsys.Xattrs(in.Ino)
	if err != nil {
		d.x.problem(src, in.Ino, Metadata, fmt.Errorf("reading xattrs: %w", err))
	}
	for _, a := range xs {
		name, val, ok, err := hostXattr(a)
		if err != nil {
			d.x.problem(src, in.Ino, Metadata, fmt.Errorf("xattr %s: %w", a.Name, err))
			continue
		}
		if !ok {
			continue
		}
		if err := set(name, val); err != nil {
			d.x.problem(src, in.Ino, Metadata, fmt.Errorf("set xattr %s: %w", name, err))
		}
	}
}

// futimens sets the access and modification times of an open file
// (utimensat with a NULL path).
func futimens(fd int, ts []unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// readUmask reads the process umask from /proc/self/status (Linux 4.7+)
// without changing it (umask(2) can only be read by setting it, which
// would race with other goroutines creating files).
func readUmask() (uint32, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			return uint32(m), err == nil
		}
	}
	return 0, false
}
