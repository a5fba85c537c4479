package journal

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/vfs"
)

// Driver opens ext2/3/4 filesystems for the registration table of package
// inspect: the journal is replayed into memory when it needs recovery
// (unless OpenOptions.NoJournal), once per Open, and the view is an
// *ext.VFS whose notes say what the replay did. A journal that needed
// recovery but could not be replayed gives a Stale note.
var Driver = vfs.Driver{
	Name:  "ext",
	Types: []string{"ext2", "ext3", "ext4", "ext4dev"},
	Open:  openVFS,
}

// replays counts the journals walked by Replay in this process.
var replays atomic.Int64

// Replays returns how many times a journal log was read for a replay in
// this process (for tests that a volume is replayed at most once).
func Replays() int64 { return replays.Load() }

func openVFS(vol vfs.Volume, name string, opts vfs.OpenOptions) (vfs.FS, error) {
	var eo *ext.Options
	if opts.Salvage {
		eo = &ext.Options{Salvage: true}
	}
	if opts.NoJournal {
		fsys, err := ext.Open(vol, vol.Size(), eo)
		if err != nil {
			return nil, fmt.Errorf("volume %s: %w", name, err)
		}
		v := ext.NewVFS(fsys)
		if fsys.Superblock().NeedsRecovery() {
			v.AddNote(vfs.Note{Offset: -1, Stale: true,
				Msg: "journal needs recovery and was not replayed (as asked): showing the on-disk state, older than what a mount would show"})
		}
		return v, nil
	}
	var jo *Options
	if opts.LogDevice != nil {
		jo = &Options{External: opts.LogDevice, ExternalSize: opts.LogDevice.Size()}
	}
	view, err := Open(vol, vol.Size(), eo, jo)
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	return view.VFS(), nil
}

// VFS returns the view as a vfs.FS, with the replay's summary as a note
// (Stale when a needed replay could not be done).
func (view *View) VFS() *ext.VFS {
	v := ext.NewVFS(view.FS)
	if s := view.Summary(); s != "" {
		n := vfs.Note{Offset: -1, Msg: s}
		// Fast commits that could not be replayed: fsync'ed changes
		// are missing.
		if view.Result != nil && len(view.Result.FastCommitProblems) > 0 {
			n.Stale = true
		}
		if view.ReplayErr != nil {
			n.Stale = true
			var ej *ExternalJournalError
			if errors.As(view.ReplayErr, &ej) {
				n.Msg += " (give the journal device with --journal-dev FILE)"
			}
		}
		v.AddNote(n)
	}
	return v
}

// Summary says in one line what the replay did, or "" when there was
// nothing to say.
func (view *View) Summary() string {
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
func withNotes(s string, r *Result) string {
	for _, n := range r.Notes {
		s += "; " + n
	}
	return s
}
