package dump

import (
	"bytes"
	"io"
	"os"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// smallSource is a tree small enough to make a quick fuzz seed that still
// has every record kind: directories, data, holes, TS_ADDR, symlink,
// device, xattrs and an ACL.
func smallSource() *memSource {
	s := newMemSource(t0.Add(-time.Hour))
	s.mkdir("/d", 0o755)
	s.file("/d/f", 0o644, []byte("data"))
	s.sparse("/s", 600*1024, map[int64][]byte{0: []byte("x"), 590 * 1024: []byte("y")})
	s.symlink("/l", "d/f")
	s.special("/c", ModeChr|0o600, 259, 300)
	s.link("/d/f", "/h")
	x := s.file("/x", 0o644, nil)
	s.nodes[x].xattrs = []Xattr{{Name: "user.a", Value: []byte("b")}, {Name: "system.posix_acl_access", Value: aclXattr(6, 4, 4, 1000, 4)}}
	return s
}

func FuzzReader(f *testing.F) {
	var buf bytes.Buffer
	if _, err := Write(&buf, smallSource(), WriteOptions{Level: 0, Date: t0}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	for _, name := range []string{"dump-stock-l0", "dump-stock-l1"} {
		b, err := os.ReadFile(fixturetest.Image(f, name))
		if err != nil {
			f.Fatal(err)
		}
		if len(b) > 64<<10 {
			b = b[:64<<10]
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRead(data)
		// Most mutations break a header checksum and stop the reader at
		// once; also read a copy whose headers' checksums are fixed up, so
		// the fuzzer reaches the structure behind them.
		fixed := append([]byte(nil), data...)
		for off := 0; off+TPBSize <= len(fixed); off += TPBSize {
			r := fixed[off : off+TPBSize]
			if int32(le.Uint32(r[offMagic:])) == NFSMagic {
				le.PutUint32(r[offChecksum:], 0)
				le.PutUint32(r[offChecksum:], uint32(Checksum)-sum32(r))
			}
		}
		fuzzRead(fixed)
	})
}

// fuzzRead reads a whole stream the way verify would; it must not panic
// or hang.
func fuzzRead(data []byte) {
	rd, err := NewReader(bytes.NewReader(data))
	if err != nil {
		return
	}
	rd.Volume()
	for i := 0; i < 1<<16; i++ {
		e, err := rd.Next()
		if err != nil {
			return
		}
		rd.Paths(e.Ino)
		if i%2 == 0 {
			if _, err := io.Copy(io.Discard, rd); err != nil {
				return
			}
		} else if err := rd.Segments(func(int64, []byte) error { return nil }); err != nil {
			return
		}
		if _, err := rd.Xattrs(); err != nil {
			return
		}
	}
}
