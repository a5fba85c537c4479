package inspect

import (
	"fmt"
	"io"
	"reflect"
	"sync"

	"github.com/imgtool/imgtool/journal"
	"github.com/imgtool/imgtool/vfs"
)

// fsKey is what an opened view depends on.
type fsKey struct {
	noJournal, salvage bool
	log                vfs.Volume
}

type fsEntry struct {
	once sync.Once
	fs   vfs.FS
	err  error
}

// fsCache holds each volume's opened views, so that a journal is replayed
// at most once per volume and options in a process.
type fsCache struct {
	m map[fsKey]*fsEntry
}

// cacheMu guards every volume's fsCache (and logDev); the opens run
// outside it, each once (fsEntry.once).
var cacheMu sync.Mutex

// Readable reports whether a registered driver reads the volume's
// filesystem.
func (v *Volume) Readable() bool {
	return v.Content != nil && driverFor(v.Content.Type) != nil && v.r != nil
}

// OpenFS opens the filesystem of v through the driver registered for its
// type (Drivers), the way the kernel would mount it unless opts say
// otherwise: a journal that needs recovery is replayed into memory. The
// view is cached per options: every caller in the process gets the same
// FS, and a journal is replayed once. Without opts.LogDevice the tree's
// external journal device (Options.Journal) is used.
func (v *Volume) OpenFS(opts vfs.OpenOptions) (vfs.FS, error) {
	typ := "no filesystem imgtool recognises"
	if v.Content != nil {
		typ = v.Content.Type
	}
	var d *vfs.Driver
	if v.Content != nil {
		d = driverFor(v.Content.Type)
	}
	if d == nil {
		return nil, fmt.Errorf("volume %s holds %s; imgtool reads files from %s", v.DisplayAddress(), typ, ReadableTypes())
	}
	r := v.Reader()
	if r == nil {
		return nil, fmt.Errorf("volume %s: no bytes to read", v.DisplayAddress())
	}
	if opts.LogDevice == nil && v.journal != nil && v.journal.External != nil {
		opts.LogDevice = v.logDevice()
	}
	key := fsKey{noJournal: opts.NoJournal, salvage: opts.Salvage, log: opts.LogDevice}
	if opts.LogDevice != nil && !reflect.TypeOf(opts.LogDevice).Comparable() {
		return d.Open(r, v.DisplayAddress(), opts) // cannot key the cache: open uncached
	}
	cacheMu.Lock()
	if v.fsc == nil {
		v.fsc = &fsCache{m: map[fsKey]*fsEntry{}}
	}
	e := v.fsc.m[key]
	if e == nil {
		e = &fsEntry{}
		v.fsc.m[key] = e
	}
	cacheMu.Unlock()
	e.once.Do(func() { e.fs, e.err = d.Open(r, v.DisplayAddress(), opts) })
	return e.fs, e.err
}

// logDevice is the tree's external journal as a vfs.Volume, one value
// per volume so that it keys the cache.
func (v *Volume) logDevice() vfs.Volume {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if v.logDev == nil {
		v.logDev = &sizedReader{v.journal.External, v.journal.ExternalSize}
	}
	return v.logDev
}

type sizedReader struct {
	io.ReaderAt
	size int64
}

func (s *sizedReader) Size() int64 { return s.size }

// ReadableTypes names the types the registered drivers read.
func ReadableTypes() string {
	s := ""
	for _, d := range Drivers {
		for _, t := range d.Types {
			if s != "" {
				s += ", "
			}
			s += t
		}
	}
	return s
}

// JournalOptions returns the tree's external journal device
// (Options.Journal), the default of OpenFS and of salvage, or nil.
func (v *Volume) JournalOptions() *journal.Options { return v.journal }
