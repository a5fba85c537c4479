package luks

import (
	"bytes"
	"crypto/aes"
	"math/rand"
	"testing"

	"golang.org/x/crypto/xts"
)

// TestXTSPathsAgree decrypts random data with every XTS implementation
// this CPU has (pure Go, AES-NI, VAES) and checks each against
// golang.org/x/crypto/xts: both key sizes, 512- to 4096-byte sectors,
// sector counts around the tweak batch (32), and sector numbers whose
// low 32 or 64 bits wrap. The plain and plain64be IVs, which x/crypto/xts
// does not do, are checked path against path.
func TestXTSPathsAgree(t *testing.T) {
	rng := rand.New(rand.NewSource(15))
	paths := []xtsPath{xtsGo}
	if haveAESNI {
		paths = append(paths, xtsNI)
	} else {
		t.Log("no AES-NI: only the pure-Go path is checked")
	}
	if haveVAES {
		paths = append(paths, xtsVAES)
	} else {
		t.Log("no VAES: that path is not checked on this CPU")
	}
	for _, klen := range []int{32, 64} {
		for _, ss := range []int{512, 1024, 4096} {
			for _, nsec := range []int{1, 2, 31, 32, 33, 70} {
				for _, first := range []uint64{0, 1<<32 - 3, 1<<64 - 5, rng.Uint64()} {
					key := make([]byte, klen)
					rng.Read(key)
					data := make([]byte, nsec*ss)
					rng.Read(data)
					ref, err := xts.NewCipher(aes.NewCipher, key)
					if err != nil {
						t.Fatal(err)
					}
					want := make([]byte, len(data))
					for i := 0; i < nsec; i++ {
						ref.Decrypt(want[i*ss:(i+1)*ss], data[i*ss:(i+1)*ss], first+uint64(i*ss/512))
					}
					for _, spec := range []string{"aes-xts-plain64", "aes-xts-plain", "aes-xts-plain64be"} {
						var base []byte
						for _, p := range paths {
							c, err := newSectorCipher(spec, key)
							if err != nil {
								t.Fatal(err)
							}
							c.(*xtsCipher).setPath(p, key)
							got := append([]byte(nil), data...)
							c.decrypt(got, ss, first)
							if spec == "aes-xts-plain64" && !bytes.Equal(got, want) {
								t.Fatalf("%s path %d, %d-bit key, %d x %d-byte sectors from %d: differs from x/crypto/xts", spec, p, klen*8, nsec, ss, first)
							}
							if base == nil {
								base = got
							} else if !bytes.Equal(got, base) {
								t.Fatalf("%s path %d, %d-bit key, %d x %d-byte sectors from %d: differs from the pure-Go path", spec, p, klen*8, nsec, ss, first)
							}
						}
					}
				}
			}
		}
	}
}

// TestECBEncryptMatchesCryptoAES: the batched AES-NI encryption of the
// tweaks equals crypto/aes, for every key size and block counts around
// its four-block unrolling.
func TestECBEncryptMatchesCryptoAES(t *testing.T) {
	if !haveAESNI {
		t.Skip("no AES-NI")
	}
	rng := rand.New(rand.NewSource(16))
	for _, klen := range []int{16, 24, 32} {
		for n := 1; n <= 9; n++ {
			key := make([]byte, klen)
			rng.Read(key)
			buf := make([]byte, 16*n)
			rng.Read(buf)
			b, _ := aes.NewCipher(key)
			want := make([]byte, len(buf))
			for i := 0; i < len(buf); i += 16 {
				b.Encrypt(want[i:], buf[i:])
			}
			ek, nr := encKeySchedule(key)
			ecbEncrypt(ek, nr, buf)
			if !bytes.Equal(buf, want) {
				t.Fatalf("AES-%d, %d blocks: differs from crypto/aes", klen*8, n)
			}
		}
	}
}
