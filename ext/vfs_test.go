package ext

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/vfs"
	"golang.org/x/sys/unix"
)

// TestVFSAgainstDebugfs reads every fixture through the vfs.FS view and
// compares with debugfs: `ls -p` for names, inode numbers, modes, owners
// and sizes of every directory's entries; WalkInodes visits exactly the
// inodes those listings name (plus the root), in increasing order.
func TestVFSAgainstDebugfs(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			fsys, _ := openFixture(t, name)
			v := NewVFS(fsys)
			if v.Root() != RootIno || v.Info().MaxIno != vfs.Ino(fsys.Superblock().InodesCount) {
				t.Errorf("root %d, MaxIno %d", v.Root(), v.Info().MaxIno)
			}
			listed := map[vfs.Ino]bool{RootIno: true}
			for dir, text := range debugfsSections(t, "ext-"+name+".ls") {
				dino, err := v.Lookup(dir)
				if err != nil {
					t.Errorf("%s: %v", dir, err)
					continue
				}
				ents, err := v.ReadDir(dino)
				if err != nil {
					t.Errorf("%s: ReadDir: %v", dir, err)
				}
				var want, got []string
				for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
					f := strings.Split(line, "/")
					if len(f) < 7 || f[1] == "0" || f[5] == "." || f[5] == ".." {
						continue
					}
					want = append(want, strings.Join(f[1:7], "/"))
					ino, _ := strconv.ParseUint(f[1], 10, 32)
					listed[vfs.Ino(ino)] = true
				}
				for _, e := range ents {
					st, err := v.Stat(e.Ino)
					if err != nil {
						t.Errorf("%s/%s: %v", dir, e.Name, err)
						continue
					}
					if e.Type != vfs.DTOf(st.Mode) || st.Ino != e.Ino {
						t.Errorf("%s/%s: d_type %d, mode %#o, ino %d/%d", dir, e.Name, e.Type, st.Mode, st.Ino, e.Ino)
					}
					size := ""
					if !st.IsDir() {
						size = strconv.FormatInt(st.Size, 10)
					}
					got = append(got, strings.Join([]string{strconv.FormatUint(uint64(e.Ino), 10),
						fmt.Sprintf("%06o", st.Mode), strconv.Itoa(int(st.UID)), strconv.Itoa(int(st.GID)), e.Name, size}, "/"))
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s:\n got %q\nwant %q", dir, got, want)
				}
			}
			var walked []vfs.Ino
			err := v.WalkInodes(context.Background(), func(ino vfs.Ino, st *vfs.Stat, err error) error {
				if err != nil || st == nil || st.Ino != ino {
					t.Errorf("walk: inode %d: %v %v", ino, st, err)
				}
				walked = append(walked, ino)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.IsSorted(walked) {
				t.Errorf("walk not in increasing order: %v", walked)
			}
			var want []vfs.Ino
			for ino := range listed {
				want = append(want, ino)
			}
			slices.Sort(want)
			if !slices.Equal(walked, want) {
				var extra, missing []vfs.Ino
				for _, i := range walked {
					if !listed[i] {
						extra = append(extra, i)
					}
				}
				for _, i := range want {
					if !slices.Contains(walked, i) {
						missing = append(missing, i)
					}
				}
				t.Errorf("WalkInodes: %d inodes, listings name %d; not listed %.20v, not walked %.20v", len(walked), len(want), extra, missing)
			}
		})
	}
}

