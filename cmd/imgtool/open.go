package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/imgtool/imgtool/fixtures"
	"github.com/imgtool/imgtool/image"
	"github.com/imgtool/imgtool/image/compressed"
	"github.com/imgtool/imgtool/image/ref"
	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/journal"
	"github.com/imgtool/imgtool/lvm"
	"github.com/spf13/cobra"
)

// session is an inspected set of images, closed when the command ends.
type session struct {
	tree    *inspect.Tree
	closers []io.Closer
	demo    bool
	journal *journal.Options // --journal-dev, or nil
}

func (s *session) Close() {
	for _, c := range s.closers {
		c.Close()
	}
}

// imageFlags are the flags shared by commands that read images.
type imageFlags struct {
	extra      []string
	lvmBackup  []string
	noJournal  bool
	journalDev string
	// openJournaled: the command shows volume notes (inspect, tui), so
	// filesystems that need recovery are opened while inspecting and their
	// notes say what the replay did (inspect.Options.OpenJournaled).
	openJournaled bool
	// allowBacking widens where a container's backing/extent files may be
	// (image/ref): directories, or "any".
	allowBacking []string
	// tmp is where compressed images are decompressed (default $TMPDIR).
	tmp  string
	keys keyFlags
}

func (f *imageFlags) register(cmd *cobra.Command) {
	// --add is the spelling (issue 13.8): -a means "all" to ls users, so
	// ls has no one-letter form of it; elsewhere -a still works, as in
	// libguestfs, for the scripts that use it.
	short := "a"
	if cmd.Name() == "ls" {
		short = ""
	}
	cmd.Flags().StringArrayVarP(&f.extra, "add", short, nil, "another image `IMAGE` holding PVs, MD members or a VG's other disks (repeatable)")
	cmd.Flags().BoolVar(&f.noJournal, "no-journal", false, "show ext filesystems as they are on disk: do not replay a journal that needs recovery")
	cmd.Flags().StringVar(&f.journalDev, "journal-dev", "", "external journal device or image `FILE` of a filesystem made with one (mke2fs -J device=), replayed in memory with it")
	cmd.Flags().StringArrayVar(&f.allowBacking, "allow-backing", nil, "let qcow2 backing files and VMDK extent files come from `DIR` too, or from anywhere with \"any\" (default: only the image's own directory; repeatable)")
	cmd.Flags().StringVar(&f.tmp, "tmp", "", "decompress .xz/.gz/.zst/.bz2 images into `DIR` (default $TMPDIR or /tmp); the copy is sparse, deleted at exit, and always leaves a tenth of DIR's free space, up to 1 GiB, free")
	f.keys.register(cmd.Flags())
	cmd.Flags().StringArrayVar(&f.lvmBackup, "lvm-backup", nil, "VG metadata from an /etc/lvm/backup-style `FILE`, used when no on-disk copy is readable (repeatable)")
}

// lvmOptions reads the --lvm-backup files.
func (f *imageFlags) lvmOptions() (*lvm.AssembleOptions, error) {
	if len(f.lvmBackup) == 0 {
		return nil, nil
	}
	opts := &lvm.AssembleOptions{}
	for _, p := range f.lvmBackup {
		text, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		md, err := lvm.ParseMetadata(text)
		if err != nil {
			return nil, fmt.Errorf("--lvm-backup %s: %w", p, err)
		}
		opts.Metadata = append(opts.Metadata, md)
	}
	return opts, nil
}

// backingHint adds to a backing-file refusal, or to a decompression that
// does not fit, the flag that helps.
func backingHint(err error) error {
	if errors.Is(err, ref.ErrRefused) {
		return fmt.Errorf("%w (a container may only name files in its own directory; if you trust this image, allow the directory with --allow-backing DIR, or everything with --allow-backing any)", err)
	}
	if errors.Is(err, compressed.ErrBudget) {
		return fmt.Errorf("%w (choose a roomier place with --tmp DIR)", err)
	}
	return err
}

// openImages opens path plus the -a images and inspects them. An empty
// path with allowDemo opens the embedded demo image.
func openImages(cmd *cobra.Command, path string, f *imageFlags, allowDemo bool) (*session, error) {
	s := &session{}
	var srcs []inspect.Source
	if path == "" {
		if !allowDemo {
			return nil, usageErrorf("no image given")
		}
		d, err := fixtures.Demo()
		if err != nil {
			return nil, err
		}
		s.demo = true
		fmt.Fprintf(cmd.ErrOrStderr(), "imgtool: no image given; showing the embedded demo image (a Xen dom0 disk with a nested guest)\n")
		srcs = append(srcs, inspect.Source{Name: fixtures.DemoName, R: d, Size: d.Size()})
	}
	paths := append([]string{}, f.extra...)
	if path != "" {
		paths = append([]string{path}, paths...)
	}
	pol, err := ref.Parse(f.allowBacking)
	if err != nil {
		return nil, usageErrorf("--allow-backing: %v", err)
	}
	for _, p := range paths {
		im, err := image.OpenWithOptions(p, &image.Options{Progress: decompressProgress(cmd.ErrOrStderr(), p), Backing: pol, TempDir: f.tmp})
		if err != nil {
			s.Close()
			return nil, openErr(len(srcs), p, backingHint(err))
		}
		slog.Debug("image opened", "path", p, "format", im.Format, "size", im.Size(), "block_device", im.BlockDevice)
		s.closers = append(s.closers, im)
		srcs = append(srcs, inspect.Source{Name: p, R: im, Size: im.Size(), Format: im.Format,
			Notes: append(append([]string{}, im.Details...), im.Notes...)})
	}
	lvmOpts, err := f.lvmOptions()
	if err != nil {
		s.Close()
		return nil, err
	}
	if f.journalDev != "" {
		jd, err := image.Open(f.journalDev)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("--journal-dev: %w", err)
		}
		s.closers = append(s.closers, jd)
		s.journal = &journal.Options{External: jd, ExternalSize: jd.Size()}
	}
	keys, err := f.keys.options(cmd.InOrStdin(), cmd.ErrOrStderr())
	if err != nil {
		s.Close()
		return nil, err
	}
	t, err := inspect.Inspect(srcs, &inspect.Options{Logger: slog.Default(), LVM: lvmOpts, Journal: s.journal,
		OpenJournaled: f.openJournaled && !f.noJournal, Keys: keys})
	for _, k := range keys.Keys {
		clear(k)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	if err := lockedLUKS(t); err != nil {
		s.Close()
		return nil, err
	}
	s.tree = t
	return s, nil
}
