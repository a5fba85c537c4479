package tui

import (
	"fmt"
	"strings"

	"charm.land/lipgloss/v2"

	"github.com/imgtool/imgtool/inspect"
)

// volRow is one line of the volumes pane: a node of the inspect tree and
// its depth.
type volRow struct {
	v     *inspect.Volume
	depth int
	os    string // the guest OS on this disk ("CentOS 5.8 (www1)"), Options.OSLabels
}

// volumesPane lists the inspect tree, flattened depth-first. It never
// blocks: the tree is already built when the program starts.
type volumesPane struct {
	rows        []volRow
	cursor, top int
}

func newVolumesPane(t *inspect.Tree, osLabels map[string]string) volumesPane {
	var p volumesPane
	var walk func(v *inspect.Volume, d int)
	walk = func(v *inspect.Volume, d int) {
		p.rows = append(p.rows, volRow{v, d, osLabels[v.Address]})
		for _, c := range v.Children {
			walk(c, d+1)
		}
	}
	if t != nil {
		for _, r := range t.Roots {
			walk(r, 0)
		}
	}
	// Start on the first volume that can be browsed: that is what a
	// person opening an image wants to see.
	for i, r := range p.rows {
		if enterable(r.v) == "" {
			p.cursor = i
			break
		}
	}
	return p
}

func (p *volumesPane) selected() *inspect.Volume {
	if p.cursor < 0 || p.cursor >= len(p.rows) {
		return nil
	}
	return p.rows[p.cursor].v
}

// find moves the cursor to the volume with the given address.
func (p *volumesPane) find(addr string) bool {
	for i, r := range p.rows {
		if r.v.Address == addr {
			p.cursor = i
			return true
		}
	}
	return false
}

func (p *volumesPane) move(d, height int) {
	p.cursor = clamp(p.cursor+d, 0, len(p.rows)-1)
	p.top = scrollTop(p.top, p.cursor, height, len(p.rows))
}

// enterable returns "" when the volume can be browsed, or why not.
func enterable(v *inspect.Volume) string {
	switch {
	case v.Kind == inspect.KindVG:
		return "a volume group: its logical volumes are listed below it"
	case v.LV != nil && !v.LV.Readable:
		return "not readable yet (" + v.LV.Segtype + " segments)"
	case v.MD != nil && !v.MD.Readable:
		return "an MD " + v.MD.Level + " array that cannot be read (see its notes)"
	case v.Content == nil:
		if v.Table != nil {
			return "a " + v.Table.Scheme + " partition table: its partitions are listed below it"
		}
		return "unknown content: no filesystem signature found"
	case v.Content.Type == "swap":
		return "swap space: no files to browse"
	case v.Content.Type == "LVM2_member":
		return "an LVM physical volume: its volume group is listed separately"
	case v.Content.Type == "linux_raid_member":
		return "an MD RAID member: its array is listed separately"
	case v.Content.Type == "dos" || v.Content.Type == "gpt":
		return "a partition table: its partitions are listed below it"
	case v.Partition != nil && v.Partition.Container:
		return "an extended partition: its logical partitions are listed below it"
	case !v.Readable() && v.Reader() != nil:
		return v.Content.Type + " is not readable yet (imgtool reads " + inspect.ReadableTypes() + ")"
	case v.Reader() == nil:
		return "its bytes cannot be read"
	}
	return ""
}

// volType is the short type badge of a volume.
func volType(v *inspect.Volume) string {
	switch {
	case v.Kind == inspect.KindVG:
		return "VG"
	case v.Content != nil:
		return v.Content.Type
	case v.Table != nil:
		return v.Table.Scheme
	}
	return "?"
}

func volName(v *inspect.Volume) string {
	if v.Address == "" {
		return v.Image
	}
	return v.Name
}

// volBadge is the right-hand text of a volume row: warnings, type, size,
// label.
func volBadge(v *inspect.Volume) (badge, warn string) {
	badge = volType(v)
	if v.Kind != inspect.KindVG {
		badge += " " + humanSize(v.Size)
	}
	if v.Content != nil && v.Content.Label != "" {
		badge += " " + safeName(v.Content.Label)
	}
	if len(v.Notes) > 0 || (v.Content != nil && len(v.Content.Notes) > 0) {
		warn = "!"
	}
	if v.Content != nil && v.Content.Info["state"] == "needs_recovery" {
		warn = "! recovery"
	}
	if v.VG != nil && v.VG.Clash {
		warn = "! clash"
	}
	if v.LV != nil && !v.LV.Readable {
		warn = "! unreadable"
	}
	if warn != "" {
		badge = warn + " " + badge
	}
	return badge, warn
}

