package dump

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Limits that keep a hostile stream from making the reader allocate much.
const (
	// MaxDirSize is the largest directory the reader loads into memory.
	MaxDirSize = 64 << 20
	// MaxSymlinkSize is the longest symlink target accepted.
	MaxSymlinkSize = 64 << 10
	// MaxEASize is the largest EA record accepted (value offsets are 16-bit).
	MaxEASize = 64 << 10
	// MaxFileSize bounds di_size (ext4's limit is 16 TiB with 4 KiB blocks).
	MaxFileSize = 1 << 50
	// maxMapRecords bounds the TS_CLRI/TS_BITS maps (2^32 inodes).
	maxMapRecords = (1 << 32) / 8 / TPBSize
)

// FormatError reports a malformed stream, with where it was found.
type FormatError struct {
	Record int64 // record number (0 is the TS_TAPE header)
	Offset int64 // byte offset in the stream: Record * TPBSize
	Msg    string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("dump: record %d (byte %d): %s", e.Record, e.Offset, e.Msg)
}

// Entry is one inode of the stream, returned by Reader.Next.
type Entry struct {
	Inode
	// Header is the entry's TS_INODE header.
	Header Header
	// Offset is the byte offset of that header in the stream.
	Offset int64
	// MetaOnly is set when only the metadata was dumped (DR_METAONLY).
	MetaOnly bool
	// Dirents lists a directory's entries, "." and ".." included.
	Dirents []DirEntry
	// Target is a symbolic link's target.
	Target string
}

// Reader reads a dump stream record by record. It checks the magic and
// checksum of every header and keeps only bounded state: the two inode
// bitmaps, the current header, and the directory entries seen (for path
// names). File data is streamed through Read or Segments, never held.
type Reader struct {
	r   io.Reader
	rec int64 // records consumed so far
	buf [TPBSize]byte

	vol          Header
	used, dumped []byte

	next     Header // read-ahead header
	nextRec  int64
	havePeek bool

	cur *Entry
	// data state of the current entry
	dh      Header // header whose c_addr is being walked
	slot    int
	remain  int64
	done    bool
	forced  bool // read every slot (maps and EA records), as restore does
	blkLen  int
	blkHole bool
	blkPos  int
	pos     int64

	xattrs     []Xattr
	xattrsDone bool

	links map[uint32][]link // inode -> names seen in directories
	eof   bool
	err   error
}

type link struct {
	parent uint32
	name   string
}

// NewReader reads the volume header (TS_TAPE) and the TS_CLRI and TS_BITS
// maps, and positions the reader before the first inode.
func NewReader(r io.Reader) (*Reader, error) {
	rd := &Reader{r: r, links: map[uint32][]link{}}
	h, rec, err := rd.readHeader()
	if err != nil {
		return nil, err
	}
	if h.Type != TSTape {
		return nil, rd.errAt(rec, "first header is %s (%d), want TS_TAPE", TypeName(h.Type), h.Type)
	}
	if h.Flags&DRCompressed != 0 {
		return nil, rd.errAt(rec, "compressed dump (dump -z) is not supported")
	}
	if h.Volume != 1 {
		return nil, rd.errAt(rec, "volume %d: only single-volume dumps are supported", h.Volume)
	}
	rd.vol = h
	for _, want := range []int32{TSClri, TSBits} {
		h, rec, err := rd.readHeader()
		if err != nil {
			return nil, err
		}
		if h.Type != want {
			return nil, rd.errAt(rec, "header is %s, want %s", TypeName(h.Type), TypeName(want))
		}
		if h.Count < 0 || h.Count > maxMapRecords {
			return nil, rd.errAt(rec, "%s map of %d records", TypeName(h.Type), h.Count)
		}
		var m []byte
		for i := int32(0); i < h.Count; i++ {
			if err := rd.readRecord(); err != nil {
				return nil, err
			}
			m = append(m, rd.buf[:]...)
		}
		if want == TSClri {
			rd.used = m
		} else {
			if len(m) != len(rd.used) {
				return nil, rd.errAt(rec, "TS_BITS map has %d records, TS_CLRI %d", len(m)/TPBSize, len(rd.used)/TPBSize)
			}
			rd.dumped = m
		}
	}
	return rd, nil
}

func (rd *Reader) errAt(rec int64, format string, args ...any) error {
	return &FormatError{Record: rec, Offset: rec * TPBSize, Msg: fmt.Sprintf(format, args...)}
}

// readRecord reads the next 1024 bytes into rd.buf.
func (rd *Reader) readRecord() error {
	if rd.err != nil {
		return rd.err
	}
	if _, err := io.ReadFull(rd.r, rd.buf[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			rd.err = rd.errAt(rd.rec, "stream ends before TS_END")
		} else {
			rd.err = fmt.Errorf("dump: reading record %d: %w", rd.rec, err)
		}
		return rd.err
	}
	rd.rec++
	return nil
}

