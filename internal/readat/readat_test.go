package readat

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestClip(t *testing.T) {
	p := make([]byte, 10)
	for _, c := range []struct {
		off, size int64
		n         int
		eof       bool
		err       string
	}{
		{0, 100, 10, false, ""},
		{95, 100, 5, true, ""},
		{90, 100, 10, false, ""},
		{100, 100, 0, false, "EOF"},
		{200, 100, 0, false, "EOF"},
		{-1, 100, 0, false, "disk: read at negative offset -1"},
	} {
		q, eof, err := Clip(p, c.off, c.size, "disk")
		switch {
		case c.err == "EOF":
			if !errors.Is(err, io.EOF) {
				t.Errorf("%+v: err %v, want EOF", c, err)
			}
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%+v: err %v", c, err)
			}
		case err != nil || len(q) != c.n || eof != c.eof:
			t.Errorf("%+v: got %d bytes, eof %v, err %v", c, len(q), eof, err)
		}
	}
}
