package tui

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/imgtool/imgtool/extract"
	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/salvage"
	"github.com/imgtool/imgtool/vfs"
)

// defaultEngine extracts with the extract package, the engine of `imgtool
// extract`, so the TUI has the same safety rules: nothing is written
// outside dest, names with '/' or ".." are refused, symlinks are
// recreated and never followed, existing files are not overwritten.
//
// Unlike `imgtool extract SRC DEST` (which, like cp -rT, makes DEST *be* a
// single source), dest here is always a directory and every marked item
// goes in it under its base name: marks may come from several directories
// and the result must not depend on how many there are. Owners and device
// nodes are restored when running as root, as the CLI does.
func defaultEngine(ctx context.Context, fsys vfs.FS, srcPaths []string, dest string, progress func(Progress)) *Summary {
	s := &Summary{}
	root := os.Geteuid() == 0

	// Totals for the bar come from a counting walk running alongside.
	var totalFiles, totalBytes atomic.Int64
	// A count cut short by a cancel is not a total: it stays unknown.
	go func() {
		f, b := extract.Count(ctx, fsys, srcPaths)
		if ctx.Err() == nil {
			totalFiles.Store(f)
			totalBytes.Store(b)
		}
	}()
	opts := extract.Options{
		Owner:   root,
		Devices: root,
		Progress: func(p extract.Progress) {
			progress(Progress{
				Files: p.Files, Bytes: p.Bytes,
				TotalFiles: totalFiles.Load(), TotalBytes: totalBytes.Load(),
				Errors: p.Errors, Elapsed: p.Elapsed, Current: p.Current,
			})
		},
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(dest)), 0o755); err != nil {
		s.Err = err
		return s
	}
	x, err := extract.NewDisk(ctx, fsys, dest, opts)
	if err != nil {
		s.Err = err
		return s
	}
	// A mark is a path: where two entries of a directory share a name (a
	// symlink "evil" and a directory "evil"), only the one the path
	// reaches is extracted, and the other is a loss (issue 13.6).
	x.ReportShadowed(srcPaths)
	var lost []string
	for _, src := range srcPaths {
		ino, err := fsys.Lookup(src)
		if err != nil {
			lost = append(lost, fmt.Sprintf("%s: %v", src, err))
			continue
		}
		if err := x.AddTree(ctx, []string{path.Base(src)}, src, ino); err != nil {
			s.Err = err
			break
		}
	}
	rep, err := x.Close()
	if s.Err == nil {
		s.Err = err
	}
	if rep != nil {
		s.Line = rep.Summary()
		for _, p := range rep.Problems {
			lost = append(lost, p.String())
		}
		s.More = rep.MoreProblems
		s.Partial = rep.Partial()
	}
	s.Lost = lost
	if len(lost) > 0 {
		s.Partial = true
	}
	return s
}

// defaultSalvage is S: `imgtool extract --salvage` of the whole volume v
// into dest, with the same options the CLI uses (owners and devices when
// root, the journal or log replayed in memory unless noJournal). ext takes
// package salvage's own path (salvage.RunView); a filesystem whose driver
// declares vfs.Driver.Salvage (XFS) the filesystem-neutral one
// (inspect.Volume.SalvageFS, salvage.RunVFS), also when v shows no
// content because its primary superblock is gone. The report files go in
// dest; the summary carries the report's totals and entries.
func defaultSalvage(ctx context.Context, v *inspect.Volume, dest string, noJournal bool, progress func(Progress)) *Summary {
	return salvageVolume(ctx, v, dest, noJournal, progress, nil)
}

// inodeCounter is implemented by readers that can estimate how many
// inodes WalkInodes visits (XFS, from its AGIs).
type inodeCounter interface{ InodesInUse() int64 }

// salvageVolume is defaultSalvage; wrap, when set, wraps the filesystem
// the neutral path walks (tests stop the walk part way with it).
func salvageVolume(ctx context.Context, v *inspect.Volume, dest string, noJournal bool, progress func(Progress), wrap func(vfs.FS) vfs.FS) *Summary {
	s := &Summary{Salvage: true}
	r := v.Reader()
	if r == nil {
		s.Err = fmt.Errorf("volume %s: no bytes to read", v.DisplayAddress())
		return s
	}
	root := os.Geteuid() == 0
	opts := salvage.Options{NoJournal: noJournal, Journal: v.JournalOptions(), Extract: extract.Options{Owner: root, Devices: root}}
	view, fsys, err := salvage.OpenVolume(v, noJournal, opts)
	if err != nil {
		s.Err = fmt.Errorf("volume %s: %w", v.DisplayAddress(), err)
		return s
	}
	// The bar's total, an estimate: hard links add names, and a damaged
	// filesystem's counts may be stale. ext: inodes in use by the
	// superblock's count (the reserved ones but the root excluded); XFS:
	// by its AGIs.
	var total int64
	if view != nil {
		if sb := view.FS.Superblock(); sb.FreeInodesCount < sb.InodesCount && sb.FirstIno >= 2 {
			total = int64(sb.InodesCount-sb.FreeInodesCount) - int64(sb.FirstIno) + 2
		}
	} else if c, ok := fsys.(inodeCounter); ok {
		total = c.InodesInUse()
	}
	opts.Extract.Progress = func(p extract.Progress) {
		progress(Progress{
			Files: p.Files, Bytes: p.Bytes, TotalFiles: max(total, 0), Approx: true,
			Errors: p.Errors, Elapsed: p.Elapsed, Current: p.Current,
		})
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(dest)), 0o755); err != nil {
		s.Err = err
		return s
	}
	var rep *salvage.Report
	if view != nil {
		rep, err = salvage.RunView(ctx, view, dest, opts)
	} else {
		if wrap != nil {
			fsys = wrap(fsys)
		}
		rep, err = salvage.RunVFS(ctx, fsys, dest, opts)
	}
	s.Err = err
	if rep == nil {
		return s
	}
	lines := strings.Split(strings.TrimRight(rep.Summary(-1), "\n"), "\n")
	s.Line = strings.TrimPrefix(lines[0], "salvage: ")
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "salvage: ") {
			s.Info = append(s.Info, strings.TrimPrefix(l, "salvage: "))
		}
	}
	if err == nil {
		s.Info = append(s.Info, "report: "+filepath.Join(dest, salvage.SummaryName)+" and "+salvage.ReportName)
	}
	for _, e := range rep.Entries {
		s.Lost = append(s.Lost, e.Status+": "+e.Describe())
	}
	s.More = rep.MoreEntries
	s.Partial = rep.Partial()
	return s
}
