package journal

import (
	"bytes"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// f_journal (e2fsprogs' test suite) has a zeroed journal inode; e2fsck
// replays through the superblock's backup of the inode's block map
// (s_jnl_blocks), and so must Replay. The oracle is e2fsck on copies:
//   - -fy: the tree read through the overlay equals the checked copy's,
//     but for /journal, the old-style visible journal file e2fsck moves
//     to the hidden inode;
//   - -E journal_only: every block equals e2fsck's image except what
//     e2fsck does after the replay and Replay does not: it releases the
//     orphan list (the kernel does that on mount; no visible file
//     changes) and moves the visible /journal file to the hidden journal
//     inode 8. So inode-table blocks may differ only in the inodes e2fsck
//     says it cleared and in inodes 8 and 12; the root directory only by
//     the "journal" entry; bitmaps, descriptors and the superblock may
//     differ; no other block may.
func TestJournalInodeBackup(t *testing.T) {
	requireCorpus(t)
	img := corpusImage(t, "f_journal")
	raw := readAll(t, img)
	fsys := openExt(t, bytes.NewReader(raw), int64(len(raw)))
	sb := fsys.Superblock()
	if in, err := fsys.Inode(sb.JournalInum); err == nil && in.Mode != 0 {
		t.Fatalf("f_journal's journal inode %d is not zeroed (mode %#o): the case no longer tests the backup", sb.JournalInum, in.Mode)
	}
	ov, res, err := Replay(bytes.NewReader(raw), int64(len(raw)), fsys, nil)
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	t.Logf("result: %s", summary(res))
	if !res.Replayed || res.Distinct == 0 || !slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, "s_jnl_blocks") }) {
		t.Fatalf("want a replay through the backup block map; %s", summary(res))
	}

	jo := copyFile(t, img, "f_journal.jo")
	joOut := e2fsck(t, jo, "-E", "journal_only", "-y")
	if !strings.Contains(joOut, "recovering journal") {
		t.Fatalf("e2fsck did not replay: %s", joOut)
	}
	cleared := map[uint64]bool{}
	for _, m := range regexp.MustCompile(`Clearing orphaned inode (\d+) `).FindAllStringSubmatch(joOut, -1) {
		n, _ := strconv.ParseUint(m[1], 10, 32)
		cleared[n] = true
	}
	joImg := readAll(t, jo)
	got := make([]byte, ov.Size())
	if n, _ := ov.ReadAt(got, 0); n != len(got) {
		t.Fatalf("overlay read %d bytes", n)
	}
	after := openExt(t, ov, ov.Size())
	bs := uint64(fsys.BlockSize())
	isz := uint64(sb.InodeSize)
	ipg := uint64(sb.InodesPerGroup)
	itableBlocks := (ipg*isz + bs - 1) / bs
	kind := map[uint64]string{0: "boot/superblock", 1: "superblock"}
	itable := map[uint64]uint64{} // block -> first inode in it
	for g, gd := range after.Groups() {
		kind[gd.BlockBitmap], kind[gd.InodeBitmap] = "bitmap", "bitmap"
		for i := uint64(0); i < itableBlocks; i++ {
			kind[gd.InodeTable+i] = "itable"
			itable[gd.InodeTable+i] = uint64(g)*ipg + i*(bs/isz) + 1
		}
	}
	// Descriptor blocks follow the superblock of group 0.
	gdBlocks := (uint64(len(after.Groups()))*uint64(max(sb.DescSize, 32)) + bs - 1) / bs
	for i := uint64(0); i < gdBlocks; i++ {
		kind[uint64(sb.FirstDataBlock)+1+i] = "descriptors"
	}
	joFS := openExt(t, bytes.NewReader(joImg), int64(len(joImg)))
	if joFS.Superblock().JournalInum != 8 {
		t.Fatalf("e2fsck -E journal_only left the journal in inode %d: the oracle's assumption (moved to 8) is wrong", joFS.Superblock().JournalInum)
	}
	moved := map[uint64]bool{8: true, uint64(sb.JournalInum): true}
	rootBlocks := map[uint64]bool{}
	rm, err := after.BlockMap(2)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rm {
		for i := uint64(0); i < e.Len; i++ {
			rootBlocks[e.Physical+i] = true
		}
	}
	names := func(fsys interface {
		ReadDir(string) ([]fs.DirEntry, error)
	}) []string {
		des, err := fsys.ReadDir(".")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range des {
			out = append(out, d.Name())
		}
		return out
	}
	if a, b := names(after), names(joFS); !slices.Equal(slices.DeleteFunc(a, func(n string) bool { return n == "journal" }), b) {
		t.Errorf("root directory: replayed %q (without journal), e2fsck %q", a, b)
	}
	var data, inodes int
	for b := uint64(0); b*bs < uint64(len(got)); b++ {
		g, w := got[b*bs:(b+1)*bs], joImg[b*bs:(b+1)*bs]
		if bytes.Equal(g, w) {
			continue
		}
		switch kind[b] {
		case "superblock", "boot/superblock", "bitmap", "descriptors":
			continue
		case "itable":
			for i := uint64(0); i < bs/isz; i++ {
				ino := itable[b] + i
				if !bytes.Equal(g[i*isz:(i+1)*isz], w[i*isz:(i+1)*isz]) && !cleared[ino] && !moved[ino] {
					t.Errorf("inode %d differs from e2fsck's and e2fsck did not clear it", ino)
					inodes++
				}
			}
		default:
			if rootBlocks[b] {
				continue // compared by name above
			}
			t.Errorf("block %d (data or directory) differs from e2fsck -E journal_only", b)
			data++
		}
	}
	t.Logf("%d orphan inodes cleared by e2fsck; %d data blocks and %d other inodes differ", len(cleared), data, inodes)

	fy := copyFile(t, img, "f_journal.fy")
	e2fsck(t, fy, "-fy")
	fyImg := readAll(t, fy)
	want := walk(t, openExt(t, bytes.NewReader(fyImg), int64(len(fyImg))))
	have := walk(t, after)
	if _, ok := have["journal"]; !ok {
		t.Errorf("replayed tree lacks the visible /journal file")
	}
	delete(have, "journal")
	sameTree(t, "replayed vs e2fsck -fy", have, want)
	if len(want) < 20 {
		t.Errorf("e2fsck's tree has only %d entries", len(want))
	}
}
