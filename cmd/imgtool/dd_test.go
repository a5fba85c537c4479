package main

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// sizesReader is a ReaderAt over data that records the size of each call
// and fails at failAt (if > 0) or reads short at shortAt (if > 0).
type sizesReader struct {
	data            []byte
	calls           []int
	failAt, shortAt int64
}

var errDisk = errors.New("disk on fire")

func (r *sizesReader) ReadAt(p []byte, off int64) (int, error) {
	r.calls = append(r.calls, len(p))
	if r.failAt > 0 && off+int64(len(p)) > r.failAt {
		return copy(p, r.data[off:r.failAt]), errDisk
	}
	if r.shortAt > 0 && off+int64(len(p)) > r.shortAt {
		return copy(p, r.data[off:r.shortAt]), nil // breaks the ReaderAt contract
	}
	n := copy(p, r.data[off:])
	if n < len(p) || off+int64(n) == int64(len(r.data)) {
		return n, io.EOF
	}
	return n, nil
}

// TestDDCopyOut: dd to stdout reads the volume ddBuffer bytes a call
// (io.Copy read 32 KiB a call: up to a fifth more CPU on a LUKS volume),
// writes every byte once, and says how far it got when a read fails or is
// short.
func TestDDCopyOut(t *testing.T) {
	data := make([]byte, 2*ddBuffer+12345)
	for i := range data {
		data[i] = byte(i * 7)
	}
	r := &sizesReader{data: data}
	var out bytes.Buffer
	n, err := copyOut(&out, r, int64(len(data)))
	if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("copyOut = %d, %v; output equal: %v", n, err, bytes.Equal(out.Bytes(), data))
	}
	if want := []int{ddBuffer, ddBuffer, 12345}; len(r.calls) != 3 || r.calls[0] != want[0] || r.calls[1] != want[1] || r.calls[2] != want[2] {
		t.Errorf("read sizes %v, want %v", r.calls, want)
	}

	r = &sizesReader{data: data, failAt: ddBuffer + 100}
	out.Reset()
	n, err = copyOut(&out, r, int64(len(data)))
	if !errors.Is(err, errDisk) || n != ddBuffer+100 || out.Len() != ddBuffer+100 {
		t.Errorf("failing read: copyOut = %d, %v (%d bytes out), want %d, %v", n, err, out.Len(), ddBuffer+100, errDisk)
	}

	r = &sizesReader{data: data, shortAt: 500}
	out.Reset()
	n, err = copyOut(&out, r, int64(len(data)))
	if !errors.Is(err, io.ErrUnexpectedEOF) || n != 500 {
		t.Errorf("short read: copyOut = %d, %v, want 500, %v", n, err, io.ErrUnexpectedEOF)
	}

	r = &sizesReader{data: data}
	out.Reset()
	if n, err = copyOut(&out, r, 0); n != 0 || err != nil || len(r.calls) != 0 {
		t.Errorf("empty volume: copyOut = %d, %v after %d reads", n, err, len(r.calls))
	}
}
