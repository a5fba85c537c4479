package salvage

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/imgtool/imgtool/ext"
)

// The orphan scan, as e2fsck's passes 1 to 4 would put inodes into
// lost+found: every inode table is read, and an inode no directory
// reached is taken for an unattached file when
//   - links_count > 0 and i_mode has a valid file type (e2fsck's test
//     for "in use": it ignores the inode bitmap and a stray dtime, and
//     so do we, unless the bitmap says free and the inode's checksum
//     fails too: then it is stale or garbage);
//   - it is not an internal file: the quota files or the orphan file
//     named by the superblock, or an xattr value inode (EA_INODE) that
//     some inode's xattr refers to (an unreferenced one is a file that
//     lost its owner: e2fsck clears the flag and connects it);
//   - it is not an empty regular file or directory (no blocks, no
//     in-inode xattrs), which e2fsck clears ("Unattached zero-length
//     inode") and which holds nothing to rescue;
//   - its content looks like its type: a directory's first entry is "."
//     naming itself, or (its first block damaged, which e2fsck repairs)
//     the inode bitmap marks it in use; a file's block map yields at
//     least one extent, or it is inline.
// Groups marked INODE_UNINIT, and the unused tail of each inode table
// (bg_itable_unused), are skipped when the descriptor is the primary's and
// checksummed (uninit_bg or metadata_csum), as e2fsck does.
// TestOrphansMatchE2fsck measures this rule against e2fsck on the corpus.

// isOrphan decides whether unreached inode in is in use. used is the inode
// bitmap bit: 1 set, 0 clear, -1 unknown.
func (w *walker) isOrphan(in *ext.Inode, used int) bool {
	if in.Links == 0 || in.Mode == 0 || !validType(in) {
		return false
	}
	switch in.Ino {
	case w.sb.UsrQuotaInum, w.sb.GrpQuotaInum, w.sb.PrjQuotaInum, w.sb.OrphanFileInum:
		return false
	}
	if ok, checked := w.fsys.VerifyInode(in); checked && !ok && used == 0 {
		return false
	}
	inline := in.Flags&ext.FlagInlineData != 0
	if in.Blocks == 0 && !inline && (in.IsRegular() || in.IsDir()) && !inInodeXattrs(in) {
		return false
	}
	switch {
	case in.IsDir():
		ents, _ := w.fsys.ReadDirInode(in.Ino)
		if len(ents) > 0 && ents[0].Name == "." && ents[0].Ino == in.Ino {
			return true
		}
		// e2fsck rebuilds a missing "." and "..": a directory whose first
		// block is damaged still counts when the bitmap agrees.
		return used == 1
	case in.IsRegular(), in.IsSymlink():
		data, _, err := w.fsys.MapInode(in)
		if inline || (in.IsSymlink() && in.Size < 60 && err == nil) {
			return true
		}
		return len(data) > 0
	}
	return true
}

// inInodeXattrs reports whether the inode's extra space holds an xattr
// header (magic 0xEA020000 after i_extra_isize), as e2fsck checks before
// clearing an empty unattached inode.
func inInodeXattrs(in *ext.Inode) bool {
	raw := in.Raw()
	off := 128 + int(in.ExtraIsize)
	return in.ExtraIsize > 0 && off+4 <= len(raw) && binary.LittleEndian.Uint32(raw[off:]) == 0xEA020000
}

// inodesInUse returns, per group, how many inodes of its table may be in
// use: all, but for a group whose primary, checksummed descriptor says
// INODE_UNINIT (none) or has an unused tail (bg_itable_unused), as e2fsck
// reads them. Every scan of the inode tables is bounded by this.
func (w *walker) inodesInUse() []uint64 {
	ipg := uint64(w.sb.InodesPerGroup)
	csummed := false
	for _, f := range w.sb.ROCompatFeatures() {
		csummed = csummed || f == "uninit_bg" || f == "metadata_csum"
	}
	groups := w.fsys.Groups()
	out := make([]uint64, len(groups))
	for g, gd := range groups {
		n := ipg
		if csummed && w.fsys.DescSource(uint64(g)) == ext.DescPrimary {
			if gd.Flags&ext.GroupInodeUninit != 0 {
				n = 0
			} else if uint64(gd.ItableUnused) < ipg {
				n = ipg - uint64(gd.ItableUnused)
			}
		}
		out[g] = n
	}
	return out
}

// orphans scans the inode tables and extracts the unreachable in-use
// inodes under #orphans: directories first (only the top of each
// unreachable subtree; the rest comes with it), then the other inodes.
func (w *walker) orphans() error {
	dirs, others, parent, err := w.findOrphans()
	if err != nil {
		return err
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

// findOrphans scans the inode tables for in-use inodes not reached from
// the root: the directories (with parent, each one's ".."), and the other
// inodes, EA inodes no xattr refers to among them.
func (w *walker) findOrphans() (dirs, others []uint32, parent map[uint32]uint32, err error) {
	sb := w.sb
	ipg := uint64(sb.InodesPerGroup)
	type eaCand struct {
		ino  uint32
		used int
	}
	var eaCands []eaCand
	parent = map[uint32]uint32{} // unreachable directory -> its ".."
	for g, n := range w.inodesInUse() {
		if err := w.ctx.Err(); err != nil {
			return nil, nil, nil, err
		}
		if n == 0 {
			continue
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
			if in.Flags&ext.FlagEAInode != 0 && in.Links > 0 {
				eaCands = append(eaCands, eaCand{ino, used})
				continue
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
	// EA inodes no xattr refers to are files that lost their owner.
	if len(eaCands) > 0 {
		refs, err := w.eaInodeRefs()
		if err != nil {
			return nil, nil, nil, err
		}
		for _, c := range eaCands {
			if refs[c.ino] {
				continue
			}
			if in, err := w.fsys.Inode(c.ino); err == nil && w.isOrphan(in, c.used) {
				others = append(others, c.ino)
			}
		}
	}
	return dirs, others, parent, nil
}

// eaInodeRefs returns the xattr value inodes (ea_inode) that the xattrs of
// in-use inodes refer to. It reads every inode table again, so it runs only
// when the scan met an unreached EA_INODE.
func (w *walker) eaInodeRefs() (map[uint32]bool, error) {
	refs := map[uint32]bool{}
	ipg := uint64(w.sb.InodesPerGroup)
	for g, n := range w.inodesInUse() {
		if err := w.ctx.Err(); err != nil {
			return nil, err
		}
		for i := uint64(0); i < n; i++ {
			ino64 := uint64(g)*ipg + i + 1
			if ino64 > uint64(w.sb.InodesCount) {
				break
			}
			in, err := w.fsys.Inode(uint32(ino64))
			if err != nil {
				if i == 0 {
					break // the group's inode table is unreadable
				}
				continue
			}
			if in.Links == 0 || in.Mode == 0 || in.Flags&ext.FlagEAInode != 0 || (in.FileACL == 0 && !inInodeXattrs(in)) {
				continue
			}
			xs, _ := w.fsys.Xattrs(in.Ino)
			for _, x := range xs {
				// e2fsck drops an entry whose value is empty (an ea_inode
				// value of size 0 is invalid), freeing its inode.
				if x.ValueInode != 0 && len(x.Value) > 0 {
					refs[x.ValueInode] = true
				}
			}
		}
	}
	return refs, nil
}
