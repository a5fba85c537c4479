package xfs

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/vfs"
)

func patchFile(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// A zeroed primary superblock: the secondary of AG 1 is found and used,
// with a note, and the tree reads as before.
func TestSecondarySuperblock(t *testing.T) {
	// xfs-v4 has one AG, so no secondary: a clear error.
	img4 := fixturetest.Copy(t, "xfs-v4")
	patchFile(t, img4, 0, make([]byte, 512))
	fh, _ := os.Open(img4)
	defer fh.Close()
	if _, err := Open(fileVol{fh, 64 << 20}, "v4", vfs.OpenOptions{}); err == nil || !strings.Contains(err.Error(), "no usable secondary superblock") {
		t.Errorf("v4 with one AG and no primary: %v", err)
	}
	for _, name := range []string{"xfs-4ksect", "xfs-1k"} {
		t.Run(name, func(t *testing.T) {
			img := fixturetest.Copy(t, name)
			patchFile(t, img, 0, make([]byte, 512))
			f := openImage(t, img, vfs.OpenOptions{})
			if f.SBOffset == 0 {
				t.Fatal("primary superblock used")
			}
			if want := int64(f.sb.AGBlocks) << f.sb.BlockLog; f.SBOffset%want != 0 {
				t.Errorf("secondary at %d, not an AG boundary (%d)", f.SBOffset, want)
			}
			found := false
			for _, n := range f.Notes() {
				if strings.Contains(n.Msg, "secondary") {
					found = true
				}
			}
			if !found {
				t.Errorf("no note about the secondary superblock: %v", f.Notes())
			}
			compareTree(t, walkTree(t, f), readManifest(t, name), allCols)
		})
	}
}

// A damaged v5 inode: the checksum mismatch is a note naming the volume,
// the inode and its byte offset, and the inode still reads.
func TestInodeCRCMismatchIsANote(t *testing.T) {
	img := fixturetest.Copy(t, "xfs-1k")
	f0 := openImage(t, img, vfs.OpenOptions{})
	ino := mustIno(t, f0, "/files/small")
	in, _ := f0.inode(ino)
	// di_dmstate (offset 88) is not used by Linux: changing it breaks only the CRC.
	patchFile(t, img, in.Off+88, []byte{0xab, 0xcd})
	f := openImage(t, img, vfs.OpenOptions{})
	if _, err := f.Stat(ino); err != nil {
		t.Fatal(err)
	}
	var got []vfs.Note
	for _, n := range f.Notes() {
		if n.Ino == ino {
			got = append(got, n)
		}
	}
	if len(got) != 1 || got[0].Offset != in.Off || !strings.Contains(got[0].Msg, "checksum") || !strings.Contains(got[0].Msg, "xfs-1k") {
		t.Fatalf("notes %v; want one checksum note at offset %d naming the volume", f.Notes(), in.Off)
	}
}

// A directory block with a bad magic: an error naming the volume, the
// directory inode and the block's byte offset.
func TestDamagedDirBlockError(t *testing.T) {
	img := fixturetest.Copy(t, "xfs-1k")
	f0 := openImage(t, img, vfs.OpenOptions{})
	ino := mustIno(t, f0, "/dirs/block60")
	in, _ := f0.inode(ino)
	ext, _ := f0.forkExtents(in, false)
	off, _ := f0.fsbOff(ext[0].fsb)
	patchFile(t, img, off, []byte("JUNK"))
	f := openImage(t, img, vfs.OpenOptions{})
	_, err := f.ReadDir(ino)
	var de *DamageError
	if !errors.As(err, &de) || de.Ino != uint64(ino) || de.Offset != off || !strings.Contains(err.Error(), "xfs-1k") {
		t.Fatalf("err %v; want damage at inode %d offset %d", err, ino, off)
	}
	if !strings.Contains(err.Error(), fmt.Sprint(off)) {
		t.Errorf("error does not name the offset: %v", err)
	}
}

func mustIno(t *testing.T, f *FS, p string) vfs.Ino {
	t.Helper()
	ino, err := f.Lookup(p)
	if err != nil {
		t.Fatal(err)
	}
	return ino
}

func walkSet(t *testing.T, f *FS) (map[vfs.Ino]bool, error) {
	got := map[vfs.Ino]bool{}
	err := f.WalkInodes(t.Context(), func(ino vfs.Ino, st *vfs.Stat, err error) error {
		if err == nil {
			got[ino] = true
		}
		return nil
	})
	return got, err
}

// A damaged inode btree root: the walk is an error naming the block's
// offset; with Salvage the AG is scanned for inode chunks and the same
// inodes come out.
func TestDamagedInobtSalvageScan(t *testing.T) {
	want, err := walkSet(t, openImage(t, fixturetest.Image(t, "xfs-1k"), vfs.OpenOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	img := fixturetest.Copy(t, "xfs-1k")
	f0 := openImage(t, img, vfs.OpenOptions{})
	agi, err := f0.ReadAGI(3)
	if err != nil {
		t.Fatal(err)
	}
	off := f0.agOff(3) + int64(agi.Root)<<f0.sb.BlockLog
	patchFile(t, img, off, []byte("JUNK"))
	if _, err := walkSet(t, openImage(t, img, vfs.OpenOptions{})); err == nil || !strings.Contains(err.Error(), fmt.Sprint(off)) {
		t.Fatalf("walk over a damaged inobt: %v; want an error naming offset %d", err, off)
	}
	f := openImage(t, img, vfs.OpenOptions{Salvage: true})
	got, err := walkSet(t, f)
	if err != nil {
		t.Fatal(err)
	}
	for ino := range want {
		if !got[ino] {
			t.Errorf("inode %d not found by the scan", ino)
		}
	}
	for ino := range got {
		if !want[ino] {
			t.Errorf("scan found inode %d the inobt does not hold", ino)
		}
	}
	inAG3 := 0
	for ino := range want {
		if uint64(ino)>>(f.sb.AGBlkLog+f.sb.InoPBLog) == 3 {
			inAG3++
		}
	}
	if inAG3 < 10 {
		t.Fatalf("only %d inodes in AG 3: the scan was not exercised", inAG3)
	}
}

// A realtime file: Open is a clear error naming the inode (its data is on
// the realtime device, which is not read); other files read.
func TestRealtimeFileError(t *testing.T) {
	f := openImage(t, fixturetest.Image(t, "xfs-rt"), vfs.OpenOptions{})
	if f.sb.RBlocks == 0 {
		t.Fatal("fixture has no realtime subvolume")
	}
	ino := mustIno(t, f, "/rtfile")
	_, err := f.Open(ino)
	var de *DamageError
	if !errors.As(err, &de) || de.Ino != uint64(ino) || !strings.Contains(err.Error(), "realtime") {
		t.Fatalf("open of a realtime file: %v", err)
	}
	pf, err := f.Open(mustIno(t, f, "/plain"))
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, pf.Size())
	if _, err := pf.ReadAt(b, 0); err != nil || string(b) != "on the data device\n" {
		t.Fatalf("plain: %q %v", b, err)
	}
}
