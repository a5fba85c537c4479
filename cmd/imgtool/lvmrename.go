package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/imgtool/imgtool/image"
	"github.com/imgtool/imgtool/lvm"
	"github.com/spf13/cobra"
)

func newLVMRenameCmd(g *globalFlags) *cobra.Command {
	var f imageFlags
	var opts lvm.RenameOptions
	var write bool
	var undoPath string
	cmd := &cobra.Command{
		Use:   "rename IMAGE VG NEWNAME",
		Short: "Rename a volume group on disk (dry run unless --write), saving an undo file first",
		Long: `Rename a volume group by writing new metadata (seqno+1, correct checksums)
into every metadata area of every PV of the VG, the way vgrename does. The VG
may be nested inside an LV of the image. With --new-uuids the VG and its PVs
also get new UUIDs, as vgimportclone gives them.

Without --write nothing is written: the planned writes are printed. With
--write, the original bytes of every range are first saved to an undo file
(--undo-file, default ./imgtool-undo-VG-TIME.json), and
'imgtool lvm undo FILE' puts them back byte for byte.

It refuses to write when the VG's metadata copies disagree or a PV is missing
(unless --force), and refuses block devices that are in use.`,
		Example: `  imgtool lvm rename dom0.img VolGroup00/domu1/VolGroup00 guest00
  imgtool lvm rename dom0.img VolGroup00/domu1/VolGroup00 guest00 --new-uuids --write`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openImages(cmd, args[0], &f, false)
			if err != nil {
				return err
			}
			defer s.Close()
			vg, vol, err := resolveVG(s.tree, args[1])
			if err != nil {
				return err
			}
			if err := lvm.ValidVGName(args[2]); err != nil {
				return usageErrorf("%v", err)
			}
			plan, err := lvm.PlanRename(vg, args[2], &opts)
			if err != nil {
				return fmt.Errorf("VG %s: %w", vol.Address, err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "VG %s: ", vol.Address)
			fmt.Fprint(out, plan.String())
			if !write {
				fmt.Fprintln(out, "dry run: nothing was written (add --write to apply)")
				return nil
			}
			if undoPath == "" {
				undoPath = fmt.Sprintf("imgtool-undo-%s-%s.json", safeName(vg.Name), time.Now().UTC().Format("20060102T150405Z"))
			}
			targets, closeAll, err := openTargets(plan.Targets())
			if err != nil {
				return err
			}
			defer closeAll()
			undo, err := plan.Undo().Marshal()
			if err != nil {
				return err
			}
			if err := writeFileSync(undoPath, undo); err != nil {
				return fmt.Errorf("saving the undo file before writing: %w", err)
			}
			if err := lvm.Apply(plan, targets); err != nil {
				return fmt.Errorf("VG %s: %w (the undo file %s holds the original bytes)", vol.Address, err, undoPath)
			}
			fmt.Fprintf(out, "written. To put the original bytes back: imgtool lvm undo %s\n", undoPath)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&write, "write", false, "really write (default: dry run)")
	cmd.Flags().BoolVar(&opts.NewUUIDs, "new-uuids", false, "also give the VG and its PVs new UUIDs (like vgimportclone)")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "write even when metadata copies disagree or a PV is missing")
	cmd.Flags().StringVar(&undoPath, "undo-file", "", "where to save the original bytes (default ./imgtool-undo-VG-TIME.json)")
	return cmd
}

func newLVMUndoCmd(g *globalFlags) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "undo UNDOFILE",
		Short: "Restore the bytes an 'lvm rename --write' changed, from its undo file",
		Long: `Write back the original bytes saved by 'imgtool lvm rename --write'. Every
range must still hold exactly what the rename wrote (checked by sha256), or
nothing is written, unless --force.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			u, err := lvm.ReadUndo(b)
			if err != nil {
				return err
			}
			targets, closeAll, err := openTargets(u.Targets())
			if err != nil {
				return err
			}
			defer closeAll()
			if err := lvm.Undo(u, targets, force); err != nil {
				if errors.Is(err, lvm.ErrChanged) {
					return fmt.Errorf("%w; the image changed after the rename (use --force to restore anyway)", err)
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %d ranges in %s (VG %s is %s again)\n", len(u.Writes), strings.Join(u.Targets(), ", "), u.NewName, u.VGName)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "restore even if the ranges changed since the rename")
	return cmd
}

// openTargets opens every image a plan writes to, for writing.
func openTargets(names []string) (map[string]lvm.WriteTarget, func(), error) {
	targets := map[string]lvm.WriteTarget{}
	var opened []*image.Image
	closeAll := func() {
		for _, im := range opened {
			im.Close()
		}
	}
	for _, n := range names {
		im, err := image.OpenWritable(n)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("opening %s for writing: %w", n, err)
		}
		opened = append(opened, im)
		targets[n] = im
	}
	return targets, closeAll, nil
}

// writeFileSync writes a new file (never replacing one) and syncs it and
// its directory, so the undo data is on disk before the image is touched.
func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == 0 || r == ' ' {
			return '_'
		}
		return r
	}, s)
}
