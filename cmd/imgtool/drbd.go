package main

import (
	"errors"
	"fmt"
	"github.com/imgtool/imgtool/termsafe"
	"io"
	"os"
	"strings"

	"github.com/imgtool/imgtool/drbd"
	"github.com/imgtool/imgtool/image"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func newDrbdCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "drbd",
		Short: "Show DRBD meta data of a backing device and compare two halves of a resource",
		Long: `DRBD keeps "internal" meta data at the end of each backing device: the
data generation UUIDs, flags, activity log and bitmap. The replicated data
(the filesystem) is the part before it.

  show IMAGE [VOLUME]   the meta data of IMAGE (or of VOLUME inside it)
  compare A B           which half is newer, or whether they split-brained,
                        by the rules the DRBD kernel module applies when the
                        two connect (drbd_uuid_compare)`,
	}
	cmd.AddCommand(newDrbdShowCmd(), newDrbdCompareCmd())
	return cmd
}

func newDrbdShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show IMAGE [VOLUME]",
		Short: "Show the DRBD meta data at the end of IMAGE or of a volume in it",
		Example: `  imgtool drbd show /dev/vg0/r0-backing
  imgtool drbd show disk.img p3`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			vol := ""
			if len(args) == 2 {
				vol = args[1]
			}
			m, r, closeFn, err := openDRBD(cmd, args[0], vol)
			if err != nil {
				return err
			}
			defer closeFn()
			bits, bitsErr := m.BitsSet(r, 0)
			if asJSON {
				out := drbdJSON(m)
				if bitsErr == nil {
					out["bits_set"] = bits
				}
				return writeJSON(cmd.OutOrStdout(), out)
			}
			w := cmd.OutOrStdout()
			printDRBD(w, m)
			if bitsErr != nil {
				fmt.Fprintf(w, "bitmap:           %v\n", bitsErr)
			} else {
				fmt.Fprintf(w, "bitmap:           %d bits set (%s out of sync)\n", bits, humanSize(bits*int64(m.BMBytesPer)))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newDrbdCompareCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "compare A B",
		Short: "Say which of two DRBD backing devices is newer, or whether they diverged",
		Long: `Read the meta data of both halves of a DRBD resource and apply the
kernel's UUID comparison (drbd_uuid_compare, drbd 8.4 rules; for v09 meta
data the same rules on the current, per-peer bitmap and history UUIDs):
who would become SyncSource, whether a full or bitmap-based resync is
needed, or whether the two split-brained or hold unrelated data.

Exit status: 0 when drbd would resolve it by itself (in sync, or one side
newer); 4 on split brain or unrelated data, which need a human (the verdict
is still printed, as text or --json); 1 on an error, 2 on a usage error.`,
		Example: `  imgtool drbd compare nodeA-r0.img nodeB-r0.img`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, _, closeA, err := openDRBD(cmd, args[0], "")
			if err != nil {
				return err
			}
			defer closeA()
			b, _, closeB, err := openDRBD(cmd, args[1], "")
			if err != nil {
				return err
			}
			defer closeB()
			v := drbd.Compare(a, b)
			needsHuman := func() error {
				if v.SplitBrain() || v.Result == -1000 {
					return &codeError{exitDRBDSplit, errors.New(v.Summary())}
				}
				return nil
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), map[string]any{
					"a": drbdJSON(a), "b": drbdJSON(b),
					"uuid_compare": v.Result, "rule": v.Rule, "undecided": v.Undecided,
					"split_brain": v.SplitBrain(), "disk_state_adjusted": v.DiskStateAdjusted,
					"summary": v.Summary(), "reasons": v.Reasons,
				}); err != nil {
					return err
				}
				return needsHuman()
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "A: %s\n   %s\n", args[0], a.GI(b))
			fmt.Fprintf(w, "B: %s\n   %s\n", args[1], b.GI(a))
			fmt.Fprintf(w, "\n%s\n\n", v.Summary())
			fmt.Fprintf(w, "uuid_compare()=%d by rule %d\n", v.Result, v.Rule)
			for _, r := range v.Reasons {
				fmt.Fprintf(w, "  %s\n", r)
			}
			return needsHuman()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

// exitDRBDSplit is drbd compare's exit status for split brain or unrelated
// data.
const exitDRBDSplit = 4

