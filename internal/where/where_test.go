package where

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestOffsets(t *testing.T) {
	v := At("gpt", 1024, "entry array at byte offset 1024: CRC32 mismatch", nil)
	f := InFile("qcow2", "/x/d.qcow2", 196608, "L1 entry 3 at byte 196608", io.ErrUnexpectedEOF)
	wrapped := fmt.Errorf("outer: %w", fmt.Errorf("partition: %w", v))
	if got := VolumeOffset(wrapped); got != 1024 {
		t.Errorf("VolumeOffset = %d, want 1024", got)
	}
	if p, off := FileOffset(wrapped); p != "" || off != -1 {
		t.Errorf("FileOffset of a volume error = %q %d", p, off)
	}
	joined := fmt.Errorf("read: %w", errors.Join(errors.New("x"), f))
	if p, off := FileOffset(joined); p != "/x/d.qcow2" || off != 196608 {
		t.Errorf("FileOffset = %q %d", p, off)
	}
	if got := VolumeOffset(joined); got != -1 {
		t.Errorf("VolumeOffset of a file error = %d, want -1", got)
	}
	if !errors.Is(f, io.ErrUnexpectedEOF) {
		t.Error("Unwrap lost the cause")
	}
	if f.Error() != "L1 entry 3 at byte 196608: unexpected EOF" || v.Error() != "entry array at byte offset 1024: CRC32 mismatch" {
		t.Errorf("texts %q, %q", f.Error(), v.Error())
	}
	if VolumeOffset(errors.New("plain")) != -1 {
		t.Error("a plain error has an offset")
	}
}
