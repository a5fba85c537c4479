package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/mount"
	"github.com/imgtool/imgtool/osinspect"
	"github.com/imgtool/imgtool/vfs"
	"github.com/spf13/cobra"
)

func newMountCmd(g *globalFlags) *cobra.Command {
	var f imageFlags
	var opts []string
	var guest, debug bool
	cmd := &cobra.Command{
		Use:   "mount IMAGE [VOLUME[:/path] | VOLUME:@[/path]] MOUNTPOINT",
		Short: "Mount an image's filesystems read-only with FUSE (no root, no loop devices)",
		Long: `Mount one filesystem of an image, or the whole image, read-only through FUSE,
so that a file manager, grep -r, rsync or diff -r can browse it.

  imgtool mount dom0.img /mnt/x                      the whole tree: every volume is a
                                                     directory (its filesystem), and its
                                                     raw bytes are the file NAME.raw beside it
  imgtool mount dom0.img VolGroup00/LogVol00 /mnt/x  one filesystem
  imgtool mount dom0.img p1:/grub /mnt/x             one directory of it
  imgtool mount guest.img VolGroup00:@ /mnt/x        the guest OS with its fstab applied
  imgtool mount -i guest.img /mnt/x                  the same, for the only OS in the image

It stays in the foreground until SIGINT/SIGTERM (Ctrl-C), ` + "`imgtool umount MOUNTPOINT`" + ` or
fusermount3 -u MOUNTPOINT unmounts it; either way it exits cleanly.

-o takes mount options: allow_other (other users see it; needs user_allow_other in
/etc/fuse.conf when not root; the guest's permissions are then enforced),
uid=N and gid=N (show every file as owned by N), debug, and anything else is passed
to the kernel as it is. The mount is always read-only: writes fail with EROFS.

As a normal user this needs /dev/fuse and the setuid fusermount3 (Debian: fuse3).
A damaged file gives EIO to the reader and the error is logged with the
volume address and offset.`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			mo, err := parseMountOptions(args[0], opts, debug)
			if err != nil {
				return err
			}
			spec, dir := "", args[len(args)-1]
			if len(args) == 3 {
				spec = args[1]
			}
			if guest {
				// -i: the guest view of the only OS, or of the OS under
				// the given volume (-i IMAGE VOL MNT is VOL:@).
				if _, _, ok := osinspect.SplitGuestSpec(spec); !ok {
					if strings.Contains(spec, ":/") {
						return usageErrorf("-i takes a volume, not a file address: use VOLUME:@/path")
					}
					spec = strings.TrimSuffix(spec, ":") + ":@"
					if spec == ":@" {
						spec = "@"
					}
				}
			}
			if st, err := os.Stat(dir); err != nil || !st.IsDir() {
				return fmt.Errorf("mount point %s: not a directory", dir)
			}
			s, err := openImages(cmd, args[0], &f, false)
			if err != nil {
				return err
			}
			defer s.Close()
			// The handler is in place before the mount exists (and before
			// the "mounted" line a caller may act on), so a SIGTERM right
			// after it unmounts instead of killing the process and leaving
			// a dead mount behind.
			sig := make(chan os.Signal, 2)
			signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
			defer signal.Stop(sig)
			start := time.Now()
			srv, what, err := mountSpec(s, spec, dir, &f, mo)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "imgtool: %s mounted read-only on %s (%v); Ctrl-C or `imgtool umount %s` unmounts\n",
				what, dir, time.Since(start).Round(time.Millisecond), dir)
			done := make(chan struct{})
			go func() { srv.Wait(); close(done) }()
			select {
			case <-done:
				return nil
			case got := <-sig:
				fmt.Fprintf(cmd.ErrOrStderr(), "imgtool: %v: unmounting %s\n", got, dir)
			}
			if err := srv.Unmount(); err != nil {
				// Busy (a shell inside it): detach it now, the kernel
				// finishes when the last user leaves.
				fmt.Fprintf(cmd.ErrOrStderr(), "imgtool: %s is busy (%v); detaching it lazily\n", dir, err)
				if err := mount.UnmountLazy(dir); err != nil {
					return err
				}
			}
			<-done
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringArrayVarP(&opts, "options", "o", nil, "mount `OPTIONS`: allow_other, uid=N, gid=N, debug, or passed to the kernel")
	cmd.Flags().BoolVarP(&guest, "inspect", "i", false, "mount the guest OS of the image with its fstab applied (as guestmount -i)")
	cmd.Flags().BoolVar(&debug, "debug", false, "log every FUSE request")
	return cmd
}

