package salvage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/imgtool/imgtool/extract"
	"github.com/imgtool/imgtool/vfs"
)

// The filesystem-neutral salvage (RunVFS): what Run does for ext, through
// the vfs interface alone, for a reader whose driver declares
// vfs.Driver.Salvage (XFS). The reader opens tolerantly (a secondary
// superblock, damaged blocks read as far as they go, checksum mismatches
// as notes); then
//  1. the tree is walked from the root, depth first, past every error:
//     an unreadable inode is a lost entry, a directory read in part is a
//     truncated one, a file whose block map is damaged is extracted as far
//     as it maps (ExtentMapper) and reported partial; each error names the
//     volume, the inode and the byte offset, as the reader gives it;
//  2. every in-use inode (WalkInodes: XFS reads its inode btrees, or
//     scans the inode chunks of an AG whose btree is damaged) the walk did
//     not reach is extracted under DEST/#orphans/<inode>: directories
//     first, only the top of each unreachable subtree (a directory no
//     other unreachable directory names), then the rest, as xfs_repair
//     moves disconnected inodes into lost+found;
//  3. inodes with a checksum note (vfs.Note.Checksum) are marked suspect.
// The report has Run's shape. Cross-linked blocks are not looked for.

// superblockOffsetter is implemented by readers that can say where the
// superblock in use lies (XFS: 0, or a secondary's offset).
type superblockOffsetter interface{ SuperblockOffset() int64 }

// logReplayer is implemented by readers with a log replayed in memory.
type logReplayer interface {
	LogReplay() (replayed bool, problem string)
}

// RunVFS salvages fsys, opened tolerantly through a driver that declares
// vfs.Driver.Salvage (inspect.Volume.SalvageFS), into dest, as Run does
// for ext: everything reachable from the root, then every in-use inode no
// directory reaches into DEST/#orphans/<inode>, then (unless
// opts.NoReportFiles) DEST/salvage-report.json and .txt. Options of ext's
// path (SuperblockOffset, GuessGroupDescriptors, NoJournal, Journal) are
// the reader's business and are not used. err is non-nil only when
// nothing could be done (DEST not writable, ctx cancelled).
func RunVFS(ctx context.Context, fsys vfs.FS, dest string, opts Options) (*Report, error) {
	start := time.Now()
	x, err := extract.NewDisk(ctx, fsys, dest, opts.Extract)
	if err != nil {
		return nil, err
	}
	rep, err := runVFSWith(ctx, fsys, x, opts, start)
	if rep == nil {
		return nil, err
	}
	if !opts.NoReportFiles && err == nil {
		_, err = rep.WriteFiles(dest)
	}
	return rep, err
}

// RunVFSTar is RunVFS writing a tar stream to out (orphans under
// #orphans/); no report file is written into the stream.
func RunVFSTar(ctx context.Context, fsys vfs.FS, out io.Writer, opts Options) (*Report, error) {
	return runVFSWith(ctx, fsys, extract.NewTar(ctx, fsys, out, opts.Extract), opts, time.Now())
}

func runVFSWith(ctx context.Context, fsys vfs.FS, x *extract.Extractor, opts Options, start time.Time) (*Report, error) {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 10000
	}
	w := &vwalker{ctx: ctx, fsys: fsys, x: x, opts: opts, rep: &Report{},
		reached: sparseSet{}, dirDone: sparseSet{}, bad: sparseSet{}, ledger: ledger{byKey: map[string]*Entry{}}}
	werr := w.run()
	xr, cerr := x.Close()
	if werr == nil {
		werr = cerr
	}
	rep := w.finish(xr)
	rep.Elapsed = time.Since(start)
	return rep, werr
}

// vwalker holds the state of one filesystem-neutral salvage.
type vwalker struct {
	ctx  context.Context
	fsys vfs.FS
	x    *extract.Extractor
	opts Options
	rep  *Report

	reached sparseSet // inodes reached by the walk (any type)
	bad     sparseSet // inodes reached whose inode could not be read
	dirDone sparseSet // directory inodes extracted
	tops    []orphanTop
	ledger
}

