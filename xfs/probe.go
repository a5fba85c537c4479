package xfs

import (
	"io"
	"strings"

	"github.com/imgtool/imgtool/vfs"
)

type sizedRA struct {
	io.ReaderAt
	n int64
}

func (s sizedRA) Size() int64 { return s.n }

// Describe returns what inspect shows of an XFS volume without reading
// any file: "version" ("v4", "v5"), "features" (comma-separated, as
// xfs_info names them), and "state": "clean", "needs_recovery" (the log's
// last record is not an unmount record), or "log_unknown" (external log
// not given, or the log could not be read). It reads the superblock and a
// few log blocks; nothing is replayed. Nil when vol holds no usable XFS.
func Describe(r io.ReaderAt, size int64) map[string]string {
	f := &FS{vol: r, disk: sizedRA{r, size}, size: size, name: "probe", seen: map[string]bool{}}
	b := make([]byte, 512)
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil
	}
	sb, _, err := ParseSuperblock(f.sectorAt(0, b))
	if err != nil {
		return nil
	}
	f.sb = sb
	out := map[string]string{"version": "v4", "features": strings.Join(sb.Features(), ",")}
	if sb.HasCRC() {
		out["version"] = "v5"
	}
	out["state"] = "log_unknown"
	if sb.LogStart == 0 {
		return out
	}
	off, err := f.fsbOff(sb.LogStart)
	if err != nil {
		return out
	}
	dev := logDev{r: r, off: off, n: int64(sb.LogBlocks) << sb.BlockLog / bbSize}
	if dev.n < 64 || off+dev.n*bbSize > size {
		return out
	}
	rp := &logReplay{f: f, dev: &dev, li: &LogInfo{}}
	if rp.findHeadTail() != nil {
		return out
	}
	out["state"] = "clean"
	if rp.li.Dirty {
		out["state"] = "needs_recovery"
	}
	return out
}

var _ vfs.Volume = sizedRA{}
