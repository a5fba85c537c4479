package osinspect

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"syscall"

	"github.com/imgtool/imgtool/vfs"
)

// Guest is an OS's own view of its files: the root filesystem with the
// fstab's filesystems and bind mounts attached at their mount points, as
// `mount -a` would leave it. It is a vfs.FS: Ino is instance<<48 | the
// filesystem's inode number, where instance 0 is the root (so the root
// filesystem keeps its own numbers) and each mount is one instance.
//
// Bind mounts are not recursive (as mount --bind): a bind instance shows
// its source directory's own filesystem without the mounts below it, so a
// bind of / onto /mnt cannot make an endless tree. Symlinks are followed
// in the guest's namespace (an absolute target starts at the guest's /),
// at most 40 of them per lookup. At most maxMounts filesystems are
// attached.
type Guest struct {
	os    *OS
	insts []*instance
	// redirect maps a mount-point directory (instance, inode) to the
	// instance mounted on it.
	redirect   map[instIno]int
	mountNotes []string
}

type instance struct {
	fs       vfs.FS
	root     vfs.Ino // the directory shown at the mount point
	rootPath string  // its path inside fs
	point    string
	addr     string
	bind     bool
}

type instIno struct {
	inst int
	ino  vfs.Ino
}

const (
	instShift = 48
	maxMounts = 64
	maxLinks  = 40
)

// Guest opens the guest view of o. rootFS is the root filesystem (already
// open; nil opens it with open). Mounts that cannot be attached (a
// missing mount point, a filesystem that does not open) become notes.
func (o *OS) Guest(open Opener, rootFS vfs.FS) (*Guest, error) {
	return o.guest(open, rootFS)
}

func (o *OS) guest(open Opener, rootFS vfs.FS) (*Guest, error) {
	if rootFS == nil {
		var err error
		if rootFS, err = open(o.root); err != nil {
			return nil, err
		}
	}
	g := &Guest{os: o, redirect: map[instIno]int{}}
	g.insts = append(g.insts, &instance{fs: rootFS, root: rootFS.Root(), rootPath: "/", point: "/", addr: o.Root})
	ms := append([]Mount(nil), o.Mounts...)
	// Parents before children whatever the fstab order (as libguestfs
	// does); equal depths keep fstab order, so a later mount on the same
	// point hides an earlier one, as the kernel would.
	sort.SliceStable(ms, func(i, j int) bool { return depth(ms[i].Point) < depth(ms[j].Point) })
	for _, m := range ms {
		if m.Point == "/" {
			continue
		}
		if len(g.insts) >= maxMounts {
			g.mountNotes = append(g.mountNotes, fmt.Sprintf("more than %d mounts: %s and later ones not attached", maxMounts, m.Point))
			break
		}
		at, err := g.resolve(m.Point, true)
		if err != nil {
			g.mountNotes = append(g.mountNotes, fmt.Sprintf("fstab line %d: mount point %s: %v; %s not attached", m.Line, m.Point, err, m.Spec))
			continue
		}
		if st, err := g.Stat(at.ino); err != nil || !st.IsDir() {
			g.mountNotes = append(g.mountNotes, fmt.Sprintf("fstab line %d: mount point %s is not a directory; %s not attached", m.Line, m.Point, m.Spec))
			continue
		}
		var in *instance
		if m.Bind != "" {
			src, err := g.resolve(m.Bind, true)
			if err != nil {
				g.mountNotes = append(g.mountNotes, fmt.Sprintf("fstab line %d: bind source %s: %v", m.Line, m.Bind, err))
				continue
			}
			si, su := g.split(src.ino)
			if st, err := g.Stat(src.ino); err != nil || !st.IsDir() {
				g.mountNotes = append(g.mountNotes, fmt.Sprintf("fstab line %d: bind source %s is not a directory; not attached", m.Line, m.Bind))
				continue
			}
			in = &instance{fs: g.insts[si].fs, root: su, rootPath: src.fsPath, point: m.Point, addr: g.insts[si].addr, bind: true}
		} else {
			f, err := open(m.vol)
			if err != nil {
				g.mountNotes = append(g.mountNotes, fmt.Sprintf("fstab line %d: %s on %s: %v", m.Line, m.Spec, m.Point, err))
				continue
			}
			in = &instance{fs: f, root: f.Root(), rootPath: "/", point: m.Point, addr: m.Address}
		}
		ai, au := g.split(at.ino)
		g.redirect[instIno{ai, au}] = len(g.insts)
		g.insts = append(g.insts, in)
	}
	return g, nil
}

