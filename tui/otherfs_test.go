package tui

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// otherfsManifest is the source tree the otherfs fixtures were built from
// (fixtures/scripts/otherfs-fixtures.sh: python's lstat and sha256).
type otherfsManifest struct {
	Path   string `json:"path"`
	Type   string `json:"type"`
	Mode   uint32 `json:"mode"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// TestOtherFSBrowseAndExtract (issue 12 point 2): on the GPT fixture, the
// TUI opens the FAT32, squashfs and ISO 9660 partitions, lists the root as
// the source tree holds it, previews README.txt, and extracts the marked
// README.txt and dir1 (recursively) with the content of the source tree
// (and, where the format stores it, its permission bits).
func TestOtherFSBrowseAndExtract(t *testing.T) {
	var manifest []otherfsManifest
	if err := json.Unmarshal(fixturetest.Golden(t, "otherfs-manifest.json"), &manifest); err != nil {
		t.Fatal(err)
	}
	tree := openTree(t, "otherfs-gpt")
	for _, c := range []struct {
		vol, kind string
		perms     bool
	}{{"p1", "fat32", false}, {"p2", "squashfs", true}, {"p3", "iso9660", true}} {
		t.Run(c.kind, func(t *testing.T) {
			fat := c.kind == "fat32"
			want := map[string]otherfsManifest{}
			var top []string
			for _, e := range manifest {
				// FAT holds no symlinks or hard links, and mtools stored
				// the non-ASCII name as raw 8.3 bytes (the script says so).
				if fat && (e.Path == "/links" || strings.HasPrefix(e.Path, "/links/") || e.Path == "/ünïcödé.txt") {
					continue
				}
				want[e.Path] = e
				if e.Path != "/" && strings.Count(e.Path, "/") == 1 {
					top = append(top, e.Path[1:])
				}
			}
			tm := start(t, tree, 120, 30)
			for range 20 {
				done := make(chan bool, 1)
				tm.Send(funcMsg(func(m *Model) {
					v := m.vols.selected()
					done <- v != nil && v.Address == c.vol
				}))
				if <-done {
					break
				}
				tm.Send(tea.KeyPressMsg{Code: 'j', Text: "j"})
			}
			tm.Send(kEnter)
			waitModel(t, tm, c.vol+" root listing", func(m *Model) bool {
				v, d := m.Dir()
				return v == c.vol && d == "/" && idle(m) && len(m.Shown()) > 0
			})
			ch := make(chan []string, 1)
			tm.Send(funcMsg(func(m *Model) { ch <- slices.Clone(m.Shown()) }))
			got := <-ch
			slices.Sort(got)
			slices.Sort(top)
			if !slices.Equal(got, top) {
				t.Errorf("root lists %q\nsource has %q", got, top)
			}

			tm.Type("/README.txt")
			tm.Send(kEnter)
			waitModel(t, tm, "README.txt preview", func(m *Model) bool {
				return m.Current() == "README.txt" && idle(m) && strings.Contains(m.prev.vp.GetContent(), "read me first")
			})
			tm.Send(kSpace)
			tm.Send(kEsc)
			tm.Type("/dir1")
			tm.Send(kEnter)
			waitModel(t, tm, "cursor on dir1", func(m *Model) bool { return m.Current() == "dir1" })
			tm.Send(kSpace)
			tm.Send(kEsc)
			waitModel(t, tm, "two marks", func(m *Model) bool {
				return slices.Equal(m.Marked(), []string{"/README.txt", "/dir1"})
			})
			dest := filepath.Join(t.TempDir(), "out")
			tm.Type("x")
			waitModel(t, tm, "destination prompt", func(m *Model) bool { return m.ex.state == exAsk })
			tm.Send(kCtrlU)
			tm.Type(dest)
			tm.Send(kEnter)
			waitModel(t, tm, "extraction summary", func(m *Model) bool { return m.LastExtract() != nil })
			tm.Send(kEnter)
			tm.Type("q")
			fm := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*Model)
			if s := fm.LastExtract(); s.Err != nil || s.Partial {
				t.Fatalf("extraction: err %v, lost %q", s.Err, s.Lost)
			}

			// Every extracted path is in the source tree under / or
			// /dir1, with its content; and every source path there was
			// extracted.
			seen := map[string]bool{}
			err := filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
				if err != nil || p == dest {
					return err
				}
				rel := "/" + filepath.ToSlash(strings.TrimPrefix(p, dest+"/"))
				seen[rel] = true
				e, ok := want[rel]
				if !ok {
					t.Errorf("%s: extracted, not in the source tree", rel)
					return nil
				}
				fi, _ := d.Info()
				if (e.Type == "dir") != d.IsDir() {
					t.Errorf("%s: dir %v, source %s", rel, d.IsDir(), e.Type)
					return nil
				}
				if c.perms && uint32(fi.Mode().Perm()) != e.Mode&0o777 {
					t.Errorf("%s: mode %#o, source %#o", rel, fi.Mode().Perm(), e.Mode&0o777)
				}
				if e.Type == "file" {
					b, err := os.ReadFile(p)
					if err != nil {
						t.Error(err)
						return nil
					}
					sum := sha256.Sum256(b)
					if hex.EncodeToString(sum[:]) != e.SHA256 || int64(len(b)) != e.Size {
						t.Errorf("%s: %d bytes, sha256 differs from the source's %d", rel, len(b), e.Size)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for p := range want {
				if (p == "/README.txt" || p == "/dir1" || strings.HasPrefix(p, "/dir1/")) && !seen[p] {
					t.Errorf("%s: not extracted", p)
				}
			}
		})
	}
}
