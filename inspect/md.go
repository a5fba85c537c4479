package inspect

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/imgtool/imgtool/md"
	"github.com/imgtool/imgtool/partition"
)

// KindMD is an assembled MD RAID array: a range of bytes made from its
// members, explored like a disk.
const KindMD Kind = "md"

// MDInfo describes an MD array node.
type MDInfo struct {
	UUID     string `json:"uuid"` // as mdadm prints it
	Name     string `json:"name,omitempty"`
	HomeHost string `json:"homehost,omitempty"`
	Metadata string `json:"metadata"`
	Level    string `json:"level"`
	Layout   int    `json:"layout"`
	Chunk    int64  `json:"chunk_size"`
	Devices  int    `json:"raid_devices"`
	Events   uint64 `json:"events"`
	// Members lists every member found, with its state: "active", "stale",
	// "spare", "faulty" or "duplicate".
	Members []MDMember `json:"members"`
	// Missing lists roles no member was found for.
	Missing  []int `json:"missing_roles,omitempty"`
	Degraded bool  `json:"degraded,omitempty"`
	Readable bool  `json:"readable"`
}

// MDMember is one member of an array and where it was found.
type MDMember struct {
	Address string `json:"address"`
	Role    int    `json:"role"` // -1 when it has no active role
	Events  uint64 `json:"events"`
	State   string `json:"state"`
}

// MDArray returns the assembled array of an MD node, else nil.
func (v *Volume) MDArray() *md.Array { return v.mdArray }

// mdRef is an MD member found in the tree.
type mdRef struct {
	vol  *Volume
	m    *md.Member
	used bool
}

// probeMDMember reads the superblock of a volume the probe called a
// linux_raid_member and queues it for assembly. A superblock at the end
// (0.90, 1.0) that a partition table's partition covers belongs to that
// partition, not the whole disk (as blkid decides): then it returns false
// and the caller explores the partition table instead.
func (b *builder) probeMDMember(v *Volume) bool {
	sb, err := md.Read(v.r, v.Size)
	if sb != nil && (sb.Version == "0.90" || sb.Version == "1.0") {
		if tab, terr := partition.Read(v.r, v.Size, nil); terr == nil {
			for _, p := range tab.Partitions {
				if !p.Container && p.Start <= sb.Offset && sb.Offset < p.Start+p.Size && !(p.Start == 0 && p.Size == v.Size) {
					return false
				}
			}
		}
	}
	if err != nil {
		v.addNote("MD superblock unreadable: %v", err)
		return true
	}
	b.md = append(b.md, &mdRef{vol: v, m: &md.Member{Name: v.DisplayAddress(), R: v.r, Size: v.Size, SB: sb}})
	return true
}

// assembleMD assembles the MD members found so far into arrays, places
// each array in the tree and explores it (which may find PVs, more
// members, partitions). It repeats until no new member turns up.
func (b *builder) assembleMD(t *Tree) {
	for round := 0; round < 16; round++ {
		var fresh []*mdRef
		for _, r := range b.md {
			if !r.used {
				r.used = true
				fresh = append(fresh, r)
			}
		}
		if len(fresh) == 0 {
			return
		}
		byMember := map[*md.Member]*mdRef{}
		var ms []*md.Member
		for _, r := range fresh {
			ms = append(ms, r.m)
			byMember[r.m] = r
		}
		arrays := md.Assemble(ms)
		type placed struct {
			a      *md.Array
			parent *Volume // nil: a top-level root
			refs   []*mdRef
		}
		var ps []placed
		for _, a := range arrays {
			p := placed{a: a}
			for _, m := range a.Members() {
				p.refs = append(p.refs, byMember[m])
			}
			p.parent = commonAncestor(p.refs)
			ps = append(ps, p)
		}
		// Names: two arrays with the same name under one parent get a
		// UUID prefix, as VGs do.
		count := map[string]int{}
		key := func(p placed) string { return fmt.Sprintf("%p/%s", p.parent, mdComponent(p.a)) }
		for _, p := range ps {
			count[key(p)]++
		}
		var pvs []*pvRef
		for _, p := range ps {
			name := mdComponent(p.a)
			if count[key(p)] > 1 {
				name += "@" + uuidPrefix(strings.ReplaceAll(p.a.UUIDString(), ":", ""))
			}
			parent := p.parent
			top := parent == nil
			if top {
				parent = &Volume{Kind: KindDisk, Offset: -1}
			}
			node := b.addMD(parent, name, p.a, p.refs)
			depth := depthOf(node)
			if top {
				node.parent = nil
				t.Roots = append(t.Roots, node)
				// Its members are in several images: an offset in one of
				// them would not say which.
				node.Image, node.Offset = "", -1
			}
			if node.r == nil {
				continue
			}
			if depth >= b.opts.MaxDepth {
				node.addNote("not explored: nested deeper than %d levels", b.opts.MaxDepth)
				continue
			}
			pvs = append(pvs, b.explore(node, depth)...)
		}
		b.assembleOnArrays(t, pvs)
	}
}

