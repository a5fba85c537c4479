package inspect

import (
	"fmt"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/journal"
)

// FSOptions tune OpenExt.
type FSOptions struct {
	// NoJournal shows the raw on-disk state: a journal that needs
	// recovery is not replayed.
	NoJournal bool
	// Salvage opens tolerantly (ext.Options.Salvage): files with a damaged
	// block map read in part instead of failing.
	Salvage bool
	// Journal gives an external journal device; nil uses the tree's
	// (inspect.Options.Journal).
	Journal *journal.Options
}

// OpenExt opens the ext2/3/4 filesystem of v the way the kernel would
// mount it: a journal that needs recovery is replayed into memory (the
// image is never written). View.ReplayErr says why a needed replay could
// not be done; the filesystem is then shown as it is on disk. Every reader
// of files (CLI, TUI, extract, backup) opens filesystems through here.
func (v *Volume) OpenExt(opts *FSOptions) (*journal.View, error) {
	if !v.IsExt() {
		typ := "no filesystem imgtool recognises"
		if v.Content != nil {
			typ = v.Content.Type
		}
		return nil, fmt.Errorf("volume %s holds %s; imgtool reads files only from ext2/3/4", v.DisplayAddress(), typ)
	}
	r := v.Reader()
	if r == nil {
		return nil, fmt.Errorf("volume %s: no bytes to read", v.DisplayAddress())
	}
	var eo *ext.Options
	if opts != nil && opts.Salvage {
		eo = &ext.Options{Salvage: true}
	}
	if opts != nil && opts.NoJournal {
		fsys, err := ext.Open(r, r.Size(), eo)
		if err != nil {
			return nil, fmt.Errorf("volume %s: %w", v.DisplayAddress(), err)
		}
		return &journal.View{FS: fsys, ReaderAt: r, Size: r.Size()}, nil
	}
	jo := v.journal
	if opts != nil && opts.Journal != nil {
		jo = opts.Journal
	}
	view, err := journal.Open(r, r.Size(), eo, jo)
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", v.DisplayAddress(), err)
	}
	return view, nil
}

// JournalOptions returns the journal options OpenExt uses by default (the
// tree's external journal device), or nil.
func (v *Volume) JournalOptions() *journal.Options { return v.journal }

// JournalSummary says in one line what OpenExt's replay did, or "".
func JournalSummary(view *journal.View) string {
	switch {
	case view == nil:
		return ""
	case view.ReplayErr != nil:
		return fmt.Sprintf("journal not replayed, showing the on-disk state: %v", view.ReplayErr)
	case view.Result != nil && view.Result.Replayed:
		r := view.Result
		s := fmt.Sprintf("journal replayed in memory: %d transactions, %d blocks", r.Transactions, r.Distinct)
		if r.HasFailedCommit {
			s += fmt.Sprintf(" (log ends at transaction %d, whose commit checksum failed)", r.FailedCommit)
		}
		return withNotes(s, r)
	case view.Result != nil && len(view.Result.Notes) > 0:
		return withNotes("journal", view.Result)
	}
	return ""
}

// withNotes appends the replay's notes (a backup block map used, fast
// commits not replayed, a log left alone) to s.
func withNotes(s string, r *journal.Result) string {
	for _, n := range r.Notes {
		s += "; " + n
	}
	return s
}