// orphanTop is an inode extracted under #orphans, where findPaths also
// looks.
type orphanTop struct {
	ino vfs.Ino
	src string
}

func ino64Key(ino vfs.Ino) string { return "i" + strconv.FormatUint(uint64(ino), 10) }

// entryFor returns the report entry for key, creating it.
func (w *vwalker) entryFor(key, path string, ino vfs.Ino, typ string) *Entry {
	e := Entry{Path: path, Ino64: uint64(ino), Type: typ}
	if ino <= 1<<32-1 {
		e.Ino = uint32(ino)
	}
	return w.add(key, e)
}

// statType names a Stat's type as the report does.
func statType(st *vfs.Stat) string {
	switch st.Type() {
	case vfs.ModeReg:
		return "file"
	case vfs.ModeDir:
		return "dir"
	case vfs.ModeLink:
		return "symlink"
	case vfs.ModeChar, vfs.ModeBlock, vfs.ModeFIFO, vfs.ModeSocket:
		return "special"
	}
	return "unknown"
}

func (w *vwalker) run() error {
	root := w.fsys.Root()
	st, err := w.fsys.Stat(root)
	if err == nil && !st.IsDir() {
		err = fmt.Errorf("root inode %d is not a directory (mode %#o)", root, st.Mode)
	}
	if err != nil {
		e := w.entryFor(pathKey("/"), "/", root, "dir")
		e.Status = StatusLost
		e.add(BadInode, err)
	} else if err := w.visit(nil, "/", root, 0); err != nil {
		return err
	}
	if w.opts.NoOrphans {
		return nil
	}
	return w.orphans()
}

// visit extracts inode ino to names (nil: DEST itself, for the root) and,
// for a directory, everything below it, depth first.
func (w *vwalker) visit(names []string, src string, ino vfs.Ino, depth int) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	st, err := w.fsys.Stat(ino)
	if err == nil && statType(st) == "unknown" {
		err = fmt.Errorf("inode %d has no valid file type (mode %#o)", ino, st.Mode)
	}
	if err != nil {
		w.bad.set(ino)
		e := w.entryFor(pathKey(src), src, ino, "unknown")
		e.Status = StatusLost
		e.add(BadInode, err)
		return nil
	}
	if st.IsDir() && w.dirDone.has(ino) {
		w.rep.Cycles++
		e := w.entryFor(pathKey(src), src, ino, "dir")
		e.Status = StatusRecovered
		e.add(Cycle, fmt.Errorf("directory inode %d reached again (a loop or a second name); extracted once", ino))
		return nil
	}
	if !w.reached.has(ino) {
		w.reached.set(ino)
		w.examine(src, st)
	}
	if !st.IsDir() {
		return w.x.Add(w.ctx, names, src, ino)
	}
	w.dirDone.set(ino)
	if names != nil {
		if err := w.x.Add(w.ctx, names, src, ino); err != nil {
			return err
		}
	}
	return w.children(names, src, ino, depth)
}

