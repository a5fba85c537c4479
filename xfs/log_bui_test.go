package xfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/vfs"
)

// A log built by hand (xfs_log_format.h): one record of committed
// transactions written over a copy's zeroed log, as a crash would leave
// it, for intents the fixtures' kernel-made logs do not hold.

// logOp is one op of a record: its transaction id, flags and body.
type logOp struct {
	tid   uint32
	flags byte
	body  []byte
}

// transOps returns the ops of one committed transaction holding items,
// each item a list of regions.
func transOps(tid uint32, items ...[][]byte) []logOp {
	hdr := make([]byte, transHdrSize)
	le.PutUint32(hdr, transMagic)
	le.PutUint32(hdr[4:], 42) // type: any
	le.PutUint32(hdr[8:], tid)
	le.PutUint32(hdr[12:], uint32(len(items)))
	ops := []logOp{{tid, opStart, nil}, {tid, 0, hdr}}
	for _, it := range items {
		for _, r := range it {
			ops = append(ops, logOp{tid, 0, r})
		}
	}
	return append(ops, logOp{tid, opCommit, nil})
}

// buiItem is a BUI of one extent (struct xfs_bui_log_format, its
// xfs_map_extent: owner, startblock, startoff, len, flags; xfs_logprint
// prints it back so).
func buiItem(id, owner, startblock, startoff uint64, n, flags uint32) [][]byte {
	b := make([]byte, 16+32)
	le.PutUint16(b, liBUI)
	le.PutUint16(b[2:], 1)
	le.PutUint32(b[4:], 1)
	le.PutUint64(b[8:], id)
	le.PutUint64(b[16:], owner)
	le.PutUint64(b[24:], startblock)
	le.PutUint64(b[32:], startoff)
	le.PutUint32(b[40:], n)
	le.PutUint32(b[44:], flags)
	return [][]byte{b}
}

// doneItem is the done item of type typ for intent id (struct
// xfs_bud_log_format and its kin: type, size, reserved, intent id).
func doneItem(typ uint16, id uint64) [][]byte {
	b := make([]byte, 16)
	le.PutUint16(b, typ)
	le.PutUint16(b[2:], 1)
	le.PutUint64(b[8:], id)
	return [][]byte{b}
}

// efiItem is an EFI of one extent (struct xfs_efi_log_format).
func efiItem(id, start uint64, n uint32) [][]byte {
	b := make([]byte, 16+16)
	le.PutUint16(b, liEFI)
	le.PutUint16(b[2:], 1)
	le.PutUint32(b[4:], 1)
	le.PutUint64(b[8:], id)
	le.PutUint64(b[16:], start)
	le.PutUint32(b[24:], n)
	return [][]byte{b}
}

