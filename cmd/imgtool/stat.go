package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/otherfs"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newStatCmd) }

// statInfo is `stat --json`.
type statInfo struct {
	Path       string       `json:"path"`
	Volume     string       `json:"volume"`
	Inode      uint32       `json:"inode"`
	Type       string       `json:"type"`
	Mode       string       `json:"mode"`
	ModeString string       `json:"mode_string"`
	UID        uint32       `json:"uid"`
	GID        uint32       `json:"gid"`
	Size       uint64       `json:"size"`
	Blocks     uint64       `json:"blocks"` // 512-byte units, as st_blocks
	Links      uint16       `json:"links"`
	Flags      uint32       `json:"flags"`
	FlagNames  []string     `json:"flag_names,omitempty"`
	Generation uint32       `json:"generation"`
	Atime      string       `json:"atime"`
	Mtime      string       `json:"mtime"`
	Ctime      string       `json:"ctime"`
	Crtime     string       `json:"crtime,omitempty"` // only with large inodes
	Target     string       `json:"target,omitempty"`
	DevMajor   *uint32      `json:"dev_major,omitempty"`
	DevMinor   *uint32      `json:"dev_minor,omitempty"`
	FileACL    uint64       `json:"xattr_block,omitempty"`
	Offset     int64        `json:"inode_offset"` // byte offset of the inode on the volume
	Extents    []statExtent `json:"extents"`
	Xattrs     []statXattr  `json:"xattrs"`
	Errors     []string     `json:"errors,omitempty"`
	// Format is fat12/fat16/fat32/squashfs/iso9660 for volumes read
	// through otherfs (ext: empty), ShortName FAT's 8.3 name.
	Format    string `json:"format,omitempty"`
	ShortName string `json:"short_name,omitempty"`
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

// flagNames names the i_flags bits (as chattr/lsattr and debugfs know them).
var flagNames = []struct {
	bit  uint32
	name string
}{
	{ext.FlagSecRm, "secrm"}, {ext.FlagUnrm, "unrm"}, {ext.FlagCompr, "compr"}, {ext.FlagSync, "sync"},
	{ext.FlagImmutable, "immutable"}, {ext.FlagAppend, "append"}, {ext.FlagNodump, "nodump"},
	{ext.FlagNoatime, "noatime"}, {ext.FlagEncrypt, "encrypt"}, {ext.FlagIndex, "index"},
	{ext.FlagJournalData, "journal_data"}, {ext.FlagHugeFile, "huge_file"}, {ext.FlagExtents, "extents"},
	{ext.FlagVerity, "verity"}, {ext.FlagEAInode, "ea_inode"}, {ext.FlagInlineData, "inline_data"},
	{ext.FlagProjInherit, "projinherit"}, {ext.FlagCasefold, "casefold"},
}

func newStatCmd(g *globalFlags) *cobra.Command {
	var f imageFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stat IMAGE [VOL:]/path [--json]",
		Short: "Show an inode of a filesystem inside an image",
		Long: `Show everything the inode of a path holds: number, type, mode, numeric owner,
size, blocks (512-byte units), links, flags, generation, all four times with
nanoseconds (birth time only with large inodes), symlink target, device
numbers, the block map (logical block, physical block, length, unwritten) and
the extended attributes. A final symlink is not followed (lstat).

On FAT, squashfs and ISO 9660 volumes it shows what the format stores
("format" says which): the entry's type, mode, owner, size, mtime (atime and
ctime are shown equal to it), symlink target, the FAT 8.3 name, the
squashfs inode number or Rock Ridge serial ("inode"; 0 when none). Fields
the format lacks are as ls shows them (FAT: 0755/0644, the caller's ids).`,
		Example: `  imgtool stat disk.img VolGroup00/LogVol00:/etc/shadow
  imgtool stat disk.img /var/lib/vm.img --json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := openFS(cmd, args[0], args[1], &f)
			if err != nil {
				return err
			}
			defer h.Close()
			ino, err := h.src.Lookup(h.path)
			if err != nil {
				return h.errAt(h.path, err)
			}
			in, err := h.src.Inode(ino)
			if err != nil {
				return h.errAt(h.path, err)
			}
			var st *statInfo
			if h.fsys != nil {
				st = collectStat(h, in)
			} else {
				st = collectOtherStat(h, ino, in)
			}
			if asJSON {
				err = writeJSON(cmd.OutOrStdout(), st)
			} else {
				printStat(cmd.OutOrStdout(), st)
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
	return cmd
}

func collectStat(h *fsHandle, in *ext.Inode) *statInfo {
	st := &statInfo{
		Path: h.path, Volume: h.vol.DisplayAddress(), Inode: in.Ino,
		Type: typeName(in.Mode), Mode: fmt.Sprintf("%04o", in.Mode&0o7777), ModeString: modeString(in.Mode),
		UID: in.UID, GID: in.GID, Size: in.Size, Blocks: in.Blocks, Links: in.Links,
		Flags: in.Flags, Generation: in.Generation,
		Atime: timeJSON(in.Atime), Mtime: timeJSON(in.Mtime), Ctime: timeJSON(in.Ctime),
		FileACL: in.FileACL, Offset: in.Offset,
		Extents: []statExtent{}, Xattrs: []statXattr{},
	}
	if in.HasCrtime {
		st.Crtime = timeJSON(in.Crtime)
	}
	for _, f := range flagNames {
		if in.Flags&f.bit != 0 {
			st.FlagNames = append(st.FlagNames, f.name)
		}
	}
	fail := func(what string, err error) {
		st.Errors = append(st.Errors, fmt.Sprintf("%s: %s: %v", h.where(h.path), what, err))
	}
	if in.IsSymlink() {
		t, err := h.fsys.Readlink(in.Ino)
		if err != nil {
			fail("symlink target", err)
		}
		st.Target = t
	}
	if isDevice(in.Mode) {
		ma, mi := in.Rdev()
		st.DevMajor, st.DevMinor = &ma, &mi
	}
	m, err := h.fsys.BlockMap(in.Ino)
	if err != nil {
		fail("block map", err)
	}
	for _, e := range m {
		st.Extents = append(st.Extents, statExtent{e.Logical, e.Physical, e.Len, e.Unwritten})
	}
	xs, err := h.fsys.Xattrs(in.Ino)
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

func printStat(w io.Writer, st *statInfo) {
	if st.Volume == "(disk)" {
		fmt.Fprintf(w, "  File: %s\n", showName(st.Path))
	} else {
		fmt.Fprintf(w, "  File: %s:%s\n", st.Volume, showName(st.Path))
	}
	if st.Target != "" {
		fmt.Fprintf(w, "Target: %s\n", showName(st.Target))
	}
	if st.Format != "" {
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
	tt := func(label, rfc string) {
		if rfc == "" {
			fmt.Fprintf(w, "%s -\n", label)
			return
		}
		fmt.Fprintf(w, "%s %s\n", label, rfc)
	}
	tt("Access:", st.Atime)
	tt("Modify:", st.Mtime)
	tt("Change:", st.Ctime)
	tt(" Birth:", st.Crtime)
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

// collectOtherStat is stat for a FAT, squashfs or ISO 9660 entry.
func collectOtherStat(h *fsHandle, id uint32, in *ext.Inode) *statInfo {
	st := &statInfo{
		Path: h.path, Volume: h.vol.DisplayAddress(), Inode: h.shownIno(id), Format: string(h.other.Kind()),
		Type: typeName(in.Mode), Mode: fmt.Sprintf("%04o", in.Mode&0o7777), ModeString: modeString(in.Mode),
		UID: in.UID, GID: in.GID, Size: in.Size, Links: h.shownLinks(id, in),
		Atime: timeJSON(in.Atime), Mtime: timeJSON(in.Mtime), Ctime: timeJSON(in.Ctime),
		Extents: []statExtent{}, Xattrs: []statXattr{},
	}
	if os, err := h.src.(interface {
		Stat(uint32) (*otherfs.Stat, error)
	}).Stat(id); err == nil {
		st.ShortName = os.ShortName
	}
	if in.IsSymlink() {
		t, err := h.src.Readlink(id)
		if err != nil {
			st.Errors = append(st.Errors, fmt.Sprintf("%s: symlink target: %v", h.where(h.path), err))
		}
		st.Target = t
	}
	return st
}
