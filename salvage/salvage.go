package salvage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/extract"
	"github.com/imgtool/imgtool/journal"
	"github.com/imgtool/imgtool/vfs"
)

// Options tune a salvage. The zero value replays the journal in memory,
// walks from the root, scans the inode tables for orphans and writes the
// report files.
type Options struct {
	// Extract is handed to the extraction engine (owners, devices,
	// xattrs, workers, progress, force).
	Extract extract.Options
	// SuperblockOffset and GuessGroupDescriptors are passed to ext.Open
	// (a chosen backup superblock; descriptors computed from the
	// geometry for all groups).
	SuperblockOffset      int64
	GuessGroupDescriptors bool
	// NoJournal reads the filesystem as it is on disk, without replaying
	// a journal that needs recovery. Journal options (an external
	// journal device) go in Journal.
	NoJournal bool
	Journal   *journal.Options
	// NoOrphans skips the inode-table scan for unreachable inodes.
	NoOrphans bool
	// NoReportFiles does not write salvage-report.json/.txt into DEST.
	NoReportFiles bool
	// MaxEntries bounds the entries kept in the Report (default 10000;
	// the totals count all).
	MaxEntries int
}

// OrphansDir is the directory in DEST that receives unreachable inodes,
// each named by its inode number, as e2fsck's lost+found.
const OrphansDir = "#orphans"

// maxDepth bounds directory nesting (the extraction engine's own bound).
const maxDepth = 512

// maxKeptEntries bounds the entries held in memory while salvaging.
const maxKeptEntries = 1 << 20

// maxNotes bounds the ext notes copied into the report.
const maxNotes = 200

// Run salvages the ext filesystem in vol (size bytes) into the directory
// dest: it opens the filesystem tolerantly (backup superblock, repaired
// group descriptors, damaged block maps read in part), replays its journal
// in memory when it needs recovery, extracts everything reachable from the
// root, then every in-use inode no directory reaches (into
// DEST/#orphans/<inode>), and writes DEST/salvage-report.json and
// DEST/salvage-report.txt. err is non-nil only when nothing could be done
// (no ext filesystem, DEST not writable, ctx cancelled); everything else
// is in the Report.
func Run(ctx context.Context, vol io.ReaderAt, size int64, dest string, opts Options) (*Report, error) {
	v, err := Open(vol, size, opts)
	if err != nil {
		return nil, err
	}
	return RunView(ctx, v, dest, opts)
}

// Open opens the ext filesystem in vol the way Run does: tolerantly
// (ext.Options.Salvage, with opts' superblock and descriptor choices) and,
// unless opts.NoJournal, with its journal replayed in memory. Callers that
// want the filesystem before the salvage starts (for totals, say) call
// Open and then RunView.
func Open(vol io.ReaderAt, size int64, opts Options) (*journal.View, error) {
	eo := &ext.Options{Salvage: true, SuperblockOffset: opts.SuperblockOffset, GuessGroupDescriptors: opts.GuessGroupDescriptors}
	if opts.NoJournal {
		fsys, err := ext.Open(vol, size, eo)
		if err != nil {
			return nil, err
		}
		return &journal.View{FS: fsys, ReaderAt: vol, Size: size}, nil
	}
	return journal.Open(vol, size, eo, opts.Journal)
}

// RunView is Run for a filesystem already opened by journal.Open (or
// Open): it salvages v.FS into dest,
// records whether the journal was replayed (or why not), and writes the
// report files.
func RunView(ctx context.Context, v *journal.View, dest string, opts Options) (*Report, error) {
	rep, err := RunFS(ctx, v.FS, dest, opts)
	if rep == nil {
		return nil, err
	}
	rep.JournalReplayed = v.Overlay != nil && v.Result != nil && v.Result.Replayed
	if v.ReplayErr != nil {
		rep.JournalError = v.ReplayErr.Error()
	}
	if !opts.NoReportFiles && err == nil {
		_, err = rep.WriteFiles(dest)
	}
	return rep, err
}

// RunFS salvages an already opened filesystem into dest, without writing
// the report files (Run does that). Open fsys with ext.Options{Salvage:
// true} so that files with a damaged block map are extracted in part
// rather than left empty.
func RunFS(ctx context.Context, fsys *ext.FS, dest string, opts Options) (*Report, error) {
	start := time.Now()
	x, err := extract.NewDisk(ctx, ext.NewVFS(fsys), dest, opts.Extract)
	if err != nil {
		return nil, err
	}
	return runWith(ctx, fsys, x, opts, start)
}