// writeLogRecord zeroes the log of img (an XFS image with an internal
// log) and writes ops as one record at block 0, cycle 1, with its CRC and
// the cycle stamped in every data block, as xlog_sync does.
func writeLogRecord(t *testing.T, img string, ops []logOp) {
	t.Helper()
	f := openImage(t, img, vfs.OpenOptions{})
	if f.Log.External || f.Log.Dirty {
		t.Fatalf("log of %s: %+v; want an internal clean one", img, f.Log)
	}
	var data []byte
	for _, op := range ops {
		h := make([]byte, opHdrSize)
		binary.BigEndian.PutUint32(h, op.tid)
		binary.BigEndian.PutUint32(h[4:], uint32(len(op.body)))
		h[8], h[9] = clientTrans, op.flags
		data = append(append(data, h...), op.body...)
	}
	dataLen := len(data)
	dblks := (dataLen + bbSize - 1) / bbSize
	if dblks > 64 {
		t.Fatalf("record of %d blocks: one header's cycle data holds 64", dblks)
	}
	data = append(data, make([]byte, dblks*bbSize-dataLen)...)
	const cycle = 1
	hdr := make([]byte, bbSize)
	be.PutUint32(hdr, logMagic)
	be.PutUint32(hdr[4:], cycle)
	be.PutUint32(hdr[8:], logVersion2)
	be.PutUint32(hdr[12:], uint32(dataLen))
	be.PutUint64(hdr[16:], cycle<<32) // lsn: cycle 1, block 0
	be.PutUint64(hdr[24:], cycle<<32) // tail lsn: the same
	be.PutUint32(hdr[36:], 0)         // previous record: none
	be.PutUint32(hdr[40:], uint32(len(ops)))
	for i := range dblks {
		copy(hdr[44+i*4:], data[i*bbSize:i*bbSize+4])
		be.PutUint32(data[i*bbSize:], cycle)
	}
	be.PutUint32(hdr[300:], 1) // XLOG_FMT_LINUX_LE
	copy(hdr[304:320], f.sb.UUID[:])
	be.PutUint32(hdr[320:], logHdrCycleSz)
	le.PutUint32(hdr[32:], ^crc32Cont(crc32Start(hdr[:328], 32), data[:dataLen]))

	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteAt(make([]byte, f.Log.Size), f.Log.Offset); err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt(append(hdr, data...), f.Log.Offset); err != nil {
		t.Fatal(err)
	}
}

// checkLogprint has xfs_logprint (when installed) read the hand-made
// log: dirty, and every intent and done item with its id.
func checkLogprint(t *testing.T, img string, ops []logOp) {
	t.Helper()
	if _, err := exec.LookPath("xfs_logprint"); err != nil {
		return
	}
	out, err := exec.Command("xfs_logprint", "-t", img).CombinedOutput()
	if err != nil {
		t.Fatalf("xfs_logprint: %v\n%s", err, out)
	}
	want := []string{"state:<DIRTY>"}
	flat := strings.ReplaceAll(string(out), " ", "")
	for _, op := range ops {
		if len(op.body) >= 16 {
			if n := map[uint16]string{liBUI: "BUI", liBUD: "BUD", liEFI: "EFI"}[le.Uint16(op.body)]; n != "" {
				want = append(want, n+":", fmt.Sprintf("id:0x%x", le.Uint64(op.body[8:])))
			}
		}
	}
	for _, w := range want {
		if !strings.Contains(flat, w) {
			t.Errorf("xfs_logprint -t does not say %q:\n%s", w, out)
		}
	}
}

func staleNotes(f *FS) []vfs.Note {
	var out []vfs.Note
	for _, n := range f.Notes() {
		if n.Stale {
			out = append(out, n)
		}
	}
	return out
}

// bmapCase is one hand-built log and what the replay must make of it.
type bmapCase struct {
	name     string
	ops      []logOp
	pending  []string
	finished int
	stale    string // a stale note saying this, or "" for none
}

// checkIntents checks the replay's account of c's intents: which stayed
// pending, how many were finished, and the stale note (or none).
func (c bmapCase) checkIntents(t *testing.T, f *FS) {
	t.Helper()
	if !slices.Equal(f.Log.Pending, c.pending) || f.Log.IntentsFinished != c.finished {
		t.Errorf("pending intents %q, %d finished; want %q, %d", f.Log.Pending, f.Log.IntentsFinished, c.pending, c.finished)
	}
	stale := staleNotes(f)
	if c.stale == "" && len(stale) > 0 {
		t.Errorf("stale notes %v; want none", stale)
	}
	if c.stale != "" && !slices.ContainsFunc(stale, func(n vfs.Note) bool { return strings.Contains(n.Msg, c.stale) }) {
		t.Errorf("no stale note saying %q: %v", c.stale, stale)
	}
}

