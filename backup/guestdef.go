package backup

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// GuestDisks lists the disk paths of a guest definition: a libvirt domain
// XML (<disk><source dev=... | file=...>) or a Xen xm/xl config
// (disk = ['phy:/dev/vg/lv,xvda,w', 'file:/img,xvdb,w', 'tap:aio:/img,...',
// 'format=raw, vdev=xvdc, target=/dev/vg/x']). CD-ROMs and empty drives are
// left out.
func GuestDisks(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(strings.TrimSpace(string(b)), "<") {
		return libvirtDisks(b)
	}
	return xenDisks(string(b))
}

type libvirtDomain struct {
	Disks []struct {
		Device string `xml:"device,attr"`
		Source struct {
			Dev  string `xml:"dev,attr"`
			File string `xml:"file,attr"`
		} `xml:"source"`
	} `xml:"devices>disk"`
}

func libvirtDisks(b []byte) ([]string, error) {
	var d libvirtDomain
	if err := xml.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("libvirt domain XML: %w", err)
	}
	var out []string
	for _, k := range d.Disks {
		if k.Device == "cdrom" || k.Device == "floppy" {
			continue
		}
		if p := k.Source.Dev + k.Source.File; p != "" {
			out = append(out, p)
		}
	}
	return out, nil
}

var xenDiskRE = regexp.MustCompile(`(?s)\bdisk\s*=\s*\[(.*?)\]`)
var xenQuotedRE = regexp.MustCompile(`'([^']*)'|"([^"]*)"`)

func xenDisks(s string) ([]string, error) {
	m := xenDiskRE.FindStringSubmatch(s)
	if m == nil {
		return nil, fmt.Errorf("no disk = [...] line in the Xen config")
	}
	var out []string
	for _, q := range xenQuotedRE.FindAllStringSubmatch(m[1], -1) {
		spec := q[1] + q[2]
		if strings.Contains(spec, "cdrom") {
			continue
		}
		var target string
		if strings.Contains(spec, "target=") {
			// xl key=value syntax; target must be last.
			target = spec[strings.Index(spec, "target=")+len("target="):]
		} else {
			target = strings.SplitN(spec, ",", 2)[0]
			for _, pfx := range []string{"phy:", "file:", "tap:aio:", "tap:qcow2:", "tap2:aio:", "aio:"} {
				target = strings.TrimPrefix(target, pfx)
			}
		}
		if target = strings.TrimSpace(target); target != "" {
			out = append(out, target)
		}
	}
	return out, nil
}

// samePath compares two paths after cleaning and resolving symlinks
// (/dev/vg/lv is a link to /dev/dm-N).
func samePath(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	ra, ea := filepath.EvalSymlinks(a)
	rb, eb := filepath.EvalSymlinks(b)
	if ea == nil && eb == nil && ra == rb {
		return true
	}
	// /dev/mapper/VG-LV and /dev/VG/LV name the same LV.
	va, la, oka := lvParts(a)
	vb, lb, okb := lvParts(b)
	return oka && okb && va == vb && la == lb
}

// Uncovered returns the disks of c's guest definition that c.Sources do
// not cover.
func Uncovered(c *Config) ([]string, error) {
	disks, err := GuestDisks(c.GuestDefinition)
	if err != nil {
		return nil, fmt.Errorf("guest definition %s: %w", c.GuestDefinition, err)
	}
	var out []string
	for _, d := range disks {
		found := false
		for _, s := range c.Sources {
			found = found || samePath(d, s)
		}
		if !found {
			out = append(out, d)
		}
	}
	return out, nil
}
