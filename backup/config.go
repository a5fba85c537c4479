package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Config is one guest's backup configuration: one TOML file in the config
// directory (like the old xen-backup.d/*.conf). Example:
//
//	name     = "web1"
//	sources  = ["/dev/vg0/web1-disk", "/dev/vg0/web1-data"]  # ALL of the guest's disks
//	pause    = "virsh suspend {name}"   # or "xm pause {name}"
//	resume   = "virsh resume {name}"    # or "xm unpause {name}"
//	snapshot_size = "2G"
//	dest     = "/backup"                # or "s3://bucket/prefix"
//	hosts    = ["backup2:/backup", "/mnt/usb/backup"]
//	compress = "zstd"                   # zstd (default), xz, none
//	guest_definition = "/etc/libvirt/qemu/web1.xml"  # or a Xen cfg
//	skip     = ["p3", "/dev/vg0/web1-data#vg1/scratch"]  # deliberately not backed up
//
//	[retention]
//	keep_days = 40    # keep every backup of the last 40 days ...
//	keep_full = 2     # ... and at least the 2 newest level-0 chains
//
//	[s3]                      # for an s3:// dest or hosts entry
//	endpoint   = "https://rgw.example.net"  # default AWS, or $AWS_ENDPOINT_URL
//	path_style = true         # ENDPOINT/BUCKET/KEY (most self-hosted servers)
//	region     = ""           # default $AWS_REGION or the profile's, else us-east-1
//	profile    = ""           # shared-config profile (default $AWS_PROFILE)
//	part_size  = "8M"         # multipart part size; two parts are in memory
//
//	[schedule]
//	full_day = 1                          # level 0 on this day of the month
//	sequence = [3, 2, 5, 4, 7, 6, 9, 8, 9]
//
//	[snapshot]
//	mode   = "auto"  # auto: LVs under /dev are snapshotted, files read as is
//	                 # (the guest stays paused while they are read); always; never
//	create = "lvcreate --snapshot --size {size} --name {snap} {source}"
//	remove = "lvremove --force {vg}/{snap}"
//	device = "/dev/{vg}/{snap}"
//	cow    = "/dev/mapper/{vgdm}-{snapdm}-cow"
//
//	[key_files]   # LUKS: the key file that opens each encrypted source
//	"/dev/vg0/web1-data" = "/etc/imgtool/keys/web1-data.key"
//
//	[luks_headers]   # LUKS with a detached header: [VOLUME=]FILE per source
//	"/dev/vg0/web1-data" = "p1=/etc/imgtool/keys/web1-data.hdr"
//
// Command templates are run with /bin/sh -c after substitution; the values
// substituted are shell-quoted.
type Config struct {
	Name            string     `toml:"name"`
	Sources         []string   `toml:"sources"`
	Pause           string     `toml:"pause"`
	Resume          string     `toml:"resume"`
	SnapshotSize    string     `toml:"snapshot_size"`
	Dest            string     `toml:"dest"`
	Hosts           []string   `toml:"hosts"`
	Compress        string     `toml:"compress"`
	Spool           string     `toml:"spool"` // auto (xz spools), always, never
	GuestDefinition string     `toml:"guest_definition"`
	Retention       Retention  `toml:"retention"`
	Schedule        Schedule   `toml:"schedule"`
	Snapshot        SnapConfig `toml:"snapshot"`
	S3              S3Config   `toml:"s3"`
	// Skip lists volumes deliberately not backed up, by address (p3,
	// vg0/scratch) or SOURCE#ADDRESS. Any other volume that holds data
	// and cannot be dumped fails the run (IncompleteError, exit 6).
	Skip []string `toml:"skip"`
	// KeyFiles maps a source to the key file (cryptsetup --key-file
	// content) that opens the LUKS volumes on it.
	KeyFiles map[string]string `toml:"key_files"`
	// LUKSHeaders maps a source to a detached LUKS header, "[VOLUME=]FILE"
	// as imgtool --luks-header takes it (no VOLUME: the whole source).
	LUKSHeaders map[string]string `toml:"luks_headers"`

	// Path is the file the config was read from.
	Path string `toml:"-"`
}

// Retention says which backups to keep. A backup is kept when it is younger
// than KeepDays or belongs to one of the KeepFull newest level-0 chains;
// and every backup a kept one depends on (its base, recursively) is kept
// too, whatever its age.
type Retention struct {
	KeepDays int `toml:"keep_days"`
	KeepFull int `toml:"keep_full"`
}

// SnapConfig holds the snapshot command templates. Placeholders: {source}
// (the configured path), {vg}, {lv}, {snap} (the snapshot's LV name),
// {vgdm}, {snapdm} (device-mapper escaped: '-' doubled), {size}, {name}.
type SnapConfig struct {
	Mode   string `toml:"mode"`
	Create string `toml:"create"`
	Remove string `toml:"remove"`
	Device string `toml:"device"`
	COW    string `toml:"cow"`
}

