package salvage

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/extract"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/vfs"
	"github.com/imgtool/imgtool/xfs"
	"github.com/ulikunitz/xz"
)

// xfsRow is one line of fixtures/golden/NAME.manifest.xz (the kernel's
// view of an XFS fixture, fixtures/scripts/xfs-lib.sh): path, type, size,
// inode, and a file's sha256 or a symlink's target.
type xfsRow struct {
	path, typ string
	size      int64
	ino       uint64
	sum       string
}

func xfsManifest(t *testing.T, name string) []xfsRow {
	t.Helper()
	f, err := os.Open(filepath.Join(fixturetest.Dir(), "golden", name+".manifest.xz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := xz.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var rows []xfsRow
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		if len(c) != 12 || strings.HasPrefix(c[0], "#") {
			continue
		}
		size, _ := strconv.ParseInt(c[5], 10, 64)
		ino, _ := strconv.ParseUint(c[9], 10, 64)
		rows = append(rows, xfsRow{c[0], c[1], size, ino, c[10]})
	}
	if len(rows) < 100 {
		t.Fatalf("%s: only %d rows", name, len(rows))
	}
	return rows
}

type xfsVol struct {
	*os.File
	size int64
}

func (v xfsVol) Size() int64 { return v.size }

// openXFS opens an image the way inspect's registration table does for
// extract --salvage (xfs.Driver, OpenOptions.Salvage).
func openXFS(t *testing.T, img string) vfs.FS {
	t.Helper()
	if !xfs.Driver.Salvage {
		t.Fatal("xfs.Driver does not declare Salvage")
	}
	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	st, _ := fh.Stat()
	fsys, err := xfs.Driver.Open(xfsVol{fh, st.Size()}, filepath.Base(img), vfs.OpenOptions{Salvage: true})
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

func salvageXFS(t *testing.T, img string) (*Report, string) {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "out")
	root := os.Geteuid() == 0
	rep, err := RunVFS(t.Context(), openXFS(t, img), dest, Options{Extract: extract.Options{Owner: root, Devices: root}})
	if err != nil {
		t.Fatal(err)
	}
	return rep, dest
}

func sha256Of(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Error(err)
		return ""
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}

// checkXFSTree compares dest with the manifest rows keep selects: every
// entry present with its type, files with their size and sha256, symlinks
// with their target. It returns how many it checked.
func checkXFSTree(t *testing.T, dest string, rows []xfsRow, keep func(xfsRow) bool) int {
	t.Helper()
	n := 0
	for _, r := range rows {
		if !keep(r) || ((r.typ == "char" || r.typ == "block") && os.Geteuid() != 0) {
			continue
		}
		p := filepath.Join(dest, r.path)
		st, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%s: missing: %v", r.path, err)
			continue
		}
		switch r.typ {
		case "dir":
			if !st.IsDir() {
				t.Errorf("%s: not a directory", r.path)
			}
		case "symlink":
			if got, _ := os.Readlink(p); got != r.sum {
				t.Errorf("%s: target %q, want %q", r.path, got, r.sum)
			}
		case "file":
			if st.Size() != r.size || sha256Of(t, p) != r.sum {
				t.Errorf("%s: %d bytes, content differs from the kernel's (want %d bytes, %s)", r.path, st.Size(), r.size, r.sum)
			}
		}
		n++
	}
	return n
}

