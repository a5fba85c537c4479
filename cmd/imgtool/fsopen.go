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
	"github.com/imgtool/imgtool/inspect"
	"github.com/spf13/cobra"
)

// fsHandle is an ext filesystem opened from a VOL:/path file address.
type fsHandle struct {
	sess *session
	vol  *inspect.Volume
	fsys *ext.FS
	path string // cleaned absolute path inside the filesystem
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
	view, err := v.OpenExt(&inspect.FSOptions{NoJournal: f.noJournal})
	if err != nil {
		s.Close()
		return nil, err
	}
	if msg := inspect.JournalSummary(view); msg != "" {
		slog.Info(msg, "volume", v.DisplayAddress())
		if view.ReplayErr != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "imgtool: %s: %s\n", v.DisplayAddress(), msg)
		}
	}
	fsys := view.FS
	return &fsHandle{sess: s, vol: v, fsys: fsys, path: path.Clean("/" + p)}, nil
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
