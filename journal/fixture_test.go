package journal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// The fixtures of fixtures/scripts/journal-fixtures.sh: journals written by
// debugfs (jo/jw/jc) and left unreplayed.
var journalFixtures = []string{"journal-ext4", "journal-csum2", "journal-ext3", "journal-fc", "journal-tidwrap"}

// TestFixtures replays each fixture and compares with e2fsck (as for the
// corpus), then with what debugfs logdump saw in the journal when the
// script wrote it.
func TestFixtures(t *testing.T) {
	for _, name := range journalFixtures {
		t.Run(name, func(t *testing.T) {
			img := fixturetest.Image(t, name)
			raw := readAll(t, img)
			res := checkAgainstE2fsck(t, name, img, raw, nil, nil)
			checkLogdump(t, name, res)
			checkDumpe2fs(t, name, res)
		})
	}
}

// TestV1Checksums: journals with v1 (crc32_be) transaction checksums.
// debugfs logdump does not check v1 checksums, so only e2fsck is the
// oracle here (checkAgainstE2fsck also requires the failed commit e2fsck
// reports). In journal-csum1, e2fsck stops at transaction 3: debugfs's v1
// checksum of that revoke-only transaction covers the revoke block, which
// jbd2's recovery leaves out. In journal-csum1-bad a flipped byte in a data
// block of transaction 2 breaks its commit checksum.
func TestV1Checksums(t *testing.T) {
	for _, name := range []string{"journal-csum1", "journal-csum1-bad"} {
		t.Run(name, func(t *testing.T) {
			img := fixturetest.Image(t, name)
			res := checkAgainstE2fsck(t, name, img, readAll(t, img), nil, nil)
			checkDumpe2fs(t, name, res)
			if !res.HasFailedCommit || res.ChecksumsOK || res.Transactions == 0 {
				t.Errorf("expected some transactions then a failed commit: %s", summary(res))
			}
		})
	}
}

