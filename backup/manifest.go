package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/imgtool/imgtool/dump"
)

// Manifest describes one finished backup file. It is written next to the
// file as FILE.json, after the file itself is complete and renamed into
// place: a backup exists when its manifest does and the file's sha256
// matches it. A data file without a manifest is an interrupted run's
// leftover and is never used as a base.
type Manifest struct {
	Version  int       `json:"version"`
	Guest    string    `json:"guest"`
	Source   string    `json:"source"` // configured source path
	Volume   string    `json:"volume"` // address inside the source
	FSUUID   string    `json:"fs_uuid"`
	FSType   string    `json:"fs_type"`
	Label    string    `json:"label,omitempty"`
	Level    int       `json:"level"`
	Date     time.Time `json:"date"`                // c_date of the dump
	BaseDate time.Time `json:"base_date,omitzero"`  // c_ddate: the base's Date (levels > 0)
	BaseFile string    `json:"base_file,omitempty"` // the base backup's file name
	File     string    `json:"file"`
	Compress string    `json:"compress"`
	Inodes   int       `json:"inodes"`    // inodes in use
	Files    int       `json:"files"`     // inodes dumped
	Records  int64     `json:"records"`   // 1 KiB tape records
	RawBytes int64     `json:"raw_bytes"` // uncompressed dump size
	Bytes    int64     `json:"bytes"`     // compressed file size
	SHA256   string    `json:"sha256"`    // of the compressed file
	Host     string    `json:"host"`      // where the dump was taken
	Warnings []string  `json:"warnings,omitempty"`
	// Lost is what the source could not read and the dump lacks (an
	// inode left out, a directory dumped with the entries it gave).
	Lost      []string `json:"lost,omitempty"`
	LostCount int      `json:"lost_count,omitempty"` // all of them; Lost keeps the first 100
}

// ManifestVersion is the current Manifest.Version.
const ManifestVersion = 1

// ID is the stable identity dumpdates are keyed by.
func (m *Manifest) ID() string { return dump.DumpID(m.Guest, m.Source+"#"+m.Volume, m.FSUUID) }

