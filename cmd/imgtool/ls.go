package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/imgtool/imgtool/vfs"
	"github.com/spf13/cobra"
)

// lsEntry is one line of `ls --json`.
type lsEntry struct {
	Path       string  `json:"path"`
	Name       string  `json:"name"`
	Inode      vfs.Ino `json:"inode"`
	Type       string  `json:"type"`
	Mode       string  `json:"mode"`        // permission bits, octal: "0755", "4755"
	ModeString string  `json:"mode_string"` // as ls -l: "drwxr-xr-x"
	UID        uint32  `json:"uid"`
	GID        uint32  `json:"gid"`
	Size       int64   `json:"size"`
	Links      uint32  `json:"links"`
	Mtime      string  `json:"mtime"` // RFC 3339, nanoseconds, UTC
	Target     string  `json:"target,omitempty"`
	DevMajor   *uint32 `json:"dev_major,omitempty"`
	DevMinor   *uint32 `json:"dev_minor,omitempty"`
	Error      string  `json:"error,omitempty"` // the inode could not be read

	inode *vfs.Stat
}

type lsCmd struct {
	h       *fsHandle
	long    bool
	recurse bool
	asJSON  bool
	human   bool // -h: sizes as 1.5M
	dirSelf bool // -d: list a directory itself, not its entries
	inodes  bool // -i: inode number first
	utc     bool // --utc: times in UTC instead of the local zone
	w       *bufio.Writer
	errw    io.Writer
	first   bool // JSON: no comma before the first object
	errors  int
	seen    map[vfs.Ino]bool // directories listed (-R), against loops
}