// patch writes b at off in img.
func patch(t *testing.T, img string, off int64, b []byte) {
	t.Helper()
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// (1) The primary superblock zeroed: the secondary of AG 1 is used (the
// report says where), and the whole tree comes out equal to the kernel's
// manifest of the undamaged image, with nothing lost or orphaned.
func TestXFSSalvageSecondarySuperblock(t *testing.T) {
	img := fixturetest.Copy(t, "xfs-1k")
	sb := openXFS(t, img).(*xfs.FS).Superblock()
	agBytes := int64(sb.AGBlocks) * int64(sb.BlockSize)
	patch(t, img, 0, make([]byte, 512))
	rep, dest := salvageXFS(t, img)
	if rep.Superblock <= 0 || rep.Superblock%agBytes != 0 || rep.Superblock >= int64(sb.AGCount)*agBytes {
		t.Errorf("superblock at %d, want a secondary's at an AG boundary (AGs of %d bytes)", rep.Superblock, agBytes)
	}
	rows := xfsManifest(t, "xfs-1k")
	if n := checkXFSTree(t, dest, rows, func(xfsRow) bool { return true }); n != len(rows) {
		t.Errorf("checked %d of %d manifest rows", n, len(rows))
	}
	if rep.Orphans != 0 || rep.FilesLost != 0 || rep.DirsLost != 0 || rep.FilesPartial != 0 {
		t.Errorf("losses on an intact tree: %s", rep.Summary(20))
	}
	if want := len(rows) - countType(rows, "dir"); rep.FilesRecovered != want {
		t.Errorf("files recovered %d, want the manifest's %d non-directories", rep.FilesRecovered, want)
	}
	js, err := os.ReadFile(filepath.Join(dest, ReportName))
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js, &back); err != nil || back.Superblock != rep.Superblock {
		t.Errorf("salvage-report.json: superblock_offset %d (%v), want %d", back.Superblock, err, rep.Superblock)
	}
	if !slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.Contains(n, "secondary") }) {
		t.Errorf("no note about the secondary superblock: %q", rep.Notes)
	}
}

func countType(rows []xfsRow, typ string) int {
	n := 0
	for _, r := range rows {
		if r.typ == typ {
			n++
		}
	}
	return n
}

// filesDirDamage zeroes the inode of /files (a shortform directory of 9
// files, two names of one of them) in a copy of xfs-1k. It returns the
// image, the directory's inode and byte offset, and the manifest rows of
// the files it named (inode -> row).
func filesDirDamage(t *testing.T) (img string, dirIno uint64, dirOff int64, lost map[uint64]xfsRow) {
	img = fixturetest.Copy(t, "xfs-1k")
	f := openXFS(t, img).(*xfs.FS)
	ino, err := f.Lookup("/files")
	if err != nil {
		t.Fatal(err)
	}
	in, err := f.Inode(uint64(ino))
	if err != nil {
		t.Fatal(err)
	}
	patch(t, img, in.Off, make([]byte, f.Superblock().InodeSize))
	lost = map[uint64]xfsRow{}
	for _, r := range xfsManifest(t, "xfs-1k") {
		if strings.HasPrefix(r.path, "files/") {
			lost[r.ino] = r
		}
	}
	if len(lost) != 9 {
		t.Fatalf("fixture: %d inodes under /files, want 9", len(lost))
	}
	return img, uint64(ino), in.Off, lost
}

// checkOrphans asserts that the unreachable inodes of rep are exactly
// lost, each extracted as #orphans/<inode> with the kernel's content, and
// the rest of the tree intact.
func checkOrphans(t *testing.T, rep *Report, dest string, lost map[uint64]xfsRow) {
	t.Helper()
	got := map[uint64]bool{}
	for _, e := range rep.Entries {
		if e.has(Unreachable) {
			got[e.Inode()] = true
			if e.Path != OrphansDir+"/"+strconv.FormatUint(e.Inode(), 10) {
				t.Errorf("orphan entry path %q", e.Path)
			}
		}
	}
	for ino, r := range lost {
		if !got[ino] {
			t.Errorf("inode %d (%s) not reported unreachable", ino, r.path)
		}
		p := filepath.Join(dest, OrphansDir, strconv.FormatUint(ino, 10))
		if sum := sha256Of(t, p); r.typ == "file" && sum != r.sum {
			t.Errorf("%s: #orphans/%d content %s, want the kernel's %s", r.path, ino, sum, r.sum)
		}
	}
	for ino := range got {
		if _, ok := lost[ino]; !ok {
			t.Errorf("inode %d reported unreachable, but a directory names it", ino)
		}
	}
	if rep.Orphans != len(lost) {
		t.Errorf("report counts %d orphans, want %d", rep.Orphans, len(lost))
	}
	ents, _ := os.ReadDir(filepath.Join(dest, OrphansDir))
	if len(ents) != len(lost) {
		t.Errorf("%d entries in #orphans, want %d", len(ents), len(lost))
	}
	rows := xfsManifest(t, "xfs-1k")
	checkXFSTree(t, dest, rows, func(r xfsRow) bool { return r.path != "files" && !strings.HasPrefix(r.path, "files/") })
}