func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(path.Clean(p), "/")
}

// Notes about attaching the mounts (besides the OS's fstab notes).
func (g *Guest) MountNotes() []string { return g.mountNotes }

// Address names the guest view in messages.
func (g *Guest) Address() string { return g.os.Root + ":@" }

func (g *Guest) compose(inst int, ino vfs.Ino) vfs.Ino {
	return vfs.Ino(uint64(inst)<<instShift | uint64(ino))
}

func (g *Guest) split(ino vfs.Ino) (int, vfs.Ino) {
	return int(uint64(ino) >> instShift), vfs.Ino(uint64(ino) & (1<<instShift - 1))
}

// enter maps an inode of instance inst to what the guest sees there: the
// root of whatever is mounted on it, or itself.
func (g *Guest) enter(inst int, ino vfs.Ino) (int, vfs.Ino, bool) {
	mounted := false
	for range len(g.insts) {
		n, ok := g.redirect[instIno{inst, ino}]
		if !ok {
			break
		}
		inst, ino, mounted = n, g.insts[n].root, true
	}
	return inst, ino, mounted
}

func (g *Guest) get(ino vfs.Ino) (*instance, vfs.Ino, error) {
	i, u := g.split(ino)
	if i >= len(g.insts) || u == 0 {
		return nil, 0, fmt.Errorf("guest inode %#x: %w", uint64(ino), fs.ErrNotExist)
	}
	return g.insts[i], u, nil
}

// Info describes the guest view: the root filesystem's, with the caps
// every attached filesystem shares.
func (g *Guest) Info() vfs.Info {
	info := g.insts[0].fs.Info()
	for _, in := range g.insts[1:] {
		c := in.fs.Info().Caps
		info.Caps.HardLinks = info.Caps.HardLinks && c.HardLinks
		info.Caps.Xattrs = info.Caps.Xattrs || c.Xattrs
		info.Caps.NsTimes = info.Caps.NsTimes && c.NsTimes
		info.Caps.Owners = info.Caps.Owners && c.Owners
		info.Caps.Perms = info.Caps.Perms && c.Perms
		info.Caps.Inodes = info.Caps.Inodes && c.Inodes
		info.Caps.Generation = info.Caps.Generation && c.Generation
		info.Caps.Devices = info.Caps.Devices && c.Devices
	}
	info.MaxIno = vfs.Ino(uint64(len(g.insts)) << instShift)
	return info
}

func (g *Guest) Root() vfs.Ino {
	i, u, _ := g.enter(0, g.insts[0].root)
	return g.compose(i, u)
}

// frame is one resolved directory on a lookup's path.
type frame struct {
	ino    vfs.Ino // composed
	fsPath string  // its path inside its instance's filesystem
}

func (g *Guest) Lookup(p string) (vfs.Ino, error) {
	f, err := g.resolve(p, false)
	return f.ino, err
}

func (g *Guest) LookupFollow(p string) (vfs.Ino, error) {
	f, err := g.resolve(p, true)
	return f.ino, err
}

