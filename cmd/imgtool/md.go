package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newMDCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "md",
		Short: "MD RAID arrays: check an array's parity or copies",
	}
	cmd.AddCommand(newMDCheckCmd(g))
	return cmd
}

// newMDCheckCmd verifies an MD array's redundancy.
func newMDCheckCmd(g *globalFlags) *cobra.Command {
	var f imageFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check IMAGE ARRAY",
		Short: "Verify the parity of a raid4/5/6 array or compare the members of a raid1; exit 1 on a mismatch",
		Long: `Recompute the parity (P, and Q for raid6) of every stripe of an MD raid4/5/6
array, or compare every member of a raid1 with the first, as the kernel's
"check" sync action does. Bad stripes are named with the array bytes they hold
and the member bytes (within each member's data area) that disagree. Exit 1
when parity or copies disagree, or stripes cannot be verified (too many
members missing).`,
		Example: `  imgtool md check sda.img --add sdb.img --add sdc.img md-data
  imgtool md check sda.img --add sdb.img md0 --json`,
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
			a := v.MDArray()
			if a == nil {
				return fmt.Errorf("volume %s is a %s, not an MD array", v.DisplayAddress(), v.Kind)
			}
			r, err := a.Open()
			if err != nil {
				return fmt.Errorf("MD array %s: %w", v.DisplayAddress(), err)
			}
			r.Name = v.DisplayAddress()
			c, err := r.Check(20)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				if err := writeJSON(w, c); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(w, "%s: %s, members %q\n", v.DisplayAddress(), c.Level, c.Members)
				if c.Stripes > 0 {
					fmt.Fprintf(w, "  %d of %d stripes checked\n", c.Checked, c.Stripes)
				}
				switch {
				case c.Unverifiable > 0:
					fmt.Fprintf(w, "  %d stripes cannot be verified: %s\n", c.Unverifiable, c.FirstError)
				case c.FirstError != "":
					fmt.Fprintf(w, "  cannot be verified: %s\n", c.FirstError)
				}
				for _, b := range c.Bad {
					which := "P"
					switch {
					case b.P && b.Q:
						which = "P and Q"
					case b.Q:
						which = "Q"
					}
					fmt.Fprintf(w, "  stripe %d (array bytes %d+%d): %s disagree(s) at member data bytes %d+%d\n",
						b.Stripe, b.ArrayOff, b.ArrayLen, which, b.MemberOff, b.Len)
				}
				if int64(len(c.Bad)) < c.BadCount {
					fmt.Fprintf(w, "  ... %d bad stripes in all\n", c.BadCount)
				}
				for _, d := range c.Differ {
					fmt.Fprintf(w, "  members differ at array bytes %d+%d\n", d.Off, d.Len)
				}
				if c.BadCount == 0 && c.Unverifiable == 0 && c.FirstError == "" {
					fmt.Fprintln(w, "  redundancy agrees")
				}
			}
			if c.BadCount > 0 || c.Unverifiable > 0 || c.FirstError != "" {
				return fmt.Errorf("MD array %s: %d bad, %d unverifiable", v.DisplayAddress(), c.BadCount, c.Unverifiable)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}