// xfsRepairOrphans runs xfs_repair on a copy of img and returns the
// inodes it moved into lost+found (named by their numbers), as xfs_db
// lists them.
func xfsRepairOrphans(t *testing.T, img string) map[uint64]bool {
	t.Helper()
	for _, tool := range []string{"xfs_repair", "xfs_db"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Logf("%s not installed: the oracle comparison is left out (the manifest's is done)", tool)
			return nil
		}
	}
	cp := filepath.Join(t.TempDir(), "repair.img")
	if err := fixturetest.CopySparse(img, cp); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("xfs_repair", cp).CombinedOutput(); err != nil {
		t.Fatalf("xfs_repair: %v\n%s", err, out)
	}
	out, err := exec.Command("xfs_db", "-r", "-c", "path /lost+found", "-c", "ls", cp).CombinedOutput()
	if err != nil {
		t.Fatalf("xfs_db: %v\n%s", err, out)
	}
	got := map[uint64]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || f[len(f)-2] == "." || f[len(f)-2] == ".." {
			continue
		}
		if n, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			got[n] = true
		}
	}
	if len(got) == 0 {
		t.Fatalf("xfs_repair moved nothing to lost+found:\n%s", out)
	}
	return got
}

func sameSet(t *testing.T, what string, got map[uint64]bool, want map[uint64]xfsRow) {
	t.Helper()
	if got == nil {
		return
	}
	for ino := range want {
		if !got[ino] {
			t.Errorf("%s: inode %d not moved to lost+found", what, ino)
		}
	}
	for ino := range got {
		if _, ok := want[ino]; !ok {
			t.Errorf("%s: inode %d moved to lost+found, not by us", what, ino)
		}
	}
}

// (2) /files's inode zeroed: the directory is lost (the report names its
// inode and byte offset), and the 9 inodes it named, found through the
// inode btree, come out under #orphans with the kernel's content; the
// set equals what xfs_repair moves into lost+found (on a copy).
func TestXFSSalvageOrphans(t *testing.T) {
	img, dirIno, dirOff, lost := filesDirDamage(t)
	sameSet(t, "xfs_repair", xfsRepairOrphans(t, img), lost)
	rep, dest := salvageXFS(t, img)
	checkOrphans(t, rep, dest, lost)
	var dir *Entry
	for i, e := range rep.Entries {
		if e.Path == "/files" {
			dir = &rep.Entries[i]
		}
	}
	if dir == nil || dir.Status != StatusLost || !dir.has(BadInode) || dir.Inode() != dirIno ||
		!strings.Contains(dir.Detail, fmt.Sprintf("inode %d", dirIno)) || !strings.Contains(dir.Detail, fmt.Sprint(dirOff)) {
		t.Errorf("/files entry %+v; want lost, bad-inode, naming inode %d and offset %d", dir, dirIno, dirOff)
	}
	if !rep.Partial() {
		t.Error("report not partial")
	}
	js, _ := os.ReadFile(filepath.Join(dest, ReportName))
	for ino := range lost {
		if !bytes.Contains(js, []byte(fmt.Sprintf(`"path": "#orphans/%d"`, ino))) {
			t.Errorf("salvage-report.json does not name #orphans/%d", ino)
		}
	}
}

