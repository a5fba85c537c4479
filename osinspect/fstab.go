package osinspect

import (
	"bufio"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/imgtool/imgtool/inspect"
)

// FstabEntry is one line of /etc/fstab.
type FstabEntry struct {
	Line    int    // 1-based line number
	Spec    string // fs_spec, unescaped
	File    string // fs_file (the mount point, or "none"/"swap")
	Type    string
	Options string
	Freq    int
	Pass    int
}

// HasOption reports whether the comma-separated options include opt.
func (e *FstabEntry) HasOption(opt string) bool {
	for _, o := range strings.Split(e.Options, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

// maxFstabLines bounds what is read of a hostile fstab.
const maxFstabLines = 4096

// ParseFstab reads fstab(5): whitespace-separated fields, '#' comments,
// octal escapes (\040 for a space) in the first two fields.
func ParseFstab(text string) []FstabEntry {
	var out []FstabEntry
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		if n > maxFstabLines {
			break
		}
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		e := FstabEntry{Line: n, Spec: unescapeOctal(f[0]), File: unescapeOctal(f[1])}
		if len(f) > 2 {
			e.Type = f[2]
		}
		if len(f) > 3 {
			e.Options = f[3]
		}
		if len(f) > 4 {
			e.Freq, _ = strconv.Atoi(f[4])
		}
		if len(f) > 5 {
			e.Pass, _ = strconv.Atoi(f[5])
		}
		out = append(out, e)
	}
	return out
}

// unescapeOctal undoes getmntent's \ooo escapes.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// pseudo are filesystem types with no device behind them.
var pseudo = map[string]bool{
	"proc": true, "sysfs": true, "devpts": true, "tmpfs": true, "devtmpfs": true, "ramfs": true,
	"cgroup": true, "cgroup2": true, "securityfs": true, "debugfs": true, "tracefs": true,
	"hugetlbfs": true, "mqueue": true, "binfmt_misc": true, "usbfs": true, "usbdevfs": true,
	"pstore": true, "efivarfs": true, "configfs": true, "fusectl": true, "rpc_pipefs": true,
	"nfsd": true, "autofs": true, "selinuxfs": true, "bpf": true, "shm": true,
}

// network are filesystem types served from elsewhere.
var network = map[string]bool{
	"nfs": true, "nfs4": true, "cifs": true, "smbfs": true, "smb3": true, "sshfs": true,
	"fuse.sshfs": true, "glusterfs": true, "ceph": true, "9p": true, "davfs": true, "afs": true,
}

// resolver resolves fstab device names to volumes of an inspected tree,
// relative to the guest's own disk (Xen's xvda, KVM's vda, the sda of
// the guest).
type resolver struct {
	tree *inspect.Tree
	disk *inspect.Volume // the guest disk: the scope searched first
	root *inspect.Volume // the root filesystem (/dev/root)
}

// GuestDisk returns the disk a filesystem belongs to: the nearest
// enclosing volume with a partition table, or an image, passing through
// VGs (a VG belongs to the disk holding its PVs). A filesystem directly
// on an image or an LV with no table is its own disk.
func GuestDisk(v *inspect.Volume) *inspect.Volume {
	for p := v.Parent(); p != nil; p = p.Parent() {
		if p.Kind == inspect.KindVG {
			continue
		}
		if p.Table != nil || p.Kind == inspect.KindDisk {
			return p
		}
		if p.Kind == inspect.KindLV || p.Kind == inspect.KindPartition {
			// a PV or container in between: keep going up
			continue
		}
	}
	return v
}

// within reports whether v is d or below it.
func within(v, d *inspect.Volume) bool {
	for ; v != nil; v = v.Parent() {
		if v == d {
			return true
		}
	}
	return false
}

// pick chooses among candidates: those on the guest disk first, then
// the whole tree.
func (r *resolver) pick(spec string, match func(v *inspect.Volume) bool) (*inspect.Volume, error) {
	var local, all []*inspect.Volume
	r.tree.Walk(func(v *inspect.Volume) bool {
		if match(v) {
			all = append(all, v)
			if within(v, r.disk) {
				local = append(local, v)
			}
		}
		return true
	})
	for _, c := range [][]*inspect.Volume{local, all} {
		switch len(c) {
		case 0:
			continue
		case 1:
			return c[0], nil
		}
		var addrs []string
		for _, v := range c {
			addrs = append(addrs, v.DisplayAddress())
		}
		return nil, fmt.Errorf("%s: %d volumes match (%s)", spec, len(c), strings.Join(addrs, ", "))
	}
	return nil, fmt.Errorf("%s: not in the image", spec)
}

var (
	diskDev  = regexp.MustCompile(`^/dev/(sd|hd|xvd|vd)([a-z]+)([0-9]*)$`)
	mdDev    = regexp.MustCompile(`^/dev/md/?[0-9a-zA-Z_]+$`)
	byDirDev = regexp.MustCompile(`^/dev/disk/by-(uuid|label|partuuid|partlabel)/(.+)$`)
)

// Resolve finds the volume an fstab fs_spec names.
func (r *resolver) Resolve(spec string) (*inspect.Volume, error) {
	spec = strings.Trim(spec, `"`)
	if m := byDirDev.FindStringSubmatch(spec); m != nil {
		spec = strings.ToUpper(m[1]) + "=" + unescapeUdev(m[2])
	}
	if i := strings.IndexByte(spec, '='); i > 0 {
		tag, val := strings.ToUpper(spec[:i]), strings.Trim(spec[i+1:], `"`)
		switch tag {
		case "UUID":
			return r.pick(spec, func(v *inspect.Volume) bool {
				return v.Content != nil && v.Content.UUID != "" && strings.EqualFold(v.Content.UUID, val)
			})
		case "LABEL":
			return r.pick(spec, func(v *inspect.Volume) bool { return v.Content != nil && v.Content.Label == val })
		case "PARTUUID":
			return r.pick(spec, func(v *inspect.Volume) bool { return strings.EqualFold(PartUUID(v), val) && val != "" })
		case "PARTLABEL":
			return r.pick(spec, func(v *inspect.Volume) bool { return v.Partition != nil && v.Partition.Name == val })
		}
		return nil, fmt.Errorf("%s: unknown tag %s", spec, tag)
	}
	if spec == "/dev/root" {
		return r.root, nil
	}
	if m := diskDev.FindStringSubmatch(spec); m != nil {
		return r.diskPart(spec, m[2], m[3])
	}
	if vg, lv, ok := lvmName(spec); ok {
		return r.pick(spec, func(v *inspect.Volume) bool {
			if v.Kind != inspect.KindLV || v.Name != lv {
				return false
			}
			p := v.Parent()
			return p != nil && p.VG != nil && p.VG.Name == vg
		})
	}
	if mdDev.MatchString(spec) {
		return nil, fmt.Errorf("%s: MD arrays are not assembled from fstab names; use UUID=", spec)
	}
	return nil, fmt.Errorf("%s: not in the image", spec)
}

// unescapeUdev undoes udev's \xNN escapes in /dev/disk/by-label names.
func unescapeUdev(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// diskPart resolves /dev/sdXN-style names: disk letter a is the guest's
// own disk; b, c, ... are the further images (-a) when the guest disk is
// the main image.
func (r *resolver) diskPart(spec, letters, num string) (*inspect.Volume, error) {
	idx := 0
	for _, c := range letters {
		idx = idx*26 + int(c-'a') + 1
	}
	idx--
	d := r.disk
	if idx > 0 {
		if r.disk.Kind != inspect.KindDisk || idx >= len(r.tree.Roots) || r.tree.Roots[idx].Kind != inspect.KindDisk {
			return nil, fmt.Errorf("%s: the guest has no disk %d in the image", spec, idx+1)
		}
		d = r.tree.Roots[idx]
	}
	if num == "" {
		return d, nil
	}
	n, _ := strconv.Atoi(num)
	if d.Table == nil {
		// Xen's xvda1 given a bare filesystem volume as "partition" 1.
		if d == r.root && n == 1 {
			return d, nil
		}
		return nil, fmt.Errorf("%s: the guest disk %s has no partition table", spec, d.DisplayAddress())
	}
	for _, c := range d.Children {
		if c.Partition != nil && c.Partition.Number == n {
			return c, nil
		}
		// logical partitions sit under the extended one
		for _, cc := range c.Children {
			if cc.Kind == inspect.KindPartition && cc.Partition != nil && cc.Partition.Number == n {
				return cc, nil
			}
		}
	}
	return nil, fmt.Errorf("%s: %s has no partition %d", spec, d.DisplayAddress(), n)
}

// lvmName parses /dev/VG/LV and /dev/mapper/VG-LV (a '-' inside a name
// is doubled there).
func lvmName(spec string) (vg, lv string, ok bool) {
	if rest, found := strings.CutPrefix(spec, "/dev/mapper/"); found {
		var cur strings.Builder
		var parts []string
		for i := 0; i < len(rest); i++ {
			if rest[i] == '-' {
				if i+1 < len(rest) && rest[i+1] == '-' {
					cur.WriteByte('-')
					i++
					continue
				}
				parts = append(parts, cur.String())
				cur.Reset()
				continue
			}
			cur.WriteByte(rest[i])
		}
		parts = append(parts, cur.String())
		if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
			return "", "", false
		}
		return parts[0], parts[1], true
	}
	rest, found := strings.CutPrefix(spec, "/dev/")
	if !found {
		return "", "", false
	}
	p := strings.Split(rest, "/")
	if len(p) != 2 || p[0] == "" || p[1] == "" {
		return "", "", false
	}
	switch p[0] {
	case "disk", "mapper", "md", "cciss", "ida", "rd", "block", "loop", "mmcblk", "nvme":
		return "", "", false
	}
	return p[0], p[1], true
}

// PartUUID is the PARTUUID the kernel gives a partition: the GPT entry's
// GUID, or for MBR the disk identifier and the partition number
// ("0d0a0002-04").
func PartUUID(v *inspect.Volume) string {
	if v.Partition == nil {
		return ""
	}
	if v.Partition.UUID != "" {
		return strings.ToLower(v.Partition.UUID)
	}
	for p := v.Parent(); p != nil; p = p.Parent() {
		if p.Table != nil {
			if p.Table.Scheme != "dos" || p.Table.ID == "" {
				return ""
			}
			id := strings.TrimPrefix(strings.ToLower(p.Table.ID), "0x")
			return fmt.Sprintf("%08s-%02x", id, v.Partition.Number)
		}
	}
	return ""
}
