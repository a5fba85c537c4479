package undelete

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// Recovered is what Recover did with one candidate.
type Recovered struct {
	*Candidate
	// File is the path written, relative to the destination ("" when
	// nothing was written).
	File string
	Err  error
}

// Recover writes the candidates sel accepts (all when sel is nil) under
// dest, at their path (deleted directories are recreated as needed;
// "#deleted/<ino>" for the nameless). A name that is taken gets
// ".ino<N>" appended. Nothing outside dest is ever touched: every file is
// created through an os.Root, which refuses to follow a path out of it.
// Files keep their mode bits and times; owners only when running as root.
func (r *Result) Recover(dest string, sel func(*Candidate) bool) ([]Recovered, error) {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	var out []Recovered
	taken := map[string]bool{}
	for _, c := range r.Candidates {
		if sel != nil && !sel(c) {
			continue
		}
		rel := strings.TrimPrefix(c.Path, "/")
		if taken[rel] {
			rel = fmt.Sprintf("%s.ino%d", rel, c.Ino)
		}
		taken[rel] = true
		err := r.write(root, rel, c)
		rec := Recovered{Candidate: c, Err: err}
		if err == nil {
			rec.File = rel
		}
		out = append(out, rec)
	}
	return out, nil
}

func (r *Result) write(root *os.Root, rel string, c *Candidate) error {
	if dir := path.Dir(rel); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	switch {
	case c.Mode&0xF000 == 0xA000:
		t, err := r.Readlink(c)
		if err != nil {
			return err
		}
		return root.Symlink(t, rel)
	case !c.IsRegular():
		return fmt.Errorf("undelete: inode %d: mode %o is not a file", c.Ino, c.Mode)
	}
	f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	src := io.NewSectionReader(r.Open(c), 0, c.Size)
	if _, err := io.Copy(f, src); err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := root.Chmod(rel, os.FileMode(c.Mode&0o777)); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		_ = root.Lchown(rel, int(c.UID), int(c.GID))
	}
	return root.Chtimes(rel, c.Atime, c.Mtime)
}
