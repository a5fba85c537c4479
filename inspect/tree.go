// Package inspect builds the tree of everything inside an image: disk →
// partitions → LVM PVs → VGs → LVs → (a disk again) → filesystems. It names
// every node with the address scheme shared by the CLI, the TUI, JSON output
// and errors (docs/architecture.md), and resolves addresses back to
// volumes.
package inspect

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/imgtool/imgtool/image"
	"github.com/imgtool/imgtool/journal"
	"github.com/imgtool/imgtool/lvm"
	"github.com/imgtool/imgtool/md"
	"github.com/imgtool/imgtool/vfs"
)

// Kind is what a node of the tree is.
type Kind string

// Node kinds.
const (
	KindDisk      Kind = "disk"      // an image given on the command line
	KindPartition Kind = "partition" // an MBR/GPT entry
	KindVG        Kind = "vg"        // an LVM volume group (no bytes of its own)
	KindLV        Kind = "lv"        // a logical volume
)

// Volume is one node of the tree. Every node but a VG is a range of bytes;
// Content says what those bytes hold.
type Volume struct {
	journal *journal.Options // Options.Journal, the default for OpenFS and salvage
	// Address is the volume's full address, e.g. "VolGroup00/domu1/p1".
	// The main image itself has the empty address.
	Address string `json:"address"`
	// Name is the last component of Address.
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// Format is the container format of an image (disk roots only).
	Format string `json:"format,omitempty"`
	// Image is the file holding the volume's bytes when they are one
	// contiguous range of it, and Offset is where they start there.
	// For striped or otherwise non-contiguous volumes Offset is -1.
	Image  string `json:"image,omitempty"`
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"`

	// Content is the signature found in the volume (filesystem, PV, swap,
	// partition table as "dos"/"gpt"), or nil when unknown.
	Content *Signature `json:"content,omitempty"`

	Partition *PartInfo `json:"partition,omitempty"`
	DRBD      *DRBDInfo `json:"drbd,omitempty"`
	Table     *Table    `json:"table,omitempty"`
	VG        *VGInfo   `json:"vg,omitempty"`
	LV        *LVInfo   `json:"lv,omitempty"`
	MD        *MDInfo   `json:"md,omitempty"`
	LUKS      *LUKSInfo `json:"luks,omitempty"`

	// Notes are things a person must know: damage, fallbacks used,
	// name clashes, "not readable yet".
	Notes    []string  `json:"notes,omitempty"`
	Children []*Volume `json:"children,omitempty"`

	r      image.ReaderAtSize
	fsc    *fsCache   // OpenFS's views
	logDev vfs.Volume // the tree's external journal, for OpenFS
	parent *Volume
	vg     *lvm.VG // for KindVG
	lv     *lvm.LV // for KindLV
	// mdArray is the assembled array of a KindMD node (md.go).
	mdArray *md.Array
	// damage: the located errors behind damage notes (where.go).
	damage []error
}

// LVMGroup returns the assembled LVM volume group of a VG node, else nil.
func (v *Volume) LVMGroup() *lvm.VG { return v.vg }

// LVMVolume returns the LVM logical volume of an LV node, else nil.
func (v *Volume) LVMVolume() *lvm.LV { return v.lv }

// PartInfo describes a partition-table entry.
type PartInfo struct {
	Number   int    `json:"number"`
	Type     string `json:"type"`
	TypeName string `json:"type_name,omitempty"`
	Name     string `json:"name,omitempty"`
	UUID     string `json:"uuid,omitempty"`
	Bootable bool   `json:"bootable,omitempty"`
	// Container marks an MBR extended partition (it holds the logical ones).
	Container bool `json:"container,omitempty"`
}

// Table describes the partition table inside a volume.
type Table struct {
	Scheme     string `json:"scheme"` // "dos" or "gpt", as sfdisk names them
	SectorSize int    `json:"sector_size"`
	ID         string `json:"id,omitempty"`
}

// Reader returns the volume's bytes; nil for VGs and unreadable LVs.
func (v *Volume) Reader() image.ReaderAtSize { return v.r }

// Parent returns the enclosing node, or nil at the top.
func (v *Volume) Parent() *Volume { return v.parent }

// IsFilesystem reports whether the volume holds a filesystem we recognise.
func (v *Volume) IsFilesystem() bool {
	if v.Content == nil {
		return false
	}
	switch v.Content.Type {
	case "ext2", "ext3", "ext4", "ext4dev", "xfs", "btrfs", "vfat", "exfat", "ntfs", "iso9660", "squashfs":
		return true
	}
	return false
}

