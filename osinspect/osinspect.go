// Package osinspect finds the operating systems inside an inspected image,
// as virt-inspector does: for each filesystem that is an OS root, the
// distribution and version (/etc/os-release, /etc/redhat-release,
// /etc/debian_version, ...), hostname, architecture, installed kernels,
// init system, and /etc/fstab resolved to imgtool addresses. Guest builds
// the guest's own view: its root with the fstab's filesystems mounted in
// it, one vfs.FS that every reader of files uses (ls, cat, extract, the
// TUI, mount).
package osinspect

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/vfs"
)

// Opener opens the filesystem of a volume (inspect.Volume.OpenFS).
type Opener func(v *inspect.Volume) (vfs.FS, error)

// OS is one operating system found in an image.
type OS struct {
	// Root is the address of the root filesystem.
	Root string `json:"root"`
	// Disk is the address of the guest's disk, the scope in which its
	// fstab's device names (UUID=, /dev/VG/LV, xvda1) are resolved.
	Disk string `json:"disk"`
	Type string `json:"type"` // "linux"
	// Distro is os-release's ID, or the distribution a release file names
	// ("centos", "rhel", "debian", "ubuntu", "fedora"), else "unknown".
	Distro string `json:"distro"`
	// Product is the distribution's own name for itself: os-release's
	// PRETTY_NAME or the first line of a release file.
	Product string `json:"product,omitempty"`
	// Major and Minor are the version numbers (-1 when unknown).
	Major    int      `json:"major_version"`
	Minor    int      `json:"minor_version"`
	Hostname string   `json:"hostname,omitempty"`
	Arch     string   `json:"arch,omitempty"`
	Kernels  []string `json:"kernels,omitempty"`
	Init     string   `json:"init,omitempty"`
	// Mounts are the fstab's filesystems, in fstab order, root first.
	Mounts []Mount `json:"mounts"`
	// Swap lists the addresses of the fstab's swap volumes.
	Swap  []string `json:"swap,omitempty"`
	Notes []string `json:"notes,omitempty"`

	root    *inspect.Volume
	entries []FstabEntry
}

// Mount is one filesystem of the guest's fstab.
type Mount struct {
	Point string `json:"mountpoint"`
	// Spec is fs_spec as written (UUID=..., /dev/VolGroup00/LogVol02).
	Spec    string `json:"spec"`
	FSType  string `json:"fstype,omitempty"`
	Options string `json:"options,omitempty"`
	// Address is the volume Spec resolves to; empty for a bind mount.
	Address string `json:"address,omitempty"`
	// Bind is the source path of a bind mount, in the guest's view.
	Bind string `json:"bind,omitempty"`
	Line int    `json:"line"`

	vol *inspect.Volume
}

// RootVolume returns the root filesystem's volume.
func (o *OS) RootVolume() *inspect.Volume { return o.root }

// Name is the distribution and version: "CentOS 5.8", "Debian 12.11".
func (o *OS) Name() string {
	n := distroNames[o.Distro]
	if n == "" {
		n = o.Product
		if n == "" {
			n = "Linux"
		}
		return n
	}
	switch {
	case o.Major >= 0 && o.Minor >= 0:
		return fmt.Sprintf("%s %d.%d", n, o.Major, o.Minor)
	case o.Major >= 0:
		return fmt.Sprintf("%s %d", n, o.Major)
	}
	return n
}

// Label is the one-line summary the TUI shows: "CentOS 5.8 (www1)".
func (o *OS) Label() string {
	s := o.Name()
	if h, _, _ := strings.Cut(o.Hostname, "."); h != "" {
		s += " (" + h + ")"
	}
	return s
}

