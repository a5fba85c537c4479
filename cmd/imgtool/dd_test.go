package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
)

// sizesReader is a ReaderAt over data that records the size of each call
// and fails at failAt (if > 0) or reads short at shortAt (if > 0).
type sizesReader struct {
	data            []byte
	mu              sync.Mutex
	calls           []int
	failAt, shortAt int64
}

var errDisk = errors.New("disk on fire")

func (r *sizesReader) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	r.calls = append(r.calls, len(p))
	r.mu.Unlock()
	if r.failAt > 0 && off+int64(len(p)) > r.failAt {
		return copy(p, r.data[off:max(off, r.failAt)]), errDisk
	}
	if r.shortAt > 0 && off+int64(len(p)) > r.shortAt {
		return copy(p, r.data[off:max(off, r.shortAt)]), nil // breaks the ReaderAt contract
	}
	n := copy(p, r.data[off:])
	if n < len(p) || off+int64(n) == int64(len(r.data)) {
		return n, io.EOF
	}
	return n, nil
}

// TestDDCopyOut: dd to stdout reads the volume ddBuffer bytes a call
// (io.Copy read 32 KiB a call: up to a fifth more CPU on a LUKS volume),
// on one goroutine or several, writes every byte once and in order, and
// says how far it got when a read fails or is short.
func TestDDCopyOut(t *testing.T) {
	data := make([]byte, 7*ddBuffer+12345)
	for i := range data {
		data[i] = byte(i*7 + i>>12)
	}
	for _, c := range []struct {
		name string
		copy func(io.Writer, io.ReaderAt, int64) (int64, error)
	}{
		{"sequential", copyOutSequential},
		{"3 readers", func(w io.Writer, r io.ReaderAt, size int64) (int64, error) { return copyOutParallel(w, r, size, 3) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &sizesReader{data: data}
			var out bytes.Buffer
			n, err := c.copy(&out, r, int64(len(data)))
			if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
				t.Fatalf("copy = %d, %v; output equal: %v", n, err, bytes.Equal(out.Bytes(), data))
			}
			slices.Sort(r.calls)
			if want := []int{12345, ddBuffer, ddBuffer, ddBuffer, ddBuffer, ddBuffer, ddBuffer, ddBuffer}; !slices.Equal(r.calls, want) {
				t.Errorf("read sizes %v, want %v", r.calls, want)
			}

			for _, at := range []int64{100, 3*ddBuffer + 100} {
				r = &sizesReader{data: data, failAt: at}
				out.Reset()
				n, err = c.copy(&out, r, int64(len(data)))
				if !errors.Is(err, errDisk) || n != at || !bytes.Equal(out.Bytes(), data[:at]) {
					t.Errorf("read failing at %d: copy = %d, %v (%d bytes out), want %d, %v", at, n, err, out.Len(), at, errDisk)
				}
			}

			r = &sizesReader{data: data, shortAt: 2*ddBuffer + 500}
			out.Reset()
			n, err = c.copy(&out, r, int64(len(data)))
			if !errors.Is(err, io.ErrUnexpectedEOF) || n != 2*ddBuffer+500 {
				t.Errorf("short read: copy = %d, %v, want %d, %v", n, err, 2*ddBuffer+500, io.ErrUnexpectedEOF)
			}

			r = &sizesReader{data: data}
			out.Reset()
			if n, err = c.copy(&out, r, 0); n != 0 || err != nil || len(r.calls) != 0 {
				t.Errorf("empty volume: copy = %d, %v after %d reads", n, err, len(r.calls))
			}
		})
	}
}

// failWriter fails every write after the first.
type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n++; w.n > 1 {
		return 0, errDisk
	}
	return len(p), nil
}

// TestDDCopyOutWriteError: a failing write stops the parallel readers and
// is returned with the bytes written before it.
func TestDDCopyOutWriteError(t *testing.T) {
	data := make([]byte, 20*ddBuffer)
	r := &sizesReader{data: data}
	n, err := copyOutParallel(&failWriter{}, r, int64(len(data)), 4)
	if !errors.Is(err, errDisk) || n != ddBuffer {
		t.Errorf("copy = %d, %v, want %d, %v", n, err, ddBuffer, errDisk)
	}
	if len(r.calls) > 4*2+1 {
		t.Errorf("%d reads after the write failed", len(r.calls))
	}
}

// TestDDSparseOutput: dd -o (copySparse) writes every byte in order, and
// the all-zero stretches (one in the middle, one at the end) are holes.
func TestDDSparseOutput(t *testing.T) {
	size := 9<<20 + 777
	data := make([]byte, size)
	for _, r := range [][2]int{{0, 5000}, {4<<20 + 100, 4<<20 + 70000}, {size - 20000, size - 19000}} {
		for i := r[0]; i < r[1]; i++ {
			data[i] = byte(i%251 + 1)
		}
	}
	path := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := copySparse(f, bytes.NewReader(data))
	f.Close()
	if err != nil || n != int64(size) {
		t.Fatalf("copied %d of %d: %v", n, size, err)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, data) {
		t.Errorf("output differs from the volume")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	// The data touches 3 (or, straddling, 4) of copySparse's 1 MiB blocks; the rest must be holes.
	if alloc := st.Blocks * 512; alloc > 4<<20 || alloc >= int64(size) {
		t.Errorf("%d bytes allocated for %d bytes of data in a %d-byte volume", alloc, 5000+69900+1000, size)
	}
}
