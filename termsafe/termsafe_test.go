package termsafe

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

var hostile = []string{
	"clear\x1b[2Jscreen",
	"csi-byte\x9b31m",       // a lone 0x9B byte: invalid UTF-8, a C1 CSI to 8-bit terminals
	"csi-rune\u009b31m",     // U+009B encoded in UTF-8
	"evil\u202etxt.exe",     // right-to-left override
	"iso\u2066late\u2069",   // bidi isolates
	"mark\u200fx",           // RLM
	"bell\a",                // C0
	"del\x7f",               // DEL
	"nl\nx",                 // a newline in a name fakes a second line
	"tab\tx",                // a tab in a name shifts columns
	"bad\xff\xfeutf8",       // invalid UTF-8
	"replacement\ufffdchar", // would hide which bytes were there
	"line\u2028sep",
}

var fine = []string{"plain.txt", "with space", "café", "日本語", "emoji😀", `quo"te`, "-dash", "a/b"}

func TestQuote(t *testing.T) {
	for _, s := range hostile {
		q := Quote(s)
		if q == s || !strings.HasPrefix(q, `"`) || !Safe(q) {
			t.Errorf("Quote(%q) = %q: not escaped and quoted", s, q)
		}
		if !utf8.ValidString(q) {
			t.Errorf("Quote(%q) = %q: invalid UTF-8", s, q)
		}
		e := Escape(s, false)
		if !Safe(e) {
			t.Errorf("Escape(%q) = %q: unsafe runes left", s, e)
		}
	}
	for _, s := range fine {
		if Quote(s) != s || Escape(s, true) != s {
			t.Errorf("%q changed: Quote %q, Escape %q", s, Quote(s), Escape(s, true))
		}
	}
}

func TestWriter(t *testing.T) {
	var b bytes.Buffer
	w := Writer(&b)
	w.Write([]byte("imgtool: open /x\x1b[2J\u202e: no such file\n"))
	w.Write([]byte("\rprogress 50%\tok\n"))
	w.Write([]byte("a\rb\n"))
	want := "imgtool: open /x\\x1b[2J\\u202e: no such file\n\rprogress 50%\tok\na\\rb\n"
	if b.String() != want {
		t.Errorf("got %q\nwant %q", b.String(), want)
	}
}

func FuzzQuote(f *testing.F) {
	for _, s := range append(hostile, fine...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if q := Quote(s); !Safe(q) {
			t.Fatalf("Quote(%q) = %q is not safe", s, q)
		}
		if e := Escape(s, false); !Safe(e) {
			t.Fatalf("Escape(%q) = %q is not safe", s, e)
		}
		var b bytes.Buffer
		Writer(&b).Write([]byte(s))
		out := strings.NewReplacer("\n", "", "\t", "").Replace(strings.TrimPrefix(b.String(), "\r"))
		if !Safe(out) {
			t.Fatalf("Writer(%q) wrote %q", s, b.String())
		}
	})
}
