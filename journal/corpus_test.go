package journal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/ext"
)

// TestCorpus replays the journal of every j_* image of e2fsprogs' test
// suite and compares with e2fsck on copies:
//   - e2fsck -E journal_only (replay, nothing else): the overlay must equal
//     its image byte for byte (superblock fields e2fsck stamps aside), and
//     what e2fsck prints (failed commit, bad data block, recovery error,
//     invalid journal) must match the Result or the error;
//   - e2fsck -fy: the tree (paths, types, sha256 of every file) read through
//     the overlay must equal the tree of the checked copy read plainly.
func TestCorpus(t *testing.T) {
	requireCorpus(t)
	names, err := filepath.Glob(filepath.Join(corpusDir(), "j_*"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no j_* cases in %s", corpusDir())
	}
	for _, dir := range names {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			img := corpusImage(t, name)
			raw := readAll(t, img)
			if bytes.Contains(readAll(t, filepath.Join(dir, "name")), []byte("external journal device")) {
				checkExternalDevice(t, img, raw)
				return
			}
			checkAgainstE2fsck(t, name, img, raw, nil, nil)
		})
	}
}

// requireCorpus skips a test that needs the e2fsprogs corpus when it is
// absent, except under CI, which clones the repository with shared/ beside
// it: there the corpus must be present, and its absence is a failure.
func requireCorpus(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(corpusDir()); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("e2fsprogs corpus not present at %s", corpusDir())
		}
		t.Skipf("e2fsprogs corpus not present at %s (it lives outside the repository)", corpusDir())
	}
}

var (
	reFailedCommit = regexp.MustCompile(`Journal transaction (\d+) was corrupt, replay was aborted`)
	reBadData      = regexp.MustCompile(`Invalid checksum recovering data block (\d+)`)
)

// checkAgainstE2fsck is the oracle comparison for one image whose journal
// needs replay; it returns the Result.
//
// opts go to Replay; extra, when not nil, gives more e2fsck arguments for
// each run (e.g. -j with a fresh copy of an external journal device).
func checkAgainstE2fsck(t *testing.T, name, img string, raw []byte, opts *Options, extra func() []string) *Result {
	t.Helper()
	more := func() []string {
		if extra == nil {
			return nil
		}
		return extra()
	}
	jo := copyFile(t, img, name+".jo")
	joOut := e2fsck(t, jo, append(more(), "-E", "journal_only", "-y")...)
	fy := copyFile(t, img, name+".fy")
	e2fsck(t, fy, append(more(), "-fy")...)
	joImg, fyImg := readAll(t, jo), readAll(t, fy)
	t.Logf("e2fsck -E journal_only: %s", strings.TrimSpace(joOut))

	fsys := openExt(t, bytes.NewReader(raw), int64(len(raw)))
	if !fsys.Superblock().NeedsRecovery() && (opts == nil || !opts.ReplayWithoutFlag) {
		t.Fatalf("image has no needs_recovery flag: not a replay case")
	}
	ov, res, err := Replay(bytes.NewReader(raw), int64(len(raw)), fsys, opts)
	if res != nil {
		t.Logf("result: %s", summary(res))
	}
	bs := int(fsys.BlockSize())
	switch {
	case strings.Contains(joOut, "Superblock has an invalid journal"):
		// e2fsck dropped the journal without replaying it.
		var ce *CorruptError
		if !errors.As(err, &ce) {
			t.Fatalf("e2fsck found the journal invalid; Replay: %v", err)
		}
		t.Logf("refused as e2fsck does: %v", err)
		sameTree(t, "plain vs e2fsck -fy", walk(t, fsys), walk(t, openExt(t, bytes.NewReader(fyImg), int64(len(fyImg)))))
		return res
	case strings.Contains(joOut, "while recovering journal"):
		// Recovery failed before replaying: e2fsck wrote no block but
		// the superblocks.
		if err == nil {
			t.Fatalf("e2fsck failed recovery (%s); Replay succeeded", joOut)
		}
		t.Logf("refused as e2fsck does: %v", err)
		for _, b := range changedBlocks(raw, joImg, bs) {
			if b != uint64(1024/bs) && int64(b)*int64(bs) != jsbOffset(t, fsys, raw) {
				t.Errorf("e2fsck changed block %d although recovery failed: oracle assumption wrong", b)
			}
		}
		sameTree(t, "plain vs e2fsck -fy", walk(t, fsys), walk(t, openExt(t, bytes.NewReader(fyImg), int64(len(fyImg)))))
		return res
	}
	if err != nil {
		t.Fatalf("Replay: %v (e2fsck replayed: %s)", err, joOut)
	}
	jsbBlock := uint64(jsbOffset(t, fsys, raw) / int64(bs))
	var written []uint64 // blocks e2fsck wrote, superblocks aside
	for _, b := range changedBlocks(raw, joImg, bs) {
		if b != uint64(1024/bs) && b != jsbBlock {
			written = append(written, b)
		}
	}
	if res.Replayed != (res.Journal.Start != 0) || (len(written) > 0) != (res.Distinct > 0) {
		t.Errorf("e2fsck changed %d blocks; Result: %s", len(written), summary(res))
	}
	if m := reFailedCommit.FindStringSubmatch(joOut); m != nil {
		n, _ := strconv.Atoi(m[1])
		if !res.HasFailedCommit || res.FailedCommit != uint32(n) {
			t.Errorf("e2fsck: transaction %d corrupt; Result: failed commit %v %d", n, res.HasFailedCommit, res.FailedCommit)
		}
	} else if res.HasFailedCommit {
		t.Errorf("Result has failed commit %d, e2fsck none", res.FailedCommit)
	}
	if m := reBadData.FindStringSubmatch(joOut); m != nil {
		if res.BadBlocks == 0 || !slices.ContainsFunc(res.Notes, func(s string) bool { return strings.Contains(s, "filesystem block "+m[1]+" ") }) {
			t.Errorf("e2fsck: bad data block %s; Result: %d bad blocks, notes %q", m[1], res.BadBlocks, res.Notes)
		}
	}
	if csumErr := strings.Contains(joOut, "checksum error") || reFailedCommit.MatchString(joOut); csumErr == res.ChecksumsOK {
		t.Errorf("e2fsck checksum trouble %v, Result.ChecksumsOK %v", csumErr, res.ChecksumsOK)
	}

	// Byte for byte against the journal_only image.
	if d := compareBlocks(t, ov, joImg); len(d) > 0 {
		t.Errorf("%d blocks differ from e2fsck -E journal_only: %v", len(d), d[:min(len(d), 20)])
	}
	// The blocks e2fsck wrote are the ones we replayed (plus superblocks).
	for _, b := range written {
		if !slices.Contains(ov.Blocks(), b) {
			t.Errorf("e2fsck changed block %d, not among the replayed blocks", b)
		}
	}

	after := openExt(t, ov, ov.Size())
	if after.Superblock().NeedsRecovery() {
		t.Errorf("overlay still says needs_recovery")
	}
	for _, n := range after.Notes() {
		if strings.Contains(n.String(), "superblock") {
			t.Errorf("ext note on the overlay: %v", n)
		}
	}
	fyFS := openExt(t, bytes.NewReader(fyImg), int64(len(fyImg)))
	sameTree(t, "replayed vs e2fsck -fy", walk(t, after), walk(t, fyFS))
	// Reading the replayed view must be as clean as reading e2fsck's
	// result: no checksum or damage notes that the checked copy lacks.
	if len(fyFS.Notes()) == 0 {
		for _, n := range after.Notes() {
			t.Errorf("note reading the replayed view (none on e2fsck's copy): %v", n)
		}
	}
	return res
}

