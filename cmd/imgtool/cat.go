package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func newCatCmd(g *globalFlags) *cobra.Command {
	var f imageFlags
	var force bool
	cmd := &cobra.Command{
		Use:   "cat IMAGE [VOL:]/path",
		Short: "Write a file of a filesystem inside an image to stdout",
		Long: `Write the content of a regular file of an ext2/3/4, XFS, FAT12/16/32,
squashfs or ISO 9660 filesystem to stdout, straight from the image.
Symlinks are followed inside the filesystem (an absolute target starts again
at the filesystem's root, never the host's), at most 40 of them. Holes and
preallocated (unwritten) ranges read as zeros.

A file that is not text (a NUL byte or invalid UTF-8 in its first 8 KiB) is
not written to a terminal: redirect stdout, or give --force.`,
		Example: `  imgtool cat disk.img VolGroup00/LogVol00:/etc/fstab
  imgtool cat disk.img /var/log/messages | less`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := openFS(cmd, args[0], args[1], &f)
			if err != nil {
				return err
			}
			defer h.Close()
			ino, err := h.fs.LookupFollow(h.path)
			if err != nil {
				return h.errAt(h.path, err)
			}
			in, err := h.fs.Stat(ino)
			if err != nil {
				return h.errAt(h.path, err)
			}
			if !in.IsRegular() {
				return fmt.Errorf("%s: is a %s, not a regular file", h.where(h.path), typeName(in.Mode))
			}
			file, err := h.fs.Open(ino)
			if err != nil {
				return h.errAt(h.path, err)
			}
			head := make([]byte, min(file.Size(), 8192))
			if k, _ := file.ReadAt(head, 0); looksBinary(head[:k]) {
				if err := refuseTerminal(cmd.OutOrStdout(), "the binary file "+h.where(h.path), force); err != nil {
					return err
				}
			}
			// A reader that streams itself (ext: one read per contiguous
			// run) does; otherwise copy through a section reader.
			var n int64
			if wt, ok := file.(io.WriterTo); ok {
				n, err = wt.WriteTo(cmd.OutOrStdout())
			} else {
				n, err = io.Copy(cmd.OutOrStdout(), io.NewSectionReader(file, 0, file.Size()))
			}
			if err != nil {
				return h.errAt(h.path, fmt.Errorf("after %d of %d bytes: %w", n, file.Size(), err))
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&force, "force", "f", false, "write a binary file to a terminal too")
	return cmd
}
