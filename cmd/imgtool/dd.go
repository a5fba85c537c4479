package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newDDCmd) }

func newDDCmd(g *globalFlags) *cobra.Command {
	var f imageFlags
	var out string
	cmd := &cobra.Command{
		Use:   "dd IMAGE VOLUME [-o FILE]",
		Short: "Write a volume's raw bytes (a partition, or an LV as its own image)",
		Example: `  imgtool dd disk.img p1 -o boot.img
  imgtool dd dom0.img VolGroup00/domu1 -o domu1.img
  imgtool dd dom0.img VolGroup00/domu1/VolGroup00/LogVol00 | sha256sum`,
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
			r := v.Reader()
			if r == nil {
				return fmt.Errorf("volume %s: no bytes to read (%s)", v.DisplayAddress(), v.Kind)
			}
			w := cmd.OutOrStdout()
			if out != "" && out != "-" {
				fh, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
				if err != nil {
					return err
				}
				defer fh.Close()
				w = fh
			}
			n, err := io.Copy(w, io.NewSectionReader(r, 0, r.Size()))
			if err != nil {
				return fmt.Errorf("volume %s: read failed after %d bytes: %w", v.DisplayAddress(), n, err)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to FILE (must not exist) instead of stdout")
	return cmd
}
