package extract

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/imgtool/imgtool/vfs"
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
// Sparse files (any file with holes or unwritten extents) are written as
// PAX sparse members, format GNU.sparse 1.0 — the one GNU tar writes with
// --sparse --posix and GNU tar, bsdtar and Go's archive/tar restore: a PAX
// header with GNU.sparse.major=1, minor=0, name and realsize, then a
// member named DIR/GNUSparseFile.0/BASE whose data is the map (decimal
// count, then offset and length of each data range, padded to 512 bytes)
// followed by the data ranges only. A 16 TiB file with two blocks costs a
// few KiB of stream. Go's writer cannot emit these records (it drops
// GNU.sparse.* keys), so sparseFile writes both headers itself between
// members of the tar.Writer.

type tarSink struct {
	x    *Extractor
	w    io.Writer // the stream under tw, for the sparse members
	tw   *tar.Writer
	buf  []byte
	zero []byte // len(buf) zeros, written for holes; never read into
}

func newTarSink(x *Extractor, w io.Writer) *tarSink {
	return &tarSink{x: x, w: w, tw: tar.NewWriter(w), buf: make([]byte, chunkSize)}
}

// memberName is the archive name of names: "./a/b", "./" for the root.
func memberName(names []string) string {
	if len(names) == 0 {
		return "./"
	}
	return "./" + path.Join(names...)
}