// openDRBD opens path (decompressing with a progress bar on a terminal)
// and reads the meta data at the end of it, or of volume vol inside it.
func openDRBD(cmd *cobra.Command, path, vol string) (*drbd.Metadata, io.ReaderAt, func(), error) {
	im, err := image.OpenWithOptions(path, &image.Options{Progress: decompressProgress(cmd.ErrOrStderr(), path)})
	if err != nil {
		return nil, nil, nil, err
	}
	var r io.ReaderAt = im
	size := im.Size()
	closeFn := func() { im.Close() }
	if vol != "" {
		s, err := openImages(cmd, path, &imageFlags{}, false)
		im.Close()
		if err != nil {
			return nil, nil, nil, err
		}
		v, err := s.tree.Resolve(vol)
		if err != nil {
			s.Close()
			return nil, nil, nil, err
		}
		r, size = v.Reader(), v.Reader().Size()
		closeFn = s.Close
	}
	m, err := drbd.Read(r, size)
	if err != nil {
		closeFn()
		name := path
		if vol != "" {
			name += " " + vol
		}
		return nil, nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return m, r, closeFn, nil
}

func printDRBD(w io.Writer, m *drbd.Metadata) {
	magic := fmt.Sprintf("%#08x", m.Magic)
	if m.Unclean() {
		magic += " (8.4 unclean: the activity log was not applied)"
	}
	fmt.Fprintf(w, "meta data:        DRBD %s internal, superblock at byte %d, magic %s\n", m.Version, m.Offset, magic)
	fmt.Fprintf(w, "data:             bytes 0..%d (%s); last agreed size %d sectors (%s)\n", m.DataSize(), humanSize(m.DataSize()), m.LaSizeSect, humanSize(int64(m.LaSizeSect)*512))
	if m.Version == "v09" {
		fmt.Fprintf(w, "node id:          %d (max peers %d)\n", m.NodeID, m.MaxPeers)
		fmt.Fprintf(w, "current UUID:     %016X\n", m.Current)
		for i, p := range m.Peers {
			if p.BitmapUUID != 0 || p.Flags != 0 || p.BitmapIndex >= 0 {
				fmt.Fprintf(w, "peer %-2d:          bitmap UUID %016X, bitmap index %d, flags %#x\n", i, p.BitmapUUID, p.BitmapIndex, p.Flags)
			}
		}
		var hs []string
		for _, h := range m.History {
			if h != 0 {
				hs = append(hs, fmt.Sprintf("%016X", h))
			}
		}
		fmt.Fprintf(w, "history UUIDs:    %s\n", strings.Join(hs, " "))
	} else {
		fmt.Fprintf(w, "generation (GI):  %s  (current:bitmap:history:history)\n", m.GI(nil))
	}
	fmt.Fprintf(w, "device UUID:      %016X\n", m.DeviceUUID)
	fmt.Fprintf(w, "flags:            %#x %s\n", m.Flags, strings.Join(m.FlagNames(), " "))
	fmt.Fprintf(w, "activity log:     at byte %d, %d extents, %d stripe(s) of %d KiB\n", m.Offset+int64(m.ALOffset)*512, m.ALNrExtents, m.ALStripes, m.ALStripe4k*4)
	fmt.Fprintf(w, "meta data size:   %d sectors (%s)\n", m.MdSizeSect, humanSize(int64(m.MdSizeSect)*512))
}

func drbdJSON(m *drbd.Metadata) map[string]any {
	hex := func(u uint64) string { return fmt.Sprintf("%016X", u) }
	var hist []string
	for _, h := range m.History {
		hist = append(hist, hex(h))
	}
	out := map[string]any{
		"md_version": m.Version, "magic": fmt.Sprintf("%#08x", m.Magic), "offset": m.Offset,
		"data_size": m.DataSize(), "la_size_sect": m.LaSizeSect,
		"current_uuid": hex(m.Current), "history_uuids": hist, "device_uuid": hex(m.DeviceUUID),
		"flags": m.Flags, "flag_names": m.FlagNames(),
		"al_offset": m.Offset + int64(m.ALOffset)*512, "bm_offset": m.DataSize(), "md_size_sect": m.MdSizeSect,
	}
	if m.Version == "v08" {
		out["bitmap_uuid"] = hex(m.Bitmap)
	} else {
		out["node_id"] = m.NodeID
		var peers []map[string]any
		for i, p := range m.Peers {
			if p.BitmapUUID != 0 || p.BitmapIndex >= 0 {
				peers = append(peers, map[string]any{"node_id": i, "bitmap_uuid": hex(p.BitmapUUID), "bitmap_index": p.BitmapIndex, "flags": p.Flags})
			}
		}
		out["peers"] = peers
	}
	return out
}

// decompressProgress returns an image.Options.Progress callback that draws a bar
// on w when w is a terminal, and nil (quiet) otherwise.
func decompressProgress(w io.Writer, name string) func(done, total int64) {
	f, ok := termsafe.Unwrap(w).(*os.File)
	if !ok {
		return nil
	}
	if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err != nil {
		return nil
	}
	return func(done, total int64) {
		if total < 0 {
			// The format declares no size (gzip, bzip2): count bytes.
			fmt.Fprintf(w, "\rdecompressing %s: %s", name, humanSize(done))
			return
		}
		const width = 30
		n := 0
		if total > 0 {
			n = int(done * width / total)
		}
		n = min(max(n, 0), width)
		fmt.Fprintf(w, "\rdecompressing %s [%s%s] %s/%s", name, strings.Repeat("#", n), strings.Repeat(".", width-n), humanSize(done), humanSize(total))
		if done >= total {
			fmt.Fprintln(w)
		}
	}
}