// Defaults for the snapshot commands.
const (
	DefaultSnapCreate = "lvcreate --snapshot --size {size} --name {snap} {source}"
	DefaultSnapRemove = "lvremove --force {vg}/{snap}"
	DefaultSnapDevice = "/dev/{vg}/{snap}"
	DefaultSnapCOW    = "/dev/mapper/{vgdm}-{snapdm}-cow"
	DefaultSnapSize   = "1G"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]*$`)

// LoadConfig reads and checks one config file.
func LoadConfig(path string) (*Config, error) {
	var c Config
	md, err := toml.DecodeFile(path, &c)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return nil, fmt.Errorf("%s: %w", path, err) // not read: not a ConfigError
	}
	if err != nil {
		return nil, &ConfigError{path, err}
	}
	if u := md.Undecoded(); len(u) > 0 {
		return nil, &ConfigError{path, fmt.Errorf("unknown keys %v", u)}
	}
	c.Path = path
	if err := c.check(); err != nil {
		return nil, &ConfigError{path, err}
	}
	return &c, nil
}

func (c *Config) check() error {
	if !nameRE.MatchString(c.Name) {
		return fmt.Errorf("name %q: want letters, digits, _ . + -", c.Name)
	}
	if len(c.Sources) == 0 {
		return errors.New("no sources: list every disk of the guest")
	}
	seen := map[string]bool{}
	for _, s := range c.Sources {
		if seen[s] {
			return fmt.Errorf("source %s listed twice", s)
		}
		seen[s] = true
	}
	for src, kf := range c.KeyFiles {
		if !seen[src] {
			return fmt.Errorf("key_files: %s is not one of the sources", src)
		}
		if kf == "" {
			return fmt.Errorf("key_files: empty key file for %s", src)
		}
	}
	for src, h := range c.LUKSHeaders {
		if !seen[src] {
			return fmt.Errorf("luks_headers: %s is not one of the sources", src)
		}
		if h == "" {
			return fmt.Errorf("luks_headers: empty header file for %s", src)
		}
	}
	if c.Dest == "" {
		return errors.New("no dest")
	}
	for _, d := range append([]string{c.Dest}, c.Hosts...) {
		if IsS3(d) {
			if _, _, err := parseS3URL(d); err != nil {
				return err
			}
			if _, err := c.S3.partSize(); err != nil {
				return err
			}
		}
	}
	if c.Compress == "" {
		c.Compress = "zstd"
	}
	if _, err := compressExt(c.Compress); err != nil {
		return err
	}
	switch c.Spool {
	case "":
		c.Spool = "auto"
	case "auto", "always", "never":
	default:
		return fmt.Errorf("spool %q: want auto, always or never", c.Spool)
	}
	if c.SnapshotSize == "" {
		c.SnapshotSize = DefaultSnapSize
	}
	s := &c.Snapshot
	switch s.Mode {
	case "":
		s.Mode = "auto"
	case "auto", "always", "never":
	default:
		return fmt.Errorf("snapshot.mode %q: want auto, always or never", s.Mode)
	}
	if s.Create == "" {
		s.Create = DefaultSnapCreate
	}
	if s.Remove == "" {
		s.Remove = DefaultSnapRemove
	}
	if s.Device == "" {
		s.Device = DefaultSnapDevice
	}
	if s.COW == "" {
		s.COW = DefaultSnapCOW
	}
	return c.Schedule.check()
}

// LoadConfigDir reads every *.conf and *.toml file of dir, sorted by name.
func LoadConfigDir(dir string) ([]*Config, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []*Config
	names := map[string]string{}
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") || !(strings.HasSuffix(n, ".conf") || strings.HasSuffix(n, ".toml")) {
			continue
		}
		c, err := LoadConfig(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		if prev, ok := names[c.Name]; ok {
			return nil, &ConfigError{c.Path, fmt.Errorf("guest %s configured twice: also in %s", c.Name, prev)}
		}
		names[c.Name] = c.Path
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Select returns the configs named, all of them when names is empty.
func Select(cfgs []*Config, names []string) ([]*Config, error) {
	if len(names) == 0 {
		return cfgs, nil
	}
	var out []*Config
	for _, n := range names {
		found := false
		for _, c := range cfgs {
			if c.Name == n {
				out = append(out, c)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("no guest named %q in the config directory", n)
		}
	}
	return out, nil
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// expand substitutes {key} placeholders with shell-quoted values. Unknown
// placeholders are an error.
func expand(tmpl string, vars map[string]string, quote bool) (string, error) {
	var b strings.Builder
	for {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			b.WriteString(tmpl)
			return b.String(), nil
		}
		j := strings.IndexByte(tmpl[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("template %q: unclosed {", tmpl)
		}
		key := tmpl[i+1 : i+j]
		v, ok := vars[key]
		if !ok {
			return "", fmt.Errorf("template %q: unknown placeholder {%s}", tmpl, key)
		}
		b.WriteString(tmpl[:i])
		if quote {
			v = shellQuote(v)
		}
		b.WriteString(v)
		tmpl = tmpl[i+j+1:]
	}
}

// lvParts splits /dev/VG/LV or /dev/mapper/VG-LV into VG and LV names.
func lvParts(path string) (vg, lv string, ok bool) {
	clean := filepath.Clean(path)
	if rest, found := strings.CutPrefix(clean, "/dev/mapper/"); found {
		// VG-LV with '-' inside names doubled.
		for i := 0; i < len(rest); i++ {
			if rest[i] == '-' {
				if i+1 < len(rest) && rest[i+1] == '-' {
					i++
					continue
				}
				return strings.ReplaceAll(rest[:i], "--", "-"), strings.ReplaceAll(rest[i+1:], "--", "-"), true
			}
		}
		return "", "", false
	}
	parts := strings.Split(strings.TrimPrefix(clean, "/dev/"), "/")
	if strings.HasPrefix(clean, "/dev/") && len(parts) == 2 && parts[0] != "" && parts[1] != "" {
		return parts[0], parts[1], true
	}
	return "", "", false
}

func dmEscape(s string) string { return strings.ReplaceAll(s, "-", "--") }

// parseSize parses "2G", "512M", "100%ORIGIN" is passed through to lvcreate.
func parseSize(s string) (string, error) {
	if strings.Contains(s, "%") {
		return s, nil
	}
	t := strings.TrimRight(strings.ToUpper(s), "BKMGT")
	if _, err := strconv.ParseFloat(t, 64); err != nil {
		return "", fmt.Errorf("snapshot_size %q: want a size like 2G", s)
	}
	return s, nil
}
