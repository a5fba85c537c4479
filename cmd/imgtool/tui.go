package main

import (
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/imgtool/imgtool/fixtures"
	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/osinspect"
	"github.com/imgtool/imgtool/tui"
	"github.com/imgtool/imgtool/vfs"
	"github.com/spf13/cobra"
)

func newTuiCmd(g *globalFlags) *cobra.Command {
	var f imageFlags
	var open, dest, salvageDest string
	var utc bool
	cmd := &cobra.Command{
		Use:   "tui [IMAGE]",
		Short: "Browse volumes and files in a terminal UI; preview, mark and extract",
		Long: `A keyboard-first file manager over the image: the volume tree on the
left, the files of the chosen filesystem (ext2/3/4, XFS, FAT, squashfs,
ISO 9660) in the middle, a preview on the right. Mark files with space (a: all) and press x to extract them, with
the same engine and safety rules as 'imgtool extract'. S salvages the whole
selected volume, as 'imgtool extract --salvage' does (unreachable inodes into
#orphans, salvage-report.json in the destination). Press ? for every key.

Times are local, with the zone's offset shown ("2024-03-01 14:02 +0100"), as
ls -l prints them; --utc shows them in UTC.

With no IMAGE, the embedded demo image is shown.`,
		Example: `  imgtool tui disk.img
  imgtool tui /dev/VolGroup00/domu1-snap --open VolGroup00/LogVol00
  imgtool tui dom0.img --open VolGroup00/domu1:@      # the guest's own view (/boot, /home mounted)
  imgtool tui dom0.img --open VolGroup00/domu1:@/etc  # ... starting in its /etc
  imgtool tui                       # the demo image`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := ""
			if len(args) == 1 {
				path = args[0]
			}
			f.openJournaled = true
			s, err := openImages(cmd, path, &f, true)
			if err != nil {
				return err
			}
			defer s.Close()
			title := path
			if s.demo {
				title = fixtures.DemoName
			}
			opts := tui.Options{Title: title, Dest: dest, SalvageDest: salvageDest, Open: open, NoJournal: f.noJournal,
				OSLabels: osLabels(s.tree, &f), UTC: utc}
			if vol, dir, ok := strings.Cut(open, ":/"); ok && !strings.HasPrefix(open, "@") {
				// --open VOL:/path: that directory (or that file's).
				opts.Open, opts.OpenDir = vol, "/"+dir
			}
			if gvol, gdir, ok := osinspect.SplitGuestSpec(open); ok {
				// --open VOL:@: the OS's root volume, shown as the guest
				// sees it (its fstab applied).
				g, root, err := guestView(s.tree, gvol, &f)
				if err != nil {
					return err
				}
				opts.Open, opts.OpenDir = root.Address, gdir
				opts.OpenFS = func(v *inspect.Volume) (vfs.FS, error) {
					if v == root {
						return g, nil
					}
					return v.OpenFS(vfs.OpenOptions{NoJournal: f.noJournal})
				}
			}
			m := tui.New(s.tree, opts)
			_, err = tea.NewProgram(m, tea.WithContext(cmd.Context())).Run()
			return err
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&open, "open", "", "volume address to open at start (e.g. VolGroup00/LogVol00), VOL:/path to start in that directory, or VOL:@[/path] for the guest OS under VOL with its fstab applied")
	cmd.Flags().StringVar(&dest, "dest", "./imgtool-extract", "default destination offered by x")
	cmd.Flags().BoolVar(&utc, "utc", false, "times in UTC instead of the local time zone")
	cmd.Flags().StringVar(&salvageDest, "salvage-dest", "./imgtool-salvage", "default destination offered by S (salvage the whole volume)")
	return cmd
}