// badge is volBadge with the OS found on the disk in front.
func (r volRow) badge() (badge, warn string) {
	badge, warn = volBadge(r.v)
	if r.os != "" {
		badge = safeName(r.os) + " · " + badge
	}
	return badge, warn
}

// naturalWidth is the width the volumes pane needs to show every row
// whole; compact counts names only.
func (p *volumesPane) naturalWidth(compact bool) int {
	w := 0
	for _, r := range p.rows {
		n := 1 + 2*r.depth + lipgloss.Width(safeName(volName(r.v))) + 1
		if compact {
			n += 2 // room for a "!"
		} else {
			b, _ := r.badge()
			n += lipgloss.Width(b) + 1
		}
		w = max(w, n)
	}
	return w
}

// viewVolumes draws the tree. compact leaves out the badges (the pane is
// then only context for the files pane; the preview has the details).
func (m *Model) viewVolumes(w, h int, focused, compact bool) []string {
	p := &m.vols
	st := &m.st
	p.top = scrollTop(p.top, p.cursor, h, len(p.rows))
	lines := make([]string, 0, h)
	for i := p.top; i < len(p.rows) && len(lines) < h; i++ {
		r := p.rows[i]
		v := r.v
		badge, warn := r.badge()
		if compact {
			badge = ""
			if warn != "" {
				badge = "!"
			}
		}
		bw := min(lipgloss.Width(badge)+1, w/2)
		lead := " "
		if m.files.vol == v {
			lead = "▸" // the volume open in the files pane
		}
		name := fit(lead+strings.Repeat("  ", r.depth)+safeName(volName(v)), w-bw)
		b := fitLeft(badge, bw)
		switch {
		case i == p.cursor && focused:
			lines = append(lines, st.Cursor.Render(name+b))
		case i == p.cursor:
			lines = append(lines, st.CursorBlur.Render(name+b))
		default:
			ns, bs := st.Dim, st.Badge
			if enterable(v) == "" {
				ns = st.Dir
			}
			if warn != "" {
				bs = st.Warn
			}
			lines = append(lines, ns.Render(name)+bs.Render(b))
		}
	}
	return lines
}

// volumeDetails is the preview of a volume: everything inspect knows.
func volumeDetails(v *inspect.Volume) []string {
	var out []string
	add := func(k, val string) {
		if val != "" {
			out = append(out, fmt.Sprintf("%-9s %s", k, val))
		}
	}
	add("address", v.DisplayAddress())
	add("kind", string(v.Kind))
	add("type", volType(v))
	if v.Kind != inspect.KindVG {
		add("size", fmt.Sprintf("%s (%d bytes)", humanSize(v.Size), v.Size))
		if v.Offset >= 0 {
			add("offset", fmt.Sprintf("%d in %s", v.Offset, v.Image))
		}
	}
	if c := v.Content; c != nil {
		add("label", c.Label)
		add("uuid", c.UUID)
		add("version", c.Version)
	}
	if pi := v.Partition; pi != nil {
		add("part", fmt.Sprintf("#%d type %s %s", pi.Number, pi.Type, pi.TypeName))
		add("name", pi.Name)
	}
	if vg := v.VG; vg != nil {
		add("vg uuid", vg.UUID)
		add("pvs", fmt.Sprint(len(vg.PVs)))
		if len(vg.Missing) > 0 {
			add("missing", strings.Join(vg.Missing, ", "))
		}
	}
	if lv := v.LV; lv != nil {
		add("lv uuid", lv.UUID)
		add("segments", fmt.Sprintf("%d %s", lv.Segments, lv.Segtype))
	}
	out = append(out, "")
	if why := enterable(v); why != "" {
		out = append(out, "Not browsable: "+why+".")
	} else {
		out = append(out, "Press enter to browse its files.")
	}
	notes := append([]string(nil), v.Notes...)
	if v.Content != nil {
		notes = append(notes, v.Content.Notes...)
	}
	if len(notes) > 0 {
		out = append(out, "", "Notes:")
		for _, n := range notes {
			out = append(out, "  ! "+n)
		}
	}
	return out
}

func clamp(v, lo, hi int) int {
	if v > hi {
		v = hi
	}
	if v < lo {
		v = lo
	}
	return v
}

// scrollTop returns the first visible row so that cursor stays inside a
// window of height rows over n rows, moving top as little as possible.
func scrollTop(top, cursor, height, n int) int {
	if height <= 0 {
		return 0
	}
	if cursor < top {
		top = cursor
	}
	if cursor >= top+height {
		top = cursor - height + 1
	}
	return clamp(top, 0, max(0, n-height))
}
