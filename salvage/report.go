package salvage

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/imgtool/imgtool/extract"
	"github.com/imgtool/imgtool/internal/human"
	"github.com/imgtool/imgtool/termsafe"
	"golang.org/x/sys/unix"
)

// Reason says why an entry was not recovered whole, or why it is suspect.
type Reason string

// Reasons, as they appear in the report.
const (
	// BadBlock: part of the content lies in blocks that could not be read
	// (outside the volume: a truncated image, an I/O error).
	BadBlock Reason = "bad-block"
	// Checksum: a metadata checksum (inode, extent block, directory
	// block) did not match; the content was read anyway.
	Checksum Reason = "checksum"
	// Unreachable: an in-use inode no directory reaches; extracted under
	// #orphans/<inode>.
	Unreachable Reason = "unreachable"
	// Truncated: the block map (or directory) is damaged; what it maps
	// was read, the rest is zeros (files) or missing (directories).
	Truncated Reason = "truncated"
	// Cycle: a directory reached a second time (a loop, or a directory
	// with two names); it was extracted once.
	Cycle Reason = "cycle"
	// CrossLinked: some of the file's blocks are also claimed by another
	// file or by filesystem metadata; its content may be someone else's.
	CrossLinked Reason = "cross-linked"
	// BadInode: the entry names an inode that is unreadable, unused
	// (links_count 0, deleted) or has no valid file type.
	BadInode Reason = "bad-inode"
	// Encrypted: an fscrypt inode, extracted raw (ciphertext content; an
	// encrypted directory's names are ciphertext too).
	Encrypted Reason = "encrypted"
	// Renamed: the entry's name cannot exist on the host (it holds '/'
	// or NUL, or is empty); it was extracted as "#<inode>" in the same
	// directory.
	Renamed Reason = "renamed"
	// Refused: the extraction engine refused the entry (an unsafe name, a
	// name taken in the destination) or could not create it.
	Refused Reason = "refused"
)

// Status of an entry in the report.
const (
	StatusLost      = "lost"      // nothing recovered
	StatusPartial   = "partial"   // created, some content missing (zeros)
	StatusSuspect   = "suspect"   // created whole, but a check failed
	StatusRecovered = "recovered" // created whole (listed because unreachable)
)

// Entry is one file or directory that was lost, recovered in part, is
// suspect, or was found unreachable.
type Entry struct {
	// Path is the entry's path in the filesystem ("/etc/passwd") or, for
	// an unreachable inode, its place in DEST ("#orphans/1234").
	Path string `json:"path"`
	Ino  uint32 `json:"inode"`
	// Ino64 is the inode number where numbers are 64 bits wide (XFS,
	// the filesystem-neutral path sets it): Ino then holds it when it
	// fits in 32 bits, 0 otherwise. The JSON "inode" is Ino64 when set.
	Ino64   uint64   `json:"-"`
	Type    string   `json:"type"` // file, dir, symlink, special, unknown
	Status  string   `json:"status"`
	Reasons []Reason `json:"reasons"`
	// Size is i_size; Recovered the bytes of it that came from the
	// disk (mapped and readable); the rest reads as zeros.
	Size      int64 `json:"size"`
	Recovered int64 `json:"recovered_bytes"`
	// Lost is the bytes of content known to be missing: at most what the
	// inode had allocated (i_blocks), so a sparse file's holes do not
	// count.
	Lost   int64  `json:"lost_bytes"`
	Detail string `json:"detail,omitempty"` // the first error, for humans
}

// Inode is the entry's inode number (Ino64, or Ino).
func (e *Entry) Inode() uint64 {
	if e.Ino64 != 0 {
		return e.Ino64
	}
	return uint64(e.Ino)
}

// entryJSON is an Entry as written: its fields in order, the inode
// number 64 bits wide.
type entryJSON struct {
	Path      string   `json:"path"`
	Ino       uint64   `json:"inode"`
	Type      string   `json:"type"`
	Status    string   `json:"status"`
	Reasons   []Reason `json:"reasons"`
	Size      int64    `json:"size"`
	Recovered int64    `json:"recovered_bytes"`
	Lost      int64    `json:"lost_bytes"`
	Detail    string   `json:"detail,omitempty"`
}