// mountSpec mounts what spec names: "" the whole tree, "VOL" a volume
// (its filesystem, or the tree below it), "VOL:/path" a directory,
// "VOL:@/path" or "@/path" the guest view.
func mountSpec(s *session, spec, dir string, f *imageFlags, mo mount.Options) (*fuse.Server, string, error) {
	open := openerFor(f)
	if vol, p, ok := osinspect.SplitGuestSpec(spec); ok {
		o, err := findOS(s.tree, vol, open)
		if err != nil {
			return nil, "", err
		}
		g, err := o.Guest(open, nil)
		if err != nil {
			return nil, "", err
		}
		for _, n := range o.Notes {
			fmt.Fprintf(os.Stderr, "imgtool: %s: %s\n", o.Root, n)
		}
		fsys, err := subFS(g, p, g.Address())
		if err != nil {
			return nil, "", err
		}
		srv, err := mount.MountFS(dir, fsys, g.Address()+p, mo)
		return srv, fmt.Sprintf("%s (%s) guest view %s", o.Label(), o.Root, p), err
	}
	if spec == "" {
		fss := s.tree.Filesystems()
		main := s.tree.Roots[0]
		if len(s.tree.Roots) == 1 && len(fss) == 1 && fss[0] == main {
			fsys, err := open(main)
			if err != nil {
				return nil, "", err
			}
			srv, err := mount.MountFS(dir, fsys, main.DisplayAddress(), mo)
			return srv, main.DisplayAddress(), err
		}
		srv, err := mount.MountTree(dir, treeVolumes(s.tree, open), mo)
		return srv, "the whole tree of " + main.DisplayAddress(), err
	}
	volAddr, p := spec, ""
	if i := strings.Index(spec, ":/"); i >= 0 {
		volAddr, p = spec[:i], spec[i+1:]
	} else {
		volAddr = strings.TrimSuffix(spec, ":")
	}
	v, err := s.tree.Resolve(volAddr)
	if err != nil {
		return nil, "", err
	}
	if !v.Readable() {
		if p != "" {
			return nil, "", fmt.Errorf("volume %s holds no filesystem imgtool reads", v.DisplayAddress())
		}
		vols := []*mount.Volume{}
		for _, c := range v.Children {
			vols = append(vols, volumeOf(c, c.Name, open))
		}
		if len(vols) == 0 {
			return nil, "", fmt.Errorf("volume %s holds no filesystem imgtool reads and no volumes", v.DisplayAddress())
		}
		srv, err := mount.MountTree(dir, vols, mo)
		return srv, "the tree of " + v.DisplayAddress(), err
	}
	fsys, err := open(v)
	if err != nil {
		return nil, "", err
	}
	if p == "" {
		p = "/"
	}
	sub, err := subFS(fsys, p, v.DisplayAddress())
	if err != nil {
		return nil, "", err
	}
	where := v.DisplayAddress()
	if p != "/" {
		where += ":" + p
	}
	srv, err := mount.MountFS(dir, sub, where, mo)
	return srv, where, err
}

// openerFor opens volumes as the CLI's other readers do (--no-journal).
func openerFor(f *imageFlags) osinspect.Opener {
	return func(v *inspect.Volume) (vfs.FS, error) {
		return v.OpenFS(vfs.OpenOptions{NoJournal: f.noJournal})
	}
}