// RunTar salvages an opened filesystem (see RunFS) as a tar stream to out:
// the same walk, orphans under #orphans/, through extract.NewTar. No report
// file is written into the stream; the Report is returned.
func RunTar(ctx context.Context, fsys *ext.FS, out io.Writer, opts Options) (*Report, error) {
	return runWith(ctx, fsys, extract.NewTar(ctx, ext.NewVFS(fsys), out, opts.Extract), opts, time.Now())
}

func runWith(ctx context.Context, fsys *ext.FS, x *extract.Extractor, opts Options, start time.Time) (*Report, error) {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 10000
	}
	w := newWalker(ctx, fsys, x, opts)
	werr := w.run()
	xr, cerr := x.Close()
	if werr == nil {
		werr = cerr
	}
	rep := w.finish(xr)
	rep.Elapsed = time.Since(start)
	return rep, werr
}

// walker holds the state of one salvage.
type walker struct {
	ctx  context.Context
	fsys *ext.FS
	sb   *ext.Superblock
	x    *extract.Extractor
	opts Options
	rep  *Report

	reached bitset // inodes reached by the walk (any type)
	dirDone bitset // directory inodes extracted
	// claimed marks blocks owned by metadata or a file seen so far (nil
	// when the filesystem is too large to track); dups are the blocks
	// claimed twice, claimBudget bounds the work.
	claimed     bitset
	dups        map[uint64]bool
	claimBudget uint64

	ledger
}

// ledger holds a salvage's report entries, by key ("i<inode>" or
// "p<path>"), the first maxKeptEntries of them; more counts the rest.
type ledger struct {
	entries []*Entry
	byKey   map[string]*Entry
	more    int
}

// add returns the entry for key, creating it from e.
func (l *ledger) add(key string, e Entry) *Entry {
	if old, ok := l.byKey[key]; ok {
		return old
	}
	ne := &e
	if len(l.entries) >= maxKeptEntries {
		l.more++
		return ne // counted, not kept
	}
	l.entries = append(l.entries, ne)
	l.byKey[key] = ne
	return ne
}

func newWalker(ctx context.Context, fsys *ext.FS, x *extract.Extractor, opts Options) *walker {
	sb := fsys.Superblock()
	w := &walker{
		ctx: ctx, fsys: fsys, sb: sb, x: x, opts: opts,
		rep:     &Report{Superblock: sb.Offset},
		reached: newBitset(uint64(sb.InodesCount) + 1),
		dirDone: newBitset(uint64(sb.InodesCount) + 1),
		ledger:  ledger{byKey: map[string]*Entry{}},
		dups:    map[uint64]bool{},
	}
	// One bit per block: up to 2^31 blocks (256 MiB of bits) is tracked.
	if nb := min(sb.BlocksCount, uint64(fsys.VolumeSize()/fsys.BlockSize())+1); nb <= 1<<31 {
		w.claimed = newBitset(nb)
		w.claimBudget = 8 * nb
	}
	return w
}

// entry returns the report entry for key, creating it.
func (w *walker) entry(key, path string, ino uint32, typ string) *Entry {
	return w.add(key, Entry{Path: path, Ino: ino, Type: typ})
}

func inoKey(ino uint32) string { return "i" + strconv.FormatUint(uint64(ino), 10) }
func pathKey(p string) string  { return "p" + p }
func typeName(in *ext.Inode) string {
	switch in.Type() {
	case ext.ModeReg:
		return "file"
	case ext.ModeDir:
		return "dir"
	case ext.ModeSymlink:
		return "symlink"
	case ext.ModeChar, ext.ModeBlock, ext.ModeFIFO, ext.ModeSocket:
		return "special"
	}
	return "unknown"
}

func (w *walker) run() error {
	w.claimMetadata()
	if err := w.walkRoot(); err != nil {
		return err
	}
	if !w.opts.NoOrphans {
		if err := w.orphans(); err != nil {
			return err
		}
	}
	w.attributeDups()
	return nil
}

// walkRoot extracts everything reachable from the root directory.
func (w *walker) walkRoot() error {
	in, err := w.fsys.Inode(ext.RootIno)
	if err == nil && !in.IsDir() {
		err = fmt.Errorf("root inode is not a directory (mode %#o)", in.Mode)
	}
	if err != nil {
		e := w.entry(pathKey("/"), "/", ext.RootIno, "dir")
		e.Status = StatusLost
		e.add(BadInode, err)
		return nil
	}
	return w.visit(nil, "/", ext.RootIno, 0)
}

