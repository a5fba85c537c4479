package dump

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// readAllEntries reads a stream and returns, per path, a one-line summary
// in the format of the fixture script's golden .files file (mtime and size
// of directories excluded, as our tape directory size is not the disk's).
type readInfo struct {
	ino     uint32
	summary string
	xattrs  []Xattr
	data    []byte
}

func readStream(t *testing.T, b []byte) (*Reader, map[string]readInfo) {
	t.Helper()
	rd, err := NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	out := map[string]readInfo{}
	for {
		e, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		var typ, extra string
		var data []byte
		switch e.Mode & ModeFmt {
		case ModeReg:
			typ = "f"
			data, err = io.ReadAll(rd)
			if err != nil {
				t.Fatalf("inode %d: %v", e.Ino, err)
			}
			if uint64(len(data)) != e.Size {
				t.Fatalf("inode %d: read %d bytes, size %d", e.Ino, len(data), e.Size)
			}
			s := sha256.Sum256(data)
			extra = hex.EncodeToString(s[:])
		case ModeLink:
			typ, extra = "l", e.Target
		case ModeDir:
			typ, extra = "d", "-"
		case ModeFifo:
			typ, extra = "p", "-"
		case ModeChr:
			typ, extra = "c", fmt.Sprintf("%x,%x", e.RdevMajor, e.RdevMinor)
		default:
			typ, extra = "o", "-"
		}
		xs, err := rd.Xattrs()
		if err != nil {
			t.Fatalf("inode %d xattrs: %v", e.Ino, err)
		}
		size := strconv.FormatUint(e.Size, 10)
		mtime := strconv.FormatInt(e.Mtime.Unix(), 10)
		if typ == "d" {
			size, mtime = "-", "-"
		}
		sum := fmt.Sprintf("%s\t%o %d %d %s %s\t%s", typ, e.Mode&0o7777, e.UID, e.GID, mtime, size, extra)
		for _, p := range rd.Paths(e.Ino) {
			out[p] = readInfo{ino: e.Ino, summary: sum, xattrs: xs, data: data}
		}
	}
	return rd, out
}

