package journal

import (
	"errors"
	"fmt"
)

// CorruptError reports damage in the journal: what was wrong, in which
// journal block and at which byte offset of the device that holds the
// journal (the filesystem volume for an internal journal, the journal
// device for an external one).
type CorruptError struct {
	Block  uint64 // journal (logical) block number
	Offset int64  // byte offset on the journal's device, or -1
	What   string // e.g. "revoke block"
	Detail string
	Err    error // a sentinel (ErrUnsupported, ErrLoop), or nil
}

func (e *CorruptError) Error() string {
	s := fmt.Sprintf("journal: block %d", e.Block)
	if e.Offset >= 0 {
		s += fmt.Sprintf(" (offset %#x)", e.Offset)
	}
	return s + ": " + e.What + ": " + e.Detail
}

func (e *CorruptError) Unwrap() error { return e.Err }

func corrupt(block uint64, off int64, what, format string, args ...any) error {
	return &CorruptError{Block: block, Offset: off, What: what, Detail: fmt.Sprintf(format, args...)}
}

func unsupported(off int64, format string, args ...any) error {
	return &CorruptError{Block: 0, Offset: off, What: "journal superblock", Detail: fmt.Sprintf(format, args...), Err: ErrUnsupported}
}

// ChecksumError is a v2/v3 checksum mismatch that stops recovery (the
// journal superblock's, or a descriptor or revoke block's inside a
// transaction that is otherwise committed, as jbd2 treats it). Checksum
// mismatches that only skip a block or end the log early are Result notes.
type ChecksumError struct {
	Block    uint64
	Offset   int64
	What     string
	Stored   uint32
	Computed uint32
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("journal: block %d (offset %#x): %s: checksum mismatch: stored %#x, computed %#x",
		e.Block, e.Offset, e.What, e.Stored, e.Computed)
}

// ExternalJournalError says the filesystem's journal lives on another
// device (journal_dev) that was not given to Replay. Show it to the user:
// the filesystem can still be read without replay, as it is on disk.
type ExternalJournalError struct {
	UUID [16]byte // s_journal_uuid: the journal device's filesystem UUID
	Dev  uint32   // s_journal_dev: the device number it had (major<<8|minor, old style)
}

func (e *ExternalJournalError) Error() string {
	u := e.UUID
	return fmt.Sprintf("journal: the journal is on an external device (UUID %x-%x-%x-%x-%x, device %d:%d), not given",
		u[0:4], u[4:6], u[6:8], u[8:10], u[10:16], e.Dev>>8, e.Dev&0xff)
}

func (e *ExternalJournalError) Is(target error) bool { return target == ErrExternalJournal }

var (
	// ErrNoJournal: the filesystem has no journal (ext2).
	ErrNoJournal = errors.New("journal: filesystem has no journal")
	// ErrExternalJournal matches *ExternalJournalError with errors.Is.
	ErrExternalJournal = errors.New("journal: external journal device needed")
	// ErrUnsupported: a journal feature or version this package does not
	// know; e2fsck refuses such journals too.
	ErrUnsupported = errors.New("journal: unsupported journal format")
	// ErrLoop: the log did not end within the journal's length.
	ErrLoop = errors.New("journal: log does not end")
)