// validType reports whether i_mode holds one of the seven file types.
func validType(in *ext.Inode) bool {
	switch in.Type() {
	case ext.ModeReg, ext.ModeDir, ext.ModeSymlink, ext.ModeChar, ext.ModeBlock, ext.ModeFIFO, ext.ModeSocket:
		return true
	}
	return false
}

// visit extracts inode ino to names (nil: DEST itself, for the root) and,
// for a directory, everything below it, depth first.
func (w *walker) visit(names []string, src string, ino uint32, depth int) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	in, err := w.fsys.Inode(ino)
	if err == nil && (in.Mode == 0 || !validType(in)) {
		err = fmt.Errorf("inode at offset %#x is unused or has no valid file type (mode %#o, links %d)", in.Offset, in.Mode, in.Links)
	}
	if err != nil {
		e := w.entry(pathKey(src), src, ino, "unknown")
		e.Status = StatusLost
		e.add(BadInode, err)
		return nil
	}
	if in.IsDir() && w.dirDone.get(uint64(ino)) {
		w.rep.Cycles++
		e := w.entry(pathKey(src), src, ino, "dir")
		e.Status = StatusRecovered
		e.add(Cycle, fmt.Errorf("directory inode %d reached again (a loop or a second name); extracted once", ino))
		return nil
	}
	first := !w.reached.get(uint64(ino))
	w.reached.set(uint64(ino))
	if first {
		w.examine(src, in)
	}
	if in.IsDir() {
		w.dirDone.set(uint64(ino))
		if names != nil {
			if err := w.x.Add(w.ctx, names, src, vfs.Ino(ino)); err != nil {
				return err
			}
		}
		return w.children(names, src, in, depth)
	}
	return w.x.Add(w.ctx, names, src, vfs.Ino(ino))
}