// readHeader returns the next header (the read-ahead one if any) and its
// record number.
func (rd *Reader) readHeader() (Header, int64, error) {
	if rd.havePeek {
		rd.havePeek = false
		return rd.next, rd.nextRec, nil
	}
	rec := rd.rec
	if err := rd.readRecord(); err != nil {
		return Header{}, rec, err
	}
	var h Header
	h.Unmarshal(rd.buf[:])
	if h.Magic != NFSMagic {
		if h.Magic == OFSMagic {
			rd.err = rd.errAt(rec, "old-format (OFS_MAGIC) dump is not supported")
		} else if int32(swap32(uint32(h.Magic))) == NFSMagic {
			rd.err = rd.errAt(rec, "byte-swapped (big-endian) dump is not supported")
		} else {
			rd.err = rd.errAt(rec, "not a header: magic %d, want %d", h.Magic, NFSMagic)
		}
		return h, rec, rd.err
	}
	if !ChecksumOK(rd.buf[:]) {
		rd.err = rd.errAt(rec, "header checksum mismatch (words sum to %d, want %d)", int32(sum32(rd.buf[:])), Checksum)
		return h, rec, rd.err
	}
	switch h.Type {
	case TSInode, TSAddr:
		if h.Count < 0 || h.Count > TPNIndir {
			rd.err = rd.errAt(rec, "%s: c_count %d out of range", TypeName(h.Type), h.Count)
			return h, rec, rd.err
		}
	case TSTape, TSEnd, TSBits, TSClri:
	default:
		rd.err = rd.errAt(rec, "unknown record type %d", h.Type)
		return h, rec, rd.err
	}
	return h, rec, nil
}

func (rd *Reader) peekHeader() (Header, error) {
	if !rd.havePeek {
		h, rec, err := rd.readHeader()
		if err != nil {
			return h, err
		}
		rd.next, rd.nextRec, rd.havePeek = h, rec, true
	}
	return rd.next, nil
}

func swap32(v uint32) uint32 {
	return v>>24 | (v>>8)&0xff00 | (v<<8)&0xff0000 | v<<24
}

// Volume returns the TS_TAPE header: dates, level, label, host, device.
func (rd *Reader) Volume() *Header { return &rd.vol }

// Date returns the dump's date (c_date).
func (rd *Reader) Date() time.Time { return time.Unix(int64(rd.vol.Date), 0) }

// BaseDate returns the date of the dump this one is based on (c_ddate).
func (rd *Reader) BaseDate() time.Time { return time.Unix(int64(rd.vol.DDate), 0) }

// MaxIno returns the highest inode number the maps can describe.
func (rd *Reader) MaxIno() uint32 {
	n := uint64(len(rd.used)) * 8
	if n > 0xFFFFFFFF {
		n = 0xFFFFFFFF
	}
	return uint32(n)
}

// InUse reports whether an inode is marked in use (TS_CLRI map). restore -r
// deletes the inodes it knew that are not in use any more.
func (rd *Reader) InUse(ino uint32) bool { return testBit(rd.used, ino) }

// Dumped reports whether an inode is in the TS_BITS map of dumped inodes.
func (rd *Reader) Dumped(ino uint32) bool { return testBit(rd.dumped, ino) }

// Records returns the number of records consumed so far.
func (rd *Reader) Records() int64 { return rd.rec }