func (t *tarSink) header(names []string, src string, in *vfs.Stat) *tar.Header {
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

func (t *tarSink) dir(names []string, src string, in *vfs.Stat) error {
	h := t.header(names, src, in)
	h.Typeflag = tar.TypeDir
	if !strings.HasSuffix(h.Name, "/") {
		h.Name += "/"
	}
	return t.write(h)
}

func (t *tarSink) file(names []string, src string, in *vfs.Stat) error {
	f, err := t.x.fsys.Open(in.Ino)
	if err != nil {
		return err
	}
	h := t.header(names, src, in)
	h.Typeflag = tar.TypeReg
	h.Size = f.Size()
	if data := sparseData(f.DataRanges(), h.Size); data != nil {
		return t.sparseFile(h, src, in, f, data)
	}
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

// sparseData returns the data ranges of a file of size bytes, clipped,
// sorted and merged, if they leave holes; nil if the file is dense.
func sparseData(ranges []vfs.Range, size int64) []vfs.Range {
	out := []vfs.Range{} // non-nil: a file that is all hole is sparse too
	var data int64
	for _, r := range ranges {
		off, end := max(r.Off, 0), min(r.Off+r.Len, size)
		if end <= off {
			continue
		}
		if n := len(out); n > 0 && off <= out[n-1].Off+out[n-1].Len {
			if end > out[n-1].Off+out[n-1].Len {
				data += end - (out[n-1].Off + out[n-1].Len)
				out[n-1].Len = end - out[n-1].Off
			}
			continue
		}
		if n := len(out); n > 0 && off < out[n-1].Off {
			return nil // out of order: write it dense, which is always right
		}
		out = append(out, vfs.Range{Off: off, Len: end - off})
		data += end - off
	}
	if data >= size || size == 0 {
		return nil
	}
	return out
}

// sparseFile writes one GNU.sparse 1.0 member: PAX header, ustar header,
// map, data ranges.
func (t *tarSink) sparseFile(h *tar.Header, src string, in *vfs.Stat, f vfs.File, data []vfs.Range) error {
	// The map: count, then offset and length of each range, and, when the
	// file ends in a hole, a last empty range at the end (GNU tar then
	// truncates the file to its full size).
	var m []byte
	entries := data
	if len(data) == 0 || data[len(data)-1].Off+data[len(data)-1].Len < h.Size {
		entries = append(append([]vfs.Range{}, data...), vfs.Range{Off: h.Size})
	}
	m = strconv.AppendInt(m, int64(len(entries)), 10)
	m = append(m, '\n')
	var dataLen int64
	for _, r := range entries {
		m = strconv.AppendInt(m, r.Off, 10)
		m = append(m, '\n')
		m = strconv.AppendInt(m, r.Len, 10)
		m = append(m, '\n')
		dataLen += r.Len
	}
	m = append(m, make([]byte, pad512(int64(len(m))))...)
	memberSize := int64(len(m)) + dataLen

	recs := map[string]string{
		"GNU.sparse.major":    "1",
		"GNU.sparse.minor":    "0",
		"GNU.sparse.name":     h.Name,
		"GNU.sparse.realsize": strconv.FormatInt(h.Size, 10),
		"size":                strconv.FormatInt(memberSize, 10),
		"mtime":               paxTime(h.ModTime),
		"atime":               paxTime(h.AccessTime),
	}
	for k, v := range h.PAXRecords {
		recs[k] = v
	}
	if h.Uid > maxOctal7 {
		recs["uid"] = strconv.Itoa(h.Uid)
	}
	if h.Gid > maxOctal7 {
		recs["gid"] = strconv.Itoa(h.Gid)
	}
	keys := make([]string, 0, len(recs))
	for k := range recs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var pax []byte
	for _, k := range keys {
		pax = append(pax, paxRecord(k, recs[k])...)
	}
	dir, base := path.Split(h.Name)
	name := path.Join(dir, "GNUSparseFile.0", base)
	if err := t.tw.Flush(); err != nil {
		return &fatalError{fmt.Errorf("tar: %w", err)}
	}
	out := ustarHeader(path.Join(dir, "PaxHeaders.0", base), 0o644, 0, 0, int64(len(pax)), h.ModTime.Unix(), tar.TypeXHeader)
	out = append(out, pax...)
	out = append(out, make([]byte, pad512(int64(len(pax))))...)
	out = append(out, ustarHeader(name, h.Mode, h.Uid, h.Gid, memberSize, h.ModTime.Unix(), tar.TypeReg)...)
	out = append(out, m...)
	if _, err := t.w.Write(out); err != nil {
		return &fatalError{fmt.Errorf("tar: %w", err)}
	}
	// The data ranges, in order. Unreadable bytes are written as zeros
	// (the member's length is fixed) and reported.
	var firstErr error
	for _, r := range data {
		for off := r.Off; off < r.Off+r.Len; {
			n := int(min(int64(len(t.buf)), r.Off+r.Len-off))
			b := t.buf[:n]
			k, err := f.ReadAt(b, off)
			if k < n {
				if firstErr == nil {
					firstErr = fmt.Errorf("content at file offset %d: %w", off+int64(k), err)
				}
				clear(b[k:])
			}
			if _, err := t.w.Write(b); err != nil {
				return &fatalError{fmt.Errorf("tar: %w", err)}
			}
			off += int64(n)
			t.x.bytes.Add(int64(n))
		}
	}
	if _, err := t.w.Write(make([]byte, pad512(dataLen))); err != nil {
		return &fatalError{fmt.Errorf("tar: %w", err)}
	}
	t.x.rep.mu.Lock()
	t.x.rep.Bytes += h.Size
	t.x.rep.DataBytes += dataLen
	t.x.rep.mu.Unlock()
	t.x.files.Add(1)
	if firstErr != nil {
		t.x.problem(src, in.Ino, Damaged, firstErr)
	}
	return nil
}

const maxOctal7 = 0o7777777 // the largest number in a ustar uid/gid field

func pad512(n int64) int64 { return (512 - n%512) % 512 }

// paxRecord formats "LEN KEY=VALUE\n", LEN counting the whole record.
func paxRecord(k, v string) string {
	body := " " + k + "=" + v + "\n"
	n := len(body) + 1
	for len(strconv.Itoa(n))+len(body) != n {
		n++
	}
	return strconv.Itoa(n) + body
}

// paxTime formats a time as PAX does: seconds, then a fraction if any.
func paxTime(ts time.Time) string {
	sec, nsec := ts.Unix(), int64(ts.Nanosecond())
	if nsec == 0 {
		return strconv.FormatInt(sec, 10)
	}
	sign := ""
	if sec < 0 {
		sign, sec, nsec = "-", -(sec + 1), 1e9-nsec
	}
	return strings.TrimRight(fmt.Sprintf("%s%d.%09d", sign, sec, nsec), "0")
}

// ustarHeader builds one 512-byte ustar header block. Fields that do not
// fit (a name over 100 bytes, numbers too large for their octal field) are
// cut or zeroed; the PAX header before it carries the real values.
func ustarHeader(name string, mode int64, uid, gid int, size, mtime int64, typ byte) []byte {
	b := make([]byte, 512)
	if len(name) > 100 {
		name = name[len(name)-100:]
	}
	copy(b[0:100], name)
	octal := func(f []byte, v int64) {
		s := strconv.FormatInt(v, 8)
		if v < 0 || len(s) > len(f)-1 {
			s = "0"
		}
		s = strings.Repeat("0", len(f)-1-len(s)) + s
		copy(f, s)
	}
	octal(b[100:108], mode)
	octal(b[108:116], int64(uid))
	octal(b[116:124], int64(gid))
	octal(b[124:136], size)
	octal(b[136:148], mtime)
	b[156] = typ
	copy(b[257:263], "ustar\x00")
	copy(b[263:265], "00")
	copy(b[148:156], "        ")
	var sum int64
	for _, c := range b {
		sum += int64(c)
	}
	copy(b[148:155], fmt.Sprintf("%06o\x00", sum))
	return b
}

func (t *tarSink) symlink(names []string, src string, in *vfs.Stat, target string) error {
	h := t.header(names, src, in)
	h.Typeflag = tar.TypeSymlink
	h.Linkname = target
	return t.write(h)
}

func (t *tarSink) hardlink(names []string, src string, in *vfs.Stat, first []string) error {
	h := t.header(names, src, in)
	h.Typeflag = tar.TypeLink
	h.Linkname = memberName(first)
	h.PAXRecords = nil // the first member carries the xattrs
	return t.write(h)
}

func (t *tarSink) special(names []string, src string, in *vfs.Stat) error {
	h := t.header(names, src, in)
	switch in.Type() {
	case vfs.ModeFIFO:
		h.Typeflag = tar.TypeFifo
	case vfs.ModeChar, vfs.ModeBlock:
		h.Typeflag = tar.TypeChar
		if in.Type() == vfs.ModeBlock {
			h.Typeflag = tar.TypeBlock
		}
		maj, min, err := t.x.deviceNumbers(in)
		if err != nil {
			return err
		}
		h.Devmajor, h.Devminor = int64(maj), int64(min)
	case vfs.ModeSocket:
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
func NewTar(ctx context.Context, fsys vfs.FS, w io.Writer, opts Options) *Extractor {
	x := newExtractor(fsys, opts)
	x.sink = newTarSink(x, w)
	x.startProgress(ctx, nil)
	return x
}
