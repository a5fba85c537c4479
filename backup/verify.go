package backup

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/imgtool/imgtool/dump"
	"github.com/imgtool/imgtool/vfs"
)

// VerifyFile checks one backup against its manifest: size and sha256 of
// the file; then, unless quick, decompresses it and parses every record
// (every header checksum, every file's data, every EA record), and checks
// the level, dates and inode count against the manifest. Quick mode parses
// the volume header and the inode maps only.
func VerifyFile(dir string, m *Manifest, quick bool) error {
	return VerifyObject(context.Background(), &DirStore{Dir: dir}, m, quick)
}

// VerifyObject is VerifyFile on any store: the object is streamed once,
// hashed and parsed in the same pass.
func VerifyObject(ctx context.Context, st Store, m *Manifest, quick bool) error {
	rc, err := st.Open(ctx, m.File)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := sha256.New()
	cnt := &countReader{r: io.TeeReader(rc, h)}
	perr := parseBackup(m, bufio.NewReaderSize(cnt, 1<<20), quick)
	// Hash the rest (quick mode, or padding after the dump) before judging.
	if _, err := io.Copy(io.Discard, cnt); err != nil && perr == nil {
		return storeErr(st, m.File, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); cnt.n != m.Bytes || sum != m.SHA256 {
		return fmt.Errorf("%s: %d bytes sha256 %s, manifest says %d bytes sha256 %s", m.File, cnt.n, sum, m.Bytes, m.SHA256)
	}
	return perr
}

// parseBackup decompresses and parses one backup stream against m.
func parseBackup(m *Manifest, r io.Reader, quick bool) error {
	zr, err := NewDecompressor(m.Compress, r)
	if err != nil {
		return fmt.Errorf("%s: %w", m.File, err)
	}
	defer zr.Close()
	cr := &countReader{r: zr}
	rd, err := dump.NewReader(bufio.NewReaderSize(cr, 1<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", m.File, err)
	}
	vol := rd.Volume()
	if int(vol.Level) != m.Level || int64(vol.Date) != m.Date.Unix() {
		return fmt.Errorf("%s: dump header says level %d of %d, manifest level %d of %d", m.File, vol.Level, vol.Date, m.Level, m.Date.Unix())
	}
	if m.Level > 0 && int64(vol.DDate) != m.BaseDate.Unix() {
		return fmt.Errorf("%s: dump base date %d, manifest %d", m.File, vol.DDate, m.BaseDate.Unix())
	}
	if quick {
		return nil
	}
	count := 0
	for {
		e, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", m.File, err)
		}
		count++
		if e.IsRegular() {
			if _, err := io.Copy(io.Discard, rd); err != nil {
				return fmt.Errorf("%s: inode %d: %w", m.File, e.Ino, err)
			}
		}
		if _, err := rd.Xattrs(); err != nil {
			return fmt.Errorf("%s: inode %d: %w", m.File, e.Ino, err)
		}
	}
	if count != m.Files {
		return fmt.Errorf("%s: %d inodes on tape, manifest says %d", m.File, count, m.Files)
	}
	if rd.Records() > m.Records {
		return fmt.Errorf("%s: %d records, manifest says %d", m.File, rd.Records(), m.Records)
	}
	// Nothing may follow the end of the dump but the padding.
	if rest, _ := io.Copy(io.Discard, zr); rest > 0 && cr.n+rest > m.RawBytes {
		return fmt.Errorf("%s: %d bytes after the end of the dump", m.File, rest)
	}
	return nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Verify checks every backup in a guest directory (see VerifyFile) and
// reports data files without a manifest. It returns the number checked.
func Verify(dir string, quick bool) (int, error) {
	return VerifyStore(context.Background(), &DirStore{Dir: dir}, quick)
}

// VerifyStore checks every backup of a store (see VerifyObject).
func VerifyStore(ctx context.Context, st Store, quick bool) (int, error) {
	ms, bad, err := ReadManifestsFrom(ctx, st)
	if err != nil {
		return 0, err
	}
	errs := bad
	for _, m := range ms {
		if err := VerifyObject(ctx, st, m, quick); err != nil {
			errs = append(errs, err)
		}
	}
	// The newest backup of every volume must be restorable: its whole
	// chain present.
	newest := map[string]*Manifest{}
	for _, m := range ms {
		newest[m.ID()] = m // sorted by date
	}
	for _, m := range ms {
		if newest[m.ID()] == m {
			if _, err := Chain(ms, m); err != nil {
				errs = append(errs, fmt.Errorf("%s: newest backup of %s#%s cannot be restored: %w", st.Location(), m.Source, m.Volume, err))
			}
		}
	}
	return len(ms), errors.Join(errs...)
}

// VerifyCoverage checks that every volume a run of c would dump today
// (its sources inspected as they are now) has a backup in st. It returns
// nil without checking when no source is readable here (verify from
// another host).
func VerifyCoverage(ctx context.Context, c *Config, st Store) error {
	readable := false
	for _, s := range c.Sources {
		if _, err := os.Stat(s); err == nil {
			readable = true
		}
	}
	if !readable {
		return nil
	}
	ms, _, err := ReadManifestsFrom(ctx, st)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, m := range ms {
		have[m.Source+"#"+m.Volume] = true
	}
	rep := (&Runner{Level: -1}).Plan(c, time.Now())
	var errs []error
	for _, v := range rep.Volumes {
		if v.Dump && !have[v.Source+"#"+v.Address] {
			errs = append(errs, fmt.Errorf("guest %s: %s#%s should be backed up but %s has no backup of it", c.Name, v.Source, v.Volume, st.Location()))
		}
	}
	for _, l := range rep.LeftOut {
		errs = append(errs, fmt.Errorf("guest %s: NOT backed up: %s", c.Name, l.Line()))
	}
	return errors.Join(errs...)
}

// VerifyDeep compares a level-0 backup's files with a source filesystem
// (the same volume, unchanged since, e.g. a kept snapshot or an image
// file): every regular file's content and every symlink target, by inode.
func VerifyDeep(dir string, m *Manifest, sourcePath string) error {
	return VerifyDeepStore(context.Background(), &DirStore{Dir: dir}, m, sourcePath)
}

// VerifyDeepStore is VerifyDeep on any store.
func VerifyDeepStore(ctx context.Context, st Store, m *Manifest, sourcePath string) error {
	t, closer, err := openTree(sourcePath, slog.New(slog.DiscardHandler), "", "")
	if err != nil {
		return err
	}
	defer closer.Close()
	v, err := t.Resolve(m.Volume)
	if err != nil {
		return err
	}
	fsys, err := v.OpenFS(vfs.OpenOptions{})
	if err != nil {
		return err
	}
	// The same numbering as the dump's (stable sources only: this is
	// for an unchanged source anyway).
	src, err := dump.NewFSSource(ctx, fsys)
	if err != nil {
		return err
	}
	f, err := st.Open(ctx, m.File)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := NewDecompressor(m.Compress, bufio.NewReader(f))
	if err != nil {
		return err
	}
	defer zr.Close()
	rd, err := dump.NewReader(bufio.NewReader(zr))
	if err != nil {
		return err
	}
	var diffs []string
	for len(diffs) < 20 {
		e, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		ino := src.FromDump(e.Ino)
		in, err := fsys.Stat(ino)
		if ino == 0 || err != nil {
			diffs = append(diffs, fmt.Sprintf("inode %d: %v", e.Ino, err))
			continue
		}
		// Directories are re-encoded on tape (512-byte blocks): their
		// sizes differ by design.
		if in.Mode != e.Mode || in.UID != e.UID || in.GID != e.GID || (!e.IsDir() && uint64(in.Size) != e.Size) ||
			in.Mtime.Unix() != e.Mtime.Unix() {
			diffs = append(diffs, fmt.Sprintf("inode %d %v: metadata differs", e.Ino, rd.Paths(e.Ino)))
			continue
		}
		switch {
		case e.IsRegular():
			sf, err := fsys.Open(ino)
			if err != nil {
				return err
			}
			if !sameContent(rd, io.NewSectionReader(sf, 0, sf.Size())) {
				diffs = append(diffs, fmt.Sprintf("inode %d %v: content differs", e.Ino, rd.Paths(e.Ino)))
			}
		case e.IsSymlink():
			if tg, _ := fsys.Readlink(ino); tg != e.Target {
				diffs = append(diffs, fmt.Sprintf("inode %d %v: symlink target differs", e.Ino, rd.Paths(e.Ino)))
			}
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%s differs from %s:\n  %s", m.File, sourcePath, strings.Join(diffs, "\n  "))
	}
	return nil
}

func sameContent(a, b io.Reader) bool {
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(a, ba)
		nb, eb := io.ReadFull(b, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false
		}
		if ea != nil || eb != nil {
			return (ea == io.EOF || ea == io.ErrUnexpectedEOF) && (eb == io.EOF || eb == io.ErrUnexpectedEOF)
		}
	}
}

// CopyTo copies a backup and its manifest to host and confirms the copy's
// sha256. host is a local directory, "[user@]host:/dir" (copied with rsync
// over ssh and checked with `ssh host sha256sum`), or s3://BUCKET/PREFIX
// (uploaded, then streamed back and hashed). Files land in HOST/GUEST/.
func CopyTo(ctx context.Context, log *slog.Logger, dir string, m *Manifest, host, guest string) error {
	return copyToHost(ctx, log, &DirStore{Dir: dir}, m, host, guest, S3Config{})
}

func copyToHost(ctx context.Context, log *slog.Logger, src Store, m *Manifest, host, guest string, s3c S3Config) error {
	if !IsS3(host) && strings.IndexByte(host, ':') > 0 && !strings.HasPrefix(host, "/") && !strings.HasPrefix(host, ".") {
		ds, ok := src.(*DirStore)
		if !ok {
			return fmt.Errorf("copy to %s: copying from %s over ssh is not supported; use a local or s3:// dest", host, src.Location())
		}
		return copySSH(ctx, log, ds.Dir, m, host, guest)
	}
	dst, err := OpenStore(ctx, host, guest, s3c)
	if err != nil {
		return fmt.Errorf("copy to %s: %w", host, err)
	}
	if err := copyObject(ctx, src, dst, m.File); err != nil {
		return fmt.Errorf("copy to %s: %w", host, err)
	}
	if err := writeManifest(ctx, dst, m); err != nil {
		return fmt.Errorf("copy to %s: %w", host, err)
	}
	sum, _, err := objectSHA256(ctx, dst, m.File)
	if err != nil {
		return fmt.Errorf("copy to %s: %w", host, err)
	}
	if sum != m.SHA256 {
		return fmt.Errorf("copy to %s: sha256 of the copy %s, want %s", host, sum, m.SHA256)
	}
	log.Info("copied", "dest", dst.Location(), "file", m.File)
	return nil
}

// copyObject streams one object from a store to another.
func copyObject(ctx context.Context, src, dst Store, name string) error {
	in, err := src.Open(ctx, name)
	if err != nil {
		return err
	}
	defer in.Close()
	up, err := dst.Create(ctx, name)
	if err != nil {
		return err
	}
	if _, err := io.Copy(up, in); err != nil {
		up.Abort(ctx)
		return err
	}
	if err := up.Commit(ctx); err != nil {
		up.Abort(ctx)
		return err
	}
	return nil
}

func copySSH(ctx context.Context, log *slog.Logger, dir string, m *Manifest, host, guest string) error {
	src := filepath.Join(dir, m.File)
	i := strings.IndexByte(host, ':')
	h, rdir := host[:i], filepath.Join(host[i+1:], guest)
	if err := runCmd(ctx, log, "copy", fmt.Sprintf("ssh %s mkdir -p %s && rsync -a --partial-dir=.rsync-partial %s %s %s:%s/",
		shellQuote(h), shellQuote(rdir), shellQuote(src), shellQuote(src+".json"), shellQuote(h), shellQuote(rdir))); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "ssh", h, "sha256sum", shellQuote(filepath.Join(rdir, m.File)))
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("copy to %s: remote sha256sum: %w", host, err)
	}
	if f := strings.Fields(string(out)); len(f) == 0 || f[0] != m.SHA256 {
		return fmt.Errorf("copy to %s: remote sha256 %q, want %s", host, strings.TrimSpace(string(out)), m.SHA256)
	}
	log.Info("copied", "host", host, "file", m.File)
	return nil
}