// children walks the entries of directory in.
func (w *walker) children(names []string, src string, in *ext.Inode, depth int) error {
	ents, derr := w.fsys.ReadDirInode(in.Ino)
	if derr != nil {
		e := w.entry(inoKey(in.Ino), src, in.Ino, "dir")
		e.add(Truncated, fmt.Errorf("directory read in part (%d entries): %w", len(ents), derr))
	}
	if depth >= maxDepth {
		e := w.entry(inoKey(in.Ino), src, in.Ino, "dir")
		e.add(Truncated, fmt.Errorf("directory nested deeper than %d levels; not descended", maxDepth))
		return nil
	}
	var dot, dotdot bool
	seen := make(map[string]struct{}, len(ents))
	for _, d := range ents {
		if d.Name == "." && !dot {
			dot = true
			continue
		}
		if d.Name == ".." && !dotdot {
			dotdot = true
			continue
		}
		// A second "." or "..", a name the host cannot hold, a name
		// seen twice: see childName.
		child, name, renamed, refused := childName(seen, src, d.Name, uint64(d.Ino))
		if renamed != nil {
			w.entry(inoKey(d.Ino), child, d.Ino, "unknown").add(Renamed, renamed)
		}
		if refused != nil {
			e := w.entry(pathKey(child), child, d.Ino, "unknown")
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

// examine checks an inode reached for the first time: checksum, a damaged
// or partly unreadable block map, blocks claimed twice. Problems become a
// report entry.
func (w *walker) examine(src string, in *ext.Inode) {
	typ := typeName(in)
	get := func() *Entry { return w.entry(inoKey(in.Ino), src, in.Ino, typ) }
	if e, ok := w.byKey[inoKey(in.Ino)]; ok && e.Type == "unknown" {
		e.Type = typ
	}
	if ok, checked := w.fsys.VerifyInode(in); checked && !ok {
		get().add(Checksum, fmt.Errorf("inode checksum mismatch at offset %#x", in.Offset))
	}
	if in.Links == 0 {
		get().add(BadInode, fmt.Errorf("inode has links_count 0 (deleted? dtime %d); extracted anyway", in.Dtime))
	}
	if in.Flags&ext.FlagEncrypt != 0 {
		get().add(Encrypted, errors.New("encrypted inode (fscrypt): extracted raw, not decrypted"))
	}
	data, meta, merr := w.fsys.MapInode(in)
	dup := w.claim(data, meta)
	if dup > 0 {
		get().add(CrossLinked, fmt.Errorf("%d blocks also claimed by another file or by metadata", dup))
	}
	if !in.IsRegular() {
		if merr != nil {
			get().add(Truncated, merr)
		}
		return
	}
	size := w.fsys.ContentSize(in)
	bs := w.fsys.BlockSize()
	volBlocks := uint64(w.fsys.VolumeSize() / bs)
	var mapped, outside, allocMapped int64
	for _, x := range data {
		allocMapped += int64(x.Len) * bs
		lo := int64(x.Logical) * bs
		if lo >= size {
			continue
		}
		n := min(int64(x.Len)*bs, size-lo)
		mapped += n
		if x.Unwritten {
			continue
		}
		if x.Physical+x.Len > volBlocks {
			past := x.Physical + x.Len - max(x.Physical, volBlocks)
			outside += min(int64(past)*bs, n)
		}
	}
	if merr == nil && outside == 0 {
		if e, ok := w.byKey[inoKey(in.Ino)]; ok {
			e.Size, e.Recovered = size, size
		}
		return
	}
	e := get()
	e.Size = size
	if merr != nil {
		e.Recovered = mapped - outside
		e.add(Truncated, merr)
	} else {
		e.Recovered = size - outside // holes are content too
	}
	if outside > 0 {
		e.add(BadBlock, fmt.Errorf("%d bytes of content lie past the end of the %d-byte volume", outside, w.fsys.VolumeSize()))
	}
	e.Recovered = max(e.Recovered, 0)
	// What is lost is at most what was allocated and not mapped (holes
	// are not lost), plus what is mapped outside the volume.
	alloc := int64(min(in.Blocks, 1<<53)) * 512
	e.Lost = min(size-e.Recovered, max(alloc-allocMapped, 0)+outside)
}

// claim marks the blocks of one inode and returns how many were already
// claimed.
func (w *walker) claim(data []ext.Extent, meta []uint64) int {
	if w.claimed.w == nil {
		return 0
	}
	dup := 0
	mark := func(b, n uint64) {
		for i := uint64(0); i < n; i++ {
			if w.claimBudget == 0 {
				return
			}
			w.claimBudget--
			if b+i >= w.claimed.n {
				return
			}
			if w.claimed.get(b + i) {
				dup++
				if len(w.dups) < 1<<20 {
					w.dups[b+i] = true
				}
			} else {
				w.claimed.set(b + i)
			}
		}
	}
	for _, m := range meta {
		mark(m, 1)
	}
	for _, x := range data {
		mark(x.Physical, x.Len)
	}
	return dup
}

// claimMetadata marks the filesystem's own blocks: superblock and
// descriptor copies, bitmaps, inode tables and the journal.
func (w *walker) claimMetadata() {
	if w.claimed.w == nil {
		return
	}
	sb := w.sb
	set := func(b, n uint64) {
		for i := uint64(0); i < n && b+i < w.claimed.n; i++ {
			w.claimed.set(b + i)
		}
	}
	set(0, uint64(sb.FirstDataBlock)+1)
	itb := (uint64(sb.InodesPerGroup)*uint64(sb.InodeSize) + uint64(sb.BlockSize) - 1) / uint64(sb.BlockSize)
	for g, gd := range w.fsys.Groups() {
		set(uint64(sb.FirstDataBlock)+uint64(g)*uint64(sb.BlocksPerGroup), w.fsys.GroupOverhead(uint64(g)))
		set(gd.BlockBitmap, 1)
		set(gd.InodeBitmap, 1)
		set(gd.InodeTable, itb)
	}
	if sb.JournalInum != 0 {
		if in, err := w.fsys.Inode(sb.JournalInum); err == nil {
			data, meta, _ := w.fsys.MapInode(in)
			for _, m := range meta {
				set(m, 1)
			}
			for _, x := range data {
				set(x.Physical, x.Len)
			}
		}
	}
}

// attributeDups finds, for the blocks claimed twice, the inodes that
// claimed them first (e2fsck's pass 1B): every reached inode is mapped
// again and those touching a duplicate block are flagged.
func (w *walker) attributeDups() {
	w.rep.CrossLinked = len(w.dups)
	if len(w.dups) == 0 {
		return
	}
	nameless := map[uint32]*Entry{}
	defer func() { w.findPaths(nameless) }()
	for ino := uint64(1); ino < w.reached.n; ino++ {
		if !w.reached.get(ino) || w.ctx.Err() != nil {
			continue
		}
		if e, ok := w.byKey[inoKey(uint32(ino))]; ok && e.has(CrossLinked) {
			continue
		}
		in, err := w.fsys.Inode(uint32(ino))
		if err != nil {
			continue
		}
		data, meta, _ := w.fsys.MapInode(in)
		hit := 0
		for _, m := range meta {
			if w.dups[m] {
				hit++
			}
		}
		for _, x := range data {
			for i := uint64(0); i < x.Len && i < 1<<20; i++ {
				if w.dups[x.Physical+i] {
					hit++
				}
			}
		}
		if hit > 0 {
			e := w.entry(inoKey(uint32(ino)), "", uint32(ino), typeName(in))
			if e.Path == "" {
				nameless[uint32(ino)] = e
			}
			if e.Size == 0 && in.IsRegular() {
				e.Size = int64(min(in.Size, 1<<62))
				e.Recovered = e.Size
			}
			e.add(CrossLinked, fmt.Errorf("%d blocks also claimed by another file", hit))
		}
	}
}

// findPaths names the entries in want (found by inode number, like the
// first claimers of a cross-linked block) by walking the directories from
// the root once more, without extracting: the first path reaching each
// wins. Orphans keep "#orphans/<inode>"-less names: they get
// "inode N".
func (w *walker) findPaths(want map[uint32]*Entry) {
	if len(want) == 0 {
		return
	}
	done := newBitset(w.dirDone.n)
	var walk func(ino uint32, path string, depth int)
	walk = func(ino uint32, path string, depth int) {
		if len(want) == 0 || depth > maxDepth || done.get(uint64(ino)) || w.ctx.Err() != nil {
			return
		}
		done.set(uint64(ino))
		ents, _ := w.fsys.ReadDirInode(ino)
		for _, d := range ents {
			if d.Name == "." || d.Name == ".." {
				continue
			}
			p := extract.JoinSrc(path, d.Name)
			if e, ok := want[d.Ino]; ok {
				e.Path = p
				delete(want, d.Ino)
			}
			if d.FileType == ext.FTDir {
				walk(d.Ino, p, depth+1)
			}
		}
	}
	walk(ext.RootIno, "/", 0)
}

// finish merges the extraction engine's problems and computes the totals.
func (w *walker) finish(xr *extract.Report) *Report {
	rep := w.rep
	rep.Extract = xr
	w.countDescs(rep)
	w.addProblems(rep, xr)
	w.findPaths(w.checksumEntries())
	if _, err := w.fsys.Inode(ext.RootIno); err == nil && w.dirDone.get(ext.RootIno) {
		rep.DirsRecovered++ // the root is DEST itself
	}
	w.tally(rep, xr)
	w.sortEntries(rep, w.opts.MaxEntries)
	w.addNotes(rep)
	return rep
}

// countDescs counts the group descriptors by where they came from.
func (w *walker) countDescs(rep *Report) {
	for g := range w.fsys.Groups() {
		switch w.fsys.DescSource(uint64(g)) {
		case ext.DescBackup:
			rep.DescBackup++
		case ext.DescGuessed:
			rep.DescGuessed++
		default:
			rep.DescPrimary++
		}
	}
}

// addProblems turns extract's problems (all but metadata ones) into
// entries, and takes the recovered counts from its report.
func (w *walker) addProblems(rep *Report, xr *extract.Report) {
	if xr != nil {
		for _, p := range xr.Problems {
			if p.Kind == extract.Metadata {
				continue
			}
			typ := "unknown"
			ino := uint32(p.Ino) // ext's inode numbers fit
			if in, err := w.fsys.Inode(ino); err == nil {
				typ = typeName(in)
			}
			e, ok := w.byKey[inoKey(ino)]
			if !ok {
				e = w.entry(pathKey(p.Path), p.Path, ino, typ)
			}
			switch p.Kind {
			case extract.Damaged:
				e.add(BadBlock, p.Err)
				if e.Status != StatusLost {
					e.Status = StatusPartial
				}
			default: // Lost, Refused
				e.add(Refused, p.Err)
				e.Status = StatusLost
			}
		}
		rep.FilesRecovered = int(xr.Files + xr.Symlinks + xr.Specials + xr.Hardlinks)
		rep.DirsRecovered = int(xr.Dirs)
	}
}

// checksumEntries marks extracted inodes whose own blocks failed a
// checksum as suspect, and returns those found without a path.
func (w *walker) checksumEntries() map[uint32]*Entry {
	nameless := map[uint32]*Entry{}
	// Checksum failures ext noticed in an extracted inode's own blocks
	// (extent tree, directory blocks): the inode is suspect.
	for _, n := range w.fsys.Notes() {
		var ce *ext.ChecksumError
		if !errors.As(n.Err, &ce) || ce.Ino == 0 || ce.What == "inode" || !w.reached.get(uint64(ce.Ino)) {
			continue
		}
		typ := "unknown"
		if in, err := w.fsys.Inode(ce.Ino); err == nil {
			typ = typeName(in)
		}
		e := w.entry(inoKey(ce.Ino), "", ce.Ino, typ)
		if in, err := w.fsys.Inode(ce.Ino); err == nil && in.IsRegular() && e.Size == 0 && len(e.Reasons) == 0 {
			e.Size = w.fsys.ContentSize(in)
			e.Recovered = e.Size
		}
		if !e.has(Checksum) {
			e.add(Checksum, ce)
		}
		if e.Path == "" {
			nameless[ce.Ino] = e
		}
	}
	return nameless
}

// tally gives every entry without a status one from its reasons, and
// counts lost, partial, suspect and orphaned entries and the lost bytes.
func (l *ledger) tally(rep *Report, xr *extract.Report) {
	for _, e := range l.entries {
		if e.Status == "" {
			switch {
			case e.has(Truncated) || e.has(BadBlock):
				if e.Type == "file" && e.Lost <= 0 {
					e.Status = StatusSuspect
				} else {
					e.Status = StatusPartial
				}
			case e.has(Checksum) || e.has(CrossLinked) || e.has(BadInode) || e.has(Encrypted):
				e.Status = StatusSuspect
			default:
				e.Status = StatusRecovered
			}
		}
		isDir := e.Type == "dir"
		switch e.Status {
		case StatusLost:
			if isDir {
				rep.DirsLost++
			} else {
				rep.FilesLost++
			}
			if e.Type == "file" {
				rep.BytesLost += e.Lost
			}
		case StatusPartial:
			if !isDir {
				rep.FilesPartial++
			}
		case StatusSuspect:
			if !isDir {
				rep.FilesSuspect++
			}
		}
		if e.Type == "file" && e.Status != StatusLost {
			rep.BytesLost += e.Lost
		}
		if e.has(Unreachable) {
			rep.Orphans++
		}
	}
	if xr != nil {
		rep.BytesRecovered = max(xr.Bytes-(rep.BytesLost), 0)
	}
}

// sortEntries puts the entries in the report, the worst first, then by
// path, at most MaxEntries of them.
func (l *ledger) sortEntries(rep *Report, maxEntries int) {
	// Entries: the worst first, then by path.
	rank := map[string]int{StatusLost: 0, StatusPartial: 1, StatusSuspect: 2, StatusRecovered: 3}
	slices.SortStableFunc(l.entries, func(a, b *Entry) int {
		if d := rank[a.Status] - rank[b.Status]; d != 0 {
			return d
		}
		return strings.Compare(a.Path, b.Path)
	})
	for i, e := range l.entries {
		if i >= maxEntries {
			rep.MoreEntries += len(l.entries) - i
			break
		}
		rep.Entries = append(rep.Entries, *e)
	}
	rep.MoreEntries += l.more
}

// addNotes adds the notes about cross-link detection and ext's notes (at
// most maxNotes).
func (w *walker) addNotes(rep *Report) {
	switch {
	case w.claimed.w == nil:
		rep.Notes = append(rep.Notes, "salvage: filesystem too large to track block owners (over 2^31 blocks): cross-linked blocks not detected")
	case w.claimBudget == 0:
		rep.Notes = append(rep.Notes, "salvage: block maps claim more than 8 times the filesystem's blocks: cross-link detection stopped part way")
	}
	notes := w.fsys.Notes()
	for i, n := range notes {
		if i >= maxNotes {
			rep.MoreNotes = len(notes) - i
			break
		}
		rep.Notes = append(rep.Notes, n.String())
	}
}

// bitset is a fixed-size set of small integers.
type bitset struct {
	w []uint64
	n uint64
}

func newBitset(n uint64) bitset { return bitset{w: make([]uint64, (n+63)/64), n: n} }

func (b bitset) get(i uint64) bool { return i < b.n && b.w[i/64]&(1<<(i%64)) != 0 }
func (b bitset) set(i uint64) {
	if i < b.n {
		b.w[i/64] |= 1 << (i % 64)
	}
}
