package backup

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestParallelXZIsValidXZ checks with xz(1) that the concatenated streams
// are one valid .xz file holding the input, for inputs around the chunk
// size, and that our reader reads them back.
func TestParallelXZIsValidXZ(t *testing.T) {
	need(t, "xz")
	for _, n := range []int{0, 1, 1000, 3*4096 + 5} {
		in := patterned("xz", n)
		var out bytes.Buffer
		w := newParallelXZ(&out, 4096, 2)
		for off := 0; off < len(in); off += 777 {
			w.Write(in[off:min(off+777, len(in))])
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "f.xz")
		os.WriteFile(p, out.Bytes(), 0o644)
		cmd := exec.Command("xz", "-dc", p)
		got, err := cmd.Output()
		if err != nil {
			t.Fatalf("n=%d: xz -dc: %v", n, err)
		}
		if !bytes.Equal(got, in) {
			t.Fatalf("n=%d: xz -dc gave %d bytes, want %d", n, len(got), len(in))
		}
		r, err := NewDecompressor(CompressXZ, bytes.NewReader(out.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		back, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(back, in) {
			t.Fatalf("n=%d: our reader: %v, %d bytes", n, err, len(back))
		}
	}
}