// MarshalJSON writes "inode" as the full inode number (Inode).
func (e Entry) MarshalJSON() ([]byte, error) {
	return json.Marshal(entryJSON{e.Path, e.Inode(), e.Type, e.Status, e.Reasons, e.Size, e.Recovered, e.Lost, e.Detail})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (e *Entry) UnmarshalJSON(b []byte) error {
	var j entryJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*e = Entry{Path: j.Path, Type: j.Type, Status: j.Status, Reasons: j.Reasons, Size: j.Size, Recovered: j.Recovered, Lost: j.Lost, Detail: j.Detail}
	if j.Ino <= 1<<32-1 {
		e.Ino = uint32(j.Ino)
	} else {
		e.Ino64 = j.Ino
	}
	return nil
}

// Describe is the entry in one line without its status and detail:
// "/path (inode N, type): reason,reason; R of S bytes".
func (e *Entry) Describe() string {
	rs := make([]string, len(e.Reasons))
	for j, x := range e.Reasons {
		rs[j] = string(x)
	}
	name := e.Path
	if name == "" {
		name = fmt.Sprintf("inode %d", e.Inode())
	}
	return fmt.Sprintf("%s (inode %d, %s): %s; %d of %d bytes", quote(name), e.Inode(), e.Type, strings.Join(rs, ","), e.Recovered, e.Size)
}

func (e *Entry) has(r Reason) bool {
	for _, x := range e.Reasons {
		if x == r {
			return true
		}
	}
	return false
}

func (e *Entry) add(r Reason, detail error) {
	if !e.has(r) {
		e.Reasons = append(e.Reasons, r)
	}
	if e.Detail == "" && detail != nil {
		e.Detail = detail.Error()
	}
}

// Report is the outcome of a salvage: totals, then every entry that was
// lost, partly recovered, suspect or unreachable.
type Report struct {
	// The filesystem as salvaged.
	Superblock      int64  `json:"superblock_offset"` // 1024, or a backup's
	DescPrimary     int    `json:"descriptors_primary"`
	DescBackup      int    `json:"descriptors_from_backup"`
	DescGuessed     int    `json:"descriptors_computed"`
	JournalReplayed bool   `json:"journal_replayed"`
	JournalError    string `json:"journal_error,omitempty"`

	// Files counts non-directory entries (regular files, symlinks,
	// devices, FIFOs, sockets, hard links), each name once.
	FilesRecovered int `json:"files_recovered"` // created in DEST (whole or partial)
	FilesPartial   int `json:"files_partial"`   // of those, with content missing
	FilesSuspect   int `json:"files_suspect"`   // of those, whole but doubtful
	FilesLost      int `json:"files_lost"`      // named by a directory, not created
	DirsRecovered  int `json:"dirs_recovered"`
	DirsLost       int `json:"dirs_lost"`
	// Orphans is the number of unreachable in-use inodes extracted
	// under #orphans (directories count once; their content is counted
	// in the totals above).
	Orphans int `json:"orphans"`
	// Cycles counts directories reached more than once, CrossLinked the
	// blocks claimed twice.
	Cycles      int `json:"cycles"`
	CrossLinked int `json:"cross_linked_blocks"`

	BytesRecovered int64 `json:"bytes_recovered"` // of regular files, from disk
	BytesLost      int64 `json:"bytes_lost"`      // of regular files, left as zeros

	Entries     []Entry  `json:"entries"`
	MoreEntries int      `json:"more_entries,omitempty"` // entries beyond Options.MaxEntries, counted only
	Notes       []string `json:"notes,omitempty"`        // what ext noticed (first MaxNotes)
	MoreNotes   int      `json:"more_notes,omitempty"`

	Elapsed time.Duration `json:"elapsed_ns"`
	// Extract is the extraction engine's own report (problems by path).
	Extract *extract.Report `json:"-"`
}

// Partial reports whether anything was lost, partly recovered or suspect
// (the CLI's exit code 3).
func (r *Report) Partial() bool {
	return r.FilesLost > 0 || r.DirsLost > 0 || r.FilesPartial > 0 || r.FilesSuspect > 0 || r.Orphans > 0 || r.Cycles > 0
}

// Summary is the human account: totals, then the entries (at most max
// of them; 0 for all).
func (r *Report) Summary(max int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "salvage: %d files recovered (%d partial, %d suspect), %d lost; %d directories recovered, %d lost; %d unreachable inodes under #orphans\n",
		r.FilesRecovered, r.FilesPartial, r.FilesSuspect, r.FilesLost, r.DirsRecovered, r.DirsLost, r.Orphans)
	fmt.Fprintf(&b, "salvage: %s recovered, %s lost (left as zeros); %d directory cycles, %d blocks claimed twice; %s\n",
		human.Bytes(r.BytesRecovered), human.Bytes(r.BytesLost), r.Cycles, r.CrossLinked, r.Elapsed.Round(time.Millisecond))
	src := fmt.Sprintf("superblock at %#x", r.Superblock)
	if r.DescBackup+r.DescGuessed > 0 {
		src += fmt.Sprintf("; group descriptors: %d primary, %d from a backup copy, %d computed", r.DescPrimary, r.DescBackup, r.DescGuessed)
	}
	if r.JournalReplayed {
		src += "; journal replayed in memory"
	}
	if r.JournalError != "" {
		src += "; journal NOT replayed: " + termsafe.Escape(r.JournalError, false)
	}
	fmt.Fprintf(&b, "salvage: %s\n", src)
	for i, e := range r.Entries {
		if max > 0 && i >= max {
			fmt.Fprintf(&b, "... and %d more entries (see salvage-report.json)\n", len(r.Entries)-i+r.MoreEntries)
			break
		}
		fmt.Fprintf(&b, "%-9s %s", e.Status, e.Describe())
		if e.Detail != "" {
			fmt.Fprintf(&b, "; %s", termsafe.Escape(e.Detail, false)) // it may embed a name
		}
		b.WriteByte('\n')
	}
	if r.MoreEntries > 0 && (max <= 0 || len(r.Entries) <= max) {
		fmt.Fprintf(&b, "... and %d more entries not kept\n", r.MoreEntries)
	}
	return b.String()
}

