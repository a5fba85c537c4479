package backup

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/internal/human"
	"github.com/imgtool/imgtool/osinspect"
	"github.com/imgtool/imgtool/vfs"
)

// PlanVolume is one node found in a source, and what a run would do.
type PlanVolume struct {
	Source  string `json:"source"`
	Volume  string `json:"volume"`
	Address string `json:"address"` // as in manifests (Volume is for display)
	Kind    string `json:"kind"`
	// MountPoint is where the guest mounts the volume (its fstab, through
	// OS inspection: "/", "/home", "swap"), when the volume belongs to an
	// OS found in the source.
	MountPoint string `json:"mountpoint,omitempty"`
	Content    string `json:"content,omitempty"`
	UUID       string `json:"uuid,omitempty"`
	Dump       bool   `json:"dump"`
	Level      int    `json:"level,omitempty"`
	Base       string `json:"base,omitempty"`
	Why        string `json:"why,omitempty"`
	Reason     string `json:"skip_reason,omitempty"`
	// LeftOut: holds data that a run would NOT back up.
	LeftOut bool `json:"left_out,omitempty"`
}

// PlanReport is `imgtool backup plan` for one guest.
type PlanReport struct {
	Guest     string       `json:"guest"`
	Volumes   []PlanVolume `json:"volumes"`
	Uncovered []string     `json:"uncovered_disks,omitempty"`
	LeftOut   []Skipped    `json:"left_out,omitempty"`
	Errors    []string     `json:"errors,omitempty"`
}

// Plan inspects every source of c as it is now (read-only, no snapshot)
// and says which volumes a run at date would dump and at which level.
func (r *Runner) Plan(c *Config, date time.Time) *PlanReport {
	rep := &PlanReport{Guest: c.Name}
	if c.GuestDefinition != "" {
		u, err := Uncovered(c)
		if err != nil {
			rep.Errors = append(rep.Errors, err.Error())
		}
		rep.Uncovered = u
	}
	ctx := context.Background()
	var usable []*Manifest
	if st, err := GuestStore(ctx, c); err != nil {
		rep.Errors = append(rep.Errors, err.Error())
	} else {
		all, _, _ := ReadManifestsFrom(ctx, st)
		usable = usableManifests(ctx, st, all)
	}
	for _, src := range c.Sources {
		t, closer, err := openTree(src, slog.New(slog.DiscardHandler), c.KeyFiles[src], c.LUKSHeaders[src])
		if err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("source %s: %v", src, err))
			continue
		}
		points := guestMountPoints(t)
		t.Walk(func(v *inspect.Volume) bool {
			pv := PlanVolume{Source: src, Volume: v.DisplayAddress(), Address: v.Address, Kind: string(v.Kind), MountPoint: points[v.Address]}
			if v.Content != nil {
				pv.Content, pv.UUID = v.Content.Type, v.Content.UUID
			}
			verdict, reason := classify(v, src, c.Skip)
			pv.Dump, pv.Reason, pv.LeftOut = verdict == Dump, reason, verdict == LeftOut
			if pv.LeftOut {
				rep.LeftOut = append(rep.LeftOut, Skipped{Source: src, Volume: v.DisplayAddress(), Reason: reason, LeftOut: true})
			}
			if pv.Dump {
				m := Manifest{Guest: c.Name, Source: src, Volume: v.Address, FSUUID: strings.ToLower(pv.UUID)}
				lvl, base, why := ChooseLevel(c.Schedule, r.Level, date, m.ID(), usable)
				pv.Level, pv.Why = lvl, why
				if base != nil {
					pv.Base = base.File
				}
			}
			rep.Volumes = append(rep.Volumes, pv)
			return true
		})
		closer.Close()
	}
	return rep
}

// WriteText prints the plan as a table.
func (p *PlanReport) WriteText(w io.Writer) {
	fmt.Fprintf(w, "guest %s\n", p.Guest)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  SOURCE\tVOLUME\tMOUNTED ON\tKIND\tCONTENT\tACTION")
	for _, v := range p.Volumes {
		act := ""
		switch {
		case v.Dump:
			act = fmt.Sprintf("dump level %d (%s)", v.Level, v.Why)
			if v.Base != "" {
				act += " on " + v.Base
			}
		case v.LeftOut:
			act = "NOT BACKED UP: " + v.Reason
		case v.Reason != "":
			act = "skip: " + v.Reason
		}
		mp := v.MountPoint
		if mp == "" {
			mp = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", v.Source, v.Volume, mp, v.Kind, v.Content, act)
	}
	tw.Flush()
	for _, u := range p.Uncovered {
		fmt.Fprintf(w, "  WARNING: disk %s of the guest definition is NOT backed up\n", u)
	}
	for _, e := range p.Errors {
		fmt.Fprintf(w, "  ERROR: %s\n", e)
	}
}

// listTime is how List shows dates: local, with the zone's offset, as ls
// and stat do (issue 13.8), so that a date read on another host or after
// a DST change still names one instant.
const listTime = "2006-01-02 15:04:05 -0700"

// List prints the backups of a guest directory as chains: one line per
// backup, grouped by identity, with the base each depends on.
func List(w io.Writer, dest string, guests []string) error {
	return ListStores(context.Background(), w, dest, guests, S3Config{})
}

// ListStores is List for a dest that may be s3://.
func ListStores(ctx context.Context, w io.Writer, dest string, guests []string, s3c S3Config) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GUEST\tSOURCE#VOLUME\tDATE\tLEVEL\tBASE DATE\tFILES\tSIZE\tFILE")
	for _, g := range guests {
		st, err := OpenStore(ctx, dest, g, s3c)
		if err != nil {
			return err
		}
		ms, bad, err := ReadManifestsFrom(ctx, st)
		if err != nil {
			return err
		}
		for _, b := range bad {
			fmt.Fprintf(tw, "%s\t(bad manifest: %v)\n", g, b)
		}
		seen := map[string]bool{}
		for _, m := range ms {
			if seen[m.ID()] {
				continue
			}
			seen[m.ID()] = true
			for _, n := range ms {
				if n.ID() != m.ID() {
					continue
				}
				base := "-"
				if n.Level > 0 {
					base = n.BaseDate.Local().Format(listTime)
				}
				fmt.Fprintf(tw, "%s\t%s#%s\t%s\t%d\t%s\t%d\t%s\t%s\n", g, n.Source, n.Volume,
					n.Date.Local().Format(listTime), n.Level, base, n.Files, human.BytesUpTo(n.Bytes, 'T'), n.File)
			}
		}
	}
	return tw.Flush()
}

// guestMountPoints names each volume of t by where its guest mounts it:
// the fstab of every OS root found (osinspect, as virt-inspector does it),
// and "swap" for its swap volumes. Volumes of no OS are not in the map.
func guestMountPoints(t *inspect.Tree) map[string]string {
	out := map[string]string{}
	oses := osinspect.Inspect(t, func(v *inspect.Volume) (vfs.FS, error) { return v.OpenFS(vfs.OpenOptions{}) })
	for _, o := range oses {
		for _, m := range o.Mounts {
			if m.Address != "" && m.Bind == "" {
				if _, ok := out[m.Address]; !ok {
					out[m.Address] = m.Point
				}
			}
		}
		for _, s := range o.Swap {
			if _, ok := out[s]; !ok {
				out[s] = "swap"
			}
		}
	}
	return out
}
