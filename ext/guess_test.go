package ext

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// mkfsLayouts are mke2fs configurations whose table placement the
// standard-layout computation must reproduce: block sizes, flex_bg sizes
// (with a partial last flex group), meta_bg, 64bit, small groups where the
// packed tables cross group boundaries and backup superblocks.
var mkfsLayouts = []struct {
	name string
	size string
	args []string
}{
	{"ext2-1k", "40M", []string{"-t", "ext2", "-b", "1024"}},
	{"ext2-4k-nosparse", "300M", []string{"-t", "ext2", "-O", "^sparse_super,^resize_inode"}},
	{"ext3-4k", "300M", []string{"-t", "ext3"}},
	{"ext4-4k", "600M", []string{"-t", "ext4"}},
	{"ext4-1k", "100M", []string{"-t", "ext4", "-b", "1024"}},
	{"ext4-1k-flex64-smallgroups", "60M", []string{"-t", "ext4", "-b", "1024", "-g", "1024", "-G", "64", "-N", "8000"}},
	{"ext4-flex4-partial", "300M", []string{"-t", "ext4", "-G", "4", "-g", "8192"}},
	{"ext4-64bit-metabg", "600M", []string{"-t", "ext4", "-O", "64bit,meta_bg,^resize_inode"}},
	{"ext4-2k-noflex", "200M", []string{"-t", "ext4", "-b", "2048", "-O", "^flex_bg"}},
	{"ext4-sparse2", "300M", []string{"-t", "ext4", "-O", "sparse_super2"}},
	{"ext4-bigalloc", "300M", []string{"-t", "ext4", "-O", "bigalloc", "-C", "16384"}},
}

// TestStandardLayoutMatchesMke2fs builds empty filesystems with mke2fs and
// checks that the locations computed from the superblock alone equal the
// descriptors mke2fs wrote, group by group.
func TestStandardLayoutMatchesMke2fs(t *testing.T) {
	if _, err := exec.LookPath("mke2fs"); err != nil {
		t.Fatal("mke2fs (e2fsprogs) is required: ", err)
	}
	for _, c := range mkfsLayouts {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "fs.img")
			args := append([]string{"-q", "-F", "-E", "lazy_itable_init=1,nodiscard"}, c.args...)
			args = append(args, img, c.size)
			if out, err := exec.Command("mke2fs", args...).CombinedOutput(); err != nil {
				t.Fatalf("mke2fs %v: %v\n%s", args, err, out)
			}
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			fsys, err := Open(f, st.Size(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if fsys.DescRepaired() {
				t.Fatalf("a fresh filesystem's descriptors were replaced: %v", fsys.Notes())
			}
			guess := fsys.sb.standardLayout()
			bad := 0
			for g, gd := range fsys.groups {
				w := guess[g]
				if w.BlockBitmap != gd.BlockBitmap || w.InodeBitmap != gd.InodeBitmap || w.InodeTable != gd.InodeTable {
					if bad++; bad <= 5 {
						t.Errorf("group %d: computed bb %d ib %d it %d; mke2fs wrote bb %d ib %d it %d",
							g, w.BlockBitmap, w.InodeBitmap, w.InodeTable, gd.BlockBitmap, gd.InodeBitmap, gd.InodeTable)
					}
				}
				if r := fsys.sb.checkDesc(uint64(g), &fsys.groups[g]); r != "" {
					t.Errorf("group %d: mke2fs's own descriptor judged insane: %s", g, r)
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d groups differ", bad, len(fsys.groups))
			}
		})
	}
}

// TestZeroedDescriptorTables zeroes the primary descriptor table of every
// fixture (then every copy of it): files must still read back the same,
// from a backup copy or from the computed layout.
func TestZeroedDescriptorTables(t *testing.T) {
	for _, name := range fixtures {
		for _, all := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/all=%v", name, all), func(t *testing.T) {
				b := loadImage(t, name)
				orig := mustOpenBytes(t, b)
				want := readAllFile(t, orig, "/seq.txt")
				sb := orig.sb
				nblk := sb.descBlocks()
				zero := func(c int) bool {
					did := false
					for i := range nblk {
						pb, ok := sb.gdtCopyBlock(i, c, 0)
						if !ok {
							continue
						}
						off := int64(pb) * orig.bs
						clear(b[off : off+orig.bs])
						did = true
					}
					return did
				}
				zero(0)
				if all {
					for c := 1; c < maxDescCopies && zero(c); c++ {
					}
				}
				fsys, err := openBytes(t, b)
				if err != nil {
					t.Fatal(err)
				}
				if !fsys.DescRepaired() {
					t.Fatal("zeroed descriptors not noticed")
				}
				wantSrc := DescBackup
				if all {
					wantSrc = DescGuessed
				}
				if s := fsys.DescSource(0); s != wantSrc && sb.groupCount() > 1 {
					t.Errorf("group 0 descriptor from %q, want %q", s, wantSrc)
				}
				if got := readAllFile(t, fsys, "/seq.txt"); string(got) != string(want) {
					t.Errorf("/seq.txt differs after descriptor repair (%d vs %d bytes)", len(got), len(want))
				}
				for g := range orig.groups {
					if orig.groups[g].InodeTable != fsys.groups[g].InodeTable {
						t.Errorf("group %d: inode table %d after repair, %d before", g, fsys.groups[g].InodeTable, orig.groups[g].InodeTable)
					}
				}
			})
		}
	}
}