// Next advances to the next inode, skipping the unread data and extended
// attributes of the current one. It returns io.EOF at TS_END.
func (rd *Reader) Next() (*Entry, error) {
	if rd.err != nil {
		return nil, rd.err
	}
	if rd.eof {
		return nil, io.EOF
	}
	if rd.cur != nil {
		if _, err := rd.Xattrs(); err != nil {
			return nil, err
		}
		rd.cur = nil
	}
	h, rec, err := rd.readHeader()
	if err != nil {
		return nil, err
	}
	switch {
	case h.Type == TSEnd:
		rd.eof = true
		return nil, io.EOF
	case h.Type != TSInode:
		rd.err = rd.errAt(rec, "unexpected %s header, want TS_INODE", TypeName(h.Type))
		return nil, rd.err
	case h.Flags&DRExtAttributes != 0:
		rd.err = rd.errAt(rec, "extended-attribute record for inode %d follows no file", h.Inumber)
		return nil, rd.err
	case h.Inumber == 0 || h.Inumber > rd.MaxIno():
		rd.err = rd.errAt(rec, "inode number %d out of range 1-%d", h.Inumber, rd.MaxIno())
		return nil, rd.err
	case h.Dinode.Size > MaxFileSize:
		rd.err = rd.errAt(rec, "inode %d: size %d too large", h.Inumber, h.Dinode.Size)
		return nil, rd.err
	}
	d := &h.Dinode
	e := &Entry{
		Inode: Inode{
			Ino: h.Inumber, Mode: uint32(d.Mode), Nlink: uint32(max(d.Nlink, 0)),
			UID: d.UID, GID: d.GID, Size: d.Size,
			Atime: d.Atime, Mtime: d.Mtime, Ctime: d.Ctime,
			Flags: d.Flags, Generation: d.Generation, Blocks: uint64(max(d.Blocks, 0)),
		},
		Header:   h,
		Offset:   rec * TPBSize,
		MetaOnly: h.Flags&DRMetaOnly != 0,
	}
	switch e.Mode & ModeFmt {
	case ModeChr, ModeBlk:
		e.RdevMajor, e.RdevMinor = RdevFromDB(d.DB)
	}
	rd.cur = e
	rd.startData(h, false)
	rd.xattrs, rd.xattrsDone = nil, false
	if e.MetaOnly {
		rd.remain = 0
	}
	switch e.Mode & ModeFmt {
	case ModeDir:
		if e.Size > MaxDirSize {
			rd.err = rd.errAt(rec, "directory inode %d: size %d over the %d-byte limit", e.Ino, e.Size, MaxDirSize)
			return nil, rd.err
		}
		data, err := rd.readAll()
		if err != nil {
			return nil, err
		}
		ents, err := decodeDir(data, e.Offset+TPBSize)
		if err != nil {
			rd.err = rd.errAt(rec, "directory inode %d: %v", e.Ino, err)
			return nil, rd.err
		}
		e.Dirents = ents
		for _, de := range ents {
			if de.Name == "." || de.Name == ".." {
				continue
			}
			rd.links[de.Ino] = append(rd.links[de.Ino], link{e.Ino, de.Name})
		}
	case ModeLink:
		if e.Size > MaxSymlinkSize {
			rd.err = rd.errAt(rec, "symlink inode %d: size %d too large", e.Ino, e.Size)
			return nil, rd.err
		}
		data, err := rd.readAll()
		if err != nil {
			return nil, err
		}
		e.Target = string(data)
	}
	return e, nil
}

// startData sets up the walk of a file's c_addr slots.
func (rd *Reader) startData(h Header, forced bool) {
	rd.dh = h
	rd.slot = 0
	rd.remain = int64(h.Dinode.Size)
	rd.done = false
	rd.forced = forced
	rd.blkLen, rd.blkPos = 0, 0
	rd.pos = 0
}

// nextBlock moves to the next 1 KiB block of the current file, following
// restore's getfile: a slot whose c_addr is set is followed by a record,
// one that is clear is a hole; when the size is used up the records of the
// header's remaining set slots are skipped; TS_ADDR headers continue files
// longer than 512 blocks.
func (rd *Reader) nextBlock() error {
	if rd.err != nil {
		return rd.err
	}
	if rd.done {
		return io.EOF
	}
	if rd.slot >= int(rd.dh.Count) {
		if rd.remain <= 0 {
			rd.done = true
			return io.EOF
		}
		h, rec, err := rd.readHeader()
		if err != nil {
			return err
		}
		if h.Type != TSAddr || h.Inumber != rd.dh.Inumber || h.Count == 0 {
			rd.err = rd.errAt(rec, "inode %d: %d bytes missing: got %s for inode %d (count %d), want TS_ADDR",
				rd.dh.Inumber, rd.remain, TypeName(h.Type), h.Inumber, h.Count)
			return rd.err
		}
		rd.dh = h
		rd.slot = 0
	}
	present := rd.forced || rd.dh.Addr[rd.slot] != 0
	rd.slot++
	n := min(int64(TPBSize), max(rd.remain, 0))
	if present {
		if err := rd.readRecord(); err != nil {
			return err
		}
	}
	rd.blkHole = !present
	rd.blkLen = int(n)
	rd.blkPos = 0
	rd.remain -= TPBSize
	if rd.remain <= 0 {
		rd.done = true
		saved := rd.buf // the block just read; junk records must not clobber it
		for ; rd.slot < int(rd.dh.Count); rd.slot++ {
			if rd.forced || rd.dh.Addr[rd.slot] != 0 {
				if err := rd.readRecord(); err != nil {
					return err
				}
			}
		}
		rd.buf = saved
	}
	return nil
}

