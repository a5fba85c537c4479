package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"

	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/osinspect"
	"github.com/spf13/cobra"
)

func newInspectCmd(g *globalFlags) *cobra.Command {
	var f imageFlags
	var asJSON, noOS bool
	cmd := &cobra.Command{
		Use:   "inspect [IMAGE]",
		Short: "Show the tree of partitions, volume groups, LVs and filesystems in an image",
		Long: `Show everything found in IMAGE: partition tables, LVM2 PVs, VGs and LVs
(recursively, so a guest disk inside an LV shows its own partitions and VGs),
filesystems, swap and other signatures, with their addresses.

With no IMAGE, the embedded demo image is shown.`,
		Example: `  imgtool inspect disk.img
  imgtool inspect /dev/VolGroup00/domu1-snap --json
  imgtool inspect pv1.img --add pv2.img`,
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
			var oses []*osinspect.OS
			if !noOS {
				oses = osinspect.Inspect(s.tree, openerFor(&f))
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), inspectJSON{Tree: s.tree, OS: oses})
			}
			printTree(cmd.OutOrStdout(), s.tree)
			printOS(cmd.OutOrStdout(), oses)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the tree as JSON")
	cmd.Flags().BoolVar(&noOS, "no-os", false, "do not look for operating systems (no filesystem is opened)")
	return cmd
}

// jsonVersion is the "version" of every JSON document imgtool writes
// (docs/json.md). It changes only when a field changes meaning or goes;
// new fields do not change it.
const jsonVersion = 1

