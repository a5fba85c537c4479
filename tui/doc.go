// Package tui is imgtool's terminal file manager: a Bubble Tea v2 program
// over an inspected image tree (package inspect) and the ext reader
// (package ext).
//
// The screen has three panes, laid out like ranger or lf:
//
//		volumes │ files │ preview
//
//	  - The volumes pane is the inspect tree (disk → partitions → VGs → LVs →
//	    nested disks → filesystems) with badges for type, size, label and
//	    notes. Only ext2/3/4 volumes can be entered; swap, unknown and
//	    unreadable volumes are shown with the reason.
//	  - The files pane lists one directory of the selected filesystem: name,
//	    size, mode, owner and mtime. Directories are read by a tea.Cmd, never
//	    in Update; inodes are read only for the rows on screen (and a margin),
//	    so a directory of 100k entries opens and scrolls without lag: the
//	    render is windowed and all per-row work is O(visible rows).
//	  - The preview pane shows the selected file: text in a scrollable
//	    viewport, binary data as a hex dump of its first bytes, a symlink's
//	    target, or a volume's details and notes.
//
// Marked files are extracted with the extract package (the engine and the
// safety rules of `imgtool extract`) in a goroutine that reports progress
// as messages, so the UI stays responsive during the copy. S salvages a
// whole volume the same way, with the salvage package (`imgtool extract
// --salvage`: ext through its own path, XFS through the
// filesystem-neutral one, also when the primary superblock is gone): the
// box shows the report's totals and every lost, partial
// or suspect entry, and the report files go in the destination.
//
// Layout adapts to the terminal: three columns when wide, the focused list
// plus the preview when medium, and a single pane (preview stacked below
// when there is height for it) when narrow. Colours follow the terminal's
// profile, which Bubble Tea detects (NO_COLOR gives plain text; the cursor
// row stays visible through reverse video and a ▸ marker).
//
// The destination prompt and the filter are bubbles/textinput models and
// the extraction's bar is a bubbles/progress model rendered statically
// (ViewAs) from each progress message; both are styled in styles.go with
// plain ANSI attributes only, so NO_COLOR leaves them readable.
//
// Everything is testable without a terminal: New builds the model from a
// tree, and tests drive it with teatest or by calling Update directly.
package tui