// Read reads the current entry's data (regular files; holes read as
// zeros). It returns io.EOF at the end of the file.
func (rd *Reader) Read(p []byte) (int, error) {
	if rd.cur == nil {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) {
		if rd.blkPos >= rd.blkLen {
			if err := rd.nextBlock(); err != nil {
				if err == io.EOF && n > 0 {
					return n, nil
				}
				return n, err
			}
			continue
		}
		k := min(len(p)-n, rd.blkLen-rd.blkPos)
		if rd.blkHole {
			clear(p[n : n+k])
		} else {
			copy(p[n:n+k], rd.buf[rd.blkPos:rd.blkPos+k])
		}
		rd.blkPos += k
		rd.pos += int64(k)
		n += k
	}
	return n, nil
}

// Segments streams the rest of the current entry's data as runs of
// present bytes: fn gets each run's file offset and bytes (valid only
// during the call). Gaps between runs, and up to the entry's Size, are
// holes.
func (rd *Reader) Segments(fn func(off int64, data []byte) error) error {
	if rd.cur == nil {
		return nil
	}
	var run []byte
	runOff := int64(-1)
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		err := fn(runOff, run)
		run = run[:0]
		return err
	}
	for {
		if rd.blkPos >= rd.blkLen {
			err := rd.nextBlock()
			if err == io.EOF {
				return flush()
			}
			if err != nil {
				return err
			}
			continue
		}
		k := rd.blkLen - rd.blkPos
		if rd.blkHole {
			if err := flush(); err != nil {
				return err
			}
		} else {
			if len(run) == 0 {
				runOff = rd.pos
			}
			run = append(run, rd.buf[rd.blkPos:rd.blkPos+k]...)
		}
		rd.blkPos += k
		rd.pos += int64(k)
		if len(run) >= 256<<10 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

// skipData consumes the rest of the current entry's data.
func (rd *Reader) skipData() error {
	for {
		err := rd.nextBlock()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readAll reads the rest of the current entry's data into memory; callers
// bound the size first.
func (rd *Reader) readAll() ([]byte, error) {
	var out []byte
	for {
		err := rd.nextBlock()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if rd.blkHole {
			out = append(out, make([]byte, rd.blkLen)...)
		} else {
			out = append(out, rd.buf[:rd.blkLen]...)
		}
		rd.blkPos = rd.blkLen
		rd.pos += int64(rd.blkLen)
	}
}

// Xattrs returns the current entry's extended attributes. It skips any
// unread data first (the EA records follow the data on tape).
func (rd *Reader) Xattrs() ([]Xattr, error) {
	if rd.cur == nil || rd.xattrsDone {
		return rd.xattrs, nil
	}
	if err := rd.skipData(); err != nil {
		return nil, err
	}
	for {
		h, err := rd.peekHeader()
		if err != nil {
			return nil, err
		}
		if h.Type != TSInode || h.Flags&DRExtAttributes == 0 {
			break
		}
		rec := rd.nextRec
		rd.havePeek = false
		if h.Inumber != rd.cur.Ino {
			rd.err = rd.errAt(rec, "extended-attribute record for inode %d after inode %d", h.Inumber, rd.cur.Ino)
			return nil, rd.err
		}
		if h.Dinode.Size > MaxEASize {
			rd.err = rd.errAt(rec, "inode %d: EA record of %d bytes too large", h.Inumber, h.Dinode.Size)
			return nil, rd.err
		}
		rd.startData(h, true)
		data, err := rd.readAll()
		if err != nil {
			return nil, err
		}
		if h.ExtAttributes != ExtXattr {
			continue // MacOS finder info or resource fork: not ours
		}
		xs, err := decodeEA(data)
		if err != nil {
			rd.err = rd.errAt(rec, "inode %d: %v", h.Inumber, err)
			return nil, rd.err
		}
		rd.xattrs = append(rd.xattrs, xs...)
	}
	rd.xattrsDone = true
	return rd.xattrs, nil
}

// Paths returns the names under which an inode appears in the directories
// read so far, as slash-separated paths from the root ("." for the root).
// Directories come first on tape, so once the first non-directory entry is
// returned the names are complete for this dump; an incremental dump only
// holds the directories it needed, so some paths may be unknown.
func (rd *Reader) Paths(ino uint32) []string {
	if ino == RootIno {
		return []string{"."}
	}
	var out []string
	for _, l := range rd.links[ino] {
		if p, ok := rd.dirPath(l.parent); ok {
			out = append(out, p+"/"+l.name)
		}
	}
	return out
}

// dirPath returns a directory's path by following first links upwards.
func (rd *Reader) dirPath(ino uint32) (string, bool) {
	var parts []string
	for depth := 0; ino != RootIno; depth++ {
		ls := rd.links[ino]
		if len(ls) == 0 || depth > len(rd.links) {
			return "", false
		}
		parts = append(parts, ls[0].name)
		ino = ls[0].parent
	}
	p := "."
	for i := len(parts) - 1; i >= 0; i-- {
		p += "/" + parts[i]
	}
	return p, true
}
