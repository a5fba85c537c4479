package qcow2

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

func fixtureBytes(tb testing.TB, file string, limit int) []byte {
	tb.Helper()
	p, err := fixturetest.Decompress(filepath.Join(fixturetest.ImagesDir(), file+".xz"))
	if err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	if limit > 0 && len(b) > limit {
		b = b[:limit]
	}
	return b
}

// FuzzOpen covers our header, snapshot-table and backing checks and the
// library's cluster reads behind them (no file name: relative backing
// files are refused, so the fuzzer never opens files).
func FuzzOpen(f *testing.F) {
	f.Add(fixtureBytes(f, "fmt-qcow2-zstd.qcow2", 0))
	f.Add(fixtureBytes(f, "fmt-qcow2-zlib.qcow2", 0))
	f.Add(fixtureBytes(f, "fmt-qcow2-snap.qcow2", 320<<10))
	f.Add(fixtureBytes(f, "fmt-chain-top.qcow2", 0))
	f.Add(fixtureBytes(f, "fmt-qcow2-aes.qcow2", 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fixturetest.Watchdog(10 * time.Second)()
		r := bytes.NewReader(data)
		im, err := Open(r, int64(len(data)), "")
		if err != nil {
			return
		}
		defer im.Close()
		buf := make([]byte, 70000)
		size := im.Size()
		for i := int64(0); i < 16 && size > 0; i++ {
			if _, err := im.ReadAt(buf, size/16*i); err != nil && err != io.EOF {
				continue
			}
		}
	})
}
