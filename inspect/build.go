package inspect

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/imgtool/imgtool/drbd"
	"github.com/imgtool/imgtool/image"
	"github.com/imgtool/imgtool/internal/where"
	"github.com/imgtool/imgtool/partition"
	"github.com/imgtool/imgtool/vfs"
)

// maxPartitions bounds how many partitions of one table are explored.
const maxPartitions = 256

type builder struct {
	opts   Options
	images map[io.ReaderAt]string // source readers → image names
	log    *slog.Logger
	nvol   int
	budget int      // total nodes, so a hostile image cannot make the tree explode
	md     []*mdRef // MD members found anywhere in the tree (md.go)
}

// Inspect probes every image and builds the tree.
func Inspect(srcs []Source, opts *Options) (*Tree, error) {
	if len(srcs) == 0 {
		return nil, errors.New("inspect: no image")
	}
	b := &builder{budget: 10000, images: map[io.ReaderAt]string{}}
	if opts != nil {
		b.opts = *opts
	}
	if b.opts.MaxDepth == 0 {
		b.opts.MaxDepth = 8
	}
	b.log = b.opts.Logger
	if b.log == nil {
		b.log = slog.Default()
	}
	if b.opts.HostVGNames == nil {
		b.opts.HostVGNames = hostHasVG
	}
	t := &Tree{}
	var pvs []*pvRef
	for i, s := range srcs {
		addr := ""
		if i > 0 {
			addr = fmt.Sprintf("a%d", i)
		}
		d := &Volume{Address: addr, Name: filepath.Base(s.Name), Kind: KindDisk, Image: s.Name,
			Offset: 0, Size: s.Size, r: image.NewSection(s.R, 0, s.Size), Format: s.Format}
		d.Notes = append(d.Notes, s.Notes...)
		b.images[s.R] = s.Name
		t.Roots = append(t.Roots, d)
		pvs = append(pvs, b.explore(d, 0)...)
	}
	b.assembleTop(t, pvs)
	b.assembleMD(t)
	b.flagClashes(t)
	return t, nil
}

// explore probes v's content and, for a partition table, its partitions.
// It returns the LVM PVs found at v's level (v itself or its partitions);
// the caller assembles them into VGs.
func (b *builder) explore(v *Volume, depth int) []*pvRef {
	b.nvol++
	v.journal = b.opts.Journal
	if depth > b.opts.MaxDepth {
		v.addNote("not explored: nested deeper than %d levels", b.opts.MaxDepth)
		return nil
	}
	if b.nvol > b.budget {
		v.addNote("not explored: the tree has more than %d volumes", b.budget)
		return nil
	}
	if v.r == nil || v.Size <= 0 {
		return nil
	}
	if pvs, ok := b.detachedLUKS(v, depth); ok {
		return pvs
	}
	sig := Probe(v.r, v.Size)
	if sig != nil && sig.Type == "linux_raid_member" && !b.probeMDMember(v) {
		sig = nil // the superblock belongs to a partition: read the table
	}
	if sig != nil {
		b.log.Debug("found", "address", v.DisplayAddress(), "type", sig.Type, "offset", v.Offset, "size", v.Size)
		v.Content = sig
		v.Notes = append(v.Notes, sig.Notes...)
		if sig.Info["state"] == "needs_recovery" {
			b.noteRecovery(v)
		}
		b.checkReadable(v)
		if sig.Type == "drbd" {
			return b.exploreDRBD(v, depth)
		}
		if sig.Type == "crypto_LUKS" {
			return b.exploreLUKS(v, depth)
		}
		if sig.Type == "LVM2_member" {
			pv, err := readPV(v)
			if err != nil {
				v.noteDamage("LVM2 PV unreadable", err)
				return nil
			}
			return []*pvRef{pv}
		}
		return nil
	}
	tab, err := partition.Read(v.r, v.Size, nil)
	if err != nil {
		if !errors.Is(err, partition.ErrNoTable) {
			v.noteDamage("partition table", err)
		}
		return nil
	}
	v.Content = &Signature{Type: tab.Scheme}
	v.Table = &Table{Scheme: tab.Scheme, SectorSize: tab.SectorSize, ID: tab.ID}
	v.addNotes(tab.Notes, tab.Damage)
	var pvs []*pvRef
	for i, p := range tab.Partitions {
		if i >= maxPartitions {
			v.addNote("only the first %d partitions are shown", maxPartitions)
			break
		}
		name := fmt.Sprintf("p%d", p.Number)
		c := &Volume{Address: join(v.Address, name), Name: name, Kind: KindPartition, parent: v,
			Size: p.Size,
			Partition: &PartInfo{Number: p.Number, Type: p.Type, TypeName: p.TypeName, Name: p.Name,
				UUID: p.UUID, Bootable: p.Bootable, Container: p.Container}}
		c.Notes = append(c.Notes, p.Notes...)
		start, size := p.Start, p.Size
		// A range past the end is placed at its table entry, on v.
		entry := v.Where(where.At("partition", p.EntryOffset, "", nil))
		if start >= v.Size {
			c.addNote("starts past the end of the disk (at byte %d of %d); its table entry:%s", start, v.Size, entry)
			size = 0
		} else if start+size > v.Size {
			c.addNote("extends past the end of the disk: %d of %d bytes present; its table entry:%s", v.Size-start, size, entry)
			size = v.Size - start
		}
		sec := image.NewSection(v.r, start, size)
		c.r = sec
		placeOn(c, v, start)
		v.Children = append(v.Children, c)
		if p.Container {
			continue // an extended partition holds only the EBR chain
		}
		if start == 0 && size == v.Size {
			// Exploring it would find this same table again, forever.
			c.addNote("covers the whole of %s from byte 0; not explored again", v.DisplayAddress())
			continue
		}
		pvs = append(pvs, b.explore(c, depth+1)...)
	}
	return pvs
}

