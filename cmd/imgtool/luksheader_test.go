package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/spf13/cobra"
)

// TestLUKSDetachedHeader: with --luks-header, a data volume that has no
// LUKS header (cryptsetup luksFormat --header) is listed as LUKS with the
// header's UUID, locked without a key, and with a key dd gives the bytes
// the kernel's dm-crypt read (fixtures/scripts/luks-detached.sh): LUKS2 on
// partition p1 (VOLUME=FILE), LUKS1 on the whole image (FILE alone). A
// wrong key exits 1.
func TestLUKSDetachedHeader(t *testing.T) {
	want := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(fixturetest.Golden(t, "luks-detached.sha256")))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 {
			want[f[0]] = f[2]
		}
	}
	key := luksKeyFile(t)
	for _, c := range []struct{ data, hdr, flag, vol string }{
		{"luks2-detached-disk", "luks2-detached-hdr", "p1=", "p1"},
		{"luks1-detached-data", "luks1-detached-hdr", "", ""},
	} {
		t.Run(c.data, func(t *testing.T) {
			img := fixturetest.Image(t, c.data)
			hf := c.flag + fixturetest.Image(t, c.hdr)
			uuid := dumpUUID(t, c.hdr)
			out, errs, code := imgtoolStdin(t, "", "inspect", img)
			if code != 0 || strings.Contains(out, uuid) {
				t.Errorf("without --luks-header: exit %d, UUID shown: %s%s", code, out, errs)
			}
			out, errs, code = imgtoolStdin(t, "", "inspect", img, "--luks-header", hf)
			if code != 0 || !strings.Contains(out, "crypto_LUKS") || !strings.Contains(out, uuid) || !strings.Contains(out, "locked") {
				t.Errorf("locked: exit %d:\n%s%s", code, out, errs)
			}
			dst := filepath.Join(t.TempDir(), "out")
			if _, errs, code := imgtoolStdin(t, "", "dd", img, strings.TrimPrefix(c.vol+"/luks", "/"), "--luks-header", hf, "--key-file", key, "-o", dst); code != 0 {
				t.Fatalf("dd: exit %d: %s", code, errs)
			}
			b, err := os.ReadFile(dst)
			if err != nil {
				t.Fatal(err)
			}
			if s := sha256.Sum256(b); hex.EncodeToString(s[:]) != want[c.data] {
				t.Errorf("dd sha256 %x, kernel %s", s, want[c.data])
			}
			if _, errs, code := imgtoolStdin(t, "wrong\n", "inspect", img, "--luks-header", hf, "--keys-from-stdin"); code != 1 {
				t.Errorf("wrong key: exit %d: %s", code, errs)
			}
		})
	}
}

// TestLUKSFlagsInHelp: imgtool --help names the three LUKS key flags with
// --luks-header's [VOLUME=]FILE syntax, every command that takes
// --key-file takes --keys-from-stdin and --luks-header too and shows them
// in its --help, and the README has a --luks-header example.
func TestLUKSFlagsInHelp(t *testing.T) {
	out, _, code := imgtool(t, "--help")
	for _, w := range []string{"--key-file FILE", "--keys-from-stdin", "--luks-header [VOLUME=]FILE"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("imgtool --help (exit %d) lacks %q:\n%s", code, w, out)
		}
	}
	root, _ := newRoot(io.Discard, io.Discard)
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Flags().Lookup("key-file") == nil {
			return
		}
		n++
		path := strings.Fields(c.CommandPath())[1:]
		out, _, code := imgtool(t, append(path, "--help")...)
		for _, w := range []string{"--key-file FILE", "--keys-from-stdin", "--luks-header [VOLUME=]FILE"} {
			if code != 0 || !strings.Contains(out, w) {
				t.Errorf("imgtool %s --help (exit %d) lacks %q", strings.Join(path, " "), code, w)
			}
		}
	}
	walk(root)
	if n < 10 {
		t.Errorf("only %d commands take --key-file", n)
	}
	readme, err := os.ReadFile(filepath.Join(fixturetest.Dir(), "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "--luks-header ") {
		t.Error("the README has no --luks-header example")
	}
}
