package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// A Store is where one guest's backups live: a local directory
// (DEST/GUEST) or an S3 bucket prefix (s3://BUCKET/PREFIX/GUEST/). Every
// consumer (run, verify, list, restore, retention, copy) goes through it,
// so a bucket works from any host that has the credentials.
//
// The invariant every store keeps: an object is visible under its name
// only once it is complete (a local temp file renamed into place; an S3
// multipart upload completed), and a backup exists only once its manifest
// (NAME.json) is visible, which is written after the data.
type Store interface {
	// Location names the store in messages: a directory or an s3:// URL.
	Location() string
	// Create starts writing a new object; nothing is visible under name
	// until Commit.
	Create(ctx context.Context, name string) (Upload, error)
	// Open streams an object.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// Size returns an object's size; an error wrapping os.ErrNotExist when
	// there is none.
	Size(ctx context.Context, name string) (int64, error)
	// List returns the names of the objects, sorted.
	List(ctx context.Context) ([]string, error)
	// ReadFile and WriteFile read and atomically replace small objects
	// (manifests, dumpdates).
	ReadFile(ctx context.Context, name string) ([]byte, error)
	WriteFile(ctx context.Context, name string, data []byte) error
	// Remove deletes an object; a missing one is not an error.
	Remove(ctx context.Context, name string) error
	// Lock takes the guest's lock in the store for host, so that two hosts
	// never write one guest's backups at once. The returned func releases
	// it. Local directories rely on the state directory's flock.
	Lock(ctx context.Context, host string) (func(context.Context) error, error)
	// Clean removes what interrupted runs left (temp files, incomplete
	// uploads, data objects without a manifest). The caller holds the
	// lock.
	Clean(ctx context.Context) ([]string, error)
}

// An Upload is an object being written.
type Upload interface {
	io.Writer
	// Commit makes the object visible under its name, complete.
	Commit(ctx context.Context) error
	// Abort discards it (a no-op after Commit).
	Abort(ctx context.Context) error
}

// IsS3 says whether a dest or hosts entry names an S3 bucket.
func IsS3(dest string) bool { return strings.HasPrefix(dest, "s3://") }

// OpenStore opens the store of guest under dest (a directory or
// s3://bucket/prefix), with the S3 settings of c.
func OpenStore(ctx context.Context, dest, guest string, s3c S3Config) (Store, error) {
	if IsS3(dest) {
		st, err := OpenS3(ctx, dest, guest, s3c)
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	return &DirStore{Dir: filepath.Join(dest, guest)}, nil
}

// GuestStore opens c's own destination.
func GuestStore(ctx context.Context, c *Config) (Store, error) {
	return OpenStore(ctx, c.Dest, c.Name, c.S3)
}

// DirStore is a guest's backup directory on a local (or mounted)
// filesystem.
type DirStore struct {
	Dir string
	// Temps, when set, is told the name of every temp file created, before
	// anything is written to it (the run's crash-recovery state).
	Temps func(path string) error
}

// Location implements Store.
func (d *DirStore) Location() string { return d.Dir }

func (d *DirStore) path(name string) string { return filepath.Join(d.Dir, name) }

// Create implements Store: a temp file in the directory, renamed into
// place by Commit after fsync.
func (d *DirStore) Create(ctx context.Context, name string) (Upload, error) {
	if err := os.MkdirAll(d.Dir, 0o750); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(d.Dir, tmpPrefix+name+".*")
	if err != nil {
		return nil, err
	}
	if d.Temps != nil {
		if err := d.Temps(f.Name()); err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, err
		}
	}
	return &dirUpload{f: f, final: d.path(name)}, nil
}

type dirUpload struct {
	f     *os.File
	final string
	done  bool
}

func (u *dirUpload) Write(p []byte) (int, error) { return u.f.Write(p) }

func (u *dirUpload) Commit(ctx context.Context) error {
	err := u.f.Sync()
	if cerr := u.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(u.f.Name(), u.final)
	}
	if err != nil {
		os.Remove(u.f.Name())
		return err
	}
	u.done = true
	return syncDir(filepath.Dir(u.final))
}

func (u *dirUpload) Abort(ctx context.Context) error {
	if u.done {
		return nil
	}
	u.f.Close()
	return os.Remove(u.f.Name())
}

// Open implements Store.
func (d *DirStore) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	return os.Open(d.path(name))
}

// Size implements Store.
func (d *DirStore) Size(ctx context.Context, name string) (int64, error) {
	fi, err := os.Stat(d.path(name))
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// List implements Store. Temp files are not listed.
func (d *DirStore) List(ctx context.Context) ([]string, error) {
	ents, err := os.ReadDir(d.Dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), tmpPrefix) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// ReadFile implements Store.
func (d *DirStore) ReadFile(ctx context.Context, name string) ([]byte, error) {
	return os.ReadFile(d.path(name))
}

// WriteFile implements Store.
func (d *DirStore) WriteFile(ctx context.Context, name string, data []byte) error {
	if err := os.MkdirAll(d.Dir, 0o750); err != nil {
		return err
	}
	return writeFileAtomic(d.path(name), data)
}

// Remove implements Store.
func (d *DirStore) Remove(ctx context.Context, name string) error {
	if err := os.Remove(d.path(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Lock implements Store: the flock on the state directory already keeps
// runs of this host apart.
func (d *DirStore) Lock(ctx context.Context, host string) (func(context.Context) error, error) {
	return func(context.Context) error { return nil }, nil
}

// Clean implements Store.
func (d *DirStore) Clean(ctx context.Context) ([]string, error) { return cleanBackupDir(d.Dir) }

// objectSHA256 streams an object and hashes it.
func objectSHA256(ctx context.Context, st Store, name string) (string, int64, error) {
	rc, err := st.Open(ctx, name)
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	return readerSHA256(rc)
}

// orphanData says whether name is a backup data object whose manifest is
// missing from have.
func orphanData(name string, have map[string]bool) bool {
	return strings.Contains(name, ".dump") && !strings.HasSuffix(name, ".json") && !have[name+".json"]
}

// storeErr prefixes an error with the store's location.
func storeErr(st Store, name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s/%s: %w", strings.TrimSuffix(st.Location(), "/"), name, err)
}