// TestVFSRangesAgainstDebugfs compares DataRanges with the leaf extents
// `debugfs ex` prints (Uninit ones are holes) and BlockMap's data with
// `debugfs blocks`.
func TestVFSRangesAgainstDebugfs(t *testing.T) {
	for _, name := range []string{"ext4", "ext4-64k", "ext4-bigalloc", "ext2-1k", "ext3"} {
		t.Run(name, func(t *testing.T) {
			fsys, _ := openFixture(t, name)
			v := NewVFS(fsys)
			bs := fsys.BlockSize()
			checked := 0
			if strings.HasPrefix(name, "ext4") {
				for p, text := range debugfsSections(t, "ext-"+name+".ex") {
					ino, err := v.Lookup(p)
					if err != nil {
						t.Errorf("%s: %v", p, err)
						continue
					}
					st, _ := v.Stat(ino)
					if !st.IsRegular() {
						continue
					}
					var want []vfs.Range
					for _, line := range strings.Split(text, "\n") {
						f := strings.Fields(strings.NewReplacer("/", " ", "-", " ").Replace(line))
						// level max entry n lstart lend pstart pend len [Uninit]
						if len(f) < 9 || f[0] != f[1] || (len(f) > 9 && f[9] == "Uninit") {
							continue
						}
						ls, _ := strconv.ParseInt(f[4], 10, 64)
						n, _ := strconv.ParseInt(f[8], 10, 64)
						off, l := ls*bs, min(n*bs, st.Size-ls*bs)
						if l <= 0 {
							continue
						}
						if k := len(want); k > 0 && want[k-1].Off+want[k-1].Len == off {
							want[k-1].Len += l
						} else {
							want = append(want, vfs.Range{Off: off, Len: l})
						}
					}
					f, err := v.Open(ino)
					if err != nil {
						t.Errorf("%s: %v", p, err)
						continue
					}
					if got := f.DataRanges(); !slices.Equal(got, want) {
						t.Errorf("%s: DataRanges %v, debugfs ex %v", p, got, want)
					}
					checked++
				}
			}
			for p, text := range debugfsSections(t, "ext-"+name+".blocks") {
				ino, err := v.Lookup(p)
				if err != nil {
					t.Errorf("%s: %v", p, err)
					continue
				}
				data, meta, err := v.BlockMap(ino)
				if err != nil {
					t.Errorf("%s: BlockMap: %v", p, err)
				}
				// debugfs lists the data blocks and the indirect or
				// extent-tree blocks, not the xattr block.
				in, _ := fsys.Inode(uint32(ino))
				meta = slices.DeleteFunc(meta, func(r vfs.PhysRange) bool { return r.Off == int64(in.FileACL)*bs })
				var got []int64
				for _, r := range append(data, meta...) {
					for b := r.Off / bs; b < (r.Off+r.Len)/bs; b++ {
						got = append(got, b)
					}
				}
				var want []int64
				for _, f := range strings.Fields(text) {
					b, _ := strconv.ParseInt(f, 10, 64)
					want = append(want, b)
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("%s: BlockMap %.30v, debugfs blocks %.30v", p, got, want)
				}
				checked++
			}
			if checked < 5 {
				t.Errorf("only %d files checked", checked)
			}
		})
	}
}