func newLsCmd(g *globalFlags) *cobra.Command {
	var f imageFlags
	var deleted bool
	c := &lsCmd{}
	cmd := &cobra.Command{
		Use:   "ls IMAGE [VOL:]/path [-l] [-a] [-d] [-h] [-i] [-n] [-R] [--utc] [--json]",
		Short: "List a directory of a filesystem inside an image",
		Long: `List a directory (or show one file) of an ext2/3/4, XFS, FAT12/16/32, squashfs
or ISO 9660 filesystem, straight from the image. Entries are sorted by name; dotfiles are always shown ("." and ".."
are not). Owners are numeric: user names from a guest mean nothing here.

-l shows mode, links, uid, gid, size (major, minor for devices), mtime and
name, with "-> target" for symlinks. -i puts the inode number first, -d lists
a directory itself rather than its entries, -R recurses, as in GNU ls.
Times are local, with the zone shown ("2024-03-01 14:02:11 +0100", as GNU
ls --time-style='+%Y-%m-%d %H:%M:%S %z'); --utc shows them in UTC.
--json prints {"version": 1, "entries": [...]}: objects with inode, name,
path, type, mode in octal and as a string, uid, gid, size, links, mtime
(RFC 3339 with nanoseconds, UTC) and target (docs/json.md).

A symlink given as the path is listed itself with -l, and followed (inside
the filesystem) to the directory it names without -l, as ls does.

FAT, squashfs and ISO 9660 show what they store: FAT has no owners or modes
(0755/0644 and the caller's uid/gid are shown), and its times are 2-second
local times without a zone, read as UTC (--utc shows them as stored);
squashfs and Rock Ridge keep modes, owners and 1-second mtimes. The inode
number (-i) is the squashfs inode number or the Rock Ridge serial number, or
0.

Exit status: 0 when everything was listed; 3 when some entries could not be
read (each is named on stderr, with the inode and byte offset of the damage,
and everything else is still listed); 1 on an error that stops the listing
(no such path, no such volume); 2 on a usage error.`,
		Example: `  imgtool ls disk.img VolGroup00/LogVol00:/etc -l
  imgtool ls disk.img /home -R --json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if deleted {
				// Deleted files are not in the tree: the undelete scan
				// lists them (imgtool undelete --list).
				return runUndelete(cmd, &f, args[0], args[1], "", true, false, c.asJSON, c.utc)
			}
			h, err := openFS(cmd, args[0], args[1], &f)
			if err != nil {
				return err
			}
			defer h.Close()
			c.h = h
			c.w = bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
			c.errw = cmd.ErrOrStderr()
			c.first = true
			c.seen = map[vfs.Ino]bool{}
			err = c.run()
			if ferr := c.w.Flush(); err == nil {
				err = ferr
			}
			if err == nil && c.errors > 0 {
				err = &codeError{exitPartial, fmt.Errorf("%d entries could not be read", c.errors)}
			}
			return err
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&deleted, "deleted", false, "list the deleted files found under the path (ext3/ext4: from the journal's history; see imgtool undelete) instead of the directory")
	cmd.Flags().BoolVarP(&c.long, "long", "l", false, "long listing: mode, links, uid, gid, size, mtime, name")
	cmd.Flags().BoolVarP(&c.recurse, "recursive", "R", false, "list subdirectories recursively")
	cmd.Flags().BoolVar(&c.asJSON, "json", false, "print JSON: {\"version\": 1, \"entries\": [...]}")
	// GNU ls's flags mean what they mean there (issue 13.8). -h is human
	// sizes, so help is --help only for ls.
	cmd.Flags().Bool("help", false, "help for ls")
	cmd.Flags().BoolVarP(&c.human, "human-readable", "h", false, "with -l, sizes as 1K, 234M, 2G (powers of 1024, as GNU ls -h)")
	cmd.Flags().BoolVarP(&c.dirSelf, "directory", "d", false, "list directories themselves, not their contents")
	cmd.Flags().BoolVarP(&c.inodes, "inode", "i", false, "print the inode number of each entry first")
	cmd.Flags().BoolVar(&c.utc, "utc", false, "with -l or --deleted, times in UTC instead of the local time zone")
	var all, numeric bool
	cmd.Flags().BoolVarP(&all, "all", "a", false, "accepted as in GNU ls: names starting with '.' are always listed")
	cmd.Flags().BoolVarP(&numeric, "numeric-uid-gid", "n", false, "accepted as in GNU ls: owners are always numeric (a guest's user names mean nothing here)")
	return cmd
}

func (c *lsCmd) run() error {
	h := c.h
	ino, err := h.fs.Lookup(h.path)
	if err != nil {
		return h.errAt(h.path, err)
	}
	in, err := h.fs.Stat(ino)
	if err != nil {
		return h.errAt(h.path, err)
	}
	if in.IsSymlink() && !c.long && !c.asJSON {
		if fino, err := h.fs.LookupFollow(h.path); err == nil {
			if fin, err := h.fs.Stat(fino); err == nil && fin.IsDir() {
				ino, in = fino, fin
			}
		}
	}
	if c.asJSON {
		// writeJSON's shape, streamed: {"version": 1, "entries": [...]}.
		fmt.Fprintf(c.w, "{\n  \"version\": %d,\n  \"entries\": [", jsonVersion)
	}
	if !in.IsDir() || c.dirSelf {
		c.print(c.entry(h.path, baseOf(h.path), ino, in, nil))
	} else if err := c.listDir(h.path, ino, false); err != nil {
		return err
	}
	if c.asJSON {
		if c.first {
			c.w.WriteString("]\n}\n")
		} else {
			c.w.WriteString("\n  ]\n}\n")
		}
	}
	return nil
}

func baseOf(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' && i != len(p)-1 {
			return p[i+1:]
		}
	}
	return p
}

// listDir lists directory dir (inode ino) and, with -R, its
// subdirectories after it, as ls -R does.
func (c *lsCmd) listDir(dir string, ino vfs.Ino, header bool) error {
	h := c.h
	c.seen[ino] = true
	ents, err := h.fs.ReadDir(ino)
	if err != nil {
		c.errors++
		fmt.Fprintf(c.errw, "imgtool: %v\n", h.errAt(dir, err))
		if ents == nil {
			return nil
		}
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name < ents[j].Name })
	if header && !c.asJSON {
		fmt.Fprintf(c.w, "\n%s:\n", showName(dir))
	} else if c.recurse && !c.asJSON {
		fmt.Fprintf(c.w, "%s:\n", showName(dir))
	}
	var subdirs []vfs.DirEntry
	for _, e := range ents {
		p := joinPath(dir, e.Name)
		var in *vfs.Stat
		var ierr error
		if c.long || c.asJSON || c.recurse {
			in, ierr = h.fs.Stat(e.Ino)
			if ierr != nil {
				c.errors++
				fmt.Fprintf(c.errw, "imgtool: %v\n", h.errAt(p, ierr))
			}
		}
		c.print(c.entry(p, e.Name, e.Ino, in, ierr))
		if c.recurse && in != nil && in.IsDir() && !c.seen[e.Ino] {
			subdirs = append(subdirs, e)
		}
	}
	for _, e := range subdirs {
		if err := c.listDir(joinPath(dir, e.Name), e.Ino, true); err != nil {
			return err
		}
	}
	return nil
}

func (c *lsCmd) entry(p, name string, ino vfs.Ino, in *vfs.Stat, ierr error) *lsEntry {
	e := &lsEntry{Path: p, Name: name, Inode: c.h.shownIno(ino)}
	if ierr != nil {
		e.Error = ierr.Error()
		return e
	}
	if in == nil {
		return e
	}
	e.Type = typeName(in.Mode)
	e.Mode = fmt.Sprintf("%04o", in.Mode&0o7777)
	e.ModeString = modeString(in.Mode)
	e.UID, e.GID = in.UID, in.GID
	e.Size = in.Size
	e.Links = in.Nlink
	e.Mtime = timeJSON(in.Mtime)
	if in.IsSymlink() {
		t, err := c.h.fs.Readlink(ino)
		if err != nil {
			c.errors++
			fmt.Fprintf(c.errw, "imgtool: %v\n", c.h.errAt(p, err))
		}
		e.Target = t
	}
	if isDevice(in.Mode) {
		ma, mi := in.RdevMajor, in.RdevMinor
		e.DevMajor, e.DevMinor = &ma, &mi
	}
	e.inode = in
	return e
}

func (c *lsCmd) print(e *lsEntry) {
	if c.asJSON {
		if !c.first {
			c.w.WriteString(",")
		}
		c.first = false
		c.w.WriteString("\n    ")
		b, _ := json.Marshal(e)
		c.w.Write(b)
		return
	}
	if c.inodes {
		fmt.Fprintf(c.w, "%8d ", e.Inode)
	}
	if !c.long {
		fmt.Fprintln(c.w, showName(e.Name))
		return
	}
	if e.inode == nil {
		fmt.Fprintf(c.w, "%s %s\n", "??????????", showName(e.Name))
		return
	}
	size := fmt.Sprint(e.Size)
	if c.human {
		size = lsHuman(e.Size)
	}
	if e.DevMajor != nil {
		size = fmt.Sprintf("%d, %d", *e.DevMajor, *e.DevMinor)
	}
	name := showName(e.Name)
	if e.inode.IsSymlink() {
		name += " -> " + showName(e.Target)
	}
	fmt.Fprintf(c.w, "%s %3d %5d %5d %10s %s %s\n", e.ModeString, e.Links, e.UID, e.GID, size,
		shownTime(e.inode.Mtime, c.utc, false), name)
}

// lsHuman formats n as GNU ls -h does: bytes below 1024, otherwise one
// decimal below 10 (rounded up) and whole numbers above, with K, M, G, T,
// P, E suffixes.
func lsHuman(n int64) string {
	if n < 1024 {
		return fmt.Sprint(n)
	}
	f := float64(n)
	i := -1
	for f >= 1024 && i < 5 {
		f /= 1024
		i++
	}
	unit := string("KMGTPE"[i])
	if f < 10 {
		v := math.Ceil(f*10) / 10
		if v < 10 {
			return fmt.Sprintf("%.1f%s", v, unit)
		}
		f = v
	}
	return fmt.Sprintf("%.0f%s", math.Ceil(f), unit)
}
