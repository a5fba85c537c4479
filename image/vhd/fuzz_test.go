package vhd

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

func fixtureBytes(tb testing.TB, file string) []byte {
	tb.Helper()
	p, err := fixturetest.Decompress(filepath.Join(fixturetest.ImagesDir(), file+".xz"))
	if err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// head+tail keeps the metadata of a qemu-img VHD (footer copy, dynamic
// header, BAT at the start; footer at the end) in a small seed.
func headTail(b []byte, head int) []byte {
	if len(b) <= head+FooterSize {
		return b
	}
	out := append([]byte{}, b[:head]...)
	return append(out, b[len(b)-FooterSize:]...)
}

func FuzzOpen(f *testing.F) {
	dyn := fixtureBytes(f, "fmt-vhd-dynamic.vhd")
	f.Add(headTail(dyn, 8192))
	f.Add(headTail(dyn, 3*512))
	f.Add(headTail(fixtureBytes(f, "fmt-vhd-force.vhd"), 8192))
	f.Add(headTail(fixtureBytes(f, "fmt-vhd-fixed.vhd"), 4096))
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fixturetest.Watchdog(10 * time.Second)()
		r := bytes.NewReader(data)
		Probe(r, int64(len(data)))
		d, err := Open(r, int64(len(data)))
		if err != nil {
			return
		}
		_ = d.String()
		buf := make([]byte, 70000)
		size := d.Size()
		for i := int64(0); i < 16 && size > 0; i++ {
			if _, err := d.ReadAt(buf, size/16*i); err != nil && err != io.EOF {
				continue
			}
		}
	})
}
