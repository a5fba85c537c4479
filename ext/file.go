package ext

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
)

// File reads the content of an inode. It is an io.ReaderAt (safe for
// concurrent use) and, through Read and Seek, an io.ReadSeeker (not safe for
// concurrent use). Holes, unwritten extents and the range between the end
// of the block map and i_size read as zeros.
type File struct {
	fsys   *FS
	in     *Inode
	size   int64
	runs   []Extent // merged, sorted block map (nil for inline data)
	inline []byte   // inline data, when FlagInlineData
	pos    int64    // for Read/Seek
}

// OpenInode opens the content of inode ino for reading: a regular file, a
// directory's raw blocks, a slow symlink's target, an xattr value inode.
func (fsys *FS) OpenInode(ino uint32) (*File, error) {
	in, err := fsys.Inode(ino)
	if err != nil {
		return nil, err
	}
	return fsys.openInode(in)
}

// maxFileBlocks is the largest logical block count the inode's mapping
// format can address: i_size beyond it is corruption.
func (fsys *FS) maxFileBlocks(in *Inode) uint64 {
	if in.Flags&FlagExtents != 0 {
		return 1 << 32
	}
	per := uint64(fsys.bs / 4)
	return nDirect + per + per*per + per*per*per
}

func (fsys *FS) openInode(in *Inode) (*File, error) {
	if in.Flags&FlagEncrypt != 0 && !fsys.salvage {
		return nil, fmt.Errorf("ext: inode %d: %w", in.Ino, ErrEncrypted)
	}
	f := &File{fsys: fsys, in: in}
	if in.Flags&FlagInlineData != 0 {
		d, err := fsys.inlineData(in)
		if err != nil {
			return nil, err
		}
		if in.Size < uint64(len(d)) {
			d = d[:in.Size]
		}
		f.inline = d
		f.size = int64(len(d))
		return f, nil
	}
	m, err := fsys.blockMap(in)
	if err != nil {
		if !fsys.salvage {
			return nil, err
		}
		fsys.note(in.Ino, in.Offset, "", fmt.Errorf("block map damaged, reading the %d extents that could be read (the rest reads as zeros): %w", len(m), err))
	}
	f.size = fsys.contentSize(in, m)
	f.runs = mergeExtents(m)
	return f, nil
}

// ContentSize returns the number of bytes OpenInode reads for in: i_size,
// unless it exceeds what the block map format can address. Then the
// largest addressable size is used, or with Options.Salvage, as e2fsck
// repairs it, the end of the last mapped block.
func (fsys *FS) ContentSize(in *Inode) int64 {
	if in.Flags&FlagInlineData != 0 {
		return int64(min(in.Size, 1<<62))
	}
	m, _ := fsys.blockMap(in)
	return fsys.contentSize(in, m)
}

func (fsys *FS) contentSize(in *Inode, m []Extent) int64 {
	max := fsys.maxFileBlocks(in) * uint64(fsys.bs)
	if in.Size <= max {
		return int64(in.Size)
	}
	if fsys.salvage {
		end := uint64(0)
		for _, e := range m {
			end = max2(end, e.Logical+e.Len)
		}
		end *= uint64(fsys.bs)
		fsys.note(in.Ino, in.Offset+inSizeLo, fmt.Sprintf("i_size %d exceeds the largest size the block map can address (%d); reading %d bytes, to the end of the last mapped block", in.Size, max, end), nil)
		return int64(end)
	}
	fsys.note(in.Ino, in.Offset+inSizeLo, fmt.Sprintf("i_size %d exceeds the largest size the block map can address (%d); reading %d bytes", in.Size, max, max), nil)
	return int64(max)
}

