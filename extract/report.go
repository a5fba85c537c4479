package extract

import (
	"fmt"
	"github.com/imgtool/imgtool/internal/human"
	"github.com/imgtool/imgtool/termsafe"
	"strings"
	"sync"
	"time"

	"github.com/imgtool/imgtool/vfs"
)

// Kind classifies a Problem.
type Kind string

// Problem kinds. Every kind makes the run partial (Report.Partial): the
// destination is not a faithful copy of the source.
const (
	// Refused: the entry was deliberately not extracted because writing it
	// would be unsafe (a name with '/', "." or "..", an empty name or one
	// with NUL; a path through something that is not a directory we made).
	Refused Kind = "refused"
	// Lost: the entry could not be extracted at all (unreadable inode,
	// unreadable directory, creation failed, name already taken).
	Lost Kind = "lost"
	// Damaged: the entry was created but its content is incomplete (part
	// of the data was unreadable; the unreadable ranges are zeros).
	Damaged Kind = "damaged"
	// Metadata: the entry and its content are there but some metadata
	// could not be restored (owner, mode, times, an xattr).
	Metadata Kind = "metadata"
)

// Problem is one thing that went wrong with one entry.
type Problem struct {
	// Path is the entry's path in the source filesystem (odd bytes in
	// names are shown Go-quoted by String).
	Path string `json:"path"`
	// Ino is the source inode number, or 0 when not known.
	Ino  vfs.Ino `json:"inode,omitempty"`
	Kind Kind    `json:"kind"`
	// Err says why. ext's errors name the on-disk byte offset of damage.
	Err error `json:"-"`
}

// Reason is Err's text (for JSON and printing).
func (p Problem) Reason() string {
	if p.Err == nil {
		return ""
	}
	return p.Err.Error()
}

func (p Problem) String() string {
	s := fmt.Sprintf("%s: %s", p.Kind, quotePath(p.Path))
	if p.Ino != 0 {
		s += fmt.Sprintf(" (inode %d)", p.Ino)
	}
	return s + ": " + p.Reason()
}

// MaxProblems bounds Report.Problems; later problems are only counted
// (Report.MoreProblems), so a badly damaged filesystem cannot exhaust
// memory.
const MaxProblems = 10000

// Report is what a run did. Its counters are final once Run (or Close)
// returns.
type Report struct {
	Files     int64 // regular files created (hard links not included)
	Dirs      int64 // directories created or entered
	Symlinks  int64
	Hardlinks int64 // extra names of an inode already extracted
	Specials  int64 // FIFOs, sockets, character and block devices
	// Bytes is the logical size of the regular files extracted (holes
	// included); DataBytes is what was actually written (holes and
	// unwritten extents skipped).
	Bytes     int64
	DataBytes int64
	Elapsed   time.Duration

	Problems     []Problem
	MoreProblems int // problems beyond MaxProblems, counted but not kept

	mu sync.Mutex
}

// Partial reports whether anything was lost, refused, damaged or stripped
// of metadata (the CLI's exit code 3).
func (r *Report) Partial() bool { return len(r.Problems) > 0 || r.MoreProblems > 0 }

// Errors is the number of problems, kept or not.
func (r *Report) Errors() int { return len(r.Problems) + r.MoreProblems }

func (r *Report) add(p Problem) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.Problems) >= MaxProblems {
		r.MoreProblems++
		return
	}
	r.Problems = append(r.Problems, p)
}

// Summary is a one-line account of the run.
func (r *Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d files, %d dirs, %d symlinks, %d hard links, %d special; %s (%s written) in %s",
		r.Files, r.Dirs, r.Symlinks, r.Hardlinks, r.Specials, human.Bytes(r.Bytes), human.Bytes(r.DataBytes), r.Elapsed.Round(time.Millisecond))
	if n := r.Errors(); n > 0 {
		fmt.Fprintf(&b, "; %d problems", n)
	} else {
		b.WriteString("; no errors")
	}
	return b.String()
}

// Progress is a snapshot of a running extraction, handed to
// Options.Progress.
type Progress struct {
	Files int64 // entries of any type done
	Bytes int64 // logical bytes of regular files done
	// TotalFiles and TotalBytes are the sizes of the whole job when known
	// (Options.Count), else 0.
	TotalFiles, TotalBytes int64
	Errors                 int
	Elapsed                time.Duration
	Current                string // source path of the entry being extracted
	Done                   bool   // the final call
}

// Rate is bytes per second so far.
func (p Progress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Bytes) / p.Elapsed.Seconds()
}

// ETA estimates the time left, or -1 when unknown.
func (p Progress) ETA() time.Duration {
	if p.TotalBytes <= 0 || p.Bytes <= 0 || p.Elapsed <= 0 {
		return -1
	}
	left := p.TotalBytes - p.Bytes
	if left <= 0 {
		return 0
	}
	return time.Duration(float64(left) / p.Rate() * float64(time.Second))
}

// quotePath shows a path as termsafe.Quote does (the one rule for names on
// a terminal: controls, C1 CSI, bidi characters and invalid UTF-8 are
// escaped, and the path is then quoted).
func quotePath(p string) string { return termsafe.Quote(p) }