// treeVolumes is the whole-tree view: the main image's volumes, then the
// other roots (-a images as a1, ..., VGs spanning images).
func treeVolumes(t *inspect.Tree, open osinspect.Opener) []*mount.Volume {
	var out []*mount.Volume
	main := t.Roots[0]
	if main.Readable() {
		out = append(out, volumeOf(main, "fs", open))
	}
	for _, c := range main.Children {
		out = append(out, volumeOf(c, c.Name, open))
	}
	for _, r := range t.Roots[1:] {
		out = append(out, volumeOf(r, r.Address, open))
	}
	return out
}

func volumeOf(v *inspect.Volume, name string, open osinspect.Opener) *mount.Volume {
	mv := &mount.Volume{Name: name, Address: v.DisplayAddress()}
	if r := v.Reader(); r != nil {
		mv.Raw = r
	}
	if v.Readable() {
		mv.OpenFS = func() (vfs.FS, error) { return open(v) }
	}
	for _, c := range v.Children {
		mv.Children = append(mv.Children, volumeOf(c, c.Name, open))
	}
	return mv
}

// subFS is fsys seen from the directory p.
func subFS(fsys vfs.FS, p, addr string) (vfs.FS, error) {
	p = path.Clean("/" + p)
	if p == "/" {
		return fsys, nil
	}
	ino, err := fsys.LookupFollow(p)
	if err != nil {
		return nil, fmt.Errorf("%s:%s: %w", addr, p, err)
	}
	st, err := fsys.Stat(ino)
	if err != nil {
		return nil, fmt.Errorf("%s:%s: %w", addr, p, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s:%s: not a directory", addr, p)
	}
	return &rootedFS{FS: fsys, root: ino}, nil
}

// rootedFS is an FS whose root is one of its directories.
type rootedFS struct {
	vfs.FS
	root vfs.Ino
}

func (r *rootedFS) Root() vfs.Ino { return r.root }

// findOS picks the OS whose root is vol or below it ("" : anywhere).
func findOS(t *inspect.Tree, vol string, open osinspect.Opener) (*osinspect.OS, error) {
	oses := osinspect.Inspect(t, open)
	var in *inspect.Volume
	if vol != "" {
		v, err := t.Resolve(vol)
		if err != nil {
			return nil, err
		}
		in = v
	}
	var hits []*osinspect.OS
	for _, o := range oses {
		if in == nil || osinspect.Within(o.RootVolume(), in) {
			hits = append(hits, o)
		}
	}
	where := "the image"
	if in != nil {
		where = in.DisplayAddress()
	}
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		return nil, fmt.Errorf("%s holds no operating system (no filesystem with /etc and an fstab or release file)", where)
	}
	var roots []string
	for _, o := range hits {
		roots = append(roots, o.Root+":@ ("+o.Label()+")")
	}
	return nil, &codeError{exitUsage, errors.New(where + " holds " + strconv.Itoa(len(hits)) + " operating systems; choose one of: " + strings.Join(roots, ", "))}
}

func newUmountCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "umount MOUNTPOINT",
		Short: "Unmount what imgtool mount mounted (as fusermount3 -u)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return mount.Unmount(args[0])
		},
	}
}

// parseMountOptions turns -o values (comma lists, repeatable) into
// mount.Options: allow_other, uid=, gid=, debug and ro are ours; rw is
// refused; anything else goes to the kernel as it is.
func parseMountOptions(fsName string, opts []string, debug bool) (mount.Options, error) {
	mo := mount.Options{FsName: fsName, Debug: debug}
	for _, o := range opts {
		for _, kv := range strings.Split(o, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "":
			case "allow_other":
				mo.AllowOther = true
			case "uid", "gid":
				n, err := strconv.ParseUint(v, 10, 32)
				if err != nil {
					return mo, usageErrorf("-o %s: want a number", kv)
				}
				id := uint32(n)
				if k == "uid" {
					mo.UID = &id
				} else {
					mo.GID = &id
				}
			case "ro":
			case "rw":
				return mo, usageErrorf("-o rw: imgtool mounts are read-only")
			case "debug":
				mo.Debug = true
			default:
				mo.Options = append(mo.Options, kv)
			}
		}
	}
	return mo, nil
}