func max2(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// mergeExtents merges logically and physically adjacent extents of the same
// kind, so that contiguous data is read in one ReadAt.
func mergeExtents(m []Extent) []Extent {
	out := make([]Extent, 0, len(m))
	for _, e := range m {
		if n := len(out); n > 0 {
			last := &out[n-1]
			if last.Logical+last.Len > e.Logical {
				continue // overlapping extent in a damaged tree: keep the first
			}
			if last.Logical+last.Len == e.Logical && last.Physical+last.Len == e.Physical && last.Unwritten == e.Unwritten {
				last.Len += e.Len
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

// BlockMap returns the block map of inode ino: for extent-mapped inodes the
// leaf extents as stored, for indirect-mapped ones runs of contiguous
// blocks. Logical blocks not covered are holes. Inline-data inodes, fast
// symlinks and device inodes have no blocks (nil). On damage the extents
// read so far are returned with the error.
func (fsys *FS) BlockMap(ino uint32) ([]Extent, error) {
	in, err := fsys.Inode(ino)
	if err != nil {
		return nil, err
	}
	return fsys.blockMap(in)
}

func (fsys *FS) blockMap(in *Inode) ([]Extent, error) {
	m, _, err := fsys.mapping(in)
	return m, err
}

// MetadataBlocks returns the blocks of inode ino's mapping structure itself:
// indirect, double- and triple-indirect blocks, or extent tree blocks below
// the root, in the order they are walked (each before what it maps).
func (fsys *FS) MetadataBlocks(ino uint32) ([]uint64, error) {
	in, err := fsys.Inode(ino)
	if err != nil {
		return nil, err
	}
	_, meta, err := fsys.mapping(in)
	return meta, err
}

func (fsys *FS) mapping(in *Inode) ([]Extent, []uint64, error) {
	switch {
	case in.Flags&FlagInlineData != 0:
		return nil, nil, nil
	case in.Type() == ModeChar || in.Type() == ModeBlock || in.Type() == ModeFIFO || in.Type() == ModeSocket:
		return nil, nil, nil
	case in.IsSymlink() && fsys.isFastSymlink(in):
		return nil, nil, nil
	case in.Flags&FlagExtents != 0:
		return fsys.extentTree(in)
	}
	return fsys.indirectMap(in)
}

// Range is a byte range of a file.
type Range struct {
	Off, Len int64
}

// DataRanges returns the byte ranges of the file that hold written data,
// in order and clipped to Size; everything else (holes, unwritten extents,
// the tail past the block map) reads as zeros. Sparse copies and dump(8)
// use it to skip holes. Inline-data files are one range.
func (f *File) DataRanges() []Range {
	if f.in.Flags&FlagInlineData != 0 {
		if f.size == 0 {
			return nil
		}
		return []Range{{0, f.size}}
	}
	var out []Range
	bs := f.fsys.bs
	for _, r := range f.runs {
		if r.Unwritten {
			continue
		}
		off := int64(r.Logical) * bs
		if off >= f.size {
			break
		}
		n := min(int64(r.Len)*bs, f.size-off)
		if k := len(out); k > 0 && out[k-1].Off+out[k-1].Len == off {
			out[k-1].Len += n
			continue
		}
		out = append(out, Range{off, n})
	}
	return out
}

// Inode returns the file's inode.
func (f *File) Inode() *Inode { return f.in }

// Size returns the content length in bytes.
func (f *File) Size() int64 { return f.size }

// Extents returns the (merged) block map used for reading.
func (f *File) Extents() []Extent { return slices.Clone(f.runs) }

// ReadAt implements io.ReaderAt. Each physically contiguous run of written
// blocks is read with one ReadAt on the volume; holes and unwritten extents
// are zero-filled.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("ext: negative offset")
	}
	if off >= f.size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > f.size-off {
		p = p[:f.size-off]
	}
	if f.in.Flags&FlagInlineData != 0 {
		n := copy(p, f.inline[min(off, int64(len(f.inline))):])
		clear(p[n:])
		return f.finish(len(p), want)
	}
	bs := f.fsys.bs
	done := 0
	for done < len(p) {
		cur := off + int64(done)
		lb := uint64(cur / bs)
		// first run ending after lb
		i := sort.Search(len(f.runs), func(i int) bool { return f.runs[i].Logical+f.runs[i].Len > lb })
		rest := p[done:]
		if i == len(f.runs) || f.runs[i].Logical > lb {
			// hole up to the next run (or the end)
			n := len(rest)
			if i < len(f.runs) {
				if gap := int64(f.runs[i].Logical)*bs - cur; gap < int64(n) {
					n = int(gap)
				}
			}
			clear(rest[:n])
			done += n
			continue
		}
		r := f.runs[i]
		end := int64(r.Logical+r.Len) * bs // byte just past this run
		n := len(rest)
		if end-cur < int64(n) {
			n = int(end - cur)
		}
		if r.Unwritten {
			clear(rest[:n])
			done += n
			continue
		}
		phys := int64(r.Physical+(lb-r.Logical))*bs + cur%bs
		if err := f.fsys.readFull(rest[:n], phys); err != nil {
			return done, fmt.Errorf("ext: inode %d: data at offset %#x (file offset %d): %w", f.in.Ino, phys, cur, err)
		}
		done += n
	}
	return f.finish(done, want)
}

func (f *File) finish(n, want int) (int, error) {
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

// Read implements io.Reader.
func (f *File) Read(p []byte) (int, error) {
	n, err := f.ReadAt(p, f.pos)
	f.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek implements io.Seeker.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.pos
	case io.SeekEnd:
		offset += f.size
	default:
		return 0, errors.New("ext: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("ext: negative position")
	}
	f.pos = offset
	return offset, nil
}

// WriteTo implements io.WriterTo, copying the content in large chunks.
func (f *File) WriteTo(w io.Writer) (int64, error) {
	if f.pos >= f.size {
		return 0, nil
	}
	buf := make([]byte, min(f.size-f.pos, 1<<20))
	var total int64
	for f.pos < f.size {
		n, err := f.ReadAt(buf, f.pos)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			f.pos += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err != nil && err != io.EOF {
			return total, err
		}
		if n == 0 {
			break
		}
	}
	return total, nil
}

// MapInode returns both the block map and the mapping's own blocks
// (indirect or extent-tree blocks) of an inode already read, in one walk:
// what a salvage tool needs to find blocks claimed twice. On damage it
// returns what could be read and the first error.
func (fsys *FS) MapInode(in *Inode) (data []Extent, meta []uint64, err error) {
	return fsys.mapping(in)
}
