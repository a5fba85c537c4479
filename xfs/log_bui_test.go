package xfs

import (
	"encoding/binary"
	"fmt"
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

// An unfinished BUI (a file mapping change the kernel would redo after
// recovery) is not applied by the in-memory replay: the view is flagged
// stale (vfs.Note.Stale, which makes extract exit 3), naming the intent.
// A BUI whose BUD is in the log, and an unfinished EFI (free space only),
// leave the view unflagged.
func TestLogUnfinishedBUIIsStale(t *testing.T) {
	base := openImage(t, fixturetest.Image(t, "xfs-v5"), vfs.OpenOptions{})
	ino, err := base.Lookup("/files/random")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		ops     []logOp
		pending []string
		stale   bool
	}{
		{"unfinished BUI", slices.Concat(
			transOps(1, buiItem(7, uint64(ino), 5000, 1000, 4, 1))), []string{"BUI"}, true},
		{"BUI and its BUD", slices.Concat(
			transOps(1, buiItem(7, uint64(ino), 5000, 1000, 4, 1)),
			transOps(2, doneItem(liBUD, 7))), nil, false},
		{"BUD of another intent", slices.Concat(
			transOps(1, buiItem(7, uint64(ino), 5000, 1000, 4, 1)),
			transOps(2, doneItem(liBUD, 8))), []string{"BUI"}, true},
		{"unfinished EFI", slices.Concat(
			transOps(1, efiItem(9, 5000, 4))), []string{"EFI"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := fixturetest.Copy(t, "xfs-v5")
			writeLogRecord(t, img, c.ops)
			checkLogprint(t, img, c.ops)
			f := openImage(t, img, vfs.OpenOptions{})
			if !f.Log.Dirty || !f.Log.Replayed || f.Log.Problem != "" {
				t.Fatalf("log %+v: want a dirty log replayed without problem", f.Log)
			}
			want := 0
			for _, op := range c.ops {
				if op.flags == opCommit {
					want++
				}
			}
			if f.Log.Transactions != want || f.Log.Records != 1 {
				t.Errorf("%d transactions from %d records, want %d from 1", f.Log.Transactions, f.Log.Records, want)
			}
			if !slices.Equal(f.Log.Pending, c.pending) {
				t.Errorf("pending intents %q, want %q", f.Log.Pending, c.pending)
			}
			stale := staleNotes(f)
			if got := len(stale) > 0; got != c.stale {
				t.Fatalf("stale notes %v; want stale %v", stale, c.stale)
			}
			if c.stale && !slices.ContainsFunc(stale, func(n vfs.Note) bool {
				return strings.Contains(n.Msg, "BUI") && strings.Contains(n.Msg, "not applied")
			}) {
				t.Errorf("no stale note naming the unfinished BUI: %v", stale)
			}
			if c.stale {
				// Nothing else changed: the tree reads as the kernel's
				// manifest.
				compareTree(t, walkTree(t, f), readManifest(t, "xfs-v5"), allCols)
			}
		})
	}
}
