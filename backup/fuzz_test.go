package backup

import (
	"strings"
	"testing"
)

// FuzzS3Settings: the s3:// URL and size parsers of the config never
// panic, and what they accept is well formed.
func FuzzS3Settings(f *testing.F) {
	for _, s := range []string{"s3://bucket/prefix", "s3://b", "s3:///x", "http://x/y", "8M", "5MiB", "1G", "12x", "-1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if b, p, err := parseS3URL(s); err == nil {
			if b == "" || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
				t.Errorf("%q: bucket %q prefix %q", s, b, p)
			}
		}
		if n, err := parseBytes(s); err == nil && n < 0 {
			t.Errorf("%q: %d bytes", s, n)
		}
		if _, err := (S3Config{PartSize: s}).partSize(); err == nil && s != "" {
			if n, _ := parseBytes(s); n < minPartSize {
				t.Errorf("%q: part size %d accepted", s, n)
			}
		}
	})
}

// TestParseBytes: sizes in the config parse exactly, and sizes that would
// overflow int64 (CI's fuzz smoke found "8797000000000M" turning negative)
// or carry trailing junk are refused rather than wrapped or truncated.
func TestParseBytes(t *testing.T) {
	for s, want := range map[string]int64{"8M": 8 << 20, "5MiB": 5 << 20, "1G": 1 << 30, "4096": 4096, "2k": 2 << 10} {
		if n, err := parseBytes(s); err != nil || n != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", s, n, err, want)
		}
	}
	for _, s := range []string{"8797000000000M", "9223372036854775807G", "12x", "-1", "", "1.5G", "99999999999999999999"} {
		if n, err := parseBytes(s); err == nil {
			t.Errorf("parseBytes(%q) = %d, want an error", s, n)
		}
	}
}
