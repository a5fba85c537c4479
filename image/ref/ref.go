// Package ref decides which host files a container image may reach: the
// backing file of a qcow2, the extent files of a VMDK descriptor, and the
// parents of differencing VHD/VHDX images when those are read.
//
// A container is untrusted input. Letting it name any host file turns
// "show me this image" into "show me /etc/shadow" (the qemu-img
// CVE-2024-4467 class of bug). The default policy therefore allows only
// regular files whose name, as the image writes it, stays inside the
// directory of the image that names it (subdirectories included).
// Absolute names are accepted when they point there too, because qemu-img
// records absolute backing names by default. Everything else — `..`
// escapes, other absolute paths, devices, FIFOs, anything that ends up in
// /proc or /sys — is refused unless the user widens the policy with extra
// directories or "any".
//
// Symlinks that already exist in the image's directory are the host
// owner's doing, not the image's (libvirt pools are often symlinks into
// another disk), so they are followed; what they lead to must still be a
// regular file outside /proc and /sys.
//
// Character devices, FIFOs and sockets are refused under every policy:
// they are not disks, and opening or reading them can block forever.
package ref

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrRefused is returned (wrapped) when the policy does not allow a file.
var ErrRefused = errors.New("refused by the backing-file policy")

// Any is the value of an allow list entry that lifts the directory rule.
const Any = "any"

// Policy says where referenced files may be. The zero value (and nil) is
// the default: only the referencing image's own directory.
type Policy struct {
	// Any allows any path (still only regular files and block devices).
	Any bool
	// Dirs are further directories (absolute, symlinks resolved) whose
	// regular files and block devices may be referenced.
	Dirs []string
}

// Parse builds a policy from allow-list values: directories, or "any".
// Directories must exist.
func Parse(values []string) (*Policy, error) {
	p := &Policy{}
	for _, v := range values {
		if v == Any {
			p.Any = true
			continue
		}
		if v == "" {
			return nil, fmt.Errorf("empty directory in the backing-file allow list (use a directory or %q)", Any)
		}
		real, err := filepath.EvalSymlinks(v)
		if err != nil {
			return nil, fmt.Errorf("backing-file allow list: %w", err)
		}
		real, err = filepath.Abs(real)
		if err != nil {
			return nil, err
		}
		fi, err := os.Stat(real)
		if err != nil {
			return nil, fmt.Errorf("backing-file allow list: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("backing-file allow list: %s is not a directory (give a directory, or %q)", v, Any)
		}
		p.Dirs = append(p.Dirs, real)
	}
	return p, nil
}

// within reports whether path is dir or below it (both clean and absolute).
func within(path, dir string) bool {
	if dir == "/" {
		return true
	}
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// Open resolves name as written in the file container (field says where:
// "backing file name at byte 512", "descriptor line 7") and opens it
// read-only if the policy allows it. It returns the open file and its
// path (absolute, cleaned, with symlinks left in place: a file it names in
// turn is resolved beside this path, as qemu does). Errors name the field
// and the name; the caller names the container. A missing file wraps
// fs.ErrNotExist, a refusal wraps ErrRefused.
func (p *Policy) Open(container, field, name string) (*os.File, string, error) {
	if p == nil {
		p = &Policy{}
	}
	fail := func(format string, a ...any) error {
		return fmt.Errorf("%s %q: %w", field, name, fmt.Errorf(format, a...))
	}
	if name == "" {
		return nil, "", fail("empty name")
	}
	if strings.IndexByte(name, 0) >= 0 {
		return nil, "", fail("name holds a NUL byte: %w", ErrRefused)
	}
	var base string
	if container != "" {
		abs, err := filepath.Abs(container)
		if err != nil {
			return nil, "", fail("%w", err)
		}
		base = filepath.Dir(abs)
	}
	cand := name
	if !filepath.IsAbs(cand) {
		if base == "" {
			return nil, "", fail("relative name, and the image has no file name to resolve it against")
		}
		cand = filepath.Join(base, cand)
	}
	real, err := filepath.EvalSymlinks(cand)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "", fail("%s does not exist: %w", cand, fs.ErrNotExist)
		}
		return nil, "", fail("%w", err)
	}
	real, _ = filepath.Abs(real)
	fi, err := os.Stat(real)
	if err != nil {
		return nil, "", fail("%w", err)
	}
	mode := fi.Mode()
	isBlock := mode&fs.ModeDevice != 0 && mode&fs.ModeCharDevice == 0
	if !mode.IsRegular() && !isBlock {
		return nil, "", fail("%s is a %s, not a regular file: %w", real, kind(mode), ErrRefused)
	}
	explicit := p.Any
	for _, d := range p.Dirs {
		if within(real, d) {
			explicit = true
		}
	}
	if !explicit {
		realBase := ""
		if base != "" {
			realBase, _ = filepath.EvalSymlinks(base)
		}
		lexical := filepath.Clean(cand)
		switch {
		case base == "":
			return nil, "", fail("an absolute name, and the image has no directory of its own: %w", ErrRefused)
		case !within(lexical, base) && !within(lexical, realBase):
			return nil, "", fail("points outside the directory %s of the image that names it: %w", base, ErrRefused)
		case within(real, "/proc") || within(real, "/sys"):
			return nil, "", fail("leads to %s: %w", real, ErrRefused)
		case isBlock:
			return nil, "", fail("%s is a block device: %w", real, ErrRefused)
		}
	}
	// O_NONBLOCK and O_NOCTTY: should the path have been swapped for a FIFO
	// or a terminal since the stat, the open still returns at once, and
	// the fstat below refuses it.
	f, err := os.OpenFile(real, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, "", fail("%w", err)
	}
	fi2, err := f.Stat()
	if err != nil || !os.SameFile(fi, fi2) {
		f.Close()
		return nil, "", fail("%s changed while it was being opened: %w", real, ErrRefused)
	}
	return f, filepath.Clean(cand), nil
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	}
	return m.Type().String()
}
