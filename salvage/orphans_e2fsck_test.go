package salvage

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/extract"
	"github.com/imgtool/imgtool/journal"
)

var (
	// e2fsck pass 3/4 messages for what it connects to lost+found (an
	// "Unattached zero-length inode" is cleared instead, and not matched
	// here because the message differs).
	unattachedRE  = regexp.MustCompile(`(?m)^Unattached inode (\d+)\n`)
	unconnectedRE = regexp.MustCompile(`(?m)^Unconnected directory inode (\d+)`)
)

// TestOrphansMatchE2fsck measures the orphan scan against e2fsck on the
// whole corpus. e2fsck's expect.1 names every inode it connects to
// lost+found; the salvage must put each of them under #orphans, unless
// its walk reached it by name (a directory entry e2fsck rejects, a root
// e2fsck re-creates: the salvage keeps the path), and must put nothing
// else there: no xattr value inode, quota or orphan file, no empty file
// e2fsck would clear, no inode the orphan list or a failed journal replay
// left behind.
func TestOrphansMatchE2fsck(t *testing.T) {
	tmp := t.TempDir()
	var total, same, byName, images int
	for _, name := range corpusCases(t) {
		exp, err := os.ReadFile(filepath.Join(corpusDir(), name, "expect.1"))
		if err != nil {
			continue
		}
		var e2 []uint32
		for _, re := range []*regexp.Regexp{unattachedRE, unconnectedRE} {
			for _, m := range re.FindAllSubmatch(exp, -1) {
				n, _ := strconv.ParseUint(string(m[1]), 10, 32)
				e2 = append(e2, uint32(n))
			}
		}
		img := corpusImage(t, name, tmp)
		ours, named, opened := orphanScan(t, img)
		os.Remove(img)
		if !opened {
			if len(e2) > 0 {
				t.Errorf("%s: not opened; e2fsck connects %v", name, e2)
			}
			continue
		}
		images++
		total += len(e2)
		for _, i := range e2 {
			switch {
			case slices.Contains(ours, i):
				same++
			case named.get(uint64(i)):
				byName++
			default:
				t.Errorf("%s: e2fsck connects inode %d to lost+found; the salvage neither reached it nor found it unattached", name, i)
			}
		}
		for _, i := range ours {
			if !slices.Contains(e2, i) {
				t.Errorf("%s: inode %d under #orphans; e2fsck does not connect it (e2fsck: %v)", name, i, e2)
			}
		}
	}
	t.Logf("%d images: e2fsck connects %d inodes to lost+found; the salvage finds %d of them unattached and reaches the other %d by name",
		images, total, same, byName)
	if total < 20 || same < total/2 {
		t.Errorf("corpus: %d inodes e2fsck connects, %d found: the oracle lost its cases", total, same)
	}
}

// orphanScan runs the salvage walk of img without writing anything and
// returns the inodes put directly under #orphans, and the inodes the walk
// from the root reached.
func orphanScan(t *testing.T, img string) (orphans []uint32, named bitset, opened bool) {
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	v, err := journal.Open(f, st.Size(), &ext.Options{Salvage: true}, nil)
	if err != nil {
		return nil, bitset{}, false
	}
	ctx := context.Background()
	x := extract.NewTar(ctx, ext.NewVFS(v.FS), io.Discard, extract.Options{})
	w := newWalker(ctx, v.FS, x, Options{MaxEntries: 10000})
	w.claimMetadata()
	if err := w.walkRoot(); err != nil {
		t.Fatal(err)
	}
	named = newBitset(w.reached.n)
	copy(named.w, w.reached.w)
	if err := w.orphans(); err != nil {
		t.Fatal(err)
	}
	x.Close()
	for _, e := range w.entries {
		if strings.HasPrefix(e.Path, OrphansDir+"/") && strings.Count(e.Path, "/") == 1 && e.has(Unreachable) {
			orphans = append(orphans, e.Ino)
		}
	}
	return orphans, named, true
}
