package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/imgtool/imgtool/vfs"
	"github.com/spf13/cobra"
)

// statInfo is `stat --json`.
type statInfo struct {
	Path       string       `json:"path"`
	Volume     string       `json:"volume"`
	Inode      vfs.Ino      `json:"inode"`
	Type       string       `json:"type"`
	Mode       string       `json:"mode"`
	ModeString string       `json:"mode_string"`
	UID        uint32       `json:"uid"`
	GID        uint32       `json:"gid"`
	Size       int64        `json:"size"`
	Blocks     int64        `json:"blocks"` // 512-byte units, as st_blocks
	Links      uint32       `json:"links"`
	Flags      uint32       `json:"flags"`
	FlagNames  []string     `json:"flag_names,omitempty"`
	Generation uint32       `json:"generation"`
	Atime      string       `json:"atime"`
	Mtime      string       `json:"mtime"`
	Ctime      string       `json:"ctime"`
	Crtime     string       `json:"crtime,omitempty"` // where the format stores it (ext: large inodes)
	Target     string       `json:"target,omitempty"`
	DevMajor   *uint32      `json:"dev_major,omitempty"`
	DevMinor   *uint32      `json:"dev_minor,omitempty"`
	FileACL    uint64       `json:"xattr_block,omitempty"`
	Offset     int64        `json:"inode_offset"` // byte offset of the inode on the volume, -1 when the format has none
	Extents    []statExtent `json:"extents"`
	Xattrs     []statXattr  `json:"xattrs"`
	Errors     []string     `json:"errors,omitempty"`
	// Format is the exact format (ext4, fat32, squashfs, ...),
	// ShortName FAT's 8.3 name.
	Format    string `json:"format,omitempty"`
	ShortName string `json:"short_name,omitempty"`

	// times are the four times (atime, mtime, ctime, btime; zero: none)
	// for the text form, which shows them in the local zone (shownTime).
	times [4]time.Time
}

type statExtent struct {
	Logical   uint64 `json:"logical"`
	Physical  uint64 `json:"physical"`
	Length    uint64 `json:"length"`
	Unwritten bool   `json:"unwritten,omitempty"`
}

type statXattr struct {
	Name string `json:"name"`
	Size int    `json:"size"`
	// Value is the value when it is printable UTF-8 text; Hex always.
	Value string `json:"value,omitempty"`
	Hex   string `json:"hex"`
}

