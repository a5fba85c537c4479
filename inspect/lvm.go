package inspect

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/imgtool/imgtool/image"
	"github.com/imgtool/imgtool/lvm"
)

// pvRef is an LVM2 PV found in the tree.
type pvRef struct {
	vol *Volume
	pv  *lvm.PV
}

func readPV(v *Volume) (*pvRef, error) {
	pv, err := lvm.ReadPV(v.r, v.Size)
	if err != nil {
		return nil, err
	}
	pv.Name = v.DisplayAddress()
	v.addNotes(pv.Notes, pv.Damage)
	return &pvRef{vol: v, pv: pv}, nil
}

// vgGroup is an assembled VG with the tree volumes holding its PVs.
type vgGroup struct {
	vg   *lvm.VG
	refs []*pvRef
	name string // address component: the VG name, or name@uuid on a clash
}

// assemble groups PVs into VGs (by VG UUID; lvm.Assemble) and names them.
// VGs at one level that share a name get a UUID prefix: "VolGroup00@R8uMYr".
func (b *builder) assemble(pvs []*pvRef, notes *[]string) []*vgGroup {
	if len(pvs) == 0 {
		return nil
	}
	raw := make([]*lvm.PV, len(pvs))
	byPV := map[*lvm.PV]*pvRef{}
	for i, p := range pvs {
		raw[i] = p.pv
		byPV[p.pv] = p
	}
	vgs, err := lvm.Assemble(raw, b.opts.LVM)
	if err != nil {
		*notes = append(*notes, fmt.Sprintf("LVM: %v%s", err, (&vgGroup{refs: pvs}).metadataWhere(err)))
	}
	var out []*vgGroup
	count := map[string]int{}
	for _, vg := range vgs {
		g := &vgGroup{vg: vg, name: vg.Name}
		for _, p := range vg.PVs {
			if r := byPV[p.PV]; p.PV != nil && r != nil {
				g.refs = append(g.refs, r)
			}
		}
		count[vg.Name]++
		out = append(out, g)
	}
	for _, g := range out {
		if count[g.vg.Name] > 1 {
			g.name = g.vg.Name + "@" + uuidPrefix(g.vg.UUID)
		}
	}
	return out
}

// metadataWhere says where the metadata an LV's error names lies: the
// copy on one of the VG's PVs (lvm.MetadataError), placed through that
// PV's volume; "" for other errors.
func (g *vgGroup) metadataWhere(err error) string {
	var me interface{ MetadataPV() string }
	if !errors.As(err, &me) {
		return ""
	}
	for _, r := range g.refs {
		if r.pv.UUID == me.MetadataPV() {
			return r.vol.Where(err)
		}
	}
	return ""
}

func uuidPrefix(u string) string {
	u = strings.ReplaceAll(u, "-", "")
	if len(u) > 6 {
		u = u[:6]
	}
	return u
}

// addVG adds a VG node under parent and its LVs under it, exploring each
// readable LV as a disk of its own.
func (b *builder) addVG(parent *Volume, g *vgGroup, depth int) *Volume {
	vg := g.vg
	node := &Volume{Address: join(parent.Address, g.name), Name: g.name, Kind: KindVG, Offset: -1, parent: parent,
		VG: &VGInfo{Name: vg.Name, UUID: vg.UUID, Seqno: vg.Seqno, ExtentSize: vg.ExtentSize, Missing: vg.Missing}, vg: vg}
	node.Notes = append(node.Notes, vg.Notes...)
	for _, p := range vg.PVs {
		info := PVInfo{UUID: p.UUID}
		for _, r := range g.refs {
			if r.pv == p.PV {
				info.Address = r.vol.DisplayAddress()
				r.vol.addNote("PV of VG %s", node.Address)
			}
		}
		node.VG.PVs = append(node.VG.PVs, info)
	}
	for _, m := range vg.Missing {
		node.addNote("PV %s is missing: LVs with extents on it read only where other PVs hold them", m)
	}
	parent.Children = append(parent.Children, node)
	for _, lv := range vg.LVs {
		if !lv.Visible {
			continue // sub-LVs (rimage, rmeta, tmeta, cow...) are reached through their top LV
		}
		c := &Volume{Address: join(node.Address, lv.Name), Name: lv.Name, Kind: KindLV, Offset: -1, Size: lv.Size, parent: node,
			LV: &LVInfo{UUID: lv.UUID, Segtype: lv.Type, Segments: len(lv.Segments), Status: lv.Status}, lv: lv}
		node.Children = append(node.Children, c)
		r, err := lv.Open()
		if err != nil {
			if errors.Is(err, lvm.ErrNotReadable) {
				c.addNote("%s: not readable yet", lv.Type)
			} else {
				c.addNote("unreadable: %v%s", err, g.metadataWhere(err))
			}
			continue
		}
		c.LV.Readable = true
		c.r = r
		if sts, err := lv.RaidStatus(); err == nil {
			for _, st := range sts {
				for _, line := range st.Summary() {
					c.addNote("%s", line)
				}
			}
		}
		c.Image, c.Offset = b.locate(r, lv.Size)
		b.level(c, depth+1)
	}
	return node
}

// locate finds the image file and offset holding all of r, when r is one
// contiguous range of an image.
func (b *builder) locate(r io.ReaderAt, size int64) (string, int64) {
	under, off, run, err := image.Resolve(r, 0)
	if err != nil || run < size {
		return "", -1
	}
	if name, ok := b.images[under]; ok {
		return name, off
	}
	return "", -1
}

// flagClashes marks VGs that share a name with another VG anywhere in the
// tree (lvm2 refuses to activate either: "Fix duplicate VG names") or with
// a VG on the running host.
func (b *builder) flagClashes(t *Tree) {
	byName := map[string][]*Volume{}
	t.Walk(func(v *Volume) bool {
		if v.Kind == KindVG {
			byName[v.VG.Name] = append(byName[v.VG.Name], v)
		}
		return true
	})
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		vs := byName[name]
		if len(vs) > 1 {
			for _, v := range vs {
				v.VG.Clash = true
				var others []string
				for _, o := range vs {
					if o != v {
						others = append(others, fmt.Sprintf("%s (UUID %s)", o.DisplayAddress(), o.VG.UUID))
					}
				}
				v.addNote("VG name clash: %q is also the VG at %s", name, strings.Join(others, ", "))
			}
			t.Notes = append(t.Notes, fmt.Sprintf("%d volume groups are named %q; lvm2 on a host that sees them all refuses them (\"Fix duplicate VG names\"). imgtool tells them apart by address; `imgtool lvm rename` can rename one on disk.", len(vs), name))
		}
		if b.opts.HostVGNames(name) {
			for _, v := range vs {
				v.VG.Clash = true
				v.addNote("VG name clash: this host has a VG named %q too", name)
			}
			t.Notes = append(t.Notes, fmt.Sprintf("this host has a volume group named %q as well: activating the image's VG on this host would clash", name))
		}
	}
}
