package otherfs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"slices"
	"testing"

	"github.com/imgtool/imgtool/vfs"
)

// vfsTree walks v through the interface: path ("." for the root, io/fs
// names below) → Ino.
func vfsTree(t *testing.T, v *VFS) map[string]vfs.Ino {
	out := map[string]vfs.Ino{".": v.Root()}
	var walk func(dir string, ino vfs.Ino)
	walk = func(dir string, ino vfs.Ino) {
		ents, err := v.ReadDir(ino)
		if err != nil {
			t.Errorf("%s: %v", dir, err)
		}
		for _, e := range ents {
			p := e.Name
			if dir != "." {
				p = dir + "/" + e.Name
			}
			out[p] = e.Ino
			if e.Type == vfs.DTDir {
				walk(p, e.Ino)
			}
		}
	}
	walk(".", v.Root())
	return out
}

// TestVFSAgainstManifest reads each fixture through the vfs.FS view and
// compares with the source tree's manifest (python lstat, sha256 and
// readlink): paths, types, sizes, content; modes, owners, symlink
// targets and link counts where the format stores them; squashfs hard
// links share an Ino; Inos are the same in a second open that looks the
// deepest paths up first; WalkInodes visits each Ino once, in order.
func TestVFSAgainstManifest(t *testing.T) {
	for name, k := range map[string]Kind{"otherfs-fat32": FAT32, "otherfs-squashfs": Squashfs, "otherfs-iso": ISO9660} {
		t.Run(name, func(t *testing.T) {
			v := NewVFS(openImage(t, name, 0, 0))
			tree := vfsTree(t, v)
			want := expected(t, k)
			if len(tree) != len(want) {
				t.Errorf("%d paths, source %d", len(tree), len(want))
			}
			byIno := map[uint64]vfs.Ino{}
			for p, e := range want {
				ino, ok := tree[p]
				if !ok {
					t.Errorf("%s: missing", p)
					continue
				}
				st, err := v.Stat(ino)
				if err != nil {
					t.Errorf("%s: %v", p, err)
					continue
				}
				typ := map[uint32]string{vfs.ModeDir: "dir", vfs.ModeReg: "file", vfs.ModeLink: "symlink"}[st.Type()]
				if typ != e.Type {
					t.Errorf("%s: type %s, source %s", p, typ, e.Type)
					continue
				}
				if typ == "file" {
					f, err := v.Open(ino)
					if err != nil {
						t.Errorf("%s: %v", p, err)
						continue
					}
					h := sha256.New()
					io.Copy(h, io.NewSectionReader(f, 0, f.Size()))
					if got := hex.EncodeToString(h.Sum(nil)); got != e.SHA256 || st.Size != e.Size {
						t.Errorf("%s: size %d sha256 %s, source %d %s", p, st.Size, got, e.Size, e.SHA256)
					}
					if r := f.DataRanges(); e.Size > 0 && (len(r) != 1 || r[0] != (vfs.Range{Off: 0, Len: e.Size})) {
						t.Errorf("%s: DataRanges %v", p, r)
					}
				}
				if k == Squashfs || k == ISO9660 {
					if st.Mode&0o7777 != e.Mode&0o7777 || st.UID != e.UID || st.GID != e.GID {
						t.Errorf("%s: mode %#o %d:%d, source %#o %d:%d", p, st.Mode&0o7777, st.UID, st.GID, e.Mode, e.UID, e.GID)
					}
					if e.Target != nil {
						if tg, err := v.Readlink(ino); err != nil || tg != *e.Target {
							t.Errorf("%s: readlink %q %v, source %q", p, tg, err, *e.Target)
						}
					}
				}
				if (k == Squashfs || typ == "dir") && p != "." && st.Nlink != uint32(e.Nlink) {
					t.Errorf("%s: nlink %d, source %d", p, st.Nlink, e.Nlink)
				}
				if k == Squashfs && typ == "file" {
					if prev, ok := byIno[e.Ino]; ok && prev != ino {
						t.Errorf("%s: hard link of source inode %d has Ino %d, another name %d", p, e.Ino, ino, prev)
					}
					byIno[e.Ino] = ino
					if ent, _ := v.FS().Entry(p); ent == nil || vfs.Ino(ent.Ino) != ino {
						t.Errorf("%s: Ino %d is not the squashfs inode number", p, ino)
					}
				}
			}
			if k != Squashfs && v.Root() != 1 {
				t.Errorf("root Ino %d", v.Root())
			}

			// A fresh open, deepest paths first, hands out the same Inos.
			v2 := NewVFS(openImage(t, name, 0, 0))
			paths := make([]string, 0, len(tree))
			for p := range tree {
				paths = append(paths, p)
			}
			slices.SortFunc(paths, func(a, b string) int { return len(b) - len(a) })
			for _, p := range paths {
				ino, err := v2.Lookup("/" + p)
				if p == "." {
					ino, err = v2.Lookup("/")
				}
				if err != nil || ino != tree[p] {
					t.Errorf("%s: second open: Ino %d %v, first %d", p, ino, err, tree[p])
				}
			}

			var walked []vfs.Ino
			err := v.WalkInodes(context.Background(), func(ino vfs.Ino, st *vfs.Stat, err error) error {
				if err != nil || st.Ino != ino {
					t.Errorf("walk %d: %v %v", ino, st, err)
				}
				walked = append(walked, ino)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			var inos []vfs.Ino
			for _, ino := range tree {
				if !slices.Contains(inos, ino) {
					inos = append(inos, ino)
				}
			}
			slices.Sort(inos)
			if !slices.Equal(walked, inos) {
				t.Errorf("WalkInodes %v\nthe tree's Inos %v", walked, inos)
			}
		})
	}
}

// TestDriverInfo: the driver opens each fixture with blkid's type name
// and the label the build script gave.
func TestDriverInfo(t *testing.T) {
	for name, typ := range map[string]string{"otherfs-fat32": "vfat", "otherfs-squashfs": "squashfs", "otherfs-iso": "iso9660"} {
		fsys := openImage(t, name, 0, 0)
		v := NewVFS(fsys)
		in := v.Info()
		if in.Type != typ || in.BlockSize <= 0 {
			t.Errorf("%s: info %+v", name, in)
		}
		if slices.Index(Driver.Types, typ) < 0 {
			t.Errorf("%s: driver does not list %s", name, typ)
		}
	}
}
