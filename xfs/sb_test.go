package xfs

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/vfs"
)

// xfsDB reads the "field = value" lines of an xfs_db print golden.
func xfsDB(t *testing.T, name string) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(fixturetest.Golden(t, name+".xfs_db"))))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " = ")
		if ok {
			m[k] = v
		}
	}
	return m
}

func TestSuperblockMatchesXfsDB(t *testing.T) {
	for _, name := range []string{"xfs-v5", "xfs-v4", "xfs-1k", "xfs-4ksect"} {
		t.Run(name, func(t *testing.T) {
			db := xfsDB(t, name)
			f := openImage(t, fixturetest.Image(t, name), vfs.OpenOptions{})
			s := f.Superblock()
			num := func(k string) uint64 {
				n, err := strconv.ParseUint(db[k], 0, 64)
				if err != nil {
					t.Fatalf("xfs_db %s = %q", k, db[k])
				}
				return n
			}
			for k, got := range map[string]uint64{
				"blocksize": uint64(s.BlockSize), "dblocks": s.DBlocks, "agblocks": uint64(s.AGBlocks),
				"agcount": uint64(s.AGCount), "rootino": s.RootIno, "sectsize": uint64(s.SectSize),
				"inodesize": uint64(s.InodeSize), "dirblklog": uint64(s.DirBlkLog), "logstart": s.LogStart,
				"logblocks": uint64(s.LogBlocks), "versionnum": uint64(s.VersionNum), "features2": uint64(s.Features2),
				"features_incompat": uint64(s.Incompat), "features_ro_compat": uint64(s.RoCompat),
			} {
				if _, ok := db[k]; !ok && strings.HasPrefix(k, "features_") {
					continue // v4: xfs_db does not print the v5 feature words
				}
				if want := num(k); got != want {
					t.Errorf("%s = %d, xfs_db says %d", k, got, want)
				}
			}
			info := f.Info()
			if want := strings.ReplaceAll(strings.Trim(db["fname"], "\""), `\000`, ""); info.Label != want {
				t.Errorf("label %q, xfs_db %q", info.Label, want)
			}
			if info.UUID != db["uuid"] {
				t.Errorf("uuid %q, xfs_db %q", info.UUID, db["uuid"])
			}
			if got, want := s.Version(), map[bool]int{true: 5, false: 4}[name != "xfs-v4"]; got != want {
				t.Errorf("version %d, want %d", got, want)
			}
		})
	}
}

// TestWalkInodesMatchesTree: every inode the tree reaches is walked, with
// the same Stat, and the walk is in increasing order.
func TestWalkInodesMatchesTree(t *testing.T) {
	for _, name := range []string{"xfs-v5", "xfs-1k"} {
		t.Run(name, func(t *testing.T) {
			f := openImage(t, fixturetest.Image(t, name), vfs.OpenOptions{})
			walked := map[vfs.Ino]*vfs.Stat{}
			var last vfs.Ino
			err := f.WalkInodes(context.Background(), func(ino vfs.Ino, st *vfs.Stat, err error) error {
				if err != nil {
					return err
				}
				if ino <= last {
					return fmt.Errorf("inode %d after %d", ino, last)
				}
				last = ino
				walked[ino] = st
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			rows := readManifest(t, name)
			seen := map[uint64]bool{}
			for _, r := range rows {
				ino, _ := strconv.ParseUint(r.ino, 10, 64)
				if seen[ino] {
					continue // a hard link
				}
				seen[ino] = true
				st, ok := walked[vfs.Ino(ino)]
				if !ok {
					t.Fatalf("%s (inode %d) not walked", r.path, ino)
				}
				if fmt.Sprint(st.Mtime.UnixNano()) != r.mtime {
					t.Errorf("%s: walked mtime %d, manifest %s", r.path, st.Mtime.UnixNano(), r.mtime)
				}
				delete(walked, vfs.Ino(ino))
			}
			// What remains: the root, and nothing else of the tree.
			delete(walked, f.Root())
			for ino, st := range walked {
				t.Errorf("walked inode %d (mode %o) is not in the tree", ino, st.Mode)
			}
		})
	}
}
