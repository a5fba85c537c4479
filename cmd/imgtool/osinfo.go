package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"

	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/osinspect"
	"github.com/spf13/cobra"
)

// inspectJSON is `inspect --json`: the tree, plus the operating systems
// found in it.
type inspectJSON struct {
	*inspect.Tree
	OS []*osinspect.OS `json:"operating_systems,omitempty"`
}

// printOS prints the operating systems after the tree: one line each,
// then its fstab resolved to addresses and its notes.
func printOS(w io.Writer, oses []*osinspect.OS) {
	if len(oses) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OS\tROOT\tHOSTNAME\tARCH\tINIT\tKERNELS\tPRODUCT")
	for _, o := range oses {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", o.Name(), o.Root, dash(o.Hostname), dash(o.Arch), dash(o.Init),
			dash(strings.Join(o.Kernels, " ")), dash(o.Product))
	}
	tw.Flush()
	for _, o := range oses {
		fmt.Fprintf(w, "\n%s (%s:@) mounts:\n", o.Label(), o.Root)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, m := range o.Mounts {
			switch {
			case m.Bind != "":
				fmt.Fprintf(tw, "  %s\tbind %s\t%s\n", m.Point, m.Bind, m.Spec)
			default:
				fmt.Fprintf(tw, "  %s\t%s\t%s\n", m.Point, m.Address, m.Spec)
			}
		}
		for _, s := range o.Swap {
			fmt.Fprintf(tw, "  swap\t%s\t\n", s)
		}
		tw.Flush()
		for _, n := range o.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// osLabels names the OS on each disk for the TUI ("CentOS 5.8 (www1)").
func osLabels(t *inspect.Tree, f *imageFlags) map[string]string {
	out := map[string]string{}
	for _, o := range osinspect.Inspect(t, openerFor(f)) {
		if prev, ok := out[o.Disk]; ok {
			out[o.Disk] = prev + ", " + o.Label()
		} else {
			out[o.Disk] = o.Label()
		}
	}
	return out
}

// openGuest opens the guest view "VOL:@/path": the OS whose root is VOL
// or below it, with its fstab applied. fstab lines that could not be
// attached are said on stderr (they change what the guest view shows);
// the rest of the notes are logged.
func openGuest(cmd *cobra.Command, image, vol, p string, f *imageFlags) (*fsHandle, error) {
	s, err := openImages(cmd, image, f, false)
	if err != nil {
		return nil, err
	}
	open := openerFor(f)
	o, err := findOS(s.tree, vol, open)
	if err != nil {
		s.Close()
		return nil, err
	}
	g, err := o.Guest(open, nil)
	if err != nil {
		s.Close()
		return nil, err
	}
	for _, n := range o.Notes {
		fmt.Fprintf(cmd.ErrOrStderr(), "imgtool: %s:@: %s\n", o.Root, n)
	}
	notes := g.Notes()
	for _, n := range notes {
		if n.Stale {
			fmt.Fprintf(cmd.ErrOrStderr(), "imgtool: %s:@: %s\n", o.Root, n)
		} else {
			slog.Info(n.String(), "guest", o.Root+":@")
		}
	}
	return &fsHandle{sess: s, vol: o.RootVolume(), fs: g, caps: g.Info().Caps, path: p, shown: len(notes), stderr: cmd.ErrOrStderr(), guest: true}, nil
}

// guestView opens the guest view of the OS under vol (as VOL:@).
func guestView(t *inspect.Tree, vol string, f *imageFlags) (*osinspect.Guest, *inspect.Volume, error) {
	open := openerFor(f)
	o, err := findOS(t, vol, open)
	if err != nil {
		return nil, nil, err
	}
	g, err := o.Guest(open, nil)
	if err != nil {
		return nil, nil, err
	}
	return g, o.RootVolume(), nil
}