var distroNames = map[string]string{
	"centos": "CentOS", "rhel": "RHEL", "debian": "Debian", "ubuntu": "Ubuntu", "fedora": "Fedora",
	"rocky": "Rocky Linux", "almalinux": "AlmaLinux", "ol": "Oracle Linux", "opensuse": "openSUSE",
	"opensuse-leap": "openSUSE Leap", "sles": "SLES", "alpine": "Alpine", "arch": "Arch Linux",
	"scientificlinux": "Scientific Linux", "gentoo": "Gentoo", "linuxmint": "Linux Mint",
}

// Inspect looks at every filesystem of the tree and returns the OS roots
// among them, in tree order. A filesystem that cannot be opened is
// skipped (inspect already notes why).
func Inspect(t *inspect.Tree, open Opener) []*OS {
	var out []*OS
	for _, v := range t.Filesystems() {
		f, err := open(v)
		if err != nil || f == nil {
			continue
		}
		if !isRoot(f) {
			continue
		}
		o := inspectRoot(t, v, f)
		o.resolveMounts(t)
		o.guestDetails(t, open, f)
		out = append(out, o)
	}
	return out
}

// isRoot: an /etc directory with an fstab or a release file.
// (virt-inspector also wants /bin; a guest stripped down to its data, as
// the demo's, is still an OS root to a person rescuing it.)
func isRoot(f vfs.FS) bool {
	if !isDir(f, "/etc") {
		return false
	}
	for _, p := range []string{"/etc/fstab", "/etc/os-release", "/usr/lib/os-release", "/etc/redhat-release", "/etc/debian_version", "/etc/SuSE-release"} {
		if exists(f, p) {
			return true
		}
	}
	return false
}

func isDir(f vfs.FS, p string) bool {
	ino, err := f.LookupFollow(p)
	if err != nil {
		return false
	}
	st, err := f.Stat(ino)
	return err == nil && st.IsDir()
}

func exists(f vfs.FS, p string) bool {
	_, err := f.LookupFollow(p)
	return err == nil
}

// maxSmallFile bounds what is read of a release or config file.
const maxSmallFile = 64 << 10

// readSmall reads a small regular file, following symlinks.
func readSmall(f vfs.FS, p string) (string, error) {
	ino, err := f.LookupFollow(p)
	if err != nil {
		return "", err
	}
	st, err := f.Stat(ino)
	if err != nil {
		return "", err
	}
	if !st.IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", p)
	}
	file, err := f.Open(ino)
	if err != nil {
		return "", err
	}
	n := min(file.Size(), maxSmallFile)
	b := make([]byte, n)
	m, err := file.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return string(b[:m]), nil
}

