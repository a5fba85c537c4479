package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/extract"
	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/journal"
	"github.com/imgtool/imgtool/otherfs"
	"github.com/spf13/cobra"
)

// fsHandle is a filesystem opened from a VOL:/path file address: ext
// (fsys) or FAT/squashfs/ISO 9660 (other). src reads either, by ids:
// inode numbers for ext, ids handed out by extract.OtherSource for the
// others.
type fsHandle struct {
	sess  *session
	vol   *inspect.Volume
	fsys  *ext.FS     // nil unless ext
	other *otherfs.FS // nil unless FAT, squashfs or ISO 9660
	src   extract.Source
	path  string // cleaned absolute path inside the filesystem
}

// lookupFollow resolves the handle's kind of path following a final
// symlink inside the filesystem.
func (h *fsHandle) lookupFollow(p string) (uint32, error) {
	if h.fsys != nil {
		return h.fsys.LookupFollow(p)
	}
	return h.src.(interface{ LookupFollow(string) (uint32, error) }).LookupFollow(p)
}

// shownIno is the inode number to print for id: ext's inode number, the
// squashfs inode number or Rock Ridge serial, or 0 (FAT, plain ISO).
func (h *fsHandle) shownIno(id uint32) uint32 {
	if h.fsys != nil {
		return id
	}
	st, err := h.src.(interface {
		Stat(uint32) (*otherfs.Stat, error)
	}).Stat(id)
	if err != nil {
		return 0
	}
	return uint32(st.Ino)
}

// isOtherFS reports whether v holds a filesystem read through otherfs.
func isOtherFS(v *inspect.Volume) bool {
	if v.Content == nil {
		return false
	}
	switch v.Content.Type {
	case "vfat", "squashfs", "iso9660":
		return true
	}
	return false
}

func (h *fsHandle) Close() { h.sess.Close() }

// where names a path for messages: "VOL:/path" (the volume's address,
// even when the user gave a bare /path).
func (h *fsHandle) where(p string) string {
	if h.vol.Address == "" {
		return showName(p)
	}
	return h.vol.Address + ":" + showName(p)
}

// errAt wraps err with the file address it concerns; ext's errors carry
// the inode and on-disk byte offset of any damage.
func (h *fsHandle) errAt(p string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: no such file or directory", h.where(p))
	}
	return fmt.Errorf("%s: %w", h.where(p), err)
}

// openFS opens image (and -a images), resolves the volume of spec
// ("VOL:/path" or "/path") and opens its ext filesystem.
func openFS(cmd *cobra.Command, image, spec string, f *imageFlags) (*fsHandle, error) {
	volAddr, p, err := inspect.SplitFileSpec(spec)
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	s, err := openImages(cmd, image, f, false)
	if err != nil {
		return nil, err
	}
	v, err := s.tree.Resolve(volAddr)
	if err != nil {
		s.Close()
		return nil, err
	}
	if isOtherFS(v) {
		r := v.Reader()
		if r == nil {
			s.Close()
			return nil, fmt.Errorf("volume %s: no bytes to read", v.DisplayAddress())
		}
		ofs, err := otherfs.Open(r, r.Size(), v.DisplayAddress())
		if err != nil {
			s.Close()
			return nil, err
		}
		return &fsHandle{sess: s, vol: v, other: ofs, src: extract.OtherSource(ofs), path: path.Clean("/" + p)}, nil
	}
	view, err := v.OpenExt(&inspect.FSOptions{NoJournal: f.noJournal})
	if err != nil {
		s.Close()
		return nil, err
	}
	if msg := inspect.JournalSummary(view); msg != "" {
		slog.Info(msg, "volume", v.DisplayAddress())
		if view.ReplayErr != nil {
			var ej *journal.ExternalJournalError
			if errors.As(view.ReplayErr, &ej) {
				msg += " (give the journal device with --journal-dev FILE)"
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "imgtool: %s: %s\n", v.DisplayAddress(), msg)
		}
	}
	fsys := view.FS
	return &fsHandle{sess: s, vol: v, fsys: fsys, src: extract.ExtSource(fsys), path: path.Clean("/" + p)}, nil
}

// modeString renders i_mode as ls does: type letter, then rwx with s/S and
// t/T for setuid, setgid and sticky.
func modeString(mode uint16) string {
	var b [10]byte
	switch mode & ext.ModeType {
	case ext.ModeDir:
		b[0] = 'd'
	case ext.ModeSymlink:
		b[0] = 'l'
	case ext.ModeChar:
		b[0] = 'c'
	case ext.ModeBlock:
		b[0] = 'b'
	case ext.ModeFIFO:
		b[0] = 'p'
	case ext.ModeSocket:
		b[0] = 's'
	case ext.ModeReg:
		b[0] = '-'
	default:
		b[0] = '?'
	}
	const rwx = "rwxrwxrwx"
	for i := range 9 {
		if mode&(1<<(8-i)) != 0 {
			b[1+i] = rwx[i]
		} else {
			b[1+i] = '-'
		}
	}
	special := func(bit uint16, pos int, set, unset byte) {
		if mode&bit != 0 {
			if b[pos] == 'x' {
				b[pos] = set
			} else {
				b[pos] = unset
			}
		}
	}
	special(0o4000, 3, 's', 'S')
	special(0o2000, 6, 's', 'S')
	special(0o1000, 9, 't', 'T')
	return string(b[:])
}

// typeName names the file type of i_mode.
func typeName(mode uint16) string {
	switch mode & ext.ModeType {
	case ext.ModeDir:
		return "directory"
	case ext.ModeSymlink:
		return "symlink"
	case ext.ModeChar:
		return "char"
	case ext.ModeBlock:
		return "block"
	case ext.ModeFIFO:
		return "fifo"
	case ext.ModeSocket:
		return "socket"
	case ext.ModeReg:
		return "regular"
	}
	return "unknown"
}

// showName makes a name from a guest filesystem safe to print on a
// terminal: names with control characters or invalid UTF-8 are shown
// Go-quoted, so a hostile name cannot move the cursor or fake a line.
func showName(s string) string {
	if !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return strconv.Quote(s)
		}
	}
	return s
}

// timeJSON is RFC 3339 with nanoseconds, in UTC.
func timeJSON(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// timeText is a fixed-width UTC time with nanoseconds.
func timeText(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000000000 MST") }

func joinPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

func isDevice(mode uint16) bool {
	t := mode & ext.ModeType
	return t == ext.ModeChar || t == ext.ModeBlock
}

// shownLinks is the link count to print: ext's, the Rock Ridge count, or
// 0 where the format (or go-diskfs) does not give it (FAT, squashfs).
func (h *fsHandle) shownLinks(id uint32, in *ext.Inode) uint16 {
	if h.fsys != nil {
		return in.Links
	}
	st, err := h.src.(interface {
		Stat(uint32) (*otherfs.Stat, error)
	}).Stat(id)
	if err != nil {
		return 0
	}
	return uint16(min(st.Nlink, 0xffff))
}
