package luks

import (
	"bytes"
	"testing"
)

// BenchmarkDecrypt measures sector decryption alone (no I/O), 1 MiB per
// op, on one core.
func BenchmarkDecrypt(b *testing.B) {
	for _, c := range []struct {
		spec string
		key  int
		ss   int
	}{
		{"aes-xts-plain64", 32, 4096}, {"aes-xts-plain64", 64, 4096}, {"aes-xts-plain64", 64, 512},
		{"aes-cbc-essiv:sha256", 32, 512},
	} {
		b.Run(c.spec+"-"+itoa(int64(c.key*8))+"b/"+itoa(int64(c.ss)), func(b *testing.B) {
			sc, err := newSectorCipher(c.spec, bytes.Repeat([]byte{5}, c.key))
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 1<<20)
			b.SetBytes(int64(len(buf)))
			for i := 0; i < b.N; i++ {
				sc.decrypt(buf, c.ss, uint64(i))
			}
		})
	}
}