// children walks the entries of directory ino.
func (w *vwalker) children(names []string, src string, ino vfs.Ino, depth int) error {
	ents, derr := w.fsys.ReadDir(ino)
	if derr != nil {
		e := w.entryFor(ino64Key(ino), src, ino, "dir")
		e.add(Truncated, fmt.Errorf("directory read in part (%d entries): %w", len(ents), derr))
	}
	if depth >= maxDepth {
		e := w.entryFor(ino64Key(ino), src, ino, "dir")
		e.add(Truncated, fmt.Errorf("directory nested deeper than %d levels; not descended", maxDepth))
		return nil
	}
	seen := make(map[string]struct{}, len(ents))
	for _, d := range ents {
		child, name, renamed, refused := childName(seen, src, d.Name, uint64(d.Ino))
		if renamed != nil {
			w.entryFor(ino64Key(d.Ino), child, d.Ino, "unknown").add(Renamed, renamed)
		}
		if refused != nil {
			e := w.entryFor(pathKey(child), child, d.Ino, "unknown")
			e.Status = StatusLost
			e.add(Refused, refused)
			continue
		}
		sub := append(names[:len(names):len(names)], name)
		if err := w.visit(sub, child, d.Ino, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// examine checks an inode reached for the first time: links, and for a
// regular file a damaged block map (what it maps is extracted, the rest
// reads as zeros).
func (w *vwalker) examine(src string, st *vfs.Stat) {
	typ := statType(st)
	key := ino64Key(st.Ino)
	get := func() *Entry { return w.entryFor(key, src, st.Ino, typ) }
	if e, ok := w.byKey[key]; ok && e.Type == "unknown" {
		e.Type = typ
	}
	if st.Nlink == 0 {
		get().add(BadInode, errors.New("inode has link count 0 (unlinked?); extracted anyway"))
	}
	em, ok := w.fsys.(vfs.ExtentMapper)
	if !st.IsRegular() {
		return
	}
	var exts []vfs.Extent
	var merr error
	if ok {
		exts, merr = em.Extents(st.Ino)
	}
	if merr == nil {
		if e, ok := w.byKey[key]; ok {
			e.Size, e.Recovered = st.Size, st.Size
		}
		return
	}
	var mapped, allocMapped int64
	for _, x := range exts {
		allocMapped += x.Len
		if x.Logical < st.Size {
			mapped += min(x.Len, st.Size-x.Logical)
		}
	}
	e := get()
	e.Size = st.Size
	e.Recovered = max(mapped, 0)
	e.add(Truncated, merr)
	e.Lost = min(st.Size-e.Recovered, max(min(st.Blocks, 1<<53)*512-allocMapped, 0))
}

// orphans extracts the in-use inodes the walk did not reach under
// #orphans: the tops of unreachable directory trees, then the other
// unreachable directories (loops among them), then the other inodes.
func (w *vwalker) orphans() error {
	var dirs, others []vfs.Ino
	werr := w.fsys.WalkInodes(w.ctx, func(ino vfs.Ino, st *vfs.Stat, err error) error {
		if w.reached.has(ino) || w.bad.has(ino) {
			return nil // reported by the walk
		}
		switch {
		case err != nil:
			e := w.entryFor(ino64Key(ino), "", ino, "unknown")
			e.Status = StatusLost
			e.add(BadInode, fmt.Errorf("in use by the inode index, not reached from the root, unreadable: %w", err))
		case st.IsDir():
			dirs = append(dirs, ino)
		default:
			others = append(others, ino)
		}
		return nil
	})
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if werr != nil {
		w.rep.Notes = append(w.rep.Notes, fmt.Sprintf("salvage: the scan for unreachable inodes stopped part way: %v", werr))
	}
	// A directory another unreachable directory names is not a top.
	named := sparseSet{}
	for _, d := range dirs {
		ents, _ := w.fsys.ReadDir(d)
		for _, e := range ents {
			if e.Ino != d {
				named.set(e.Ino)
			}
		}
	}
	for _, d := range dirs {
		if !named.has(d) {
			if err := w.addOrphan(d); err != nil {
				return err
			}
		}
	}
	for _, set := range [][]vfs.Ino{dirs, others} {
		for _, ino := range set {
			if err := w.addOrphan(ino); err != nil {
				return err
			}
		}
	}
	return nil
}

// addOrphan extracts unreached inode ino as #orphans/<ino>.
func (w *vwalker) addOrphan(ino vfs.Ino) error {
	if w.reached.has(ino) {
		return nil
	}
	st, err := w.fsys.Stat(ino)
	if err != nil {
		e := w.entryFor(ino64Key(ino), "", ino, "unknown")
		e.Status = StatusLost
		e.add(BadInode, fmt.Errorf("in use by the inode index, not reached from the root, unreadable: %w", err))
		return nil
	}
	name := strconv.FormatUint(uint64(ino), 10)
	src := OrphansDir + "/" + name
	e := w.entryFor(ino64Key(ino), src, ino, statType(st))
	e.Path = src
	e.add(Unreachable, fmt.Errorf("in-use inode (links %d) not reached from the root", st.Nlink))
	w.tops = append(w.tops, orphanTop{ino, src})
	return w.visit([]string{OrphansDir, name}, src, ino, 1)
}
