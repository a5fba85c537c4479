package tui

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sync/atomic"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/extract"
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
func defaultEngine(ctx context.Context, fsys *ext.FS, srcPaths []string, dest string, progress func(Progress)) *Summary {
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