// (3) The same damage, and AG 2's inode btree root (the AG of /files and
// its files) overwritten: the AG's inode chunks are scanned instead, and
// the same 9 orphans come out; xfs_repair (on a copy) agrees.
func TestXFSSalvageOrphansInobtDamaged(t *testing.T) {
	img, dirIno, _, lost := filesDirDamage(t)
	f := openXFS(t, img).(*xfs.FS)
	sb := f.Superblock()
	ag := uint32(dirIno >> (sb.AGBlkLog + sb.InoPBLog))
	agi, err := f.ReadAGI(ag)
	if err != nil {
		t.Fatal(err)
	}
	off := (int64(ag)*int64(sb.AGBlocks) + int64(agi.Root)) * int64(sb.BlockSize)
	patch(t, img, off, []byte("JUNK"))
	sameSet(t, "xfs_repair", xfsRepairOrphans(t, img), lost)
	rep, dest := salvageXFS(t, img)
	checkOrphans(t, rep, dest, lost)
	if !slices.ContainsFunc(rep.Notes, func(n string) bool {
		return strings.Contains(n, fmt.Sprintf("AG %d", ag)) && strings.Contains(n, "scanning") && strings.Contains(n, fmt.Sprintf("%#x", off))
	}) {
		t.Errorf("no note of the chunk scan of AG %d naming offset %d: %q", ag, off, rep.Notes)
	}
}

// (4) A file's inode with a bad CRC (an unused field changed): the file
// comes out whole with the kernel's content, reported suspect for its
// checksum, naming the inode's byte offset.
func TestXFSSalvageInodeCRC(t *testing.T) {
	img := fixturetest.Copy(t, "xfs-1k")
	f := openXFS(t, img).(*xfs.FS)
	ino, err := f.Lookup("/files/random")
	if err != nil {
		t.Fatal(err)
	}
	in, _ := f.Inode(uint64(ino))
	patch(t, img, in.Off+88, []byte{0xab, 0xcd}) // di_dmstate: only the CRC changes
	rep, dest := salvageXFS(t, img)
	checkXFSTree(t, dest, xfsManifest(t, "xfs-1k"), func(xfsRow) bool { return true })
	var got []Entry
	for _, e := range rep.Entries {
		if e.Status != StatusRecovered {
			got = append(got, e)
		}
	}
	if len(got) != 1 || got[0].Path != "/files/random" || got[0].Status != StatusSuspect || !got[0].has(Checksum) ||
		!strings.Contains(got[0].Detail, fmt.Sprintf("%#x", in.Off)) || got[0].Recovered != 100000 {
		t.Fatalf("entries %+v; want one suspect /files/random (checksum, offset %#x, 100000 bytes)", got, in.Off)
	}
	if rep.FilesSuspect != 1 || rep.FilesLost != 0 || rep.Orphans != 0 {
		t.Errorf("totals: %s", rep.Summary(5))
	}
}

// Report entries hold 64-bit XFS inode numbers in the same "inode" field,
// and an ext entry is written exactly as before.
func TestEntryJSONInode64(t *testing.T) {
	e := Entry{Path: "#orphans/1099511627776", Ino64: 1 << 40, Type: "file", Status: StatusRecovered, Reasons: []Reason{Unreachable}}
	b, err := json.Marshal(e)
	if err != nil || !strings.Contains(string(b), `"inode":1099511627776`) {
		t.Fatalf("%s %v", b, err)
	}
	var back Entry
	if err := json.Unmarshal(b, &back); err != nil || back.Inode() != 1<<40 || back.Ino != 0 {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	old := Entry{Path: "/a", Ino: 12, Type: "file", Status: StatusLost, Reasons: []Reason{BadBlock}, Size: 5, Recovered: 1, Lost: 4, Detail: "x"}
	b, _ = json.Marshal(old)
	if want := `{"path":"/a","inode":12,"type":"file","status":"lost","reasons":["bad-block"],"size":5,"recovered_bytes":1,"lost_bytes":4,"detail":"x"}`; string(b) != want {
		t.Fatalf("ext entry written as %s, want %s", b, want)
	}
}
