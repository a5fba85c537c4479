package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"time"

	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/osinspect"
	"github.com/imgtool/imgtool/termsafe"
	"github.com/imgtool/imgtool/vfs"
	"github.com/spf13/cobra"
)

// fsHandle is a filesystem opened from a VOL:/path file address, through
// the one interface every reader implements.
type fsHandle struct {
	sess *session
	vol  *inspect.Volume
	fs   vfs.FS
	caps vfs.Caps
	path string // cleaned absolute path inside the filesystem
	// shown is how many of the filesystem's notes were said so far (those
	// of the open, then those met while reading: sayNewNotes).
	shown  int
	stderr io.Writer
	// guest: fs is the guest view of the OS rooted at vol (VOL:@/path).
	guest bool
}

// sayNewNotes prints on stderr the notes the reader added since the last
// call (damage met on the way: checksum mismatches, skipped entries), so
// that no command shows data read past damage without saying so, and
// returns how many there were. Close calls it.
func (h *fsHandle) sayNewNotes() int {
	notes := h.fs.Notes()
	if h.shown >= len(notes) {
		return 0
	}
	notes = notes[h.shown:]
	h.shown += len(notes)
	for i, n := range notes {
		if i == 20 {
			fmt.Fprintf(h.stderr, "imgtool: note: ... and %d more notes from the filesystem reader\n", len(notes)-i)
			break
		}
		fmt.Fprintf(h.stderr, "imgtool: note: %s: %s\n", h.vol.DisplayAddress(), n)
	}
	return len(notes)
}

// shownIno is the inode number to print: the filesystem's when it has
// on-disk inode numbers, else 0 (FAT and ISO 9660 Inos are positions).
func (h *fsHandle) shownIno(ino vfs.Ino) vfs.Ino {
	if !h.caps.Inodes {
		return 0
	}
	return ino
}

// stale reports whether the view is known to be older than the disk (a
// journal that could not be replayed).
func (h *fsHandle) stale() bool {
	for _, n := range h.fs.Notes() {
		if n.Stale {
			return true
		}
	}
	return false
}

func (h *fsHandle) Close() {
	h.sayNewNotes()
	h.sess.Close()
}

// where names a path for messages: "VOL:/path" (the volume's address,
// even when the user gave a bare /path).
func (h *fsHandle) where(p string) string {
	if h.guest {
		return h.vol.Address + ":@" + showName(p)
	}
	if h.vol.Address == "" {
		return showName(p)
	}
	return h.vol.Address + ":" + showName(p)
}

// errAt wraps err with the file address it concerns; the readers' errors
// carry the inode and on-disk byte offset of any damage.
func (h *fsHandle) errAt(p string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: no such file or directory", h.where(p))
	}
	return fmt.Errorf("%s: %w%s", h.where(p), err, h.absolute(err))
}

// absolute says where on-disk damage named by err lies through every
// layer: the volume's address and the byte of the image file, mapped
// through image.Resolve (inspect.Volume.Where; where.go), or the byte of
// the container file for a container's own damage; "" otherwise.
func (h *fsHandle) absolute(err error) string { return h.vol.Where(err) }

// openFS opens image (and -a images), resolves the volume of spec
// ("VOL:/path" or "/path") and opens its filesystem (inspect.OpenFS). The
// volume-level notes of the open (the journal replay) are logged; a stale
// view is said on stderr.
func openFS(cmd *cobra.Command, image, spec string, f *imageFlags) (*fsHandle, error) {
	if gvol, gp, ok := osinspect.SplitGuestSpec(spec); ok {
		return openGuest(cmd, image, gvol, gp, f)
	}
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
		return nil, missingVolumeErr(s.tree, err)
	}
	fsys, err := v.OpenFS(vfs.OpenOptions{NoJournal: f.noJournal})
	if err != nil {
		s.Close()
		return nil, volumeErr(v, err)
	}
	slog.Debug("filesystem opened", "volume", v.DisplayAddress(), "type", fsys.Info().Type, "path", path.Clean("/"+p), "no_journal", f.noJournal)
	notes := fsys.Notes()
	for _, n := range notes {
		if n.Stale {
			fmt.Fprintf(cmd.ErrOrStderr(), "imgtool: %s: %s\n", v.DisplayAddress(), n)
		} else {
			slog.Info(n.String(), "volume", v.DisplayAddress())
		}
	}
	return &fsHandle{sess: s, vol: v, fs: fsys, caps: fsys.Info().Caps, path: path.Clean("/" + p), shown: len(notes), stderr: cmd.ErrOrStderr()}, nil
}

// modeString renders i_mode as ls does: type letter, then rwx with s/S and
// t/T for setuid, setgid and sticky.
func modeString(mode uint32) string {
	var b [10]byte
	switch mode & vfs.ModeType {
	case vfs.ModeDir:
		b[0] = 'd'
	case vfs.ModeLink:
		b[0] = 'l'
	case vfs.ModeChar:
		b[0] = 'c'
	case vfs.ModeBlock:
		b[0] = 'b'
	case vfs.ModeFIFO:
		b[0] = 'p'
	case vfs.ModeSocket:
		b[0] = 's'
	case vfs.ModeReg:
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
	special := func(bit uint32, pos int, set, unset byte) {
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
func typeName(mode uint32) string {
	switch mode & vfs.ModeType {
	case vfs.ModeDir:
		return "directory"
	case vfs.ModeLink:
		return "symlink"
	case vfs.ModeChar:
		return "char"
	case vfs.ModeBlock:
		return "block"
	case vfs.ModeFIFO:
		return "fifo"
	case vfs.ModeSocket:
		return "socket"
	case vfs.ModeReg:
		return "regular"
	}
	return "unknown"
}

// showName makes a name from a guest filesystem safe to print on a
// terminal: names with control characters or invalid UTF-8 are shown
// Go-quoted, so a hostile name cannot move the cursor or fake a line.
func showName(s string) string { return termsafe.Quote(s) }

// timeJSON is RFC 3339 with nanoseconds, in UTC.
func timeJSON(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func joinPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

func isDevice(mode uint32) bool {
	t := mode & vfs.ModeType
	return t == vfs.ModeChar || t == vfs.ModeBlock
}
