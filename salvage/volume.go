package salvage

import (
	"errors"
	"fmt"

	"github.com/imgtool/imgtool/inspect"
	"github.com/imgtool/imgtool/journal"
	"github.com/imgtool/imgtool/vfs"
)

// OpenVolume opens v for salvage, as `imgtool extract --salvage` and the
// TUI's S both do: through a driver that declares vfs.Driver.Salvage
// (fsys, for RunVFS), or as ext (view, for Run's own path). A volume the
// probe did not recognise is tried as ext first (its backup superblocks),
// then through each such driver (XFS's secondary superblocks).
func OpenVolume(v *inspect.Volume, noJournal bool, opts Options) (*journal.View, vfs.FS, error) {
	vo := vfs.OpenOptions{NoJournal: noJournal}
	if v.Content != nil {
		fsys, err := v.SalvageFS(vo)
		if !errors.Is(err, inspect.ErrNoSalvageDriver) {
			return nil, fsys, err
		}
	}
	r := v.Reader()
	if r == nil {
		return nil, nil, errors.New("no bytes to read")
	}
	view, err := Open(r, r.Size(), opts)
	if err == nil || v.Content != nil {
		return view, nil, err
	}
	fsys, ferr := v.SalvageFS(vo)
	if ferr != nil {
		return nil, nil, fmt.Errorf("%w; %w", err, ferr)
	}
	return nil, fsys, nil
}
