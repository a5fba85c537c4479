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
