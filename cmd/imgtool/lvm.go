package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/lvm"
	"github.com/imgtool/imgtool/raid"
	"github.com/spf13/cobra"
)

func newLVMCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lvm",
		Short: "LVM2: list PVs/VGs/LVs, print metadata, rename a VG on disk (with undo)",
	}
	cmd.AddCommand(newLVMListCmd(), newLVMMetadataCmd())
	for _, add := range lvmCommands {
		cmd.AddCommand(add(g))
	}
	return cmd
}

// lvmCommands are the lvm subcommands.
var lvmCommands = []func(*globalFlags) *cobra.Command{newLVMCheckCmd, newLVMRenameCmd, newLVMUndoCmd}

// lvmListing is `lvm list --json`: pvs/vgs/lvs rows in the field names
// of `pvs/vgs/lvs --reportformat json --units b`, plus imgtool addresses.
type lvmListing struct {
	PVs []pvRow `json:"pvs"`
	VGs []vgRow `json:"vgs"`
	LVs []lvRow `json:"lvs"`
}

type pvRow struct {
	Address string `json:"address"`
	lvm.PVReport
}

type vgRow struct {
	Address string `json:"address"`
	Clash   bool   `json:"clash"`
	lvm.VGReport
}

type lvRow struct {
	Address string `json:"address,omitempty"`
	lvm.LVReport
}

func collectLVM(t *inspect.Tree) lvmListing {
	var l lvmListing
	t.Walk(func(v *inspect.Volume) bool {
		vg := v.LVMGroup()
		if vg == nil {
			return true
		}
		l.VGs = append(l.VGs, vgRow{Address: v.Address, Clash: v.VG.Clash, VGReport: vg.Report()})
		pvAddr := map[string]string{}
		for _, p := range v.VG.PVs {
			pvAddr[p.UUID] = p.Address
		}
		for _, r := range vg.PVReports() {
			l.PVs = append(l.PVs, pvRow{Address: pvAddr[r.UUID], PVReport: r})
		}
		for _, r := range vg.LVReports() {
			addr := ""
			if r.Visible {
				addr = v.Address + "/" + r.Name
			}
			l.LVs = append(l.LVs, lvRow{Address: addr, LVReport: r})
		}
		return true
	})
	return l
}