func newStatCmd(g *globalFlags) *cobra.Command {
	var f imageFlags
	var asJSON, utc bool
	cmd := &cobra.Command{
		Use:   "stat IMAGE [VOL:]/path [--utc] [--json]",
		Short: "Show an inode of a filesystem inside an image",
		Long: `Show everything the inode of a path holds: number, type, mode, numeric owner,
size, blocks (512-byte units), links, flags, generation, all four times with
nanoseconds (birth time only with large inodes), symlink target, device
numbers, the block map (logical block, physical block, length, unwritten) and
the extended attributes. A final symlink is not followed (lstat).

Every filesystem is read through the same interface; "format" names the exact
format. Where a format stores less (FAT, squashfs, ISO 9660) stat shows what
it has: type, mode, owner, size, mtime (atime and ctime equal to it), symlink
target, the FAT 8.3 name, the squashfs inode number ("inode"; 0 where the
format has no inode numbers: FAT, ISO 9660). Fields the format lacks are the
reader's documented defaults (FAT: 0755/0644, owner 0:0).

Times are local, with nanoseconds and the zone ("2024-03-01
14:02:11.123456789 +0100", as GNU stat); --utc shows them in UTC. --json
gives them as RFC 3339 in UTC, in {"version": 1, ...} (docs/json.md).

Exit status: 0 when the whole inode was read; 3 when parts of it could not
be (its xattrs, its block map: each is named on stderr, the rest is
shown); 1 on an error that stops it (no such path); 2 on a usage error.`,
		Example: `  imgtool stat disk.img VolGroup00/LogVol00:/etc/shadow
  imgtool stat disk.img /var/lib/vm.img --json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := openFS(cmd, args[0], args[1], &f)
			if err != nil {
				return err
			}
			defer h.Close()
			ino, err := h.fs.Lookup(h.path)
			if err != nil {
				return h.errAt(h.path, err)
			}
			in, err := h.fs.Stat(ino)
			if err != nil {
				return h.errAt(h.path, err)
			}
			st := collectStat(h, in)
			if asJSON {
				err = writeJSON(cmd.OutOrStdout(), st)
			} else {
				printStat(cmd.OutOrStdout(), st, utc)
			}
			if err == nil && len(st.Errors) > 0 {
				for _, e := range st.Errors {
					fmt.Fprintf(cmd.ErrOrStderr(), "imgtool: %s\n", e)
				}
				err = &codeError{exitPartial, fmt.Errorf("%s: %d parts of the inode could not be read", h.where(h.path), len(st.Errors))}
			}
			return err
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&utc, "utc", false, "times in UTC instead of the local time zone")
	return cmd
}

// collectStat gathers what the filesystem says about an inode: Stat,
// symlink target, xattrs, and where the format has them the block map
// (vfs.ExtentMapper) and details (vfs.Detailer: inode offset, 8.3 name).
func collectStat(h *fsHandle, in *vfs.Stat) *statInfo {
	st := &statInfo{
		Path: h.path, Volume: h.vol.DisplayAddress(), Inode: h.shownIno(in.Ino),
		Type: typeName(in.Mode), Mode: fmt.Sprintf("%04o", in.Mode&0o7777), ModeString: modeString(in.Mode),
		UID: in.UID, GID: in.GID, Size: in.Size, Blocks: in.Blocks, Links: in.Nlink,
		Flags: in.Flags, FlagNames: vfs.FlagNames(in.Flags), Generation: in.Generation,
		Atime: timeJSON(in.Atime), Mtime: timeJSON(in.Mtime), Ctime: timeJSON(in.Ctime),
		Offset: -1, Extents: []statExtent{}, Xattrs: []statXattr{},
		times: [4]time.Time{in.Atime, in.Mtime, in.Ctime, in.Btime},
	}
	if !in.Btime.IsZero() {
		st.Crtime = timeJSON(in.Btime)
	}
	fail := func(what string, err error) {
		st.Errors = append(st.Errors, fmt.Sprintf("%s: %s: %v", h.where(h.path), what, err))
	}
	if d, ok := h.fs.(vfs.Detailer); ok {
		if det, err := d.Details(in.Ino); err == nil {
			st.Format, st.ShortName, st.Offset, st.FileACL = det.Format, det.ShortName, det.Offset, det.XattrBlock
		}
	}
	if in.IsSymlink() {
		t, err := h.fs.Readlink(in.Ino)
		if err != nil {
			fail("symlink target", err)
		}
		st.Target = t
	}
	if isDevice(in.Mode) {
		ma, mi := in.RdevMajor, in.RdevMinor
		st.DevMajor, st.DevMinor = &ma, &mi
	}
	if em, ok := h.fs.(vfs.ExtentMapper); ok {
		m, err := em.Extents(in.Ino)
		if err != nil {
			fail("block map", err)
		}
		bs := max(h.fs.Info().BlockSize, 1)
		for _, e := range m {
			st.Extents = append(st.Extents, statExtent{uint64(e.Logical / bs), uint64(e.Physical / bs), uint64(e.Len / bs), e.Unwritten})
		}
	}
	xs, err := h.fs.Xattrs(in.Ino)
	if err != nil {
		fail("xattrs", err)
	}
	for _, x := range xs {
		sx := statXattr{Name: x.Name, Size: len(x.Value), Hex: hex.EncodeToString(x.Value)}
		if printable(x.Value) {
			sx.Value = string(x.Value)
		}
		st.Xattrs = append(st.Xattrs, sx)
	}
	return st
}

func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return false
		}
	}
	return true
}

func printStat(w io.Writer, st *statInfo, utc bool) {
	if st.Volume == "(disk)" {
		fmt.Fprintf(w, "  File: %s\n", showName(st.Path))
	} else {
		fmt.Fprintf(w, "  File: %s:%s\n", st.Volume, showName(st.Path))
	}
	if st.Target != "" {
		fmt.Fprintf(w, "Target: %s\n", showName(st.Target))
	}
	if st.Offset < 0 {
		fmt.Fprintf(w, "Format: %s", st.Format)
		if st.ShortName != "" {
			fmt.Fprintf(w, "  8.3 name: %s", showName(st.ShortName))
		}
		fmt.Fprintf(w, "  Inode: %d  Type: %s\n", st.Inode, st.Type)
	} else {
		fmt.Fprintf(w, " Inode: %d  (at byte %d)  Type: %s\n", st.Inode, st.Offset, st.Type)
	}
	fmt.Fprintf(w, "  Mode: %s (%s)  Uid: %d  Gid: %d\n", st.Mode, st.ModeString, st.UID, st.GID)
	fmt.Fprintf(w, "  Size: %d  Blocks: %d  Links: %d", st.Size, st.Blocks, st.Links)
	if st.DevMajor != nil {
		fmt.Fprintf(w, "  Device: %d,%d", *st.DevMajor, *st.DevMinor)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, " Flags: %#x", st.Flags)
	if len(st.FlagNames) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(st.FlagNames, ","))
	}
	fmt.Fprintf(w, "  Generation: %d", st.Generation)
	if st.FileACL != 0 {
		fmt.Fprintf(w, "  Xattr block: %d", st.FileACL)
	}
	fmt.Fprintln(w)
	for i, label := range []string{"Access:", "Modify:", "Change:", " Birth:"} {
		if st.times[i].IsZero() {
			fmt.Fprintf(w, "%s -\n", label)
			continue
		}
		fmt.Fprintf(w, "%s %s\n", label, shownTime(st.times[i], utc, true))
	}
	if len(st.Extents) > 0 {
		fmt.Fprintf(w, "Extents (%d):\n", len(st.Extents))
		fmt.Fprintf(w, "  %12s %14s %10s\n", "LOGICAL", "PHYSICAL", "LENGTH")
		for _, e := range st.Extents {
			u := ""
			if e.Unwritten {
				u = "  unwritten"
			}
			fmt.Fprintf(w, "  %12d %14d %10d%s\n", e.Logical, e.Physical, e.Length, u)
		}
	}
	if len(st.Xattrs) > 0 {
		fmt.Fprintf(w, "Xattrs (%d):\n", len(st.Xattrs))
		for _, x := range st.Xattrs {
			v := "0x" + x.Hex
			if x.Value != "" || x.Size == 0 {
				v = strconv.Quote(x.Value)
			}
			if len(v) > 200 {
				v = v[:200] + "..."
			}
			fmt.Fprintf(w, "  %s (%d) = %s\n", showName(x.Name), x.Size, v)
		}
	}
}
