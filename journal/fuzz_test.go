package journal

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imgtool/imgtool/ext"
	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// fuzzSeedBlocks is how much of a real journal goes into a seed: the
// superblock and the start of the log.
const fuzzSeedBlocks = 72

// zeroExtended reads data, then zeros up to size: a journal whose tail the
// fuzz input leaves out.
type zeroExtended struct {
	data []byte
	size int64
}

func (z zeroExtended) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= z.size {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > z.size-off {
		n = int(z.size - off)
	}
	clear(p[:n])
	if off < int64(len(z.data)) {
		copy(p[:n], z.data[off:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// encodeBlocks writes journal blocks in the fuzz input's compact form: per
// block a u16 length and that many bytes, the rest of the block zero.
// Blocks that are not journal blocks (no magic: data copies) are dropped to
// length 0 when dropData is set.
func encodeBlocks(j []byte, bs int64, dropData bool) []byte {
	var out []byte
	for off := int64(0); off+bs <= int64(len(j)); off += bs {
		b := j[off : off+bs]
		n := len(b)
		for n > 0 && b[n-1] == 0 {
			n--
		}
		if dropData && off > 0 && be.Uint32(b) != Magic {
			n = 0
		}
		out = append(out, byte(n>>8), byte(n))
		out = append(out, b[:n]...)
	}
	return out
}

// decodeBlocks is the inverse of encodeBlocks, bounded to maxBlocks.
func decodeBlocks(in []byte, bs int64, maxBlocks int) []byte {
	var out []byte
	for len(in) >= 2 && len(out)/int(bs) < maxBlocks {
		n := int(in[0])<<8 | int(in[1])
		in = in[2:]
		n = min(n, len(in), int(bs))
		blk := make([]byte, bs)
		copy(blk, in[:n])
		in = in[n:]
		out = append(out, blk...)
	}
	return out
}

// journalSeed returns the first blocks of the journal of fixture image
// path (internal journal), and the block size.
func journalSeed(tb testing.TB, path string) ([]byte, int64) {
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	fsys, err := ext.Open(bytes.NewReader(raw), int64(len(raw)), nil)
	if err != nil {
		tb.Fatal(err)
	}
	f, err := fsys.OpenInode(fsys.Superblock().JournalInum)
	if err != nil {
		tb.Fatal(err)
	}
	bs := fsys.BlockSize()
	b := make([]byte, min(f.Size(), fuzzSeedBlocks*bs))
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		tb.Fatal(err)
	}
	return b, bs
}

// FuzzReplay feeds the recovery passes a journal: the input is journal
// block 0 (the journal superblock) onwards, in the compact form of
// encodeBlocks (journals are mostly zeros), zero-extended to s_maxlen
// blocks (at most 64 MiB), over a 16 MiB volume. flags bit 0 selects 4 KiB
// blocks (else 1 KiB), bit 1 makes every v2/v3 checksum pass, so that the
// fuzzer reaches the descriptor, revoke and commit parsing behind them; bit
// 2 clears needs_recovery, bit 3 sets Options.ReplayWithoutFlag.
// The overlay is then read in full.
func FuzzReplay(f *testing.F) {
	for _, name := range []string{"journal-ext4", "journal-csum2", "journal-ext3", "journal-fc"} {
		b, bs := journalSeed(f, fixturetest.Image(f, name))
		var fl uint8
		if bs == 4096 {
			fl = 1
		}
		f.Add(encodeBlocks(b, bs, false), fl)
		f.Add(encodeBlocks(b, bs, true), fl|2)
	}
	// The external journal device: its journal superblock is journal block
	// 2 of the device; give the fuzzer the device from block 0 as well.
	if raw, err := os.ReadFile(fixturetest.Image(f, "journal-extdev-jdev")); err == nil {
		f.Add(encodeBlocks(raw[:min(len(raw), fuzzSeedBlocks*1024)], 1024, false), uint8(0))
	}
	// The e2fsprogs corpus, when present (never committed); the small
	// images only (every fuzz worker decompresses them).
	if names, _ := filepath.Glob(filepath.Join(corpusDir(), "j_*")); len(names) > 0 {
		for _, dir := range names {
			if st, err := os.Stat(filepath.Join(dir, "image.gz")); err != nil || st.Size() > 64<<10 {
				continue
			}
			img := corpusImage(f, filepath.Base(dir))
			raw, _ := os.ReadFile(img)
			if fsys, err := ext.Open(bytes.NewReader(raw), int64(len(raw)), nil); err == nil && fsys.Superblock().JournalInum != 0 {
				b, bs := journalSeed(f, img)
				if bs == 1024 {
					f.Add(encodeBlocks(b, bs, false), uint8(0))
				}
			}
		}
	}

	f.Fuzz(func(t *testing.T, in []byte, flags uint8) {
		defer fixturetest.Watchdog(10 * time.Second)()
		bs := int64(1024)
		if flags&1 != 0 {
			bs = 4096
		}
		data := decodeBlocks(in, bs, 4*fuzzSeedBlocks)
		if int64(len(data)) < bs {
			return
		}
		// The journal's length: s_maxlen, as the journal superblock says.
		total := int64(be.Uint32(data[jsMaxLen:]))
		if total < int64(len(data))/bs {
			total = int64(len(data)) / bs
		}
		total = min(total, (64<<20)/bs)
		dev := &device{r: zeroExtended{data, total * bs}, size: total * bs, bs: bs, total: uint64(total)}

		const volSize = 16 << 20
		vol := zeroExtended{nil, volSize}
		fsb := &ext.Superblock{
			FeatureCompat:   ext.CompatHasJournal,
			FeatureIncompat: ext.IncompatRecover,
			Offset:          1024,
		}
		if flags&4 != 0 {
			fsb.FeatureIncompat = 0 // needs_recovery clear
		}
		ov, res, err := replayLog(vol, volSize, bs, fsb, dev, 0, flags&8 != 0, flags&2 != 0)
		if err != nil {
			if ov != nil {
				t.Fatalf("overlay with error %v", err)
			}
			_ = err.Error()
			return
		}
		if res == nil {
			t.Fatal("nil result without error")
		}
		if res.Distinct != len(ov.Blocks()) || res.Distinct > res.Blocks {
			t.Fatalf("distinct %d, blocks %d, overlay %d", res.Distinct, res.Blocks, len(ov.Blocks()))
		}
		// Read every replayed block through the overlay, and the start.
		buf := make([]byte, bs)
		for _, b := range ov.Blocks() {
			if _, err := ov.ReadAt(buf, int64(b)*bs); err != nil {
				t.Fatalf("overlay read of block %d: %v", b, err)
			}
		}
		if _, err := ov.ReadAt(make([]byte, 4*bs), 0); err != nil {
			t.Fatalf("overlay read: %v", err)
		}
	})
}

// TestFuzzHarnessReplays checks the fuzz harness itself: a fixture's
// journal, through the compact encoding and the zero-extended device,
// replays the same transactions and blocks as Replay on the image, so the
// fuzzer starts from inputs that reach PASS_REPLAY.
func TestFuzzHarnessReplays(t *testing.T) {
	for _, name := range []string{"journal-ext4", "journal-csum2", "journal-fc"} {
		img := fixturetest.Image(t, name)
		raw := readAll(t, img)
		fsys := openExt(t, bytes.NewReader(raw), int64(len(raw)))
		_, want, err := Replay(bytes.NewReader(raw), int64(len(raw)), fsys, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, bs := journalSeed(t, img)
		data := decodeBlocks(encodeBlocks(b, bs, false), bs, 4*fuzzSeedBlocks)
		total := int64(be.Uint32(data[jsMaxLen:]))
		dev := &device{r: zeroExtended{data, total * bs}, size: total * bs, bs: bs, total: uint64(total)}
		fsb := &ext.Superblock{FeatureCompat: ext.CompatHasJournal, FeatureIncompat: ext.IncompatRecover, Offset: 1024}
		_, got, err := replayLog(zeroExtended{nil, int64(len(raw))}, int64(len(raw)), bs, fsb, dev, 0, false, false)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Transactions != want.Transactions || got.Blocks != want.Blocks || got.Revoked != want.Revoked || !got.ChecksumsOK {
			t.Errorf("%s: harness %s; Replay %s", name, summary(got), summary(want))
		}
	}
}
