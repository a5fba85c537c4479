package ext

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// loadImage returns a private in-memory copy of a fixture, for corrupting.
func loadImage(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(fixturetest.Image(t, "ext-"+name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func openBytes(t testing.TB, b []byte) (*FS, error) {
	return Open(bytes.NewReader(b), int64(len(b)), nil)
}

func mustOpenBytes(t testing.TB, b []byte) *FS {
	t.Helper()
	fsys, err := openBytes(t, b)
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

// inodeOff returns the byte offset of path's inode in image b.
func inodeOff(t *testing.T, b []byte, path string) (uint32, int64) {
	t.Helper()
	fsys := mustOpenBytes(t, b)
	ino, err := fsys.Lookup(path)
	if err != nil {
		t.Fatal(err)
	}
	off, err := fsys.inodeOffset(ino)
	if err != nil {
		t.Fatal(err)
	}
	return ino, off
}

func readAllFile(t *testing.T, fsys *FS, path string) []byte {
	t.Helper()
	ino, err := fsys.Lookup(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := fsys.OpenInode(ino)
	if err != nil {
		t.Fatal(err)
	}
	d, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestBackupSuperblock zeroes the primary superblock: Open must find a
// backup, say so in a Note, and read files correctly.
func TestBackupSuperblock(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			b := loadImage(t, name)
			want := readAllFile(t, mustOpenBytes(t, b), "/seq.txt")
			clear(b[1024:2048])
			fsys, err := openBytes(t, b)
			d := dumpe2fsFields(t, name)
			bc, _ := strconv.Atoi(d["Block count"])
			bpg, _ := strconv.Atoi(d["Blocks per group"])
			if bc <= bpg {
				// one block group (per dumpe2fs): there is no backup to find
				if !errors.Is(err, ErrNotExt) {
					t.Errorf("single-group fs without its superblock: %v, want ErrNotExt", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open with a zeroed primary superblock: %v", err)
			}
			notes := fsys.Notes()
			if len(notes) == 0 || !strings.Contains(notes[0].String(), "backup superblock") {
				t.Errorf("no note about the backup: %v", notes)
			}
			if fsys.Superblock().Offset == superblockOffset {
				t.Errorf("superblock offset %d", fsys.Superblock().Offset)
			}
			if got := readAllFile(t, fsys, "/seq.txt"); !bytes.Equal(got, want) {
				t.Errorf("seq.txt differs when read through the backup")
			}
		})
	}
	// and with no superblock anywhere: ErrNotExt
	if _, err := openBytes(t, make([]byte, 1<<20)); !errors.Is(err, ErrNotExt) {
		t.Errorf("zero image: %v, want ErrNotExt", err)
	}
}

// TestInodeChecksumMismatch changes a byte of an inode on metadata_csum
// filesystems: the mismatch is noted, the data still reads.
func TestInodeChecksumMismatch(t *testing.T) {
	for _, name := range []string{"ext4", "ext4-1k-inline", "ext4-64meta"} {
		t.Run(name, func(t *testing.T) {
			b := loadImage(t, name)
			want := readAllFile(t, mustOpenBytes(t, b), "/seq.txt")
			ino, off := inodeOff(t, b, "/seq.txt")
			b[off+inAtime] ^= 0xff // atime: harmless for reading
			fsys := mustOpenBytes(t, b)
			if got := readAllFile(t, fsys, "/seq.txt"); !bytes.Equal(got, want) {
				t.Errorf("content differs")
			}
			var ce *ChecksumError
			found := false
			for _, n := range fsys.Notes() {
				if errors.As(n.Err, &ce) && ce.Ino == ino && ce.What == "inode" && ce.Offset == off {
					found = true
				}
			}
			if !found {
				t.Errorf("no inode checksum note for inode %d: %v", ino, fsys.Notes())
			}
		})
	}
}

// TestGroupDescChecksumMismatch: metadata_csum (crc32c) and uninit_bg
// (crc16) group descriptor checksums are both verified.
func TestGroupDescChecksumMismatch(t *testing.T) {
	for _, name := range []string{"ext4", "ext4-nocsum", "ext4-1k-inline"} {
		t.Run(name, func(t *testing.T) {
			b := loadImage(t, name)
			fsys := mustOpenBytes(t, b)
			gd := fsys.Groups()[0]
			b[gd.Offset+gdUsedDirsLo] ^= 1
			fsys = mustOpenBytes(t, b)
			var ce *ChecksumError
			if n := fsys.Notes(); len(n) != 1 || !errors.As(n[0].Err, &ce) || ce.What != "group descriptor 0" {
				t.Errorf("notes %v", n)
			}
		})
	}
}

// withTimeout fails the test if f does not return within d (a hang).
func withTimeout(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("did not return within %v", d)
	}
}

// TestHostileValues: absurd sizes, deep and looping extent trees, zero
// rec_len and looping indirect blocks give errors, not panics or hangs.
func TestHostileValues(t *testing.T) {
	t.Run("huge size", func(t *testing.T) {
		b := loadImage(t, "ext4")
		_, off := inodeOff(t, b, "/seq.txt")
		binary.LittleEndian.PutUint32(b[off+inSizeLo:], 0xffffffff)
		binary.LittleEndian.PutUint32(b[off+inSizeHi:], 0x7fffffff)
		fsys := mustOpenBytes(t, b)
		withTimeout(t, 10*time.Second, func() {
			ino, _ := fsys.Lookup("/seq.txt")
			f, err := fsys.OpenInode(ino)
			if err != nil {
				t.Fatal(err)
			}
			if f.Size() > 1<<32*fsys.BlockSize() {
				t.Errorf("size %d not clamped", f.Size())
			}
			buf := make([]byte, 4096)
			if _, err := f.ReadAt(buf, 1<<40); err != nil {
				t.Errorf("ReadAt far past the data: %v", err)
			}
			if len(fsys.Notes()) == 0 {
				t.Errorf("no note about the size")
			}
		})
	})
	t.Run("extent depth 200", func(t *testing.T) {
		b := loadImage(t, "ext4")
		ino, off := inodeOff(t, b, "/seq.txt")
		binary.LittleEndian.PutUint16(b[off+inBlock+ehDepth:], 200)
		fsys := mustOpenBytes(t, b)
		_, err := fsys.BlockMap(ino)
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Ino != ino || ce.Offset != off+inBlock || !strings.Contains(err.Error(), "depth 200") {
			t.Fatalf("err = %v", err)
		}
		if _, err := fsys.OpenInode(ino); err == nil {
			t.Errorf("OpenInode succeeded")
		}
	})
	t.Run("extent bad magic", func(t *testing.T) {
		b := loadImage(t, "ext4")
		ino, off := inodeOff(t, b, "/seq.txt")
		binary.LittleEndian.PutUint16(b[off+inBlock:], 0)
		_, err := mustOpenBytes(t, b).BlockMap(ino)
		want := "ext: inode " + itoa(ino) + ": extent header at offset 0x"
		if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "bad magic 0x0000") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("extent loop", func(t *testing.T) {
		// sparse70 on the 1k fixture has a depth-1 tree: point its index
		// block's first leaf... at itself, turning it into an index node.
		b := loadImage(t, "ext4-1k-inline")
		fsys := mustOpenBytes(t, b)
		ino, _ := fsys.Lookup("/sparse70")
		meta, err := fsys.MetadataBlocks(ino)
		if err != nil || len(meta) != 1 {
			t.Fatalf("meta %v %v", meta, err)
		}
		blk := int64(meta[0]) * fsys.BlockSize()
		binary.LittleEndian.PutUint16(b[blk+ehDepth:], 1)
		binary.LittleEndian.PutUint32(b[blk+extentHeaderSize+eiLeafLo:], uint32(meta[0]))
		binary.LittleEndian.PutUint16(b[blk+extentHeaderSize+eiLeafHi:], 0)
		// the root says depth 1, the child now claims 1 too: fix the root
		_, ioff := inodeOff(t, b, "/sparse70")
		binary.LittleEndian.PutUint16(b[ioff+inBlock+ehDepth:], 2)
		withTimeout(t, 10*time.Second, func() {
			_, err := mustOpenBytes(t, b).BlockMap(ino)
			if err == nil || !strings.Contains(err.Error(), "loop") && !strings.Contains(err.Error(), "depth") {
				t.Errorf("err = %v", err)
			}
		})
	})
	t.Run("rec_len 0", func(t *testing.T) {
		for _, name := range []string{"ext2-1k", "ext4"} {
			b := loadImage(t, name)
			fsys := mustOpenBytes(t, b)
			ino, _ := fsys.Lookup("/sub")
			m, _ := fsys.BlockMap(ino)
			blk := int64(m[0].Physical) * fsys.BlockSize()
			binary.LittleEndian.PutUint16(b[blk+4:], 0) // "."'s rec_len
			withTimeout(t, 10*time.Second, func() {
				_, err := mustOpenBytes(t, b).ReadDirInode(ino)
				var ce *CorruptError
				if !errors.As(err, &ce) || ce.Offset != blk || !strings.Contains(err.Error(), "rec_len 0") {
					t.Errorf("%s: err = %v", name, err)
				}
			})
		}
	})
	t.Run("indirect loop", func(t *testing.T) {
		// ext2: make sparse70's triple-indirect block point at itself in
		// every slot: the walk must end (bounded), not recurse forever.
		b := loadImage(t, "ext2-1k")
		_, off := inodeOff(t, b, "/sparse70")
		tind := binary.LittleEndian.Uint32(b[off+inBlock+4*indTriple:])
		blk := int64(tind) * 1024
		for i := range 256 {
			binary.LittleEndian.PutUint32(b[blk+int64(4*i):], tind)
		}
		fsys := mustOpenBytes(t, b)
		withTimeout(t, 20*time.Second, func() {
			ino, _ := fsys.Lookup("/sparse70")
			_, err := fsys.BlockMap(ino)
			if err == nil || !strings.Contains(err.Error(), "loop") {
				t.Errorf("err = %v", err)
			}
		})
	})
	t.Run("garbage everywhere", func(t *testing.T) {
		// overwrite the first inode table block with a pattern; reading
		// every path must not panic.
		b := loadImage(t, "ext4")
		fsys := mustOpenBytes(t, b)
		it := int64(fsys.Groups()[0].InodeTable) * fsys.BlockSize()
		for i := it; i < it+16*fsys.BlockSize(); i++ {
			b[i] = byte(i * 7)
		}
		fsys = mustOpenBytes(t, b)
		withTimeout(t, 30*time.Second, func() {
			for ino := uint32(1); ino < 200; ino++ {
				if in, err := fsys.Inode(ino); err == nil {
					fsys.BlockMap(ino)
					fsys.Xattrs(ino)
					if in.IsDir() {
						fsys.ReadDirInode(ino)
					}
					if in.IsSymlink() {
						fsys.Readlink(ino)
					}
					if f, err := fsys.OpenInode(ino); err == nil {
						f.ReadAt(make([]byte, 1<<16), 0)
					}
				}
			}
		})
	})
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

// TestEncryptedReported sets EXT4_ENCRYPT_FL (as fscrypt does) on a
// directory, a file and a symlink: each read says ErrEncrypted instead of
// returning ciphertext as if it were data.
func TestEncryptedReported(t *testing.T) {
	b := loadImage(t, "ext4-nocsum")
	var inos []uint32
	for _, p := range []string{"/sub", "/seq.txt", "/sym-long"} {
		ino, off := inodeOff(t, b, p)
		fl := binary.LittleEndian.Uint32(b[off+inFlags:])
		binary.LittleEndian.PutUint32(b[off+inFlags:], fl|FlagEncrypt)
		inos = append(inos, ino)
	}
	fsys := mustOpenBytes(t, b)
	if _, err := fsys.ReadDirInode(inos[0]); !errors.Is(err, ErrEncrypted) {
		t.Errorf("ReadDirInode: %v", err)
	}
	if _, err := fsys.OpenInode(inos[1]); !errors.Is(err, ErrEncrypted) {
		t.Errorf("OpenInode: %v", err)
	}
	if _, err := fsys.Readlink(inos[2]); !errors.Is(err, ErrEncrypted) {
		t.Errorf("Readlink: %v", err)
	}
	if in, _ := fsys.Inode(inos[1]); in == nil || in.Flags&FlagEncrypt == 0 {
		t.Errorf("inode flags do not show encryption")
	}
	// the block map stays available (salvage of raw ciphertext)
	if m, err := fsys.BlockMap(inos[1]); err != nil || len(m) == 0 {
		t.Errorf("BlockMap: %v %v", m, err)
	}
}

// TestEAInodeCycle: an inline-data inode whose system.data value claims to
// live in an ea_inode that is the inode itself must give an error, not an
// endless recursion.
func TestEAInodeCycle(t *testing.T) {
	b := loadImage(t, "ext4-1k-inline")
	ino, off := inodeOff(t, b, "/tiny.txt")
	extra := int64(binary.LittleEndian.Uint16(b[off+inExtraIsize:]))
	ents := off + goodOldInodeSize + extra + 4
	if binary.LittleEndian.Uint32(b[ents-4:]) != xattrMagic {
		t.Fatal("no in-inode xattrs on /tiny.txt")
	}
	if b[ents+xeNameIndex] != 7 || string(b[ents+16:ents+16+int64(b[ents])]) != "data" {
		t.Fatalf("first in-inode xattr is not system.data")
	}
	binary.LittleEndian.PutUint32(b[ents+xeValueInum:], ino)
	binary.LittleEndian.PutUint32(b[ents+xeValueSize:], 10)
	fsys := mustOpenBytes(t, b)
	withTimeout(t, 10*time.Second, func() {
		if _, err := fsys.OpenInode(ino); err == nil {
			t.Errorf("OpenInode succeeded")
		}
		if _, err := fsys.Xattrs(ino); err == nil {
			t.Errorf("Xattrs succeeded")
		}
	})
}

// TestSuperblockChecksum: a primary superblock that fails only its
// metadata_csum checksum is replaced by a backup when there is one, and
// used anyway (with a note) when there is none.
func TestSuperblockChecksum(t *testing.T) {
	for _, name := range []string{"ext4", "ext4-1k-inline"} {
		t.Run(name, func(t *testing.T) {
			b := loadImage(t, name)
			b[superblockOffset+sbChecksum] ^= 0xff
			fsys, err := openBytes(t, b)
			if err != nil {
				t.Fatal(err)
			}
			notes := fsys.Notes()
			var ce *ChecksumError
			if len(notes) == 0 || !errors.As(notes[0].Err, &ce) && !strings.Contains(notes[0].Msg, "checksum") {
				t.Errorf("notes: %v", notes)
			}
			single := name == "ext4"
			if single != (fsys.Superblock().Offset == superblockOffset) {
				t.Errorf("superblock used at %#x", fsys.Superblock().Offset)
			}
			if _, err := fsys.Lookup("/seq.txt"); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestSuperblockOffsetOption opens through an explicitly chosen backup
// superblock (group 1 of the 1 KiB-block fixture, as `e2fsck -b 8193`).
func TestSuperblockOffsetOption(t *testing.T) {
	b := loadImage(t, "ext4-1k-inline")
	d := dumpe2fsFields(t, "ext4-1k-inline")
	bpg, _ := strconv.Atoi(d["Blocks per group"])
	off := int64(bpg+1) * 1024
	fsys, err := Open(bytes.NewReader(b), int64(len(b)), &Options{SuperblockOffset: off})
	if err != nil {
		t.Fatal(err)
	}
	if fsys.Superblock().Offset != off || fsys.Superblock().BlockGroupNr != 1 {
		t.Errorf("superblock at %#x, group %d", fsys.Superblock().Offset, fsys.Superblock().BlockGroupNr)
	}
	want := readAllFile(t, mustOpenBytes(t, b), "/seq.txt")
	if got := readAllFile(t, fsys, "/seq.txt"); !bytes.Equal(got, want) {
		t.Errorf("content differs through the backup")
	}
	if _, err := Open(bytes.NewReader(b), int64(len(b)), &Options{SuperblockOffset: off + 1024}); err == nil {
		t.Errorf("a non-superblock offset was accepted")
	}
}
