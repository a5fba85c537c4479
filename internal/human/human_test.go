package human

import "testing"

func TestBytes(t *testing.T) {
	for _, c := range []struct {
		n    int64
		top  byte
		want string
	}{
		{0, 'E', "0 B"},
		{1023, 'E', "1023 B"},
		{1024, 'E', "1.0 KiB"},
		{1536, 'E', "1.5 KiB"},
		{5 << 20, 'E', "5.0 MiB"},
		{3 << 30, 'E', "3.0 GiB"},
		{1 << 40, 'E', "1.0 TiB"},
		{2 << 50, 'E', "2.0 PiB"},
		{1 << 62, 'E', "4.0 EiB"},
		{1<<63 - 1, 'E', "8.0 EiB"},
		// Capped at TiB (backup listings).
		{1023, 'T', "1023 B"},
		{1536, 'T', "1.5 KiB"},
		{1 << 40, 'T', "1.0 TiB"},
		{2 << 50, 'T', "2048.0 TiB"},
		{1 << 62, 'T', "4194304.0 TiB"},
	} {
		got := BytesUpTo(c.n, c.top)
		if got != c.want {
			t.Errorf("BytesUpTo(%d, %c) = %q, want %q", c.n, c.top, got, c.want)
		}
		if c.top == 'E' && Bytes(c.n) != got {
			t.Errorf("Bytes(%d) = %q, want %q", c.n, Bytes(c.n), got)
		}
	}
}
