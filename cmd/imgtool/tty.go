package main

import (
	"bytes"
	"fmt"
	"io"
	"unicode/utf8"
)

// Binary data on a terminal is refused, as GNU tar ("Refusing to write
// archive contents to terminal") and gzip do: it garbles the screen at best
// and, with escape sequences from an untrusted image, drives the terminal at
// worst. Redirecting stdout, or --force (gzip's spelling), lets it through.

// refuseTerminal returns a usage error when w is a terminal and force is
// not set; what names the data ("the raw bytes of volume p1").
func refuseTerminal(w io.Writer, what string, force bool) error {
	if force || !isTerminal(w) {
		return nil
	}
	return &codeError{exitUsage, fmt.Errorf("refusing to write %s to a terminal: redirect stdout to a file or a pipe, or give --force", what)}
}

// looksBinary reports whether the start of a file is not text: a NUL byte,
// or bytes that are not UTF-8 (a rune cut at the end of b is allowed).
func looksBinary(b []byte) bool {
	if bytes.IndexByte(b, 0) >= 0 {
		return true
	}
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			return len(b) >= utf8.UTFMax || utf8.FullRune(b)
		}
		b = b[n:]
	}
	return false
}