// resolve walks p in the guest's namespace.
func (g *Guest) resolve(p string, follow bool) (frame, error) {
	rootI, rootU, _ := g.enter(0, g.insts[0].root)
	root := frame{ino: g.compose(rootI, rootU), fsPath: g.insts[rootI].rootPath}
	stack := []frame{root}
	comps := strings.Split(p, "/")
	links := 0
	for i := 0; i < len(comps); i++ {
		c := comps[i]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		cur := stack[len(stack)-1]
		inst, _ := g.split(cur.ino)
		in := g.insts[inst]
		childPath := path.Join(cur.fsPath, c)
		u, err := in.fs.Lookup(childPath)
		if err != nil {
			return frame{}, fmt.Errorf("%s%s: %w", g.Address(), p, err)
		}
		st, err := in.fs.Stat(u)
		if err != nil {
			return frame{}, err
		}
		last := i == len(comps)-1 || allEmpty(comps[i+1:])
		if st.IsSymlink() && (!last || follow) {
			links++
			if links > maxLinks {
				return frame{}, fmt.Errorf("%s%s: %w", g.Address(), p, syscall.ELOOP)
			}
			target, err := in.fs.Readlink(u)
			if err != nil {
				return frame{}, err
			}
			if strings.HasPrefix(target, "/") {
				stack = stack[:1]
			}
			comps = append(strings.Split(target, "/"), comps[i+1:]...)
			i = -1
			continue
		}
		ni, nu, mounted := g.enter(inst, u)
		fp := childPath
		if mounted {
			fp = g.insts[ni].rootPath
		}
		stack = append(stack, frame{ino: g.compose(ni, nu), fsPath: fp})
	}
	return stack[len(stack)-1], nil
}

func allEmpty(cs []string) bool {
	for _, c := range cs {
		if c != "" && c != "." {
			return false
		}
	}
	return true
}

func (g *Guest) Stat(ino vfs.Ino) (*vfs.Stat, error) {
	in, u, err := g.get(ino)
	if err != nil {
		return nil, err
	}
	st, err := in.fs.Stat(u)
	if err != nil {
		return nil, err
	}
	c := *st
	c.Ino = ino
	return &c, nil
}

func (g *Guest) ReadDir(ino vfs.Ino) ([]vfs.DirEntry, error) {
	in, u, err := g.get(ino)
	if err != nil {
		return nil, err
	}
	inst, _ := g.split(ino)
	ents, err := in.fs.ReadDir(u)
	out := make([]vfs.DirEntry, len(ents))
	for i, e := range ents {
		ni, nu, mounted := g.enter(inst, e.Ino)
		e.Ino = g.compose(ni, nu)
		if mounted {
			e.Type = vfs.DTDir
		}
		out[i] = e
	}
	return out, err
}

func (g *Guest) Readlink(ino vfs.Ino) (string, error) {
	in, u, err := g.get(ino)
	if err != nil {
		return "", err
	}
	return in.fs.Readlink(u)
}

func (g *Guest) Xattrs(ino vfs.Ino) ([]vfs.Xattr, error) {
	in, u, err := g.get(ino)
	if err != nil {
		return nil, err
	}
	return in.fs.Xattrs(u)
}

func (g *Guest) Open(ino vfs.Ino) (vfs.File, error) {
	in, u, err := g.get(ino)
	if err != nil {
		return nil, err
	}
	return in.fs.Open(u)
}

// WalkInodes walks every attached filesystem once (bind mounts add
// none), instance by instance.
func (g *Guest) WalkInodes(ctx context.Context, fn func(ino vfs.Ino, st *vfs.Stat, err error) error) error {
	done := map[vfs.FS]bool{}
	for i, in := range g.insts {
		if in.bind || done[in.fs] {
			continue
		}
		done[in.fs] = true
		err := in.fs.WalkInodes(ctx, func(ino vfs.Ino, st *vfs.Stat, err error) error {
			c := g.compose(i, ino)
			if st != nil {
				s := *st
				s.Ino = c
				st = &s
			}
			return fn(c, st, err)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Notes are the attached filesystems' notes (their inodes in the guest's
// numbering) and what could not be attached.
func (g *Guest) Notes() []vfs.Note {
	var out []vfs.Note
	done := map[vfs.FS]bool{}
	for i, in := range g.insts {
		if done[in.fs] {
			continue
		}
		done[in.fs] = true
		for _, n := range in.fs.Notes() {
			if n.Ino != 0 {
				n.Ino = g.compose(i, n.Ino)
			}
			n.Msg = in.addr + ": " + n.Msg
			out = append(out, n)
		}
	}
	seen := map[string]bool{}
	for _, s := range append(append([]string(nil), g.os.Notes...), g.mountNotes...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, vfs.Note{Offset: -1, Msg: s})
		}
	}
	return out
}

var _ vfs.FS = (*Guest)(nil)