// jsbOffset is the byte offset of the internal journal's superblock (the
// physical block of the journal inode's logical block 0), or -1.
func jsbOffset(t *testing.T, fsys *ext.FS, raw []byte) int64 {
	t.Helper()
	ino := fsys.Superblock().JournalInum
	if ino == 0 {
		return -1
	}
	m, err := fsys.BlockMap(ino)
	if err != nil {
		return -1
	}
	for _, e := range m {
		if e.Logical == 0 {
			return int64(e.Physical) * fsys.BlockSize()
		}
	}
	return -1
}

func summary(r *Result) string {
	return fmt.Sprintf("replayed=%v tx %d..%d (%d) blocks=%d distinct=%d revokes=%d revoked=%d csumOK=%v failed=%v/%d bad=%d fc=%d/%v notes=%q",
		r.Replayed, r.FirstTransaction, r.EndTransaction, r.Transactions, r.Blocks, r.Distinct, r.RevokeRecords, r.Revoked,
		r.ChecksumsOK, r.HasFailedCommit, r.FailedCommit, r.BadBlocks, r.FastCommitBlocks, r.FastCommits, r.Notes)
}

// checkExternalDevice reads an external journal device's superblock and
// compares with dumpe2fs.
func checkExternalDevice(t *testing.T, img string, raw []byte) {
	out, err := exec.Command("dumpe2fs", "-h", img).CombinedOutput()
	if err != nil {
		t.Fatalf("dumpe2fs: %v\n%s", err, out)
	}
	fields := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok {
			fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	uuid, jsb, err := ReadExternal(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if got := uuidString(uuid); got != fields["Filesystem UUID"] {
		t.Errorf("device UUID %s, dumpe2fs %s", got, fields["Filesystem UUID"])
	}
	check := func(key, got string) {
		t.Helper()
		if fields[key] != got {
			t.Errorf("%s: ours %q, dumpe2fs %q", key, got, fields[key])
		}
	}
	check("Journal features", strings.Join(jsb.Features(), " "))
	check("Total journal blocks", strconv.Itoa(int(jsb.MaxLen)))
	check("Journal first block", strconv.Itoa(int(jsb.First)))
	check("Journal sequence", fmt.Sprintf("0x%08x", jsb.Sequence))
	check("Journal start", strconv.Itoa(int(jsb.Start)))
	check("Journal checksum", fmt.Sprintf("0x%08x", jsb.Checksum))
	if len(jsb.Users) != 1 {
		t.Fatalf("users %d", len(jsb.Users))
	}
	check("Journal users", uuidString(jsb.Users[0]))
}

func uuidString(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
