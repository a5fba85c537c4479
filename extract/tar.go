package extract

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/imgtool/imgtool/ext"
)

// Tar output.
//
// The stream is POSIX.1-2001 (PAX): nanosecond mtime and atime go in PAX
// records, owners are numeric (uid/gid only, no user names, which mean
// nothing outside the guest), xattrs (with Xattrs) are SCHILY.xattr.NAME
// records as GNU tar and bsdtar read them, hard links are TypeLink members
// naming the first member of the inode, device nodes carry their
// major/minor.
//
// Sparse files: Go's archive/tar writer cannot write sparse members (it
// drops GNU.sparse.* records), so holes and unwritten extents are written
// as zeros. The content is right; the receiving side can punch the holes
// back with `fallocate --dig-holes`.

type tarSink struct {
	x    *Extractor
	tw   *tar.Writer
	buf  []byte
	zero []byte // len(buf) zeros, written for holes; never read into
}

func newTarSink(x *Extractor, w io.Writer) *tarSink {
	return &tarSink{x: x, tw: tar.NewWriter(w), buf: make([]byte, chunkSize)}
}

// memberName is the archive name of names: "./a/b", "./" for the root.
func memberName(names []string) string {
	if len(names) == 0 {
		return "./"
	}
	return "./" + path.Join(names...)
}

func (t *tarSink) header(names []string, src string, in *ext.Inode) *tar.Header {
	h := &tar.Header{
		Name:       memberName(names),
		Mode:       int64(in.Mode & 0o7777),
		Uid:        int(in.UID),
		Gid:        int(in.GID),
		ModTime:    in.Mtime,
		AccessTime: in.Atime,
		Format:     tar.FormatPAX,
	}
	if t.x.opts.Xattrs {
		xs, err := t.x.fsys.Xattrs(in.Ino)
		if err != nil {
			t.x.problem(src, in.Ino, Metadata, fmt.Errorf("reading xattrs: %w", err))
		}
		for _, a := range xs {
			name, val, ok, err := hostXattr(a)
			if err != nil {
				t.x.problem(src, in.Ino, Metadata, fmt.Errorf("xattr %s: %w", a.Name, err))
				continue
			}
			if ok {
				if h.PAXRecords == nil {
					h.PAXRecords = map[string]string{}
				}
				h.PAXRecords["SCHILY.xattr."+name] = string(val)
			}
		}
	}
	return h
}

// write writes a header; a failure to write to the stream is fatal.
func (t *tarSink) write(h *tar.Header) error {
	if err := t.tw.WriteHeader(h); err != nil {
		if strings.HasPrefix(err.Error(), "archive/tar: cannot encode header") {
			return err // this member only
		}
		return &fatalError{fmt.Errorf("tar: %w", err)}
	}
	return nil
}

func (t *tarSink) dir(names []string, src string, in *ext.Inode) error {
	h := t.header(names, src, in)
	h.Typeflag = tar.TypeDir
	if !strings.HasSuffix(h.Name, "/") {
		h.Name += "/"
	}
	return t.write(h)
}

func (t *tarSink) file(names []string, src string, in *ext.Inode) error {
	f, err := t.x.fsys.OpenContent(in.Ino)
	if err != nil {
		return err
	}
	h := t.header(names, src, in)
	h.Typeflag = tar.TypeReg
	h.Size = f.Size()
	if err := t.write(h); err != nil {
		return err
	}
	// The member's length is fixed by the header: unreadable ranges are
	// written as zeros and reported. Holes are written from a zero buffer
	// without reading (a sparse file of terabytes costs only its output).
	var firstErr error
	if t.zero == nil {
		t.zero = make([]byte, len(t.buf))
	}
	ranges := f.DataRanges()
	for off := int64(0); off < h.Size; {
		for len(ranges) > 0 && ranges[0].Off+ranges[0].Len <= off {
			ranges = ranges[1:]
		}
		if len(ranges) == 0 || ranges[0].Off > off {
			end := h.Size
			if len(ranges) > 0 {
				end = min(end, ranges[0].Off)
			}
			n := min(int64(len(t.zero)), end-off)
			if _, err := t.tw.Write(t.zero[:n]); err != nil {
				return &fatalError{fmt.Errorf("tar: %w", err)}
			}
			off += n
			t.x.bytes.Add(n)
			continue
		}
		n := int(min(int64(len(t.buf)), h.Size-off, ranges[0].Off+ranges[0].Len-off))
		b := t.buf[:n]
		m, err := f.ReadAt(b, off)
		if m < n {
			if firstErr == nil {
				firstErr = fmt.Errorf("content at file offset %d: %w", off+int64(m), err)
			}
			clear(b[m:])
		}
		if _, err := t.tw.Write(b); err != nil {
			return &fatalError{fmt.Errorf("tar: %w", err)}
		}
		off += int64(n)
		t.x.bytes.Add(int64(n))
	}
	t.x.rep.mu.Lock()
	t.x.rep.Bytes += h.Size
	t.x.rep.DataBytes += h.Size
	t.x.rep.mu.Unlock()
	t.x.files.Add(1)
	if firstErr != nil {
		t.x.problem(src, in.Ino, Damaged, firstErr)
	}
	return nil
}

func (t *tarSink) symlink(names []string, src string, in *ext.Inode, target string) error {
	h := t.header(names, src, in)
	h.Typeflag = tar.TypeSymlink
	h.Linkname = target
	return t.write(h)
}

func (t *tarSink) hardlink(names []string, src string, in *ext.Inode, first []string) error {
	h := t.header(names, src, in)
	h.Typeflag = tar.TypeLink
	h.Linkname = memberName(first)
	h.PAXRecords = nil // the first member carries the xattrs
	return t.write(h)
}

func (t *tarSink) special(names []string, src string, in *ext.Inode) error {
	h := t.header(names, src, in)
	switch in.Type() {
	case ext.ModeFIFO:
		h.Typeflag = tar.TypeFifo
	case ext.ModeChar, ext.ModeBlock:
		h.Typeflag = tar.TypeChar
		if in.Type() == ext.ModeBlock {
			h.Typeflag = tar.TypeBlock
		}
		maj, min := in.Rdev()
		h.Devmajor, h.Devminor = int64(maj), int64(min)
	case ext.ModeSocket:
		return fmt.Errorf("socket: tar cannot hold sockets (as GNU tar, it is skipped)")
	}
	return t.write(h)
}

func (t *tarSink) close() error {
	if err := t.tw.Close(); err != nil {
		return fmt.Errorf("tar: %w", err)
	}
	return nil
}

// NewTar returns an Extractor writing a tar stream to w, for callers that
// choose what goes where (a salvage walker). Close it to finish the stream
// (the end-of-archive blocks) and get the report.
func NewTar(ctx context.Context, fsys *ext.FS, w io.Writer, opts Options) *Extractor {
	return NewTarSource(ctx, ExtSource(fsys), w, opts)
}

// NewTarSource is NewTar over any Source.
func NewTarSource(ctx context.Context, fsys Source, w io.Writer, opts Options) *Extractor {
	x := newExtractor(fsys, opts)
	x.sink = newTarSink(x, w)
	x.startProgress(ctx, nil)
	return x
}
