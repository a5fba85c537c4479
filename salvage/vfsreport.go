package salvage

import (
	"fmt"

	"github.com/imgtool/imgtool/extract"
	"github.com/imgtool/imgtool/vfs"
)

// finish merges the extraction engine's problems and the reader's
// checksum notes, and computes the totals.
func (w *vwalker) finish(xr *extract.Report) *Report {
	rep := w.rep
	rep.Extract = xr
	if o, ok := w.fsys.(superblockOffsetter); ok {
		rep.Superblock = o.SuperblockOffset()
	}
	if l, ok := w.fsys.(logReplayer); ok {
		rep.JournalReplayed, rep.JournalError = l.LogReplay()
	}
	w.addProblems(rep, xr)
	w.findPaths(w.checksumEntries())
	if root := w.fsys.Root(); w.dirDone.has(root) {
		rep.DirsRecovered++ // the root is DEST itself
	}
	w.tally(rep, xr)
	w.sortEntries(rep, w.opts.MaxEntries)
	w.addNotes(rep)
	return rep
}

// addProblems turns extract's problems (all but metadata ones) into
// entries, and takes the recovered counts from its report.
func (w *vwalker) addProblems(rep *Report, xr *extract.Report) {
	if xr == nil {
		return
	}
	for _, p := range xr.Problems {
		if p.Kind == extract.Metadata {
			continue
		}
		typ := "unknown"
		if st, err := w.fsys.Stat(p.Ino); err == nil {
			typ = statType(st)
		}
		e, ok := w.byKey[ino64Key(p.Ino)]
		if !ok {
			e = w.entryFor(pathKey(p.Path), p.Path, p.Ino, typ)
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

// checksumEntries marks the extracted inodes the reader noted a checksum
// mismatch for (the inode, or one of its blocks) as suspect, and returns
// those found without a path.
func (w *vwalker) checksumEntries() map[vfs.Ino]*Entry {
	nameless := map[vfs.Ino]*Entry{}
	for _, n := range w.fsys.Notes() {
		if !n.Checksum || n.Ino == 0 || !w.reached.has(n.Ino) {
			continue
		}
		typ := "unknown"
		st, err := w.fsys.Stat(n.Ino)
		if err == nil {
			typ = statType(st)
		}
		e := w.entryFor(ino64Key(n.Ino), "", n.Ino, typ)
		if err == nil && st.IsRegular() && e.Size == 0 && len(e.Reasons) == 0 {
			e.Size, e.Recovered = st.Size, st.Size
		}
		if !e.has(Checksum) {
			e.add(Checksum, fmt.Errorf("%s (read anyway)", n))
		}
		if e.Path == "" {
			nameless[n.Ino] = e
		}
	}
	return nameless
}

// findPaths names the entries in want by walking the directories again,
// from the root and from each #orphans top, without extracting: the first
// path reaching each wins.
func (w *vwalker) findPaths(want map[vfs.Ino]*Entry) {
	if len(want) == 0 {
		return
	}
	done := sparseSet{}
	var walk func(ino vfs.Ino, path string, depth int)
	walk = func(ino vfs.Ino, path string, depth int) {
		if len(want) == 0 || depth > maxDepth || done.has(ino) || w.ctx.Err() != nil {
			return
		}
		done.set(ino)
		ents, _ := w.fsys.ReadDir(ino)
		for _, d := range ents {
			p := extract.JoinSrc(path, d.Name)
			if e, ok := want[d.Ino]; ok {
				e.Path = p
				delete(want, d.Ino)
			}
			if w.dirDone.has(d.Ino) {
				walk(d.Ino, p, depth+1)
			}
		}
	}
	walk(w.fsys.Root(), "/", 0)
	for _, t := range w.tops {
		walk(t.ino, t.src, 1)
	}
}

// addNotes adds what the reader noticed (at most maxNotes) to the report.
func (w *vwalker) addNotes(rep *Report) {
	rep.Notes = append(rep.Notes, fmt.Sprintf("salvage: %s read through the filesystem-neutral path: cross-linked blocks are not looked for", w.fsys.Info().Type))
	notes := w.fsys.Notes()
	for i, n := range notes {
		if i >= maxNotes {
			rep.MoreNotes = len(notes) - i
			break
		}
		rep.Notes = append(rep.Notes, n.String())
	}
}

// sparseSet is a set of inode numbers, a 64-bit word per 64 consecutive
// numbers that hold a member: its size follows the inodes added, whatever
// the width of the numbers (XFS's reach 2^64).
type sparseSet map[vfs.Ino]uint64

func (s sparseSet) has(i vfs.Ino) bool { return s[i/64]&(1<<(i%64)) != 0 }
func (s sparseSet) set(i vfs.Ino)      { s[i/64] |= 1 << (i % 64) }