// Unfinished BUIs (a mapping change the kernel redoes after recovery) on
// hand-built logs over xfs-v5: a map into a hole and an unmap are finished
// in memory as xfs_bmapi_remap and __xfs_bunmapi would (content and
// st_blocks change, the view is not stale); what the replay cannot finish
// (a map over mapped blocks, a realtime intent) flags the view stale
// (vfs.Note.Stale: extract exits 3). A BUI whose BUD is logged, and an
// unfinished EFI (free space only), change nothing.
func TestLogUnfinishedBUI(t *testing.T) {
	base := openImage(t, fixturetest.Image(t, "xfs-v5"), vfs.OpenOptions{})
	bs := uint64(base.sb.BlockSize)
	random, sparse := mustIno(t, base, "/files/random"), mustIno(t, base, "/files/sparse")
	in, _ := base.Inode(uint64(random))
	rext, err := base.forkExtents(in, false)
	if err != nil || len(rext) == 0 || rext[0].off != 0 || rext[0].len < 2 {
		t.Fatalf("/files/random extents %+v (%v): want a first extent of 2 blocks or more", rext, err)
	}
	in, _ = base.Inode(uint64(sparse))
	sext, err := base.forkExtents(in, false)
	if err != nil {
		t.Fatal(err)
	}
	hole := uint64(1000) // a block of /files/sparse no extent maps
	for _, e := range sext {
		if e.off <= hole && hole < e.off+e.len {
			t.Fatalf("/files/sparse maps block %d: %+v", hole, sext)
		}
	}
	blk := rext[0].fsb
	const mapOne, unmapOne = bmapMap, bmapUnmap
	want := readManifest(t, "xfs-v5")
	randomData := readAll(t, base, random)

	for _, c := range []bmapCase{
		{"map into a hole", transOps(1, buiItem(7, uint64(sparse), blk, hole, 1, mapOne)), []string{"BUI"}, 1, ""},
		{"unmap", transOps(1, buiItem(7, uint64(random), blk+1, 1, 1, unmapOne)), []string{"BUI"}, 1, ""},
		{"map over mapped blocks", transOps(1, buiItem(7, uint64(random), blk, 0, 1, mapOne)), []string{"BUI"}, 0, "not a hole; not applied"},
		{"realtime", transOps(1, buiItem(7, uint64(random), blk, 0, 1, mapOne|bmapRealtime)), []string{"BUI"}, 0, "unfinished file-mapping/attr/exchange intents (BUI) are not applied"},
		{"BUI and its BUD", slices.Concat(
			transOps(1, buiItem(7, uint64(sparse), blk, hole, 1, mapOne)),
			transOps(2, doneItem(liBUD, 7))), nil, 0, ""},
		{"BUD of another intent", slices.Concat(
			transOps(1, buiItem(7, uint64(sparse), blk, hole, 1, mapOne)),
			transOps(2, doneItem(liBUD, 8))), []string{"BUI"}, 1, ""},
		{"unfinished EFI", transOps(1, efiItem(9, 5000, 4)), []string{"EFI"}, 0, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := fixturetest.Copy(t, "xfs-v5")
			writeLogRecord(t, img, c.ops)
			checkLogprint(t, img, c.ops)
			f := openImage(t, img, vfs.OpenOptions{})
			if !f.Log.Dirty || !f.Log.Replayed || f.Log.Problem != "" {
				t.Fatalf("log %+v: want a dirty log replayed without problem", f.Log)
			}
			commits := 0
			for _, op := range c.ops {
				if op.flags == opCommit {
					commits++
				}
			}
			if f.Log.Transactions != commits || f.Log.Records != 1 {
				t.Errorf("%d transactions from %d records, want %d from 1", f.Log.Transactions, f.Log.Records, commits)
			}
			c.checkIntents(t, f)
			if c.finished > 0 && !strings.Contains(f.Log.Summary(), "1 BUI finished in memory") {
				t.Errorf("summary %q does not say the BUI was finished", f.Log.Summary())
			}
			// What each file reads: the kernel's manifest, but for the
			// file a finished intent changed.
			changed := ""
			if c.finished > 0 {
				changed = map[bool]string{true: "files/sparse", false: "files/random"}[c.name != "unmap"]
			}
			var rows []manifestRow
			for _, r := range want {
				if r.path != changed {
					rows = append(rows, r)
				}
			}
			if c.finished > 0 || c.stale != "" {
				got := walkTree(t, f)
				delete(got, changed)
				compareTree(t, got, rows, allCols)
			}
			switch changed {
			case "files/sparse":
				// The block of /files/random now also at block hole, and
				// nothing else maps anew.
				blkData := make([]byte, bs)
				fl, err := f.Open(sparse)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := fl.ReadAt(blkData, int64(hole*bs)); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(blkData, randomData[:bs]) {
					t.Error("/files/sparse: the mapped block does not read as /files/random's first block")
				}
				was, _ := base.Open(sparse)
				wantRanges := append(was.DataRanges(), vfs.Range{Off: int64(hole * bs), Len: int64(bs)})
				slices.SortFunc(wantRanges, func(a, b vfs.Range) int { return int(a.Off - b.Off) })
				if got := fl.DataRanges(); !slices.Equal(got, wantRanges) {
					t.Errorf("/files/sparse data ranges %v, want %v", got, wantRanges)
				}
				checkBlocks(t, base, f, sparse, int64(bs/512))
			case "files/random":
				data := readAll(t, f, random)
				if !allZero(data[bs : 2*bs]) {
					t.Error("/files/random: the unmapped block does not read as zeros")
				}
				if !bytes.Equal(data[:bs], randomData[:bs]) || !bytes.Equal(data[2*bs:], randomData[2*bs:]) {
					t.Error("/files/random: more than the unmapped block changed")
				}
				checkBlocks(t, base, f, random, -int64(bs/512))
			}
		})
	}
}