// placeOn fills Image/Offset of c, at byte off of parent v, when both are
// contiguous in an image file.
func placeOn(c, v *Volume, off int64) {
	c.Image, c.Offset = v.Image, -1
	if v.Offset >= 0 && v.Image != "" {
		c.Offset = v.Offset + off
	}
}

// level treats v (an LV) as a disk of its own: explore it, then assemble
// the VGs whose PVs it holds under it, recursively.
func (b *builder) level(v *Volume, depth int) {
	if depth >= b.opts.MaxDepth {
		v.addNote("not explored: nested deeper than %d levels", b.opts.MaxDepth)
		return
	}
	pvs := b.explore(v, depth)
	for _, g := range b.assemble(pvs, &v.Notes) {
		b.addVG(v, g, depth)
	}
}

// assembleTop assembles PVs found directly in the images. A VG all of
// whose PVs are in one image sits under that image; one spanning several
// images sits at the top.
func (b *builder) assembleTop(t *Tree, pvs []*pvRef) {
	for _, g := range b.assemble(pvs, &t.Notes) {
		var root *Volume
		for _, p := range g.refs {
			r := rootOf(p.vol)
			if root == nil {
				root = r
			} else if root != r {
				root = nil
				break
			}
		}
		if root != nil {
			b.addVG(root, g, 0)
			continue
		}
		top := &Volume{Kind: KindDisk, Offset: -1}
		vg := b.addVG(top, g, 0)
		if vg != nil {
			vg.parent = nil
			t.Roots = append(t.Roots, vg)
		}
	}
}

func rootOf(v *Volume) *Volume {
	for v.parent != nil {
		v = v.parent
	}
	return v
}

func hostHasVG(name string) bool {
	if name == "" {
		return false
	}
	for _, p := range []string{"/dev/" + name, "/etc/lvm/backup/" + name} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// exploreDRBD describes DRBD internal metadata and explores the data area
// in front of it (the backing device minus the metadata) as "VOL/drbd".
func (b *builder) exploreDRBD(v *Volume, depth int) []*pvRef {
	m, err := drbd.Read(v.r, v.Size)
	if err != nil {
		v.addNote("DRBD metadata unreadable: %v", err)
		return nil
	}
	v.DRBD = &DRBDInfo{Version: m.Version, GI: m.GI(nil), Flags: m.FlagNames(), DataSize: m.DataSize(),
		ALExtents: m.ALNrExtents, DeviceUUID: fmt.Sprintf("%016X", m.DeviceUUID)}
	if m.Unclean() {
		v.addNote("DRBD metadata marked unclean (the node was not shut down cleanly)")
	}
	size := m.DataSize()
	if size <= 0 || size > v.Size {
		v.addNote("DRBD data size %d does not fit the %d-byte device", size, v.Size)
		return nil
	}
	c := &Volume{Address: join(v.Address, "drbd"), Name: "drbd", Kind: KindDisk, parent: v, Size: size,
		r: image.NewSection(v.r, 0, size)}
	placeOn(c, v, 0)
	v.Children = append(v.Children, c)
	return b.explore(c, depth)
}

// checkReadable makes inspect and the readers agree (issue 13.14): blkid's
// signature check is looser than what the reader needs, so an ext
// superblock that ls, cat and extract reject (2^32 groups, 8 blocks per
// group, absurd inodes per group) would otherwise show as a clean
// filesystem. The reader is asked to open it, without replaying a
// journal; its view is cached, so a later --no-journal read costs nothing
// more.
func (b *builder) checkReadable(v *Volume) {
	if !v.Salvageable() {
		return
	}
	const hint = "(ls, cat and extract fail; extract --salvage may still rescue files)"
	fsys, err := v.OpenFS(vfs.OpenOptions{NoJournal: true})
	if err != nil {
		v.addNote("the filesystem reader rejects it: %v %s", err, hint)
		return
	}
	// A geometry that parses can still be wrong (8 blocks per group puts
	// the inode tables elsewhere): the root must read as a directory.
	st, err := fsys.Stat(fsys.Root())
	if err == nil && st.Type() != vfs.ModeDir {
		err = fmt.Errorf("the root inode is not a directory (mode %#o)", st.Mode)
	}
	if err != nil {
		v.addNote("the filesystem reader rejects it: %v %s", err, hint)
	}
}

// noteRecovery notes a filesystem whose journal needs recovery. Asked to
// (Options.OpenJournaled), it opens the filesystem, which replays the
// journal once and caches the view, and notes what the replay did;
// otherwise nothing is read until someone opens it.
func (b *builder) noteRecovery(v *Volume) {
	if !b.opts.OpenJournaled {
		v.addNote("journal needs recovery: it is replayed in memory when the filesystem is read")
		return
	}
	fsys, err := v.OpenFS(vfs.OpenOptions{})
	if err != nil {
		v.addNote("%v", err)
		return
	}
	for _, n := range fsys.Notes() {
		if n.Ino == 0 {
			v.addNote("%s", n.Msg)
		}
	}
}
