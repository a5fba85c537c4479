package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/osinspect"
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
