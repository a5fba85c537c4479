package zero

import "testing"

func TestIs(t *testing.T) {
	if !Is(nil) || !Is([]byte{}) {
		t.Error("empty slice is all zero")
	}
	// Every length across the chunk boundary, with one non-zero byte at
	// every position of the short ones and at the edges of the long ones.
	for _, n := range []int{1, 7, 8, 9, 63, 64, 65, len(block) - 1, len(block), len(block) + 1, 3*len(block) + 5} {
		b := make([]byte, n)
		if !Is(b) {
			t.Fatalf("len %d zeros: Is = false", n)
		}
		pos := []int{0, n / 2, n - 1}
		if n <= 65 {
			pos = pos[:0]
			for i := range n {
				pos = append(pos, i)
			}
		}
		for _, p := range pos {
			b[p] = 0x80
			if Is(b) {
				t.Fatalf("len %d, byte %d set: Is = true", n, p)
			}
			b[p] = 0
		}
	}
}

func BenchmarkIs(b *testing.B) {
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if !Is(buf) {
			b.Fatal("not zero")
		}
	}
}
