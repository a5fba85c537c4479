package inspect

import (
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/image"
	"github.com/imgtool/imgtool/journal"
	"github.com/imgtool/imgtool/vfs"
)

func inspectWith(t *testing.T, name string, opts *Options) *Tree {
	t.Helper()
	path := fixturetest.Image(t, name)
	im, err := image.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { im.Close() })
	tree, err := Inspect([]Source{{Name: path, R: im, Size: im.Size()}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// TestReplayCount counts journal replays (issue 12 point 4): inspecting a
// needs_recovery volume replays nothing unless asked; opening it replays
// once however often it is opened; inspecting with OpenJournaled replays
// once, and the note comes from that same replay, which later opens
// reuse.
func TestReplayCount(t *testing.T) {
	before := journal.Replays()
	tree := inspectWith(t, "journal-ext4", nil)
	v := tree.Roots[0]
	if n := journal.Replays() - before; n != 0 {
		t.Errorf("Inspect replayed %d times; want 0 (nobody opened the volume)", n)
	}
	if !strings.Contains(strings.Join(v.Notes, "\n"), "journal needs recovery") {
		t.Errorf("notes %q do not say the journal needs recovery", v.Notes)
	}
	a, err := v.OpenFS(vfs.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := v.OpenFS(vfs.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Error("a second OpenFS with the same options opened the volume again")
	}
	if n := journal.Replays() - before; n != 1 {
		t.Errorf("two opens replayed %d times; want 1", n)
	}
	if !hasNote(a, "journal replayed in memory") {
		t.Errorf("opened view's notes %v do not say the journal was replayed", a.Notes())
	}
	// Another view (the on-disk state) is another open, without replay.
	raw, err := v.OpenFS(vfs.OpenOptions{NoJournal: true})
	if err != nil || raw == a {
		t.Fatalf("NoJournal view: %v (same as replayed: %v)", err, raw == a)
	}
	if n := journal.Replays() - before; n != 1 {
		t.Errorf("NoJournal open replayed: %d replays", n)
	}

	before = journal.Replays()
	tree = inspectWith(t, "journal-ext4", &Options{OpenJournaled: true})
	v = tree.Roots[0]
	if !strings.Contains(strings.Join(v.Notes, "\n"), "journal replayed in memory") {
		t.Errorf("OpenJournaled: notes %q do not say what the replay did", v.Notes)
	}
	if _, err := v.OpenFS(vfs.OpenOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := journal.Replays() - before; n != 1 {
		t.Errorf("Inspect(OpenJournaled) then OpenFS: %d replays; want 1", n)
	}
}

func hasNote(fsys vfs.FS, s string) bool {
	for _, n := range fsys.Notes() {
		if strings.Contains(n.Msg, s) {
			return true
		}
	}
	return false
}

// TestOpenFSStale: a filesystem whose external journal is not given is
// shown as on disk, with a Stale note naming the missing device.
func TestOpenFSStale(t *testing.T) {
	v := inspectWith(t, "journal-extdev-fs", nil).Roots[0]
	fsys, err := v.OpenFS(vfs.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stale := false
	for _, n := range fsys.Notes() {
		if n.Stale && strings.Contains(n.Msg, "external device") {
			stale = true
		}
	}
	if !stale {
		t.Errorf("notes %v: no Stale note about the external journal", fsys.Notes())
	}
}

// TestOpenFSTypes opens the GPT fixture's FAT32, squashfs and ISO 9660
// partitions through the registration table, and refuses swap.
func TestOpenFSTypes(t *testing.T) {
	tree := inspectWith(t, "otherfs-gpt", nil)
	want := map[string]string{"p1": "vfat", "p2": "squashfs", "p3": "iso9660"}
	for addr, typ := range want {
		v, err := tree.Resolve(addr)
		if err != nil {
			t.Fatal(err)
		}
		fsys, err := v.OpenFS(vfs.OpenOptions{})
		if err != nil {
			t.Errorf("%s: %v", addr, err)
			continue
		}
		if got := fsys.Info().Type; got != typ {
			t.Errorf("%s: type %s, want %s", addr, got, typ)
		}
		if _, err := fsys.Lookup("/README.txt"); err != nil {
			t.Errorf("%s: /README.txt: %v", addr, err)
		}
	}
	if _, err := tree.Roots[0].OpenFS(vfs.OpenOptions{}); err == nil || !strings.Contains(err.Error(), "gpt") {
		t.Errorf("opening the partition table as a filesystem: %v", err)
	}
}
