package luks

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"golang.org/x/crypto/xts"
)

// headerSeeds returns the header areas of the fixture images (binary
// headers, JSON areas and the start of the keyslot areas).
func headerSeeds(f *testing.F) [][]byte {
	var out [][]byte
	for _, fx := range fixtures {
		b, err := os.ReadFile(fixturetest.Image(f, fx.name))
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b[:min(len(b), 40<<10)])
	}
	return out
}

// cheap reports whether unlocking h costs little (fuzzed headers can ask
// for millions of iterations or gigabytes of argon2 memory, which is their
// right; the fuzzer just does not try those).
func cheap(h *Header) bool {
	for _, ks := range h.Keyslots {
		if ks.Iterations > 2000 || ks.Memory > 2048 || ks.Stripes > 4000 {
			return false
		}
	}
	for _, d := range h.digests {
		if d.iterations > 2000 {
			return false
		}
	}
	return true
}

// FuzzParse feeds arbitrary bytes to the LUKS1/LUKS2 header parser (both
// binary copies, checksums, the JSON metadata) and, for cheap headers, to
// Unlock and a read of the data: errors, never panics or hangs.
func FuzzParse(f *testing.F) {
	for _, s := range headerSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		defer fixturetest.Watchdog(5 * time.Second)()
		h, err := Parse(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		if !cheap(h) {
			return
		}
		v, err := h.Unlock([]byte("correct horse imgtool"))
		if err != nil {
			return
		}
		buf := make([]byte, 4096)
		v.ReadAt(buf, 0)
		v.ReadAt(buf, v.Size()-100)
	})
}

// FuzzLUKS2JSON feeds arbitrary JSON metadata (what follows a LUKS2
// binary header) to its parser.
func FuzzLUKS2JSON(f *testing.F) {
	for _, s := range headerSeeds(f) {
		if len(s) > 16384 && string(s[:6]) == magicPrimary && s[7] == 2 {
			js := s[4096:16384]
			if i := bytes.IndexByte(js, 0); i >= 0 {
				js = js[:i]
			}
			f.Add(js)
		}
	}
	f.Add([]byte(`{"keyslots":{},"segments":{"0":{"type":"crypt","offset":"4096","size":"dynamic","encryption":"aes-xts-plain64","sector_size":512}},"digests":{}}`))
	f.Fuzz(func(t *testing.T, js []byte) {
		defer fixturetest.Watchdog(5 * time.Second)()
		h, err := parseLUKS2JSON(js, 1<<30, -1)
		if err != nil {
			return
		}
		if h.Segment.Offset < 0 || h.Segment.Offset > 1<<30 || h.Segment.SectorSize < 512 {
			t.Fatalf("accepted a bad segment %+v", h.Segment)
		}
		for _, ks := range h.Keyslots {
			if ks.AreaOffset < 0 || ks.AreaOffset+int64(ks.Stripes*ks.KeyBytes) > 1<<30 {
				t.Fatalf("accepted a keyslot outside the volume: %+v", ks)
			}
		}
	})
}

// FuzzSectorCiphers checks the sector decryption against independent
// implementations: golang.org/x/crypto/xts for aes-xts-plain64 and the
// standard library's CBC with an ESSIV computed here for
// aes-cbc-essiv:sha256, on arbitrary keys, data and sector numbers.
func FuzzSectorCiphers(f *testing.F) {
	f.Add(bytes.Repeat([]byte{7}, 64), bytes.Repeat([]byte{1}, 1024), uint64(5), true)
	f.Add(bytes.Repeat([]byte{9}, 32), bytes.Repeat([]byte{3}, 4096), uint64(1<<40), false)
	f.Fuzz(func(t *testing.T, key, data []byte, sector uint64, big bool) {
		ss := 512
		if big {
			ss = 4096
		}
		data = data[:len(data)/ss*ss]
		if len(data) == 0 || (len(key) != 32 && len(key) != 64) {
			return
		}
		// XTS.
		c, err := newSectorCipher("aes-xts-plain64", key)
		if err != nil {
			t.Fatal(err)
		}
		got := append([]byte(nil), data...)
		c.decrypt(got, ss, sector)
		ref, err := xts.NewCipher(aes.NewCipher, key)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]byte, len(data))
		for i := 0; i < len(data); i += ss {
			ref.Decrypt(want[i:i+ss], data[i:i+ss], sector+uint64(i/512))
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("xts differs from x/crypto/xts")
		}
		// CBC-ESSIV with the first 32 key bytes.
		k := key[:32]
		c, err = newSectorCipher("aes-cbc-essiv:sha256", k)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got[:0], data...)
		c.decrypt(got, ss, sector)
		salt := sha256.Sum256(k)
		eb, _ := aes.NewCipher(salt[:])
		blk, _ := aes.NewCipher(k)
		for i := 0; i < len(data); i += ss {
			var iv [16]byte
			binary.LittleEndian.PutUint64(iv[:], sector+uint64(i/512))
			eb.Encrypt(iv[:], iv[:])
			cipher.NewCBCDecrypter(blk, iv[:]).CryptBlocks(want[i:i+ss], data[i:i+ss])
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("cbc-essiv differs from crypto/cipher CBC")
		}
	})
}