// TestNeedsRecoveryFlag: a log with needs_recovery clear is discarded, as
// the kernel does, unless ReplayWithoutFlag asks for e2fsck -y's behaviour
// (then e2fsck is the oracle); needs_recovery set over an empty journal
// only clears the flag, as e2fsck does.
func TestNeedsRecoveryFlag(t *testing.T) {
	img := fixturetest.Image(t, "journal-noflag")
	raw := readAll(t, img)
	v, err := Open(bytes.NewReader(raw), int64(len(raw)), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Overlay != nil || v.ReplayErr != nil || v.Result == nil || v.Result.Replayed || len(v.Result.Notes) == 0 {
		t.Errorf("needs_recovery clear: replayed or silent: %+v %s", v, summary(v.Result))
	}
	res := checkAgainstE2fsck(t, "journal-noflag", img, raw, &Options{ReplayWithoutFlag: true}, nil)
	checkLogdump(t, "journal-noflag", res)

	img = fixturetest.Image(t, "journal-emptyflag")
	res = checkAgainstE2fsck(t, "journal-emptyflag", img, readAll(t, img), nil, nil)
	if res.Replayed || res.Blocks != 0 {
		t.Errorf("empty journal: %s", summary(res))
	}
}

// TestExternalJournal replays a filesystem whose journal is on another
// device, and checks the error without it.
func TestExternalJournal(t *testing.T) {
	img := fixturetest.Image(t, "journal-extdev-fs")
	jdev := fixturetest.Image(t, "journal-extdev-jdev")
	raw, jraw := readAll(t, img), readAll(t, jdev)

	fsys := openExt(t, bytes.NewReader(raw), int64(len(raw)))
	_, _, err := Replay(bytes.NewReader(raw), int64(len(raw)), fsys, nil)
	var ee *ExternalJournalError
	if !errors.As(err, &ee) || !errors.Is(err, ErrExternalJournal) {
		t.Fatalf("without the journal device: %v", err)
	}
	fields := dumpe2fsGolden(t, "journal-extdev")
	if got := uuidString(ee.UUID); got != fields["Journal UUID"] {
		t.Errorf("error names journal UUID %s, dumpe2fs %s", got, fields["Journal UUID"])
	}
	if got := fmt.Sprintf("0x%04x", ee.Dev); got != fields["Journal device"] {
		t.Errorf("error names device %s, dumpe2fs %s", got, fields["Journal device"])
	}
	t.Logf("without the device: %v", err)

	// The wrong device: the journal device's UUID must match.
	other := readAll(t, fixturetest.Image(t, "journal-ext4"))
	if _, _, err := Replay(bytes.NewReader(raw), int64(len(raw)), fsys, &Options{External: bytes.NewReader(other), ExternalSize: int64(len(other))}); err == nil {
		t.Errorf("replayed from a device that is not the journal")
	}

	opts := &Options{External: bytes.NewReader(jraw), ExternalSize: int64(len(jraw))}
	res := checkAgainstE2fsck(t, "journal-extdev", img, raw, opts, func() []string {
		return []string{"-j", copyFile(t, jdev, "jdev.img")}
	})
	if !res.External {
		t.Errorf("Result.External false")
	}
	checkLogdump(t, "journal-extdev", res)
	uuid, jsb, err := ReadExternal(bytes.NewReader(jraw), int64(len(jraw)))
	if err != nil {
		t.Fatal(err)
	}
	if uuid != ee.UUID {
		t.Errorf("journal device UUID %x, the filesystem names %x", uuid, ee.UUID)
	}
	jf := dumpe2fsGolden(t, "journal-extdev-jdev")
	checkJSB(t, jsb, jf)
	if len(jsb.Users) != 1 || uuidString(jsb.Users[0]) != jf["Journal users"] {
		t.Errorf("journal users %v, dumpe2fs %q", jsb.Users, jf["Journal users"])
	}
}

var (
	reLogTag    = regexp.MustCompile(`^  FS block (\d+) logged at journal block (\d+) \(flags 0x([0-9a-f]+)\)`)
	reLogFound  = regexp.MustCompile(`^Found expected sequence (\d+), type (\d+)`)
	reLogRevoke = regexp.MustCompile(`^  Revoke FS block (\d+)`)
)

// checkLogdump compares the Result with debugfs's view of the journal
// (logdump -a, captured by the fixture script): transactions with a commit
// block, revoke records, and which block copies a revoke must cancel
// (a revoke from transaction R cancels copies from transactions <= R, in
// jbd2's modulo-2^32 order of transaction ids).
func checkLogdump(t *testing.T, name string, res *Result) {
	t.Helper()
	type tagged struct {
		tx    int
		block uint64
	}
	var (
		tags      []tagged
		revokes   = map[uint64]uint32{} // block -> newest revoking tx
		nrevoke   = 0
		committed = map[int]bool{}
		tx        int
		escaped   = 0
	)
	pendingRevokes := map[int][]uint64{}
	for _, l := range strings.Split(string(fixturetest.Golden(t, name+".logdump")), "\n") {
		if m := reLogFound.FindStringSubmatch(l); m != nil {
			tx, _ = strconv.Atoi(m[1])
			if m[2] == "2" {
				committed[tx] = true
			}
		} else if m := reLogTag.FindStringSubmatch(l); m != nil {
			b, _ := strconv.ParseUint(m[1], 10, 64)
			tags = append(tags, tagged{tx, b})
			if f, _ := strconv.ParseUint(m[3], 16, 32); f&TagEscape != 0 {
				escaped++
			}
		} else if m := reLogRevoke.FindStringSubmatch(l); m != nil {
			b, _ := strconv.ParseUint(m[1], 10, 64)
			pendingRevokes[tx] = append(pendingRevokes[tx], b)
		}
	}
	for rtx, bs := range pendingRevokes {
		if !committed[rtx] {
			continue
		}
		for _, b := range bs {
			nrevoke++
			if old, ok := revokes[b]; !ok || int32(uint32(rtx)-old) > 0 {
				revokes[b] = uint32(rtx)
			}
		}
	}
	var replays, hits int
	for _, tg := range tags {
		if !committed[tg.tx] {
			continue
		}
		if r, ok := revokes[tg.block]; ok && int32(r-uint32(tg.tx)) >= 0 {
			hits++
		} else {
			replays++
		}
	}
	if escaped == 0 {
		t.Errorf("logdump shows no escaped block: the fixture lost its escape case")
	}
	if res.Transactions != len(committed) {
		t.Errorf("transactions: replayed %d, logdump shows %d committed", res.Transactions, len(committed))
	}
	if res.RevokeRecords != nrevoke || res.Revoked != hits || res.Blocks != replays {
		t.Errorf("revokes %d / revoked copies %d / copies replayed %d; logdump: %d / %d / %d",
			res.RevokeRecords, res.Revoked, res.Blocks, nrevoke, hits, replays)
	}
	if hits == 0 || nrevoke == 0 {
		t.Errorf("fixture has no revoke hits: it tests nothing about revokes")
	}
}

func dumpe2fsGolden(t *testing.T, name string) map[string]string {
	t.Helper()
	fields := map[string]string{}
	for _, l := range strings.Split(string(fixturetest.Golden(t, name+".dumpe2fs")), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return fields
}

// checkDumpe2fs compares the journal superblock with dumpe2fs -h.
func checkDumpe2fs(t *testing.T, name string, res *Result) {
	t.Helper()
	f := dumpe2fsGolden(t, name)
	checkJSB(t, res.Journal, f)
	if fc := f["Fast commit length"]; fc != "" && fc != strconv.Itoa(int(res.FastCommitBlocks)) {
		t.Errorf("fast commit length: %d, dumpe2fs %s", res.FastCommitBlocks, fc)
	}
	if strings.Contains(f["Journal features"], "fast_commit") && res.FastCommitBlocks == 0 {
		t.Errorf("fast_commit journal, no fast-commit area reported")
	}
}

func checkJSB(t *testing.T, jsb *Superblock, f map[string]string) {
	t.Helper()
	check := func(key, got string) {
		t.Helper()
		if f[key] != got {
			t.Errorf("%s: ours %q, dumpe2fs %q", key, got, f[key])
		}
	}
	check("Journal features", strings.Join(jsb.Features(), " "))
	check("Total journal blocks", strconv.Itoa(int(jsb.MaxLen)))
	check("Journal sequence", fmt.Sprintf("0x%08x", jsb.Sequence))
	check("Journal start", strconv.Itoa(int(jsb.Start)))
	if jsb.CsumV2or3() {
		check("Journal checksum", fmt.Sprintf("0x%08x", jsb.Checksum))
	}
	if v, ok := f["Journal first block"]; ok && v != strconv.Itoa(int(jsb.First)) {
		t.Errorf("first block %d, dumpe2fs %s", jsb.First, v)
	}
}

// TestImageNotWritten: replaying and reading everything leaves the image
// file unchanged.
func TestImageNotWritten(t *testing.T) {
	p := fixturetest.Copy(t, "journal-ext4")
	before := fixturetest.SHA256File(t, p)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	fsys := openExt(t, f, st.Size())
	ov, _, err := Replay(f, st.Size(), fsys, nil)
	if err != nil {
		t.Fatal(err)
	}
	walk(t, openExt(t, ov, ov.Size()))
	if after := fixturetest.SHA256File(t, p); after != before {
		t.Fatalf("image changed")
	}
}

// TestOpen covers the convenience entry point the CLI and inspect use.
func TestOpen(t *testing.T) {
	open := func(name string, opts *Options) *View {
		t.Helper()
		raw := readAll(t, fixturetest.Image(t, name))
		v, err := Open(bytes.NewReader(raw), int64(len(raw)), nil, opts)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	// Replayed: /newdir/g exists only after the replay (tx 2).
	v := open("journal-ext4", nil)
	if v.Overlay == nil || v.ReplayErr != nil || v.Result == nil || !v.Result.Replayed {
		t.Fatalf("journal-ext4: %+v", v)
	}
	if _, err := v.FS.Lookup("/newdir/g"); err != nil {
		t.Errorf("replayed view lacks /newdir/g: %v", err)
	}
	// No journal at all (ext2).
	if v := open("ext-ext2-1k", nil); v.Result != nil || v.Overlay != nil || v.ReplayErr != nil {
		t.Errorf("ext2: %+v", v)
	}
	// External journal not given: on-disk view plus the reason.
	v = open("journal-extdev-fs", nil)
	if !errors.Is(v.ReplayErr, ErrExternalJournal) || v.Overlay != nil {
		t.Errorf("extdev without device: %+v", v)
	}
	if _, err := v.FS.Lookup("/newdir/g"); err == nil {
		t.Errorf("unreplayed view has /newdir/g")
	}
}