func readAll(t *testing.T, f *FS, ino vfs.Ino) []byte {
	t.Helper()
	fl, err := f.Open(ino)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, fl.Size())
	if _, err := fl.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return b
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// checkBlocks checks that ino's st_blocks changed by delta sectors.
func checkBlocks(t *testing.T, before, after *FS, ino vfs.Ino, delta int64) {
	t.Helper()
	a, err := before.Stat(ino)
	if err != nil {
		t.Fatal(err)
	}
	b, err := after.Stat(ino)
	if err != nil {
		t.Fatal(err)
	}
	if b.Blocks-a.Blocks != delta {
		t.Errorf("inode %d: st_blocks %d, was %d; want a change of %d", ino, b.Blocks, a.Blocks, delta)
	}
}

// xfs-bui (fixtures/scripts/xfs-bui.sh): a reflink cut by
// `shutdown -f` left the kernel's log with a BUI and no BUD. The replay
// finishes it as the kernel's recovery does: the view equals a kernel
// mount of a copy (the remapped block of dst included, st_blocks no
// larger) and is not flagged stale; --no-journal equals ro,norecovery.
func TestLogUnfinishedBUIMatchesKernel(t *testing.T) {
	lp := string(fixturetest.Golden(t, "xfs-bui.logprint"))
	if !strings.Contains(lp, "BUI:") {
		t.Fatal("xfs_logprint of the fixture shows no BUI")
	}
	img := fixturetest.Image(t, "xfs-bui")
	f := openImage(t, img, vfs.OpenOptions{})
	if !f.Log.Dirty || !f.Log.Replayed || f.Log.Problem != "" {
		t.Fatalf("log %+v", f.Log)
	}
	t.Log(f.Log.Summary())
	if !slices.Contains(f.Log.Pending, "BUI") || f.Log.IntentsFinished == 0 {
		t.Errorf("pending %q, %d finished: want the unfinished BUI finished", f.Log.Pending, f.Log.IntentsFinished)
	}
	if s := staleNotes(f); len(s) > 0 {
		t.Errorf("stale notes %v", s)
	}
	compareDirty(t, f, readManifest(t, "xfs-bui.replayed"))
	nf := openImage(t, img, vfs.OpenOptions{NoJournal: true})
	compareDirty(t, nf, readManifest(t, "xfs-bui.norecovery"))
}