// safeName makes a volume address usable in a file name: "/" becomes "_"
// and anything but letters, digits, '-', '+' and '@' becomes '-'.
func safeName(s string) string {
	if s == "" {
		return "disk"
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '/':
			b.WriteByte('_')
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '+', r == '@':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}

// sourceTag names a configured source in file names: its base name.
func sourceTag(src string) string { return safeName(filepath.Base(src)) }

// DateLayout is the date in backup file names (local time).
const DateLayout = "20060102-150405"

// FileName is the backup file name of a dump: VOLUME.DATE.LLEVEL.dump.EXT,
// where VOLUME is the source's base name and the volume address, made safe.
func FileName(source, volume string, date time.Time, level int, compress string) string {
	ext, _ := compressExt(compress)
	v := sourceTag(source)
	if volume != "" {
		v += "_" + safeName(volume)
	}
	return fmt.Sprintf("%s.%s.L%d.dump%s", v, date.Format(DateLayout), level, ext)
}

// writeFileAtomic writes data to path through a temp file, fsync and rename.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, tmpPrefix+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// tmpPrefix starts every temp file we create in a backup directory.
const tmpPrefix = ".imgtool-tmp-"

// WriteManifest writes m as FILE.json in dir, atomically.
func WriteManifest(dir string, m *Manifest) error {
	return writeManifest(context.Background(), &DirStore{Dir: dir}, m)
}

func writeManifest(ctx context.Context, st Store, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return st.WriteFile(ctx, m.File+".json", append(b, '\n'))
}

// ReadManifests reads every manifest of a guest's backup directory, sorted
// by date. Unreadable manifests are returned as errors in bad.
func ReadManifests(dir string) (ms []*Manifest, bad []error, err error) {
	return ReadManifestsFrom(context.Background(), &DirStore{Dir: dir})
}

// ReadManifestsFrom reads every manifest of a store, sorted by date.
// Unreadable manifests are returned as errors in bad.
func ReadManifestsFrom(ctx context.Context, st Store) (ms []*Manifest, bad []error, err error) {
	names, err := st.List(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range names {
		if !strings.HasSuffix(n, ".json") || strings.HasPrefix(n, ".") {
			continue
		}
		b, err := st.ReadFile(ctx, n)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		var m Manifest
		if err := json.Unmarshal(b, &m); err != nil || m.File+".json" != n {
			bad = append(bad, fmt.Errorf("%s: not a backup manifest: %v", n, err))
			continue
		}
		ms = append(ms, &m)
	}
	sort.Slice(ms, func(i, j int) bool {
		if !ms[i].Date.Equal(ms[j].Date) {
			return ms[i].Date.Before(ms[j].Date)
		}
		return ms[i].File < ms[j].File
	})
	return ms, bad, nil
}

// fileSHA256 hashes a file.
func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	return readerSHA256(f)
}

func readerSHA256(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Chain returns the backups to apply, level 0 first, to restore target:
// following BaseDate links through the same identity.
func Chain(all []*Manifest, target *Manifest) ([]*Manifest, error) {
	chain := []*Manifest{target}
	cur := target
	for cur.Level > 0 {
		var base *Manifest
		for _, m := range all {
			if m.ID() == cur.ID() && m.Date.Equal(cur.BaseDate) && m.Level < cur.Level {
				base = m
			}
		}
		if base == nil {
			return nil, fmt.Errorf("%s: its level-%d base of %s is missing", cur.File, cur.Level, cur.BaseDate.Format(time.RFC3339))
		}
		chain = append(chain, base)
		cur = base
		if len(chain) > 10 {
			return nil, fmt.Errorf("%s: chain longer than 10 dumps", target.File)
		}
	}
	for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	return chain, nil
}

// DumpDates derives dump's bookkeeping (one entry per identity and level,
// the newest) from the manifests.
func DumpDates(ms []*Manifest) []dump.DumpDate {
	var out []dump.DumpDate
	for _, m := range ms {
		out = dump.Update(out, dump.DumpDate{ID: m.ID(), Level: m.Level, Date: m.Date})
	}
	return out
}

// Retain decides which backups to keep: those younger than keepDays, those
// of the keepFull newest level-0 chains, and, transitively, every backup a
// kept one depends on. It returns the manifests to delete.
func Retain(ms []*Manifest, now time.Time, r Retention) []*Manifest {
	if r.KeepDays <= 0 && r.KeepFull <= 0 {
		return nil
	}
	keep := map[*Manifest]bool{}
	byID := map[string][]*Manifest{}
	for _, m := range ms {
		byID[m.ID()] = append(byID[m.ID()], m)
	}
	for _, list := range byID {
		// list is sorted by date.
		var fulls []*Manifest
		for _, m := range list {
			if m.Level == 0 {
				fulls = append(fulls, m)
			}
		}
		cutoff := time.Time{}
		if r.KeepFull > 0 && len(fulls) > 0 {
			cutoff = fulls[max(len(fulls)-r.KeepFull, 0)].Date
		}
		for _, m := range list {
			young := r.KeepDays > 0 && now.Sub(m.Date) < time.Duration(r.KeepDays)*24*time.Hour
			inChains := r.KeepFull > 0 && !cutoff.IsZero() && !m.Date.Before(cutoff)
			if young || inChains || m == list[len(list)-1] {
				keep[m] = true
			}
		}
	}
	// Close under "is the base of".
	for changed := true; changed; {
		changed = false
		for m := range keep {
			if m.Level == 0 {
				continue
			}
			if chain, err := Chain(ms, m); err == nil {
				for _, c := range chain {
					if !keep[c] {
						keep[c] = true
						changed = true
					}
				}
			}
		}
	}
	var del []*Manifest
	for _, m := range ms {
		if !keep[m] {
			del = append(del, m)
		}
	}
	return del
}
