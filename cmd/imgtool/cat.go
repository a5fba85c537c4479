package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newCatCmd) }

func newCatCmd(g *globalFlags) *cobra.Command {
	var f imageFlags
	cmd := &cobra.Command{
		Use:   "cat IMAGE [VOL:]/path",
		Short: "Write a file of a filesystem inside an image to stdout",
		Long: `Write the content of a regular file of an ext2/3/4, FAT12/16/32, squashfs
or ISO 9660 filesystem to stdout, straight from the image.
Symlinks are followed inside the filesystem (an absolute target starts again
at the filesystem's root, never the host's), at most 40 of them. Holes and
preallocated (unwritten) ranges read as zeros.`,
		Example: `  imgtool cat disk.img VolGroup00/LogVol00:/etc/fstab
  imgtool cat disk.img /var/log/messages | less`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := openFS(cmd, args[0], args[1], &f)
			if err != nil {
				return err
			}
			defer h.Close()
			ino, err := h.lookupFollow(h.path)
			if err != nil {
				return h.errAt(h.path, err)
			}
			in, err := h.src.Inode(ino)
			if err != nil {
				return h.errAt(h.path, err)
			}
			if !in.IsRegular() {
				return fmt.Errorf("%s: is a %s, not a regular file", h.where(h.path), typeName(in.Mode))
			}
			if h.fsys == nil {
				content, err := h.src.OpenContent(ino)
				if err != nil {
					return h.errAt(h.path, err)
				}
				n, err := io.Copy(cmd.OutOrStdout(), io.NewSectionReader(content, 0, content.Size()))
				if err != nil {
					return h.errAt(h.path, fmt.Errorf("after %d of %d bytes: %w", n, content.Size(), err))
				}
				return nil
			}
			file, err := h.fsys.OpenInode(ino)
			if err != nil {
				return h.errAt(h.path, err)
			}
			n, err := file.WriteTo(cmd.OutOrStdout())
			if err != nil {
				return h.errAt(h.path, fmt.Errorf("after %d of %d bytes: %w", n, file.Size(), err))
			}
			return nil
		},
	}
	f.register(cmd)
	return cmd
}