// ParseOSRelease reads os-release(5) KEY=value lines (quotes removed).
func ParseOSRelease(s string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
			v = strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\$`, `$`, "\\`", "`").Replace(v)
		}
		out[strings.TrimSpace(k)] = v
	}
	return out
}

var releaseVersion = regexp.MustCompile(`release (\d+)(?:\.(\d+))?`)

// parseVersion reads "5.8", "12.11", "7.9.2009", "12" into major/minor.
func parseVersion(s string) (major, minor int, ok bool) {
	m := regexp.MustCompile(`^(\d+)(?:\.(\d+))?`).FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return -1, -1, false
	}
	major, _ = strconv.Atoi(m[1])
	minor = -1
	if m[2] != "" {
		minor, _ = strconv.Atoi(m[2])
	}
	return major, minor, true
}

// redhatDistro names the distribution of a redhat-release line.
func redhatDistro(line string) string {
	l := strings.ToLower(line)
	switch {
	case strings.HasPrefix(l, "centos"):
		return "centos"
	case strings.HasPrefix(l, "red hat enterprise linux"):
		return "rhel"
	case strings.HasPrefix(l, "fedora"):
		return "fedora"
	case strings.HasPrefix(l, "rocky"):
		return "rocky"
	case strings.HasPrefix(l, "almalinux"):
		return "almalinux"
	case strings.HasPrefix(l, "scientific linux"):
		return "scientificlinux"
	case strings.HasPrefix(l, "oracle linux"), strings.HasPrefix(l, "enterprise linux"):
		return "ol"
	}
	return "redhat-based"
}

// inspectRoot reads what the root filesystem alone says.
func inspectRoot(t *inspect.Tree, v *inspect.Volume, f vfs.FS) *OS {
	o := &OS{Root: v.Address, Type: "linux", Distro: "unknown", Major: -1, Minor: -1, root: v}
	o.Disk = GuestDisk(v).Address
	if s, err := readSmall(f, "/etc/os-release"); err == nil {
		o.fromOSRelease(ParseOSRelease(s))
	} else if s, err := readSmall(f, "/usr/lib/os-release"); err == nil {
		o.fromOSRelease(ParseOSRelease(s))
	}
	// Release files: the distribution where os-release is missing
	// (CentOS 5), and the minor version os-release leaves out (CentOS 7's
	// VERSION_ID="7", Debian's "12").
	for _, p := range []string{"/etc/centos-release", "/etc/redhat-release", "/etc/fedora-release"} {
		s, err := readSmall(f, p)
		if err != nil {
			continue
		}
		line := strings.TrimSpace(strings.SplitN(s, "\n", 2)[0])
		if o.Distro == "unknown" {
			o.Distro = redhatDistro(line)
		}
		if o.Product == "" {
			o.Product = line
		}
		// As virt-inspector: when the release file gives the version
		// os-release lacked, its line is the product name too.
		if m := releaseVersion.FindStringSubmatch(line); m != nil && (o.Major < 0 || o.Minor < 0) {
			major, _ := strconv.Atoi(m[1])
			if o.Major < 0 || o.Major == major {
				o.Major = major
				if m[2] != "" {
					o.Minor, _ = strconv.Atoi(m[2])
				}
				o.Product = line
			}
		}
		break
	}
	if s, err := readSmall(f, "/etc/debian_version"); err == nil && (o.Distro == "unknown" || o.Distro == "debian") {
		o.Distro = "debian"
		if major, minor, ok := parseVersion(s); ok && (o.Major < 0 || o.Major == major && o.Minor < 0) {
			o.Major, o.Minor = major, minor
			o.Product = strings.TrimSpace(s)
		}
	}
	o.Hostname = hostname(f, o.Distro)
	o.Arch = arch(f)
	o.Init = initSystem(f)
	if s, err := readSmall(f, "/etc/fstab"); err == nil {
		o.entries = ParseFstab(s)
	} else {
		o.Notes = append(o.Notes, "no /etc/fstab: only the root filesystem is in the guest view")
	}
	return o
}

func (o *OS) fromOSRelease(kv map[string]string) {
	if id := strings.ToLower(kv["ID"]); id != "" {
		o.Distro = id
	}
	o.Product = kv["PRETTY_NAME"]
	if o.Product == "" {
		o.Product = strings.TrimSpace(kv["NAME"] + " " + kv["VERSION"])
	}
	if major, minor, ok := parseVersion(kv["VERSION_ID"]); ok {
		o.Major, o.Minor = major, minor
	}
}

// hostname: /etc/hostname, else /etc/HOSTNAME (SUSE), else HOSTNAME= in
// /etc/sysconfig/network (Red Hat before 7).
func hostname(f vfs.FS, distro string) string {
	for _, p := range []string{"/etc/hostname", "/etc/HOSTNAME"} {
		if s, err := readSmall(f, p); err == nil {
			for _, line := range strings.Split(s, "\n") {
				if l := strings.TrimSpace(line); l != "" && l[0] != '#' {
					return l
				}
			}
		}
	}
	if s, err := readSmall(f, "/etc/sysconfig/network"); err == nil {
		if h := ParseOSRelease(s)["HOSTNAME"]; h != "" {
			return h
		}
	}
	return ""
}

// arch reads the ELF header of a common binary.
func arch(f vfs.FS) string {
	for _, p := range []string{"/bin/ls", "/usr/bin/ls", "/bin/sh", "/bin/bash", "/bin/true", "/usr/bin/true", "/bin/busybox"} {
		ino, err := f.LookupFollow(p)
		if err != nil {
			continue
		}
		file, err := f.Open(ino)
		if err != nil {
			continue
		}
		ef, err := elf.NewFile(io.NewSectionReader(file, 0, file.Size()))
		if err != nil {
			continue
		}
		return elfArch(ef.Machine, ef.Class, ef.Data)
	}
	return ""
}

// elfArch names an ELF machine as libguestfs's file_architecture does.
func elfArch(m elf.Machine, c elf.Class, d elf.Data) string {
	switch m {
	case elf.EM_X86_64:
		return "x86_64"
	case elf.EM_386:
		return "i386"
	case elf.EM_AARCH64:
		return "aarch64"
	case elf.EM_ARM:
		return "arm"
	case elf.EM_PPC64:
		if d == elf.ELFDATA2LSB {
			return "ppc64le"
		}
		return "ppc64"
	case elf.EM_PPC:
		return "ppc"
	case elf.EM_S390:
		if c == elf.ELFCLASS64 {
			return "s390x"
		}
		return "s390"
	case elf.EM_RISCV:
		if c == elf.ELFCLASS64 {
			return "riscv64"
		}
		return "riscv32"
	case elf.EM_IA_64:
		return "ia64"
	case elf.EM_SPARCV9:
		return "sparc64"
	}
	return strings.ToLower(strings.TrimPrefix(m.String(), "EM_"))
}

// initSystem: systemd when /sbin/init is (a link to) systemd, upstart
// when /etc/init holds jobs, sysvinit when /etc/inittab exists.
func initSystem(f vfs.FS) string {
	for _, p := range []string{"/sbin/init", "/usr/sbin/init"} {
		ino, err := f.Lookup(p)
		if err != nil {
			continue
		}
		if st, err := f.Stat(ino); err == nil && st.IsSymlink() {
			if target, err := f.Readlink(ino); err == nil && strings.Contains(target, "systemd") {
				return "systemd"
			}
		}
	}
	if isDir(f, "/etc/init") {
		if ino, err := f.LookupFollow("/etc/init"); err == nil {
			if ents, _ := f.ReadDir(ino); len(ents) > 0 {
				for _, e := range ents {
					if strings.HasSuffix(e.Name, ".conf") {
						return "upstart"
					}
				}
			}
		}
	}
	if exists(f, "/etc/inittab") {
		return "sysvinit"
	}
	if exists(f, "/lib/systemd/systemd") || exists(f, "/usr/lib/systemd/systemd") {
		return "systemd"
	}
	return ""
}

// resolveMounts resolves the fstab against the tree.
func (o *OS) resolveMounts(t *inspect.Tree) {
	r := &resolver{tree: t, disk: GuestDisk(o.root), root: o.root}
	var rootSeen bool
	for _, e := range o.entries {
		where := fmt.Sprintf("fstab line %d: %s on %s", e.Line, e.Spec, e.File)
		switch {
		case e.Type == "swap" || e.File == "swap":
			if v, err := r.Resolve(e.Spec); err == nil {
				o.Swap = append(o.Swap, v.Address)
			} else {
				o.Notes = append(o.Notes, fmt.Sprintf("fstab line %d: swap %v", e.Line, err))
			}
			continue
		case e.HasOption("bind") || e.HasOption("rbind"):
			if !path.IsAbs(e.Spec) || !path.IsAbs(e.File) {
				o.Notes = append(o.Notes, where+": bind mount of a relative path, ignored")
				continue
			}
			o.Mounts = append(o.Mounts, Mount{Point: path.Clean(e.File), Spec: e.Spec, FSType: e.Type, Options: e.Options, Bind: path.Clean(e.Spec), Line: e.Line})
			continue
		case pseudo[e.Type] || e.Spec == "none" && e.Type != "":
			continue
		case network[e.Type] || strings.HasPrefix(e.Type, "nfs") || strings.HasPrefix(e.Type, "fuse."):
			o.Notes = append(o.Notes, where+": network or FUSE filesystem ("+e.Type+"), not in the image")
			continue
		case !path.IsAbs(e.File):
			continue
		}
		if e.HasOption("loop") {
			o.Notes = append(o.Notes, where+": a loop mount of a file, not followed")
			continue
		}
		v, err := r.Resolve(e.Spec)
		if err != nil {
			o.Notes = append(o.Notes, fmt.Sprintf("fstab line %d: %v (mount point %s)", e.Line, err, e.File))
			continue
		}
		m := Mount{Point: path.Clean(e.File), Spec: e.Spec, FSType: e.Type, Options: e.Options, Address: v.Address, Line: e.Line, vol: v}
		if m.Point == "/" {
			if rootSeen {
				continue
			}
			rootSeen = true
			if v != o.root {
				o.Notes = append(o.Notes, fmt.Sprintf("fstab line %d: / is %s, but the root inspected is %s", e.Line, v.DisplayAddress(), o.root.DisplayAddress()))
				m.vol, m.Address = o.root, o.root.Address
			}
		}
		o.Mounts = append(o.Mounts, m)
	}
	if !rootSeen {
		o.Mounts = append([]Mount{{Point: "/", Spec: "(the inspected root)", Address: o.root.Address, vol: o.root}}, o.Mounts...)
	} else {
		// root first, then fstab order
		sort.SliceStable(o.Mounts, func(i, j int) bool { return o.Mounts[i].Point == "/" && o.Mounts[j].Point != "/" })
	}
}

// guestDetails reads what needs the guest view: the kernels in /boot
// (often its own filesystem).
func (o *OS) guestDetails(t *inspect.Tree, open Opener, rootFS vfs.FS) {
	g, err := o.guest(open, rootFS)
	if err != nil {
		return
	}
	seen := map[string]bool{}
	if ino, err := g.LookupFollow("/boot"); err == nil {
		ents, _ := g.ReadDir(ino)
		for _, e := range ents {
			if k, ok := strings.CutPrefix(e.Name, "vmlinuz-"); ok && !seen[k] {
				seen[k] = true
				o.Kernels = append(o.Kernels, k)
			}
		}
	}
	if len(o.Kernels) == 0 {
		for _, d := range []string{"/lib/modules", "/usr/lib/modules"} {
			if ino, err := g.LookupFollow(d); err == nil {
				ents, _ := g.ReadDir(ino)
				for _, e := range ents {
					if !seen[e.Name] {
						seen[e.Name] = true
						o.Kernels = append(o.Kernels, e.Name)
					}
				}
			}
		}
	}
	sort.Strings(o.Kernels)
	o.Notes = append(o.Notes, g.mountNotes...)
}

// SplitGuestSpec recognises the guest-view address: "VOLUME:@/path" is
// /path as the OS whose root is VOLUME or below it sees it (its fstab
// applied), "VOLUME:@" its root, and "@/path" the same for the only OS of
// the image. A plain file address always has a '/' after its ':', so the
// two never overlap.
func SplitGuestSpec(spec string) (vol, p string, ok bool) {
	rest := ""
	switch {
	case spec == "@" || strings.HasPrefix(spec, "@/"):
		rest = spec[1:]
	default:
		i := strings.Index(spec, ":@")
		if i < 0 {
			return "", "", false
		}
		rest = spec[i+2:]
		if rest != "" && rest[0] != '/' {
			return "", "", false
		}
		vol = spec[:i]
	}
	if rest == "" {
		rest = "/"
	}
	return vol, path.Clean(rest), true
}

// Within reports whether v is d or inside it.
func Within(v, d *inspect.Volume) bool { return within(v, d) }