// assembleOnArrays assembles the PVs found inside this round's arrays
// together, so that a VG whose PVs are on two arrays (md1 and md2 of one
// server) is one VG. It sits under the array holding all its PVs, else
// under the deepest volume holding those arrays, else at the top.
func (b *builder) assembleOnArrays(t *Tree, pvs []*pvRef) {
	for _, g := range b.assemble(pvs, &t.Notes) {
		var holders []*Volume
		for _, r := range g.refs {
			holders = append(holders, mdHolder(r.vol))
		}
		if len(holders) == 0 {
			continue
		}
		place := holders[0]
		for _, h := range holders[1:] {
			if h != place {
				place = commonParent(holders)
				break
			}
		}
		if place != nil {
			b.addVG(place, g, depthOf(place)+1)
			continue
		}
		top := &Volume{Kind: KindDisk, Offset: -1}
		if vg := b.addVG(top, g, 0); vg != nil {
			vg.parent = nil
			t.Roots = append(t.Roots, vg)
		}
	}
}

// mdHolder is the MD array v is in (v itself when it is one).
func mdHolder(v *Volume) *Volume {
	for w := v; w != nil; w = w.parent {
		if w.Kind == KindMD {
			return w
		}
	}
	return v
}

// commonAncestor is the deepest volume holding every member (a disk, a
// partition, an LV...), skipping the members themselves; nil when they
// are in different images.
func commonAncestor(refs []*mdRef) *Volume {
	vols := make([]*Volume, len(refs))
	for i, r := range refs {
		vols[i] = r.vol
	}
	return commonParent(vols)
}

// commonParent is the deepest volume that is a proper ancestor of every
// one of vols; nil when there is none (they are in different images, or
// one of them is an image itself).
func commonParent(vols []*Volume) *Volume {
	var path []*Volume
	for i, vol := range vols {
		var chain []*Volume
		for v := vol.parent; v != nil; v = v.parent {
			chain = append([]*Volume{v}, chain...)
		}
		if i == 0 {
			path = chain
			continue
		}
		k := 0
		for k < len(path) && k < len(chain) && path[k] == chain[k] {
			k++
		}
		path = path[:k]
	}
	if len(path) == 0 {
		return nil
	}
	return path[len(path)-1]
}

func depthOf(v *Volume) int {
	d := 0
	for p := v.parent; p != nil; p = p.parent {
		d++
	}
	return d
}

// mdComponent is an array's address component: "md0" for a 0.90 array
// with preferred minor 0 or a v1 array named "host:0" (what mdadm
// --create /dev/md0 makes), "md-NAME" for a v1 array named "host:NAME".
func mdComponent(a *md.Array) string {
	if a.Version == "0.90" || a.Name == "" {
		return fmt.Sprintf("md%d", a.PreferredMinor)
	}
	short := a.Name
	if i := strings.IndexByte(short, ':'); i >= 0 {
		short = short[i+1:]
	}
	if _, err := strconv.Atoi(short); err == nil {
		return "md" + short
	}
	// Address components are separated by "/"; ":" starts a file path.
	short = strings.NewReplacer("/", "_", ":", "_").Replace(short)
	return "md-" + short
}

// addMD adds the array node under parent and notes on its members.
func (b *builder) addMD(parent *Volume, name string, a *md.Array, refs []*mdRef) *Volume {
	node := &Volume{Address: join(parent.Address, name), Name: name, Kind: KindMD, Offset: -1, parent: parent, mdArray: a}
	info := &MDInfo{UUID: a.UUIDString(), Name: a.Name, Metadata: a.Version, Level: a.LevelName(), Layout: a.Layout,
		Chunk: a.ChunkSize, Devices: a.RaidDisks, Events: a.Events, Missing: a.Missing()}
	if i := strings.IndexByte(a.Name, ':'); i >= 0 {
		info.HomeHost, info.Name = a.Name[:i], a.Name[i+1:]
	}
	info.Degraded = len(info.Missing) > 0
	state := map[*md.Member]string{}
	for _, m := range a.Stale {
		state[m] = "stale"
	}
	for _, m := range a.Duplicates {
		state[m] = "duplicate"
	}
	for _, m := range a.Spares {
		state[m] = "spare"
		if m.SB.Role == md.RoleFaulty {
			state[m] = "faulty"
		}
	}
	byMember := map[*md.Member]*mdRef{}
	for _, r := range refs {
		if r != nil {
			byMember[r.m] = r
		}
	}
	for _, m := range a.Members() {
		role := -1
		for i, s := range a.Slots {
			if s == m {
				role = i
			}
		}
		st := state[m]
		if st == "" {
			st = "active"
		}
		info.Members = append(info.Members, MDMember{Address: m.Name, Role: role, Events: m.SB.Events, State: st})
		if r := byMember[m]; r != nil {
			if st == "active" {
				r.vol.addNote("MD member of %s (role %d)", node.DisplayAddress(), role)
			} else {
				r.vol.addNote("MD member of %s, %s: left out of the array (events %d, the freshest member has %d)", node.DisplayAddress(), st, m.SB.Events, a.Events)
			}
		}
	}
	node.MD = info
	parent.Children = append(parent.Children, node)
	r, err := a.Open() // may add notes (a guessed raid0 size, a zone layout)
	node.Notes = append(node.Notes, a.Notes...)
	if err != nil {
		if errors.Is(err, md.ErrNotReadable) {
			node.addNote("%s: not readable: %v", a.LevelName(), err)
		} else {
			node.addNote("unreadable: %v", err)
		}
		return node
	}
	r.Name = node.DisplayAddress()
	info.Readable = true
	node.r = r
	node.Size = r.Size()
	node.Image, node.Offset = b.locate(r, r.Size())
	return node
}

var _ io.ReaderAt = (*md.Reader)(nil)