func stockStream(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(fixturetest.Image(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goldenTOC parses a restore -t golden.
func goldenTOC(t *testing.T, name string) map[string]uint32 {
	return parseTOC(t, string(fixturetest.Golden(t, name)))
}

func TestReaderStockLevel0(t *testing.T) {
	b := stockStream(t, "dump-stock-l0")
	rd, got := readStream(t, b)
	if rd.Volume().Label != "dumpstock" || rd.Volume().Level != 0 || rd.Volume().DDate != 0 {
		t.Errorf("volume header: %+v", rd.Volume())
	}
	// Every path restore -t lists, with the same inode, and nothing else.
	toc := goldenTOC(t, "dump-stock-l0.toc")
	for p, ino := range toc {
		if g, ok := got[p]; !ok || g.ino != ino {
			t.Errorf("%s: inode %d in restore -t, reader has %+v (found %v)", p, ino, g.ino, ok)
		}
	}
	if len(got) != len(toc) {
		t.Errorf("reader found %d paths, restore -t %d", len(got), len(toc))
	}
	// Content and metadata as restore -x extracted them.
	sc := bufio.NewScanner(bytes.NewReader(fixturetest.Golden(t, "dump-stock-l0.files")))
	n := 0
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 4 {
			t.Fatalf("golden line %q", sc.Text())
		}
		p, typ, st, extra := f[0], f[1], strings.Fields(f[2]), f[3]
		if typ == "d" {
			st[3], st[4] = "-", "-"
		}
		if typ == "l" {
			st[0] = "777"
		}
		if typ == "c" {
			// stat %t,%T prints hex.
		}
		want := fmt.Sprintf("%s\t%s %s %s %s %s\t%s", typ, st[0], st[1], st[2], st[3], st[4], extra)
		if got[p].summary != want {
			t.Errorf("%s:\n got %q\nwant %q", p, got[p].summary, want)
		}
		n++
	}
	if n < 20 {
		t.Fatalf("golden has only %d lines", n)
	}
	// The user xattr debugfs set.
	xl := strings.Split(strings.TrimSpace(string(fixturetest.Golden(t, "dump-stock-l0.xattrs"))), "\t")
	var found bool
	for _, x := range got[xl[0]].xattrs {
		if x.Name == xl[1] && string(x.Value) == xl[2] {
			found = true
		}
	}
	if !found {
		t.Errorf("%s: xattrs %v, want %s=%s", xl[0], got[xl[0]].xattrs, xl[1], xl[2])
	}
}

func TestReaderStockLevel1(t *testing.T) {
	b := stockStream(t, "dump-stock-l1")
	rd, got := readStream(t, b)
	if rd.Volume().Level != 1 || rd.Volume().DDate == 0 {
		t.Errorf("volume header: %+v", rd.Volume())
	}
	toc := goldenTOC(t, "dump-stock-l1.toc")
	for p, ino := range toc {
		if g, ok := got[p]; !ok || g.ino != ino {
			t.Errorf("%s: inode %d in restore -t, reader has %d (found %v)", p, ino, g.ino, ok)
		}
	}
	if len(got) != len(toc) {
		t.Errorf("reader found %d paths %v, restore -t %d", len(got), got, len(toc))
	}
	// The deleted file is gone from the in-use map; a kept one is there.
	l0, _ := NewReader(bytes.NewReader(stockStream(t, "dump-stock-l0")))
	toc0 := goldenTOC(t, "dump-stock-l0.toc")
	if !l0.InUse(toc0["./empty"]) || rd.InUse(toc0["./empty"]) {
		t.Errorf("./empty (inode %d) in use: level 0 %v, level 1 %v", toc0["./empty"], l0.InUse(toc0["./empty"]), rd.InUse(toc0["./empty"]))
	}
	if !rd.InUse(toc0["./old"]) || rd.Dumped(toc0["./old"]) {
		t.Errorf("./old: in use %v dumped %v at level 1", rd.InUse(toc0["./old"]), rd.Dumped(toc0["./old"]))
	}
}

// TestReaderRoundTrip reads our own stream back and compares it with the
// source, including holes and unwritten extents.
func TestReaderRoundTrip(t *testing.T) {
	src := buildSource()
	var buf bytes.Buffer
	if _, err := Write(&buf, src, WriteOptions{Level: 0, Date: t0, Label: "rt", Host: "h", Device: "VolGroup00/lv", Filesys: "/srv"}); err != nil {
		t.Fatal(err)
	}
	rd, err := NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	v := rd.Volume()
	if v.Label != "rt" || v.Host != "h" || v.Dev != "VolGroup00/lv" || v.Filesys != "/srv" || !rd.Date().Equal(t0) || v.NTRec != NTRec {
		t.Errorf("volume %+v", v)
	}
	want := src.walk()
	seen := map[string]bool{}
	for {
		e, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n := src.nodes[e.Ino]
		if n == nil {
			t.Fatalf("inode %d not in source", e.Ino)
		}
		if e.Mode != n.Mode || e.UID != n.UID || e.GID != n.GID || e.Nlink != n.Nlink ||
			!e.Mtime.Equal(n.Mtime.Truncate(1000)) || e.Generation != n.Generation {
			t.Errorf("inode %d: %+v, want %+v", e.Ino, e.Inode, n.Inode)
		}
		if !rd.InUse(e.Ino) || !rd.Dumped(e.Ino) {
			t.Errorf("inode %d not in the maps", e.Ino)
		}
		switch n.Mode & ModeFmt {
		case ModeReg:
			content := fileContent(n)
			got := make([]byte, len(content))
			err := rd.Segments(func(off int64, data []byte) error {
				copy(got[off:], data)
				// Data runs must not cover a hole at 1 KiB granularity.
				for b := off / TPBSize; b < (off+int64(len(data))+TPBSize-1)/TPBSize; b++ {
					if !blockMapped(n, b) {
						return fmt.Errorf("block %d is a hole in the source but data on tape", b)
					}
				}
				return nil
			})
			if err != nil {
				t.Errorf("inode %d: %v", e.Ino, err)
			}
			if !bytes.Equal(got, content) {
				t.Errorf("inode %d: content differs", e.Ino)
			}
		case ModeLink:
			if e.Target != n.target {
				t.Errorf("inode %d: target %q, want %q", e.Ino, e.Target, n.target)
			}
		case ModeChr, ModeBlk:
			if e.RdevMajor != n.RdevMajor || e.RdevMinor != n.RdevMinor {
				t.Errorf("inode %d: rdev %d,%d", e.Ino, e.RdevMajor, e.RdevMinor)
			}
		}
		xs, err := rd.Xattrs()
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(xs) != fmt.Sprint(n.xattrs) && !(len(xs) == 0 && len(n.xattrs) == 0) {
			t.Errorf("inode %d: xattrs %v, want %v", e.Ino, xs, n.xattrs)
		}
		for _, p := range rd.Paths(e.Ino) {
			if want[p] != e.Ino {
				t.Errorf("path %s: inode %d, want %d", p, e.Ino, want[p])
			}
			seen[p] = true
		}
	}
	for p := range want {
		if !seen[p] {
			t.Errorf("path %s not found by the reader", p)
		}
	}
	if rd.Records()*TPBSize > int64(buf.Len()) {
		t.Errorf("read %d records of %d bytes", rd.Records(), buf.Len())
	}
}

func blockMapped(n *memNode, b int64) bool {
	if n.mapped == nil {
		return true
	}
	for _, e := range n.mapped {
		if !e.Unwritten && e.Logical < (b+1)*TPBSize && e.Logical+e.Length > b*TPBSize {
			return true
		}
	}
	return false
}

// TestReaderErrors checks that damage is reported with its record number.
func TestReaderErrors(t *testing.T) {
	var buf bytes.Buffer
	if _, err := Write(&buf, buildSource(), WriteOptions{Level: 0, Date: t0}); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	readAll := func(b []byte) error {
		rd, err := NewReader(bytes.NewReader(b))
		if err != nil {
			return err
		}
		for {
			if _, err := rd.Next(); err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
			if _, err := io.Copy(io.Discard, rd); err != nil {
				return err
			}
		}
	}
	if err := readAll(good); err != nil {
		t.Fatalf("good stream: %v", err)
	}
	// Find the header of the 5th TS_INODE and damage it.
	rec := int64(-1)
	for i, seen := int64(0), 0; i*TPBSize < int64(len(good)); i++ {
		r := good[i*TPBSize : (i+1)*TPBSize]
		if IsHeader(r) && int32(le.Uint32(r)) == TSInode {
			if seen++; seen == 5 {
				rec = i
				break
			}
		}
	}
	cases := []struct {
		name   string
		mutate func([]byte) []byte
		rec    int64
		msg    string
	}{
		{"checksum", func(b []byte) []byte { b[rec*TPBSize+offInumber] ^= 1; return b }, rec, "checksum"},
		{"magic", func(b []byte) []byte { b[rec*TPBSize+offMagic] ^= 1; return b }, rec, "magic"},
		{"truncated", func(b []byte) []byte { return b[:rec*TPBSize+100] }, rec, "ends before TS_END"},
		{"first", func(b []byte) []byte { return b[TPBSize:] }, 0, "want TS_TAPE"},
	}
	for _, c := range cases {
		b := c.mutate(append([]byte(nil), good...))
		err := readAll(b)
		var fe *FormatError
		if !errors.As(err, &fe) || fe.Record != c.rec || fe.Offset != c.rec*TPBSize || !strings.Contains(fe.Msg, c.msg) {
			t.Errorf("%s: got %v, want a FormatError at record %d mentioning %q", c.name, err, c.rec, c.msg)
		}
	}
}
