package salvage

import (
	"fmt"
	"strconv"

	"github.com/imgtool/imgtool/ext"
)

// The orphan scan, as e2fsck's passes 1 to 3 would put inodes into
// lost+found: every inode table is read, and an inode no directory
// reached is taken as in use when
//   - links_count > 0 and i_mode has a valid file type, and
//   - with metadata_csum, its checksum holds (a stale or garbage inode
//     almost never has a valid crc32c), or else it is marked in the inode
//     bitmap (when the bitmap is readable) and its dtime is 0, and
//   - its content looks like its type: a directory's first entry is "."
//     naming itself; a file's block map yields at least one extent or is
//     empty with size 0.
// Groups marked INODE_UNINIT, and the unused tail of each inode table
// (bg_itable_unused), are skipped when the descriptor is the primary's and
// checksummed (uninit_bg or metadata_csum), as e2fsck does.

// isOrphan decides whether unreached inode in is in use. used is the inode
// bitmap bit: 1 set, 0 clear, -1 unknown.
func (w *walker) isOrphan(in *ext.Inode, used int) bool {
	if in.Links == 0 || in.Mode == 0 || !validType(in) {
		return false
	}
	ok, checked := w.fsys.VerifyInode(in)
	switch {
	case checked && ok:
		if in.Dtime != 0 && used == 0 {
			return false
		}
	case used == 0:
		return false
	case in.Dtime != 0 && used != 1:
		return false
	}
	switch {
	case in.IsDir():
		ents, _ := w.fsys.ReadDirInode(in.Ino)
		return len(ents) > 0 && ents[0].Name == "." && ents[0].Ino == in.Ino
	case in.IsRegular(), in.IsSymlink():
		data, _, err := w.fsys.MapInode(in)
		if in.Flags&ext.FlagInlineData != 0 || (in.IsSymlink() && in.Size < 60 && err == nil) {
			return true
		}
		return len(data) > 0 || (in.Size == 0 && err == nil)
	}
	return true
}

// orphans scans the inode tables and extracts the unreachable in-use
// inodes under #orphans: directories first (only the top of each
// unreachable subtree; the rest comes with it), then the other inodes.
func (w *walker) orphans() error {
	sb := w.sb
	ipg := uint64(sb.InodesPerGroup)
	csummed := false
	for _, f := range sb.ROCompatFeatures() {
		csummed = csummed || f == "uninit_bg" || f == "metadata_csum"
	}
	var dirs, others []uint32
	parent := map[uint32]uint32{} // unreachable directory -> its ".."
	for g, gd := range w.fsys.Groups() {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		trusted := csummed && w.fsys.DescSource(uint64(g)) == ext.DescPrimary
		n := ipg
		if trusted {
			if gd.Flags&ext.GroupInodeUninit != 0 {
				continue
			}
			if uint64(gd.ItableUnused) < ipg {
				n = ipg - uint64(gd.ItableUnused)
			}
		}
		bitmap, berr := w.fsys.InodeBitmap(uint64(g))
		for i := uint64(0); i < n; i++ {
			ino64 := uint64(g)*ipg + i + 1
			if ino64 > uint64(sb.InodesCount) {
				break
			}
			ino := uint32(ino64)
			if ino < sb.FirstIno || w.reached.get(ino64) {
				continue
			}
			in, err := w.fsys.Inode(ino)
			if err != nil {
				if i == 0 {
					break // the group's inode table is unreadable
				}
				continue
			}
			used := -1
			if berr == nil && bitmap != nil && int(i/8) < len(bitmap) {
				used = 0
				if bitmap[i/8]&(1<<(i%8)) != 0 {
					used = 1
				}
			}
			if !w.isOrphan(in, used) {
				continue
			}
			if in.IsDir() {
				dirs = append(dirs, ino)
				ents, _ := w.fsys.ReadDirInode(ino)
				if len(ents) > 1 && ents[1].Name == ".." {
					parent[ino] = ents[1].Ino
				}
			} else {
				others = append(others, ino)
			}
		}
	}
	// The top of each unreachable subtree: follow ".." while it names
	// another unreachable directory (a loop ends the chain).
	cand := make(map[uint32]bool, len(dirs))
	for _, d := range dirs {
		cand[d] = true
	}
	top := func(d uint32) uint32 {
		cur := d
		for range len(dirs) + 1 {
			p, ok := parent[cur]
			if !ok || p == cur || p == d || !cand[p] {
				return cur
			}
			cur = p
		}
		return cur
	}
	add := func(ino uint32) error {
		if w.reached.get(uint64(ino)) {
			return nil
		}
		name := strconv.FormatUint(uint64(ino), 10)
		src := OrphansDir + "/" + name
		in, err := w.fsys.Inode(ino)
		if err != nil {
			return nil
		}
		e := w.entry(inoKey(ino), src, ino, typeName(in))
		e.Path = src
		e.add(Unreachable, fmt.Errorf("in-use inode (links %d) not reached from the root", in.Links))
		return w.visit([]string{OrphansDir, name}, src, ino, 1)
	}
	for _, d := range dirs {
		if err := add(top(d)); err != nil {
			return err
		}
	}
	for _, d := range dirs {
		if err := add(d); err != nil {
			return err
		}
	}
	for _, o := range others {
		if err := add(o); err != nil {
			return err
		}
	}
	return nil
}
