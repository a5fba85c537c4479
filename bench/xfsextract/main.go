// Command xfsextract is the bench driver of bench/xfs.sh: it extracts a
// whole XFS image with package xfs (the reader imgtool uses) into DEST,
// keeping type, mode, owner, symlink targets, sparse holes and ns mtimes,
// with a few goroutines copying file content. It exists because the CLI's
// extract does not read XFS yet; it measures the reader, not the CLI.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/imgtool/imgtool/vfs"
	"github.com/imgtool/imgtool/xfs"
	"golang.org/x/sys/unix"
)

type vol struct {
	*os.File
	size int64
}

func (v vol) Size() int64 { return v.size }

type job struct {
	ino  vfs.Ino
	path string
	st   *vfs.Stat
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: xfsextract IMAGE DEST")
		os.Exit(2)
	}
	fh, err := os.Open(os.Args[1])
	check(err)
	fi, _ := fh.Stat()
	f, err := xfs.Open(vol{fh, fi.Size()}, os.Args[1], vfs.OpenOptions{})
	check(err)
	dest := os.Args[2]
	check(os.MkdirAll(dest, 0o755))
	jobs := make(chan job, 256)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<20)
			for j := range jobs {
				copyFile(f, j, buf)
			}
		}()
	}
	var dirs []job
	var walk func(ino vfs.Ino, p string)
	walk = func(ino vfs.Ino, p string) {
		ents, err := f.ReadDir(ino)
		check(err)
		for _, e := range ents {
			st, err := f.Stat(e.Ino)
			check(err)
			q := filepath.Join(p, e.Name)
			switch {
			case st.IsDir():
				check(os.Mkdir(q, 0o700))
				walk(e.Ino, q)
				dirs = append(dirs, job{e.Ino, q, st})
			case st.IsSymlink():
				t, err := f.Readlink(e.Ino)
				check(err)
				check(os.Symlink(t, q))
				meta(q, st)
			case st.IsRegular():
				jobs <- job{e.Ino, q, st}
			default:
				check(unix.Mknod(q, st.Mode, int(unix.Mkdev(st.RdevMajor, st.RdevMinor))))
				meta(q, st)
			}
		}
	}
	walk(f.Root(), dest)
	close(jobs)
	wg.Wait()
	for i := len(dirs) - 1; i >= 0; i-- {
		meta(dirs[i].path, dirs[i].st)
	}
}

func copyFile(f *xfs.FS, j job, buf []byte) {
	fl, err := f.Open(j.ino)
	check(err)
	out, err := os.OpenFile(j.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	check(err)
	for _, r := range fl.DataRanges() {
		for off := r.Off; off < r.Off+r.Len; {
			n := min(int64(len(buf)), r.Off+r.Len-off)
			k, err := fl.ReadAt(buf[:n], off)
			if err != nil && err != io.EOF {
				check(err)
			}
			_, err = out.WriteAt(buf[:k], off)
			check(err)
			off += int64(k)
			if k == 0 {
				break
			}
		}
	}
	check(out.Truncate(fl.Size()))
	check(out.Close())
	meta(j.path, j.st)
}

func meta(p string, st *vfs.Stat) {
	check(unix.Lchown(p, int(st.UID), int(st.GID)))
	if !st.IsSymlink() {
		check(unix.Chmod(p, st.Mode&vfs.ModePerm))
	}
	ts := []unix.Timespec{unix.NsecToTimespec(st.Atime.UnixNano()), unix.NsecToTimespec(st.Mtime.UnixNano())}
	check(unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "xfsextract:", err)
		os.Exit(1)
	}
}

var _ = time.Now