// writeJSON writes v, which must encode as a JSON object, as one document
// with "version" (jsonVersion) as its first key (issue 13.9: one rule for
// every command; a command whose payload is a list puts it under a named
// key). A list is always a list: nil slices anywhere in v are written as
// [], never null, so that `jq '.lvs[]'` works on an image with no LVs.
func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(emptyLists(v))
	if err != nil {
		return err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil || top == nil {
		return fmt.Errorf("internal error: a JSON document must be an object, not %.20s", b)
	}
	if _, ok := top["version"]; ok {
		return fmt.Errorf("internal error: a JSON document has its own top-level \"version\"")
	}
	doc := fmt.Appendf(nil, `{"version":%d`, jsonVersion)
	if len(top) > 0 {
		doc = append(append(doc, ','), b[1:]...)
	} else {
		doc = append(doc, '}')
	}
	var out bytes.Buffer
	if err := json.Indent(&out, doc, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// emptyLists returns a copy of v in which every nil slice reachable
// through structs, pointers, maps, slices and interfaces is an empty one.
func emptyLists(v any) any {
	if v == nil {
		return nil
	}
	rv := reflect.ValueOf(v)
	c := reflect.New(rv.Type()).Elem()
	c.Set(rv)
	return fixLists(c, 0, map[uintptr]bool{}).Interface()
}

// fixLists does emptyLists' work; a pointer already seen (a cycle, or
// shared data) is left as it is.
func fixLists(v reflect.Value, depth int, seen map[uintptr]bool) reflect.Value {
	if depth > 64 {
		return v
	}
	switch v.Kind() {
	case reflect.Slice:
		if v.IsNil() {
			if v.Type().Elem().Kind() == reflect.Uint8 {
				return v // []byte is base64, not a list
			}
			return reflect.MakeSlice(v.Type(), 0, 0)
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := 0; i < v.Len(); i++ {
			c.Index(i).Set(fixLists(v.Index(i), depth+1, seen))
		}
		return c
	case reflect.Pointer:
		if v.IsNil() || seen[v.Pointer()] {
			return v
		}
		seen[v.Pointer()] = true
		c := reflect.New(v.Type().Elem())
		c.Elem().Set(fixLists(v.Elem(), depth+1, seen))
		return c
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		f := fixLists(v.Elem(), depth+1, seen)
		c := reflect.New(v.Type()).Elem()
		c.Set(f)
		return c
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		c := reflect.MakeMapWithSize(v.Type(), v.Len())
		it := v.MapRange()
		for it.Next() {
			c.SetMapIndex(it.Key(), fixLists(it.Value(), depth+1, seen))
		}
		return c
	case reflect.Struct:
		c := reflect.New(v.Type()).Elem()
		c.Set(v)
		for i := 0; i < v.NumField(); i++ {
			if c.Field(i).CanSet() {
				c.Field(i).Set(fixLists(v.Field(i), depth+1, seen))
			}
		}
		return c
	}
	return v
}

// printTree prints an lsblk-like table: the address column carries the
// tree drawing, then offset (bytes, for losetup -o), size, type, label,
// UUID and notes.
func printTree(w io.Writer, t *inspect.Tree) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tOFFSET\tSIZE\tTYPE\tLABEL\tUUID\tNOTES")
	var row func(v *inspect.Volume, prefix, branch string)
	row = func(v *inspect.Volume, prefix, branch string) {
		name := v.Address
		if v.Kind == inspect.KindDisk && v.Address == "" {
			name = v.Name
		} else if v.Kind == inspect.KindDisk && v.Format != "" {
			name = v.Address + " (" + v.Name + ")"
		}
		if v.Format != "" && v.Format != "raw" {
			name += " [" + v.Format + "]"
		}
		off := "-"
		if v.Offset >= 0 && v.Kind != inspect.KindVG {
			off = fmt.Sprint(v.Offset)
		}
		size := "-"
		if v.Kind != inspect.KindVG {
			size = humanSize(v.Size)
		}
		typ, label, uuid := describe(v)
		notes := v.Notes
		if m := v.MD; m != nil {
			notes = append([]string{mdSummary(m)}, notes...)
		}
		if d := v.DRBD; d != nil {
			notes = append([]string{fmt.Sprintf("DRBD %s GI %s flags %s, data %s", d.Version, d.GI, strings.Join(d.Flags, ","), humanSize(d.DataSize))}, notes...)
		}
		if l := v.LUKS; l != nil {
			state := "unlocked"
			if l.Locked {
				state = "locked"
			}
			notes = append([]string{fmt.Sprintf("LUKS%d %s, %d-byte sectors, keyslots %v %v, %s", l.Version, l.Cipher, l.SectorSize, l.Keyslots, l.KDFs, state)}, notes...)
		}
		fmt.Fprintf(tw, "%s%s%s\t%s\t%s\t%s\t%s\t%s\t%s\n", prefix, branch, name, off, size, typ, label, uuid, strings.Join(notes, "; "))
		childPrefix := prefix
		switch branch {
		case "├─":
			childPrefix += "│ "
		case "└─":
			childPrefix += "  "
		}
		for i, c := range v.Children {
			b := "├─"
			if i == len(v.Children)-1 {
				b = "└─"
			}
			row(c, childPrefix, b)
		}
	}
	for _, r := range t.Roots {
		row(r, "", "")
	}
	tw.Flush()
	for _, n := range t.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func describe(v *inspect.Volume) (typ, label, uuid string) {
	switch v.Kind {
	case inspect.KindVG:
		typ = "VG"
		if v.VG != nil {
			uuid = v.VG.UUID
		}
		return
	}
	if v.Content != nil {
		typ, label, uuid = v.Content.Type, v.Content.Label, v.Content.UUID
		if v.Content.Info["state"] == "needs_recovery" {
			typ += " (needs_recovery)"
		}
	} else if v.Partition != nil && v.Partition.Container {
		typ = "extended"
	} else if v.LV != nil && !v.LV.Readable {
		typ = v.LV.Segtype
	} else {
		typ = "unknown"
	}
	return
}

// humanSize prints sizes as lsblk does: 1024-based, one decimal when small.
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	units := "KMGTPE"
	f := float64(n)
	i := -1
	for f >= unit && i < len(units)-1 {
		f /= unit
		i++
	}
	if f >= 10 || f == float64(int64(f)) {
		return fmt.Sprintf("%.0f%c", f, units[i])
	}
	return fmt.Sprintf("%.1f%c", f, units[i])
}

// mdSummary is the first note of an MD array row: level, metadata, members
// present, events.
func mdSummary(m *inspect.MDInfo) string {
	active := 0
	for _, mb := range m.Members {
		if mb.State == "active" {
			active++
		}
	}
	s := fmt.Sprintf("MD %s (metadata %s), %d of %d members, events %d, UUID %s", m.Level, m.Metadata, active, m.Devices, m.Events, m.UUID)
	if m.Degraded {
		s += ", degraded"
	}
	return s
}
