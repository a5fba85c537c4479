package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/undelete"
	"github.com/spf13/cobra"
)

func newUndeleteCmd(g *globalFlags) *cobra.Command {
	var f imageFlags
	var list, all, asJSON, utc bool
	cmd := &cobra.Command{
		Use:   "undelete IMAGE [VOL:][/path] [DEST]",
		Short: "Find deleted files of an ext3/ext4 filesystem and recover them (never writes IMAGE)",
		Long: `Find deleted files of an ext3/ext4 filesystem and recover them into DEST.

The kernel clears a deleted inode's block map, but the journal still holds
older copies of its inode and of the directory blocks that named it: each
candidate comes from the newest such copy, with the journal transaction it
came from. Its data is taken only from blocks that are free now; blocks
reused since are reported and never mixed in. Names come from older copies
of directory blocks and from deleted entries still in directory blocks;
files without one go to #deleted/<inode>.

Each candidate has a confidence: high (complete, every block free, named),
medium (complete but unnamed, or from an uncommitted transaction), low
(part of the data is gone: written only with --all, the missing blocks as
zeros). /path limits the candidates to those under it.

--list shows the candidates and writes nothing (as ls --deleted would).
Modification times are local, with the zone shown ("2024-03-01 14:02:11
+0100", as ls -l); --utc shows them in UTC. --json gives RFC 3339 in UTC.
Exit status: 0 when every candidate was recovered intact, 3 when some were
not (partial or skipped: the report says which), 1 on errors.`,
		Example: `  imgtool undelete guest.img --list
  imgtool undelete guest.img VolGroup00/LogVol00:/home /tmp/rescued
  imgtool undelete guest.img p1:/ /tmp/rescued --all --json`,
		Args: cobra.RangeArgs(1, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, dest := "/", ""
			switch len(args) {
			case 2:
				if list {
					spec = args[1]
				} else {
					dest = args[1]
				}
			case 3:
				spec, dest = args[1], args[2]
			}
			if !list && dest == "" {
				return usageErrorf("give DEST (or --list)")
			}
			return runUndelete(cmd, &f, args[0], spec, dest, list, all, asJSON, utc)
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&list, "list", false, "list the candidates, write nothing")
	cmd.Flags().BoolVar(&all, "all", false, "also write partial (low-confidence) files, missing blocks as zeros")
	cmd.Flags().BoolVar(&asJSON, "json", false, "machine-readable report")
	cmd.Flags().BoolVar(&utc, "utc", false, "times in UTC instead of the local time zone")
	return cmd
}

// runUndelete scans the filesystem of spec ("VOL:/path" or "/path") for
// deleted files under /path and lists them (list) or recovers them into
// dest. ls --deleted is runUndelete with list set. Times in the table are
// local with the zone shown, or UTC (utc); JSON's are UTC.
func runUndelete(cmd *cobra.Command, f *imageFlags, image, spec, dest string, list, all, asJSON, utc bool) error {
	volAddr, p, err := inspect.SplitFileSpec(spec)
	if err != nil {
		return usageErrorf("%v", err)
	}
	s, err := openImages(cmd, image, f, false)
	if err != nil {
		return err
	}
	defer s.Close()
	v, err := s.tree.Resolve(volAddr)
	if err != nil {
		return err
	}
	r := v.Reader()
	if r == nil {
		return fmt.Errorf("volume %s: no bytes to read (%s)", v.DisplayAddress(), v.Kind)
	}
	res, err := undelete.Scan(r, r.Size())
	if err != nil {
		return fmt.Errorf("volume %s: %w", v.DisplayAddress(), err)
	}
	prefix := strings.TrimSuffix("/"+strings.Trim(p, "/"), "/")
	under := func(c *undelete.Candidate) bool {
		return prefix == "" || c.Path == prefix || strings.HasPrefix(c.Path, prefix+"/")
	}
	var sel []*undelete.Candidate
	for _, c := range res.Candidates {
		if under(c) {
			sel = append(sel, c)
		}
	}
	for _, n := range res.Notes {
		fmt.Fprintf(cmd.ErrOrStderr(), "imgtool: %s: %s\n", v.DisplayAddress(), n)
	}
	recovered := map[uint32]string{}
	errs := map[uint32]string{}
	if !list {
		recs, err := res.Recover(dest, func(c *undelete.Candidate) bool { return under(c) && (c.Intact || all) })
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Err != nil {
				errs[r.Ino] = r.Err.Error()
			} else {
				recovered[r.Ino] = r.File
			}
		}
	}
	partial := 0
	for _, c := range sel {
		if !c.Intact || (!list && recovered[c.Ino] == "") {
			partial++
		}
	}
	if asJSON {
		type row struct {
			Path        string   `json:"path"`
			Ino         uint32   `json:"ino"`
			Mode        string   `json:"mode"`
			Size        int64    `json:"size"`
			Mtime       string   `json:"mtime"`
			Transaction uint32   `json:"transaction"`
			Committed   bool     `json:"committed"`
			Confidence  string   `json:"confidence"`
			Intact      bool     `json:"intact"`
			Blocks      int64    `json:"blocks"`
			Reused      int64    `json:"reused_blocks"`
			NameFrom    string   `json:"name_from"`
			Problems    []string `json:"problems"`
			Written     string   `json:"written,omitempty"`
			Error       string   `json:"error,omitempty"`
		}
		rows := []row{}
		for _, c := range sel {
			probs := c.Problems
			if probs == nil {
				probs = []string{}
			}
			rows = append(rows, row{c.Path, c.Ino, fmt.Sprintf("%o", c.Mode), c.Size, c.Mtime.UTC().Format("2006-01-02T15:04:05.000000000Z07:00"),
				c.TID, c.Committed, string(c.Confidence), c.Intact, c.Blocks, c.Reused, c.NameFrom, probs, recovered[c.Ino], errs[c.Ino]})
		}
		if err := writeJSON(cmd.OutOrStdout(), map[string]any{"volume": v.DisplayAddress(), "journal": res.Journal, "candidates": rows}); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CONFIDENCE\tTX\tSIZE\tMTIME\tPATH\tNOTES")
		for _, c := range sel {
			note := strings.Join(c.Problems, "; ")
			if e := errs[c.Ino]; e != "" {
				note = strings.TrimPrefix(note+"; not written: "+e, "; ")
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", c.Confidence, c.TID, c.Size, shownTime(c.Mtime, utc, false), c.Path, note)
		}
		tw.Flush()
		if list {
			fmt.Fprintf(cmd.ErrOrStderr(), "imgtool: %s: %d deleted files found: %d complete, %d partial (nothing written)\n",
				v.DisplayAddress(), len(sel), len(sel)-partial, partial)
		} else {
			fmt.Fprintf(cmd.ErrOrStderr(), "imgtool: %s: %d deleted files found, %d recovered intact, %d partial or not recovered\n",
				v.DisplayAddress(), len(sel), len(sel)-partial, partial)
		}
	}
	if partial > 0 {
		if list {
			return &codeError{exitPartial, fmt.Errorf("%s: %d deleted files are partial (listed above)", v.DisplayAddress(), partial)}
		}
		return &codeError{exitPartial, fmt.Errorf("%s: %d deleted files not recovered intact (listed above)", v.DisplayAddress(), partial)}
	}
	return nil
}