func newLVMListCmd() *cobra.Command {
	var f imageFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list IMAGE",
		Short: "List PVs, VGs and LVs found in the image (like pvs, vgs and lvs -a)",
		Example: `  imgtool lvm list dom0.img
  imgtool lvm list pv1.img --add pv2.img --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openImages(cmd, args[0], &f, false)
			if err != nil {
				return err
			}
			defer s.Close()
			l := collectLVM(s.tree)
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), l)
			}
			printLVM(cmd.OutOrStdout(), l)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func printLVM(w io.Writer, l lvmListing) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PV\tPV UUID\tVG\tSIZE\tPE START")
	for _, p := range l.PVs {
		addr := p.Address
		if p.Missing {
			addr = "(missing)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", addr, p.UUID, p.VGName, humanSize(p.Size), p.PEStart)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VG\tVG UUID\tSEQNO\tEXTENT\tPVS\tLVS\tSIZE\tFREE\tNOTES")
	for _, v := range l.VGs {
		note := ""
		if v.Clash {
			note = "name clash"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%s\t%s\t%s\n", v.Address, v.UUID, v.Seqno, humanSize(v.ExtentSize), v.PVCount, v.LVCount,
			humanSize(v.Size), humanSize(v.FreeCount*v.ExtentSize), note)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LV\tLV UUID\tSIZE\tTYPE\tSEGS\tREADABLE")
	for _, lv := range l.LVs {
		name := lv.Address
		if name == "" {
			name = "[" + lv.VGName + "/" + lv.Name + "]"
		}
		readable := "yes"
		if !lv.Readable {
			readable = "no: " + lv.ReadError
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", name, lv.UUID, humanSize(lv.Size), lv.Segtype, lv.SegCount, readable)
	}
	tw.Flush()
}

func newLVMMetadataCmd() *cobra.Command {
	var f imageFlags
	cmd := &cobra.Command{
		Use:     "metadata IMAGE VG",
		Short:   "Print the VG metadata imgtool chose (the newest good copy), like vgcfgbackup",
		Example: `  imgtool lvm metadata dom0.img VolGroup00/domu1/VolGroup00 > guest-vg.backup`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openImages(cmd, args[0], &f, false)
			if err != nil {
				return err
			}
			defer s.Close()
			vg, _, err := resolveVG(s.tree, args[1])
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(vg.BackupText())
			return err
		},
	}
	f.register(cmd)
	return cmd
}

func resolveVG(t *inspect.Tree, addr string) (*lvm.VG, *inspect.Volume, error) {
	v, err := t.Resolve(addr)
	if err != nil {
		return nil, nil, err
	}
	vg := v.LVMGroup()
	if vg == nil {
		return nil, nil, fmt.Errorf("volume %s is a %s, not a volume group", v.DisplayAddress(), v.Kind)
	}
	return vg, v, nil
}

// newLVMCheckCmd compares the legs of raid1/mirror LVs.
func newLVMCheckCmd(g *globalFlags) *cobra.Command {
	var f imageFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check IMAGE LV",
		Short: "Compare the legs of a raid1/mirror LV or verify the parity of a raid4/5/6 LV; exit 1 on a mismatch",
		Long: `Compare the legs of a raid1 or mirror LV, or recompute the parity (P, and Q
for raid6) of every stripe of a raid4/5/6 LV. For parity LVs it names the first
bad stripes with the LV bytes they hold and, for every member, the PV and the
absolute byte offset (in the PV and in the image file) of the disagreeing
sectors. Exit 1 when legs differ, parity disagrees, or stripes cannot be
verified (too many members missing).`,
		Example: `  imgtool lvm check disk.img vg/mirrored
  imgtool lvm check pv0.img --add pv1.img --add pv2.img vg/raid5lv
  imgtool lvm check disk.img vg/mirrored --json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openImages(cmd, args[0], &f, false)
			if err != nil {
				return err
			}
			defer s.Close()
			v, err := s.tree.Resolve(args[1])
			if err != nil {
				return err
			}
			lv := v.LVMVolume()
			if lv == nil {
				return fmt.Errorf("volume %s is a %s, not a logical volume", v.DisplayAddress(), v.Kind)
			}
			if lvHasParity(lv) {
				return checkParity(cmd, v.Address, lv, asJSON)
			}
			diffs, err := lv.Check()
			if err != nil {
				return fmt.Errorf("LV %s: %w", v.Address, err)
			}
			bad := 0
			for _, d := range diffs {
				bad += len(d.Differ) + len(d.Unreadable)
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), struct {
					Segments any `json:"segments"`
				}{diffs}); err != nil {
					return err
				}
			} else {
				w := cmd.OutOrStdout()
				for _, d := range diffs {
					fmt.Fprintf(w, "segment %d, legs %v:\n", d.Segment, d.Legs)
					for _, r := range d.Differ {
						fmt.Fprintf(w, "  legs differ at LV bytes %d+%d\n", r.Off, r.Len)
					}
					for _, r := range d.Unreadable {
						fmt.Fprintf(w, "  a leg is unreadable at LV bytes %d+%d\n", r.Off, r.Len)
					}
					if len(d.Differ)+len(d.Unreadable) == 0 {
						fmt.Fprintln(w, "  legs agree")
					}
				}
			}
			if bad > 0 {
				return fmt.Errorf("LV %s: %d ranges where the legs differ or cannot be read", v.Address, bad)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func lvHasParity(lv *lvm.LV) bool {
	for _, s := range lv.Segments {
		if _, ok := raid.LVMLayouts[s.Type]; ok {
			return true
		}
	}
	return false
}

// checkParity prints CheckParity's findings for a raid4/5/6 LV.
func checkParity(cmd *cobra.Command, addr string, lv *lvm.LV, asJSON bool) error {
	const limit = 20
	pcs, err := lv.CheckParity(limit)
	if err != nil {
		return fmt.Errorf("LV %s: %w", addr, err)
	}
	var bad, unverifiable int64
	for _, pc := range pcs {
		bad += pc.BadCount
		unverifiable += pc.Unverifiable
	}
	w := cmd.OutOrStdout()
	if asJSON {
		if err := writeJSON(w, struct {
			Segments any `json:"segments"`
		}{pcs}); err != nil {
			return err
		}
	} else {
		for _, pc := range pcs {
			st := pc.Status
			fmt.Fprintf(w, "segment %d: %s, %d members, chunk %d bytes: %d of %d stripes checked\n",
				st.Segment, st.Type, st.Disks, st.ChunkSize, pc.Checked, pc.Stripes)
			for i, m := range st.Members {
				switch {
				case m.MissingPV != "":
					fmt.Fprintf(w, "  member %d %s: on missing PV %s (rebuilt from parity)\n", i, m.Image, m.MissingPV)
				case m.Failed:
					fmt.Fprintf(w, "  member %d %s: marked failed in the rmeta superblocks (rebuilt from parity)\n", i, m.Image)
				case m.RebuildFrom >= 0:
					fmt.Fprintf(w, "  member %d %s: rebuild stopped at member byte %d\n", i, m.Image, m.RebuildFrom)
				}
			}
			for _, n := range st.Notes {
				fmt.Fprintf(w, "  note: %s\n", n)
			}
			if pc.Unverifiable > 0 {
				fmt.Fprintf(w, "  %d stripes cannot be verified: %s\n", pc.Unverifiable, pc.FirstError)
			}
			if pc.BadCount == 0 {
				if pc.Checked > 0 {
					fmt.Fprintln(w, "  parity agrees")
				}
				continue
			}
			fmt.Fprintf(w, "  %d stripes with bad parity", pc.BadCount)
			if int64(len(pc.Bad)) < pc.BadCount {
				fmt.Fprintf(w, " (first %d listed)", len(pc.Bad))
			}
			fmt.Fprintln(w)
			for _, b := range pc.Bad {
				which := "P"
				switch {
				case b.PBad && b.QBad:
					which = "P and Q"
				case b.QBad:
					which = "Q"
				}
				fmt.Fprintf(w, "  stripe %d (LV bytes %d+%d): %s disagree(s) at member bytes %d+%d\n",
					b.Stripe, b.LVOff, b.LVLen, which, b.MemberOff, b.Len)
				for _, l := range b.Locations {
					if l.PV == "" {
						fmt.Fprintf(w, "    member %d %s (%s): PV missing\n", l.Member, l.Image, l.Role)
						continue
					}
					fmt.Fprintf(w, "    member %d %s (%s): PV %s (%s) byte %d, image byte %d\n",
						l.Member, l.Image, l.Role, l.PV, l.PVDevice, l.PVOffset, l.ImageOffset)
				}
			}
		}
	}
	if bad > 0 {
		return fmt.Errorf("LV %s: %d stripes with bad parity", addr, bad)
	}
	if unverifiable > 0 {
		return fmt.Errorf("LV %s: %d stripes could not be verified", addr, unverifiable)
	}
	return nil
}