// quote shows a path as termsafe.Quote does, imgtool's one rule for names
// from an image (issue 13.5): Go-quoted when it holds a control (C0, C1:
// CSI), a bidi control or invalid UTF-8. salvage-report.txt is read with
// cat and less, not only through the CLI's escaping stderr.
func quote(p string) string { return termsafe.Quote(p) }

// ReportName and SummaryName are the files Run writes into DEST.
const (
	ReportName  = "salvage-report.json"
	SummaryName = "salvage-report.txt"
)

// ReportVersion is the "version" WriteFiles puts first in ReportName, as
// every JSON document imgtool writes has one (docs/json.md): it changes
// only when a field changes meaning or goes away.
const ReportVersion = 1

// WriteFiles writes the JSON report (ReportName) and the human summary
// (SummaryName) into dest, never over an existing entry nor through a
// symlink (a file of the same name in the salvaged filesystem): then a
// numbered name is used (salvage-report.1.json). It returns the paths.
// Run and RunView call it; RunFS and RunTar callers may.
//
// The JSON is the Report with "version": ReportVersion as its first key,
// and "entries" is [] when there are none, never null; a Report
// unmarshals from it as before (the extra key is ignored).
func (r *Report) WriteFiles(dest string) ([]string, error) {
	doc := struct {
		Version int `json:"version"`
		*Report
	}{ReportVersion, r}
	if r.Entries == nil {
		c := *r
		c.Entries = []Entry{}
		doc.Report = &c
	}
	js, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, f := range []struct {
		name string
		data []byte
	}{{ReportName, append(js, '\n')}, {SummaryName, []byte(r.Summary(0))}} {
		p, err := createNew(dest, f.name, f.data)
		if err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// createNew writes data to dest/name, or dest/name.N when taken, never
// following a symlink.
func createNew(dest, name string, data []byte) (string, error) {
	ext := filepath.Ext(name)
	base := strings.TrimSuffix(name, ext)
	for i := 0; i < 100; i++ {
		n := name
		if i > 0 {
			n = fmt.Sprintf("%s.%d%s", base, i, ext)
		}
		p := filepath.Join(dest, n)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return "", err
		}
		return p, f.Close()
	}
	return "", fmt.Errorf("salvage: no free name for %s in %s", name, dest)
}
