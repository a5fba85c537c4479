package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/imgtool/imgtool/extract"
	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/journal"
	"github.com/imgtool/imgtool/salvage"
	"github.com/imgtool/imgtool/vfs"
	"github.com/spf13/cobra"
)

// runSalvage is `imgtool extract --salvage`: the whole filesystem of the
// volume, read tolerantly (ext: backup superblocks, rebuilt group
// descriptors, damaged block maps in part; XFS: a secondary superblock,
// bad CRCs noted, inode chunks scanned past a damaged inode btree), then
// every in-use inode no directory reaches into DEST/#orphans/<inode>, with
// salvage-report.json and .txt. ext takes package salvage's own path;
// a filesystem whose driver declares vfs.Driver.Salvage (XFS) its
// filesystem-neutral one (inspect.Volume.SalvageFS, salvage.RunVFS).
func runSalvage(cmd *cobra.Command, args []string, f *imageFlags, xf *extractFlags) error {
	volAddr, p, err := inspect.SplitFileSpec(args[1])
	if err != nil {
		return usageErrorf("%v", err)
	}
	if p != "/" && p != "" {
		return usageErrorf("--salvage extracts a whole filesystem: give VOL:/ (or /), not %s", p)
	}
	s, err := openImages(cmd, args[0], f, false)
	if err != nil {
		return err
	}
	defer s.Close()
	v, err := s.tree.Resolve(volAddr)
	if err != nil && volAddr == "" && len(s.tree.Filesystems()) == 0 {
		// A filesystem damaged past recognition (its primary superblock
		// gone): salvage the whole image, which looks for backups.
		v, err = s.tree.Roots[0], nil
	}
	if err != nil {
		return err
	}
	if v.Reader() == nil {
		return fmt.Errorf("volume %s: no bytes to read", v.DisplayAddress())
	}
	root := os.Geteuid() == 0
	opts := salvage.Options{
		Extract:   extract.Options{Force: xf.force, Xattrs: xf.xattrs, Owner: root, Devices: root, Workers: xf.workers},
		NoJournal: f.noJournal,
		Journal:   s.journal,
	}
	xf.safety(&opts.Extract)
	stderr := cmd.ErrOrStderr()
	if !xf.noProgress && isTerminal(stderr) {
		bar := &progressBar{w: stderr}
		opts.Extract.Progress = bar.update
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	view, fsys, err := salvage.OpenVolume(v, f.noJournal, opts)
	if err != nil {
		return fmt.Errorf("volume %s: %w", v.DisplayAddress(), err)
	}
	var rep *salvage.Report
	switch {
	case xf.tar != "":
		rep, err = salvageTar(ctx, cmd, view, fsys, xf, opts)
	case view != nil:
		rep, err = salvage.RunView(ctx, view, args[2], opts)
	default:
		rep, err = salvage.RunVFS(ctx, fsys, args[2], opts)
	}
	if err != nil {
		return fmt.Errorf("volume %s: %w", v.DisplayAddress(), err)
	}
	fmt.Fprint(stderr, rep.Summary(50))
	if xf.report != "" {
		if err := writeJSONFile(xf.report, rep); err != nil {
			return err
		}
	}
	if rep.Partial() {
		return &codeError{exitPartial, fmt.Errorf("volume %s: salvage finished with losses (see the report)", v.DisplayAddress())}
	}
	return nil
}

func salvageTar(ctx context.Context, cmd *cobra.Command, view *journal.View, fsys vfs.FS, xf *extractFlags, opts salvage.Options) (*salvage.Report, error) {
	var w io.Writer = cmd.OutOrStdout()
	if xf.tar == "-" {
		if err := refuseTerminal(w, "a tar archive", xf.force); err != nil {
			return nil, err
		}
	} else {
		file, err := os.OpenFile(xf.tar, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return nil, err
		}
		defer file.Close()
		w = file
	}
	if view != nil {
		return salvage.RunTar(ctx, view.FS, w, opts)
	}
	return salvage.RunVFSTar(ctx, fsys, w, opts)
}

func writeJSONFile(path string, v any) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writeJSON(f, v); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
