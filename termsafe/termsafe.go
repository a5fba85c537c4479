// Package termsafe is imgtool's one rule for printing names that come from
// an image — file names, labels, VG/LV names, symlink targets — on a
// terminal: in the CLI's output, in error messages and reports, and in the
// TUI.
//
// A name on disk may hold any byte but '/' and NUL (and a damaged or
// hostile one may hold those too). Printed raw, ESC [ 2 J clears the
// screen, the single byte 0x9B or the character U+009B is a C1 CSI that
// some terminals obey in the same way, and U+202E reverses the text after
// it, so "evil\u202Etxt.exe" reads as "evilexe.txt". The rule:
//
//   - A rune is unsafe when it is a control (C0, DEL, C1 — U+0080 to
//     U+009F, CSI included), a format character (bidi embeddings and
//     overrides U+202A–U+202E, isolates U+2066–U+2069, marks U+200E,
//     U+200F, U+061C, zero-width characters), a line or paragraph
//     separator, or not graphic at all; and so is every byte of invalid
//     UTF-8 (and U+FFFD itself, which would hide which bytes were there).
//   - Quote leaves a name with no unsafe rune as it is and otherwise prints
//     it Go-quoted ("a\x1b[2Jb", "evil\u202etxt"), so the reader sees that
//     it was escaped and can type it back.
//   - Escape applies the same escapes inside free text (an error message
//     that embeds a name) without adding quotes; Writer does it to a
//     stream.
package termsafe

import (
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Unsafe reports whether rune r must not reach a terminal as it is.
func Unsafe(r rune) bool {
	if r == utf8.RuneError {
		return true
	}
	if r == ' ' {
		return false
	}
	return !unicode.IsGraphic(r)
}

// Safe reports whether s can be printed as it is.
func Safe(s string) bool {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if Unsafe(r) {
			return false
		}
		i += n
	}
	return true
}

// Quote returns s unchanged when it is safe, otherwise Go-quoted with
// every unsafe rune and invalid byte escaped.
func Quote(s string) string {
	if Safe(s) {
		return s
	}
	return quote(s)
}

// quote is strconv.Quote with the rule above: strconv already escapes
// everything that is not strconv.IsPrint (which is stricter than
// IsGraphic only for spaces other than U+0020), and invalid bytes as \xNN;
// it leaves a real U+FFFD as it is, which is escaped here so that it
// cannot be mistaken for an invalid byte.
func quote(s string) string {
	return strings.ReplaceAll(strconv.Quote(s), "\uFFFD", `\ufffd`)
}

// Escape returns s with every unsafe rune or invalid byte replaced by its
// Go escape (\x1b, \u202e, \x9b), and everything else — including any
// quotes — left as it is. Newlines and tabs are kept unless keepSpace is
// false.
func Escape(s string, keepSpace bool) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case keepSpace && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case Unsafe(r):
			q := quote(s[i : i+n])
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// Writer returns a writer that escapes unsafe runes in everything written
// to w, keeping newlines and tabs, and a carriage return that begins a
// Write (how progress lines redraw themselves). Each Write is escaped on
// its own; fmt.Fprintf writes a whole message at once.
func Writer(w io.Writer) io.Writer { return &writer{w} }

type writer struct{ w io.Writer }

func (e *writer) Write(p []byte) (int, error) {
	s := string(p)
	prefix := ""
	if strings.HasPrefix(s, "\r") {
		prefix, s = "\r", s[1:]
	}
	if Safe(strings.NewReplacer("\n", "", "\t", "").Replace(s)) {
		if _, err := io.WriteString(e.w, prefix+s); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if _, err := io.WriteString(e.w, prefix+Escape(s, true)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Unwrap returns the writer under a Writer (w itself otherwise), for
// questions about the stream such as "is it a terminal?".
func Unwrap(w io.Writer) io.Writer {
	if e, ok := w.(*writer); ok {
		return e.w
	}
	return w
}
