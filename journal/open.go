package journal

import (
	"errors"
	"io"

	"github.com/imgtool/imgtool/ext"
)

// View is a filesystem opened the way the kernel would mount it: with its
// journal replayed in memory when it needs recovery.
type View struct {
	// FS is the filesystem to read: over the overlay when the journal was
	// replayed, over the volume otherwise.
	FS *ext.FS
	// ReaderAt is what FS reads (the Overlay or the volume), Size its size.
	ReaderAt io.ReaderAt
	Size     int64
	// Overlay is non-nil when the view differs from the volume (blocks
	// replayed or the superblock's needs_recovery cleared).
	Overlay *Overlay
	// Result is what the replay found and did; nil when the filesystem has
	// no journal or the journal could not be read at all.
	Result *Result
	// ReplayErr says why a journal that needs recovery was not replayed (an
	// *ExternalJournalError, a *CorruptError, ...): FS then shows the
	// filesystem as it is on disk, older than what the kernel would show.
	// Callers should show it as a warning.
	ReplayErr error
}

// Open opens the ext filesystem in vol and replays its journal in memory
// if it needs recovery. The error is ext.Open's (no filesystem); journal
// trouble goes to View.ReplayErr and leaves the unreplayed filesystem
// readable.
func Open(vol io.ReaderAt, size int64, extOpts *ext.Options, opts *Options) (*View, error) {
	fsys, err := ext.Open(vol, size, extOpts)
	if err != nil {
		return nil, err
	}
	v := &View{FS: fsys, ReaderAt: vol, Size: size}
	if !fsys.Superblock().HasJournal() {
		return v, nil
	}
	ov, res, err := Replay(vol, size, fsys, opts)
	v.Result = res
	if err != nil {
		if !errors.Is(err, ErrNoJournal) && fsys.Superblock().NeedsRecovery() {
			v.ReplayErr = err
		}
		return v, nil
	}
	if len(ov.keys) == 0 && len(ov.patches) == 0 && len(ov.mem) == 0 {
		return v, nil
	}
	rfs, err := ext.Open(ov, ov.Size(), extOpts)
	if err != nil {
		// The replayed blocks broke the superblock or the group
		// descriptors: keep the on-disk view, say why.
		v.ReplayErr = err
		return v, nil
	}
	v.FS, v.ReaderAt, v.Overlay = rfs, ov, ov
	return v, nil
}