// Tree is the result of inspecting one or more images.
type Tree struct {
	// Roots are the images (main first, then each -a image), followed by
	// VGs whose PVs span several images.
	Roots []*Volume `json:"roots"`
	// Notes about the whole inspection (e.g. clashes).
	Notes []string `json:"notes,omitempty"`
}

// Source is one image to inspect.
type Source struct {
	Name string // shown path
	R    io.ReaderAt
	Size int64
	// Format is the container format the image was opened as ("raw",
	// "qcow2", "vmdk-streamOptimized", "xz", ...), shown on the disk node.
	Format string
	// Notes about the container (backing files, snapshots, damage).
	Notes []string
}

// Options tune the inspection.
type Options struct {
	// MaxDepth bounds nesting (disk → LV → disk ...). 0 means 8.
	MaxDepth int
	// HostVGNames, when set, reports whether a VG name exists on the
	// running host; nil uses /dev/<vg> and /etc/lvm/backup/<vg>.
	HostVGNames func(name string) bool
	// LVM passes options (e.g. metadata from an /etc/lvm/backup file) to
	// VG assembly.
	LVM    *lvm.AssembleOptions
	Logger *slog.Logger
	// Journal gives the external journal device of a filesystem made
	// with one (journal_dev), for every replay: the tree's needs_recovery
	// notes and each Volume.OpenFS that does not name its own.
	Journal *journal.Options
	// OpenJournaled opens (OpenFS) every filesystem whose journal needs
	// recovery while building the tree, and adds what the replay did to
	// its notes; the replayed view is cached for later opens. Without it
	// such a filesystem only gets a note that it needs recovery, and
	// nothing is replayed until someone opens it.
	OpenJournaled bool
	// Keys open LUKS volumes (see KeyOptions).
	Keys KeyOptions
}

// Walk calls fn for every node in depth-first order; returning false skips
// the node's children.
func (t *Tree) Walk(fn func(v *Volume) bool) {
	var walk func(v *Volume)
	walk = func(v *Volume) {
		if !fn(v) {
			return
		}
		for _, c := range v.Children {
			walk(c)
		}
	}
	for _, r := range t.Roots {
		walk(r)
	}
}

// Volumes returns all nodes in depth-first order.
func (t *Tree) Volumes() []*Volume {
	var out []*Volume
	t.Walk(func(v *Volume) bool { out = append(out, v); return true })
	return out
}

// Filesystems returns every node that holds a recognised filesystem.
func (t *Tree) Filesystems() []*Volume {
	var out []*Volume
	for _, v := range t.Volumes() {
		if v.IsFilesystem() {
			out = append(out, v)
		}
	}
	return out
}

// DisplayAddress is Address, or the image name for a root disk.
func (v *Volume) DisplayAddress() string {
	if v.Address == "" {
		if v.Name != "" {
			return v.Name
		}
		return "(disk)"
	}
	return v.Address
}

func join(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "/" + name
}

func (v *Volume) addNote(format string, a ...any) {
	v.Notes = append(v.Notes, fmt.Sprintf(format, a...))
}

// VGInfo describes a volume group node.
type VGInfo struct {
	Name       string   `json:"name"`
	UUID       string   `json:"uuid"`
	Seqno      uint64   `json:"seqno"`
	ExtentSize int64    `json:"extent_size"`
	PVs        []PVInfo `json:"pvs"`
	// Missing lists PV UUIDs the metadata names but no scanned volume holds.
	Missing []string `json:"missing_pvs,omitempty"`
	// Clash is set when another VG in the tree, or on this host, has the
	// same name.
	Clash bool `json:"clash,omitempty"`
}

// PVInfo names a PV of a VG and where it was found.
type PVInfo struct {
	UUID    string `json:"uuid"`
	Address string `json:"address"`
}

// LVInfo describes a logical volume node.
type LVInfo struct {
	UUID     string   `json:"uuid"`
	Segtype  string   `json:"segtype"`
	Segments int      `json:"segments"`
	Status   []string `json:"status,omitempty"`
	// Readable is false for segment types imgtool cannot read yet; the
	// reason is in the volume's notes.
	Readable bool `json:"readable"`
}

// DRBDInfo describes DRBD internal metadata found at the end of a volume.
type DRBDInfo struct {
	Version string `json:"version"`
	// GI is the generation identifiers as drbdmeta get-gi prints them:
	// current:bitmap:history1:history2 (the flags are in Flags).
	GI         string   `json:"gi"`
	Flags      []string `json:"flags"`
	DataSize   int64    `json:"data_size"`
	ALExtents  uint32   `json:"al_extents"`
	DeviceUUID string   `json:"device_uuid"`
}
