package backup

import (
	"fmt"
	"strings"

	"github.com/imgtool/imgtool/dump"
	"github.com/imgtool/imgtool/ext"
)

// ExtSource presents an ext2/3/4 filesystem read by package ext as a
// dump.Source, so dump.Write can dump it without a block device or a
// mount. Inode numbers are ext's own, so they are stable across the dumps
// of a level chain, as restore -r requires.
//
// Content comes from ext.File: holes and unwritten (uninit) extents read
// as zeros and are reported to the writer as holes, so the stale bytes that
// stock dump copies out of preallocated blocks never reach the tape.
type ExtSource struct {
	fs *ext.FS
}

// NewExtSource wraps an opened ext filesystem.
func NewExtSource(fsys *ext.FS) *ExtSource { return &ExtSource{fs: fsys} }

// RootIno implements dump.Source.
func (s *ExtSource) RootIno() uint32 { return ext.RootIno }

// MaxIno implements dump.Source: s_inodes_count.
func (s *ExtSource) MaxIno() uint32 { return s.fs.Superblock().InodesCount }

// Stat implements dump.Source.
func (s *ExtSource) Stat(ino uint32) (dump.Inode, error) {
	in, err := s.fs.Inode(ino)
	if err != nil {
		return dump.Inode{}, err
	}
	d := dump.Inode{
		Ino:        ino,
		Mode:       uint32(in.Mode),
		Nlink:      uint32(in.Links),
		UID:        in.UID,
		GID:        in.GID,
		Size:       in.Size,
		Atime:      in.Atime,
		Mtime:      in.Mtime,
		Ctime:      in.Ctime,
		Flags:      in.Flags,
		Generation: in.Generation,
		Blocks:     in.Blocks,
	}
	switch uint32(in.Mode) & dump.ModeFmt {
	case dump.ModeChr, dump.ModeBlk:
		d.RdevMajor, d.RdevMinor = in.Rdev()
	}
	return d, nil
}

// ftToDT maps ext's directory-entry file types (EXT2_FT_*) to BSD d_type.
var ftToDT = [...]uint8{
	ext.FTReg:     dump.DTReg,
	ext.FTDir:     dump.DTDir,
	ext.FTChr:     dump.DTChr,
	ext.FTBlk:     dump.DTBlk,
	ext.FTFIFO:    dump.DTFifo,
	ext.FTSock:    dump.DTSock,
	ext.FTSymlink: dump.DTLnk,
}

// ReadDir implements dump.Source; "." and ".." are left out.
func (s *ExtSource) ReadDir(ino uint32) ([]dump.DirEntry, error) {
	ents, err := s.fs.ReadDirInode(ino)
	if err != nil {
		return nil, err
	}
	out := make([]dump.DirEntry, 0, len(ents))
	for _, e := range ents {
		if e.Name == "." || e.Name == ".." {
			continue
		}
		var dt uint8
		if int(e.FileType) < len(ftToDT) {
			dt = ftToDT[e.FileType]
		}
		out = append(out, dump.DirEntry{Name: e.Name, Ino: e.Ino, Type: dt})
	}
	return out, nil
}

// extFile adapts *ext.File to dump.File: extents in bytes instead of
// filesystem blocks.
type extFile struct {
	f  *ext.File
	bs int64
}

func (f extFile) ReadAt(p []byte, off int64) (int, error) { return f.f.ReadAt(p, off) }

func (f extFile) Extents() ([]dump.Extent, error) {
	runs := f.f.Extents()
	if runs == nil && f.f.Inode().Flags&ext.FlagInlineData != 0 {
		// Inline data lives in the inode: one data run, no block address.
		if f.f.Size() == 0 {
			return nil, nil
		}
		return []dump.Extent{{Logical: 0, Physical: 0, Length: f.f.Size()}}, nil
	}
	out := make([]dump.Extent, 0, len(runs))
	for _, r := range runs {
		if r.Len == 0 || r.Logical > 1<<50/uint64(f.bs) {
			continue
		}
		out = append(out, dump.Extent{
			Logical:   int64(r.Logical) * f.bs,
			Physical:  int64(r.Physical) * f.bs,
			Length:    int64(r.Len) * f.bs,
			Unwritten: r.Unwritten,
		})
	}
	return out, nil
}

// Open implements dump.Source.
func (s *ExtSource) Open(ino uint32) (dump.File, error) {
	f, err := s.fs.OpenInode(ino)
	if err != nil {
		return nil, err
	}
	return extFile{f: f, bs: s.fs.BlockSize()}, nil
}

// Readlink implements dump.Source.
func (s *ExtSource) Readlink(ino uint32) (string, error) { return s.fs.Readlink(ino) }

// Xattrs implements dump.Source. POSIX ACLs are converted from ext's
// on-disk form to the VFS form dump.Source wants; "system.data" (the
// inline-data area, not a user-visible attribute) is left out.
func (s *ExtSource) Xattrs(ino uint32) ([]dump.Xattr, error) {
	xs, err := s.fs.Xattrs(ino)
	if err != nil {
		return nil, err
	}
	var out []dump.Xattr
	for _, x := range xs {
		if x.Name == "system.data" {
			continue
		}
		v := x.Value
		if strings.HasPrefix(x.Name, "system.posix_acl_") {
			vfs, err := dump.ACLFromDisk(v)
			if err != nil {
				return nil, fmt.Errorf("inode %d: %s: %w", ino, x.Name, err)
			}
			v = vfs
		}
		out = append(out, dump.Xattr{Name: x.Name, Value: v})
	}
	return out, nil
}

var _ dump.Source = (*ExtSource)(nil)
