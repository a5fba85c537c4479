package xfs

import (
	"fmt"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/vfs"
)

// TestBmapMatchesXfsDB: the extent maps of data and attr forks (extents
// and bmbt formats, holes, unwritten extents) equal xfs_db's `bmap` and
// `bmap -a` (fixtures/golden/NAME.bmap, from xfs-db-goldens.sh).
func TestBmapMatchesXfsDB(t *testing.T) {
	for _, name := range []string{"xfs-v5", "xfs-v4", "xfs-1k", "xfs-4ksect"} {
		t.Run(name, func(t *testing.T) {
			f := openImage(t, fixturetest.Image(t, name), vfs.OpenOptions{})
			sections := map[string]string{}
			var order []string
			cur := ""
			for _, l := range strings.Split(string(fixturetest.Golden(t, name+".bmap")), "\n") {
				if strings.HasPrefix(l, "## ") {
					cur = strings.TrimPrefix(l, "## ")
					order = append(order, cur)
					continue
				}
				if l != "" {
					sections[cur] += l + "\n"
				}
			}
			if len(order) < 10 {
				t.Fatalf("only %d sections", len(order))
			}
			lines := 0
			for _, sec := range order {
				path, fork, _ := strings.Cut(sec, " ")
				ino, err := f.Lookup(path)
				if err != nil {
					t.Fatal(err)
				}
				in, err := f.inode(ino)
				if err != nil {
					t.Fatal(err)
				}
				ext, err := f.forkExtents(in, fork == "attr")
				if err != nil {
					t.Fatal(err)
				}
				got := ""
				for _, e := range ext {
					agno, agbno := e.fsb>>f.sb.AGBlkLog, e.fsb&(1<<f.sb.AGBlkLog-1)
					flag := 0
					if e.unwritten {
						flag = 1
					}
					got += fmt.Sprintf("%s offset %d startblock %d (%d/%d) count %d flag %d\n", fork, e.off, e.fsb, agno, agbno, e.len, flag)
				}
				if got != sections[sec] {
					t.Errorf("%s:\ngot\n%swant (xfs_db)\n%s", sec, got, sections[sec])
				}
				lines += strings.Count(got, "\n")
			}
			t.Logf("%d extents compared", lines)
		})
	}
}

// TestExtentsAndDetails: vfs.ExtentMapper in bytes agrees with the fork
// map, and vfs.Detailer gives the inode's offset.
func TestExtentsAndDetails(t *testing.T) {
	f := openImage(t, fixturetest.Image(t, "xfs-1k"), vfs.OpenOptions{})
	ino := mustIno(t, f, "/files/prealloc")
	ex, err := f.Extents(ino)
	if err != nil || len(ex) == 0 {
		t.Fatalf("%v %v", ex, err)
	}
	in, _ := f.inode(ino)
	fe, _ := f.forkExtents(in, false)
	unwritten := 0
	for i, e := range ex {
		p, _ := f.fsbOff(fe[i].fsb)
		if e.Logical != int64(fe[i].off)*1024 || e.Physical != p || e.Len != int64(fe[i].len)*1024 || e.Unwritten != fe[i].unwritten {
			t.Errorf("extent %d: %+v vs %+v", i, e, fe[i])
		}
		if e.Unwritten {
			unwritten++
		}
	}
	if unwritten == 0 {
		t.Error("the fallocated file shows no unwritten extent")
	}
	d, err := f.Details(ino)
	if err != nil || d.Offset != in.Off || d.Format != "xfs v5" {
		t.Errorf("details %+v %v, inode at %d", d, err, in.Off)
	}
}