// TestVFSACL: a POSIX ACL set through the kernel on tmpfs, stored by
// mke2fs -d in ext4's compact form, comes back from Xattrs in the
// kernel's xattr form byte for byte; "system.data" never appears.
func TestVFSACL(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	if _, err := exec.LookPath("mke2fs"); err != nil {
		t.Skip("mke2fs not installed")
	}
	tmp := t.TempDir()
	if err := unix.Mount("tmpfs", tmp, "tmpfs", 0, "size=32m"); err != nil {
		t.Skipf("tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(tmp, 0) })
	src := filepath.Join(tmp, "src")
	os.Mkdir(src, 0o755)
	f := filepath.Join(src, "f")
	os.WriteFile(f, []byte("acl\n"), 0o664)
	le := binary.LittleEndian
	acl := le.AppendUint32(nil, vfsACLVersion)
	for _, e := range [][3]uint32{{aclUserObj, 6, aclUndefinedID}, {aclUser, 4, 1234}, {aclGroupObj, 4, aclUndefinedID},
		{aclGroup, 6, 5678}, {aclMask, 6, aclUndefinedID}, {aclOther, 4, aclUndefinedID}} {
		acl = le.AppendUint16(acl, uint16(e[0]))
		acl = le.AppendUint16(acl, uint16(e[1]))
		acl = le.AppendUint32(acl, e[2])
	}
	if err := unix.Setxattr(f, "system.posix_acl_access", acl, 0); err != nil {
		t.Fatalf("tmpfs without POSIX ACLs? %v", err)
	}
	want := make([]byte, 256)
	n, err := unix.Getxattr(f, "system.posix_acl_access", want)
	if err != nil {
		t.Fatal(err)
	}
	want = want[:n]
	img := filepath.Join(tmp, "acl.img")
	os.WriteFile(img, nil, 0o644)
	os.Truncate(img, 8<<20)
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-O", "inline_data", "-d", src, img).CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v %s", err, out)
	}
	r, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fsys, err := Open(r, 8<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := NewVFS(fsys)
	ino, err := v.Lookup("/f")
	if err != nil {
		t.Fatal(err)
	}
	xs, err := v.Xattrs(ino)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	for _, x := range xs {
		switch x.Name {
		case "system.posix_acl_access":
			got = x.Value
		case "system.data":
			t.Error("system.data (inline data) returned as an xattr")
		}
	}
	if !bytes.Equal(got, want) {
		t.Errorf("ACL %x, kernel's %x", got, want)
	}
	raw, _ := fsys.Xattrs(uint32(ino))
	if !slices.ContainsFunc(raw, func(x Xattr) bool { return x.Name == "system.data" }) {
		t.Log("mke2fs stored /f without inline data; the system.data filter is not exercised")
	}
}

// TestScanInodesMatchesStat: the bulk scans (WalkInodes, and ScanInodes
// with its reused Stat) give, for every inode, what Stat gives on its
// own, and list the same inodes in the same order.
func TestScanInodesMatchesStat(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			fsys, _ := openFixture(t, name)
			v := NewVFS(fsys)
			var walked, scanned []vfs.Ino
			err := v.WalkInodes(context.Background(), func(ino vfs.Ino, st *vfs.Stat, err error) error {
				walked = append(walked, ino)
				if err != nil {
					return nil
				}
				one, err := v.Stat(ino)
				if err != nil || *one != *st {
					t.Errorf("inode %d: walk %+v, Stat %+v %v", ino, st, one, err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			err = v.ScanInodes(context.Background(), func(ino vfs.Ino, st *vfs.Stat) error {
				scanned = append(scanned, ino)
				one, err := v.Stat(ino)
				if err != nil || *one != *st {
					t.Errorf("inode %d: scan %+v, Stat %+v %v", ino, st, one, err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(walked, scanned) {
				t.Errorf("WalkInodes listed %d inodes, ScanInodes %d", len(walked), len(scanned))
			}
		})
	}
}

// TestParentAndConsistent: Parent gives, for every directory, the one
// whose listing names it (ReadDir is checked against debugfs above), the
// root its own parent; Consistent holds for the clean fixtures and fails
// for one whose superblock records errors, one opened for salvage and a
// view carrying a Stale note.
func TestParentAndConsistent(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			fsys, f := openFixture(t, name)
			v := NewVFS(fsys)
			if p, err := v.Parent(v.Root()); err != nil || p != v.Root() {
				t.Errorf("Parent(root) = %d, %v", p, err)
			}
			dirs := 0
			var walk func(d vfs.Ino)
			walk = func(d vfs.Ino) {
				ents, err := v.ReadDir(d)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range ents {
					if e.Type != vfs.DTDir {
						continue
					}
					dirs++
					if p, err := v.Parent(e.Ino); err != nil || p != d {
						t.Errorf("Parent(%d) = %d, %v; want %d", e.Ino, p, err, d)
					}
					walk(e.Ino)
				}
			}
			walk(v.Root())
			if dirs == 0 {
				t.Fatal("no directories")
			}
			if _, err := v.Parent(vfs.Ino(fsys.Superblock().FirstIno + 1)); err == nil {
				if st, _ := v.Stat(vfs.Ino(fsys.Superblock().FirstIno + 1)); st != nil && !st.IsDir() {
					t.Error("Parent of a non-directory gave no error")
				}
			}
			if !v.Consistent() {
				t.Fatal("a clean fixture is not taken as consistent")
			}
			st, _ := f.Stat()
			salv, err := Open(f, st.Size(), &Options{Salvage: true})
			if err != nil {
				t.Fatal(err)
			}
			if NewVFS(salv).Consistent() {
				t.Error("a salvage view is taken as consistent")
			}
			v.AddNote(vfs.Note{Offset: -1, Stale: true, Msg: "journal not replayed"})
			if v.Consistent() {
				t.Error("a view with a Stale note is taken as consistent")
			}
			// The same image with s_state = EXT2_ERROR_FS.
			b, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			sb := b[1024 : 1024+1024]
			binary.LittleEndian.PutUint16(sb[sbState:], StateErrors)
			binary.LittleEndian.PutUint32(sb[sbChecksum:], superblockChecksum(sb))
			bad, err := Open(bytes.NewReader(b), int64(len(b)), nil)
			if err != nil {
				t.Fatal(err)
			}
			if NewVFS(bad).Consistent() {
				t.Error("a filesystem with errors recorded is taken as consistent")
			}
		})
	}
}
