package luks

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// reportCPU adds a cpuMB/s metric: bytes per second of the process's CPU
// time since t0. On shared machines wall time swings with the other load,
// CPU time much less; openssl speed (the memory-only peer when cryptsetup
// benchmark cannot run) also reports CPU time unless given -elapsed.
func reportCPU(b *testing.B, t0 time.Duration, bytes int64) {
	if d := cpuTime() - t0; d > 0 && t0 > 0 {
		b.ReportMetric(float64(bytes)*float64(b.N)/d.Seconds()/1e6, "cpuMB/s")
	}
}

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
			t0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				sc.decrypt(buf, c.ss, uint64(i))
			}
			b.StopTimer()
			reportCPU(b, t0, int64(len(buf)))
		})
	}
}

// BenchmarkReadAt reads an unlocked aes-xts-plain64 volume (4096-byte
// sectors, 256-bit key) sequentially from a file in the page cache, in
// 32 KiB reads (what io.Copy issues), 256 KiB (imgtool dd), 1 MiB (dd -o)
// and 4 MiB (decrypted on several cores): the decryption plus the pread
// copies, 64 MiB per op. Run it with -cpu 1,2 to see what splitting a
// read's decryption across cores gains (parallelPer).
func BenchmarkReadAt(b *testing.B) {
	const size = 64 << 20
	f, err := os.Create(filepath.Join(b.TempDir(), "data"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadFrom(&io64{n: size}); err != nil {
		b.Fatal(err)
	}
	c, err := newSectorCipher("aes-xts-plain64", bytes.Repeat([]byte{5}, 32))
	if err != nil {
		b.Fatal(err)
	}
	v := &Volume{r: f, size: size, sectorSize: 4096, c: c}
	for _, rs := range []int{32 << 10, 256 << 10, 1 << 20, 4 << 20} {
		b.Run(itoa(int64(rs>>10))+"KiB", func(b *testing.B) {
			p := make([]byte, rs)
			b.SetBytes(size)
			t0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for off := int64(0); off < size; off += int64(rs) {
					if _, err := v.ReadAt(p, off); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			reportCPU(b, t0, size)
		})
	}
}

// io64 is a reader of n random bytes.
type io64 struct{ n int }

func (r *io64) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	p = p[:min(len(p), r.n)]
	rand.Read(p)
	r.n -= len(p)
	return len(p), nil
}