// Unfinished attr-fork BUIs (the kernel logs them when it exchanges
// mappings, xfs_exchmaps, 6.10+; this machine's 6.1 cannot make them, so
// the logs are built by hand and checked with xfs_logprint) on /xattr/remote
// of xfs-v5, whose attr fork maps its leaf at block 0 and a remote value
// after it: an unmap then a map of the same blocks finishes both and reads
// as before; an unmap alone takes the value away (its read fails, naming
// the inode) and lowers st_blocks; a map over the mapped leaf is not
// applied and flags the view stale.
func TestLogUnfinishedAttrBUI(t *testing.T) {
	base := openImage(t, fixturetest.Image(t, "xfs-v5"), vfs.OpenOptions{})
	bs := uint64(base.sb.BlockSize)
	remote := mustIno(t, base, "/xattr/remote")
	in, _ := base.Inode(uint64(remote))
	aext, err := base.forkExtents(in, true)
	if err != nil || len(aext) != 2 || aext[0].off != 0 || aext[1].off == 0 {
		t.Fatalf("/xattr/remote attr extents %+v (%v): want a leaf and a remote value", aext, err)
	}
	val := aext[1]
	wantX, err := base.Xattrs(remote)
	if err != nil || len(wantX) == 0 {
		t.Fatalf("/xattr/remote xattrs %v (%v)", wantX, err)
	}
	const attr = bmapAttrFork
	unmap := buiItem(7, uint64(remote), val.fsb, val.off, uint32(val.len), bmapUnmap|attr)
	for _, c := range []struct {
		bmapCase
		blocks int64 // change of st_blocks
		gone   bool  // the xattrs no longer read
	}{
		{bmapCase{"unmap then map back", slices.Concat(transOps(1, unmap),
			transOps(2, buiItem(8, uint64(remote), val.fsb, val.off, uint32(val.len), bmapMap|attr))), []string{"BUI", "BUI"}, 2, ""}, 0, false},
		{bmapCase{"unmap", transOps(1, unmap), []string{"BUI"}, 1, ""}, -int64(val.len * bs / 512), true},
		{bmapCase{"map over the leaf", transOps(1, buiItem(7, uint64(remote), val.fsb, 0, 1, bmapMap|attr)), []string{"BUI"}, 0, "not a hole; not applied"}, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := fixturetest.Copy(t, "xfs-v5")
			writeLogRecord(t, img, c.ops)
			checkLogprint(t, img, c.ops)
			f := openImage(t, img, vfs.OpenOptions{})
			c.checkIntents(t, f)
			checkBlocks(t, base, f, remote, c.blocks)
			got, err := f.Xattrs(remote)
			switch {
			case c.gone && err == nil:
				t.Errorf("xattrs %v read with the remote value unmapped; want an error", got)
			case c.gone && !strings.Contains(err.Error(), fmt.Sprint(remote)):
				t.Errorf("error %q does not name inode %d", err, remote)
			case !c.gone && (err != nil || !slices.EqualFunc(got, wantX, func(a, b vfs.Xattr) bool { return a.Name == b.Name && bytes.Equal(a.Value, b.Value) })):
				t.Errorf("xattrs %v (%v), want those of the clean image", got, err)
			}
			if c.gone {
				return // walkTree would fail on the xattrs; the other cases check the rest
			}
			// Every other file reads as the kernel's manifest says.
			var rows []manifestRow
			for _, r := range readManifest(t, "xfs-v5") {
				if r.path != "xattr/remote" {
					rows = append(rows, r)
				}
			}
			tree := walkTree(t, f)
			delete(tree, "xattr/remote")
			compareTree(t, tree, rows, allCols)
		})
	}
}
