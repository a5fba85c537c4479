package luks

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// TestDetachedHeaderUnlocksLikeTheKernel: the detached-header fixtures
// (cryptsetup luksFormat --header; see fixtures/scripts/luks-detached.sh)
// unlock from their header file, by passphrase and by key file, and the
// data device decrypts to the sha256 the kernel's dm-crypt read
// (cryptsetup open --header). The data device alone is not LUKS.
func TestDetachedHeaderUnlocksLikeTheKernel(t *testing.T) {
	want := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(fixturetest.Golden(t, "luks-detached.sha256")))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 {
			want[f[0]] = f[2]
		}
	}
	pass := fixturetest.Golden(t, "luks.pass")
	key := fixturetest.Golden(t, "luks.key")
	for _, c := range []struct {
		data, hdr string
		off, size int64 // the data device within the data image (an MBR partition, or all of it)
		version   int
	}{
		{"luks2-detached-disk", "luks2-detached-hdr", 2048 * 512, 8192 * 512, 2},
		{"luks1-detached-data", "luks1-detached-hdr", 0, 3 << 20, 1},
	} {
		t.Run(c.data, func(t *testing.T) {
			hf, err := os.Open(fixturetest.Image(t, c.hdr))
			if err != nil {
				t.Fatal(err)
			}
			defer hf.Close()
			df, err := os.Open(fixturetest.Image(t, c.data))
			if err != nil {
				t.Fatal(err)
			}
			defer df.Close()
			hst, _ := hf.Stat()
			data := io.NewSectionReader(df, c.off, c.size)
			if _, err := Parse(data, c.size); !errors.Is(err, ErrNotLUKS) {
				t.Errorf("the data device alone parses as LUKS: %v", err)
			}
			h, err := ParseDetached(hf, hst.Size(), data, c.size)
			if err != nil {
				t.Fatal(err)
			}
			dump := string(fixturetest.Golden(t, "luks-"+c.hdr+".dump"))
			if !h.Detached || h.Version != c.version || h.Segment.Offset != 0 || h.UUID != dumpField(dump, "UUID") {
				t.Errorf("header: detached %v version %d offset %d UUID %s", h.Detached, h.Version, h.Segment.Offset, h.UUID)
			}
			for _, k := range [][]byte{pass, key} {
				v, err := h.Unlock(k)
				if err != nil {
					t.Fatalf("unlock: %v", err)
				}
				if v.Size() != c.size {
					t.Errorf("volume size %d, data device %d", v.Size(), c.size)
				}
				if got := sum(t, v, v.Size()); got != want[c.data] {
					t.Errorf("sha256 %s, kernel %s", got, want[c.data])
				}
			}
			if _, err := h.Unlock([]byte("wrong")); !errors.Is(err, ErrWrongKey) {
				t.Errorf("wrong passphrase: %v", err)
			}
		})
	}
}
