package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os/exec"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// dumpLike is input shaped like a dump of small files: 1 KiB headers that
// differ in a few counters, each followed by a short patterned file.
func dumpLike(n int, seed int64) []byte {
	r := rand.New(rand.NewSource(seed))
	var b bytes.Buffer
	hdr := make([]byte, 1024)
	for i := 0; b.Len() < n; i++ {
		clear(hdr)
		copy(hdr, fmt.Sprintf("TS_INODE %08d tapea %010d size %d", i, i*3, i%3000))
		hdr[900] = byte(r.Intn(256)) // a checksum byte
		b.Write(hdr)
		line := fmt.Appendf(nil, "%08d ", i)
		for k := 0; k < (i*7919)%3072/9; k++ {
			b.Write(line)
		}
	}
	return b.Bytes()[:n]
}

func compressAdaptive(t *testing.T, in []byte, window int64) ([]byte, *adaptiveZstd) {
	t.Helper()
	var out bytes.Buffer
	a, err := newAdaptiveZstd(context.Background(), &out)
	if err != nil {
		t.Fatal(err)
	}
	a.frameSize = window
	// Odd write sizes, as the dump writer's bufio flushes are not aligned.
	for rest := in; len(rest) > 0; {
		k := min(len(rest), 1+len(rest)%70000)
		if _, err := a.Write(rest[:k]); err != nil {
			t.Fatal(err)
		}
		rest = rest[k:]
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), a
}

// TestAdaptiveZstd: input that compresses very well is switched to the
// best level and comes out smaller than at the default level alone;
// random input stays at the default level; either way the real zstd
// decompresses the stream to the input (and so does ours).
func TestAdaptiveZstd(t *testing.T) {
	zstdCLI, err := exec.LookPath("zstd")
	if err != nil {
		t.Fatalf("zstd(1) is needed (Debian package zstd): %v", err)
	}
	const window = 1 << 20
	r := rand.New(rand.NewSource(1))
	random := make([]byte, 3*window)
	r.Read(random)
	mixed := append(append(dumpLike(3*window, 2), random...), dumpLike(3*window, 3)...)
	for _, c := range []struct {
		name     string
		in       []byte
		switched bool
	}{
		{"dump-like", dumpLike(8*window, 1), true},
		{"random", random, false},
		{"mixed", mixed, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, a := compressAdaptive(t, c.in, window)
			if (a.switches > 0) != c.switched {
				t.Errorf("%d switches of level", a.switches)
			}
			cmd := exec.Command(zstdCLI, "-dc")
			cmd.Stdin = bytes.NewReader(out)
			got, err := cmd.Output()
			if err != nil {
				t.Fatalf("zstd -dc: %v", err)
			}
			if !bytes.Equal(got, c.in) {
				t.Fatalf("zstd -dc gave %d bytes, not the %d written", len(got), len(c.in))
			}
			rd, err := NewDecompressor(CompressZstd, bytes.NewReader(out))
			if err != nil {
				t.Fatal(err)
			}
			if ours, err := io.ReadAll(rd); err != nil || !bytes.Equal(ours, c.in) {
				t.Fatalf("our decompressor: %d bytes, %v", len(ours), err)
			}
			def, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithWindowSize(4<<20))
			plain := def.EncodeAll(c.in, nil)
			t.Logf("%d bytes -> %d (default level alone: %d), %d switches", len(c.in), len(out), len(plain), a.switches)
			if c.switched && len(out) >= len(plain) {
				t.Errorf("switched to best but %d bytes, not less than the default level's %d", len(out), len(plain))
			}
		})
	}
}

type failAfter struct{ n int }

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

// TestAdaptiveZstdErrors: a failing destination and a cancelled context
// end the stream with their error, from Write or Close.
func TestAdaptiveZstdErrors(t *testing.T) {
	in := make([]byte, 8<<20)
	rand.New(rand.NewSource(4)).Read(in)
	a, err := newAdaptiveZstd(context.Background(), &failAfter{n: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	_, werr := a.Write(in)
	cerr := a.Close()
	err = errors.Join(werr, cerr)
	if err == nil {
		t.Fatal("a destination that fails gave no error")
	}
	if !bytes.Contains([]byte(err.Error()), []byte("disk full")) {
		t.Errorf("error %q does not say why", err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("SIGTERM"))
	a, err = newAdaptiveZstd(ctx, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write(in); err == nil || !bytes.Contains([]byte(err.Error()), []byte("SIGTERM")) {
		t.Errorf("Write after cancel: %v", err)
	}
	a.Close()
	if err := a.Close(); err != nil && !bytes.Contains([]byte(err.Error()), []byte("SIGTERM")) {
		t.Errorf("second Close: %v", err)
	}
}
