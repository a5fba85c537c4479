package main

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// luksGolden reads fixtures/golden/luks.sha256 (DEVICE -> the kernel's
// sha256 of it, taken in libguestfs's appliance).
func luksGolden(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(fixturetest.Golden(t, "luks.sha256")))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 {
			m[f[1]] = f[2]
		}
	}
	return m
}

func luksKeyFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, fixturetest.Golden(t, "luks.key"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func imgtoolStdin(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runWithStdin(args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func TestLUKSLockedWithoutKey(t *testing.T) {
	img := fixturetest.Image(t, "luks2-argon2id")
	out, errs, code := imgtoolStdin(t, "", "inspect", img)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	uuid := dumpUUID(t, "luks2-argon2id")
	if !strings.Contains(out, "crypto_LUKS") || !strings.Contains(out, "locked") || !strings.Contains(out, uuid) {
		t.Errorf("inspect does not show a locked LUKS volume with UUID %s:\n%s", uuid, out)
	}
	if _, errs, code := imgtoolStdin(t, "", "dd", img, "luks", "-o", filepath.Join(t.TempDir(), "x")); code == 0 {
		t.Errorf("dd of a locked volume succeeded: %s", errs)
	}
}

func dumpUUID(t *testing.T, name string) string {
	for _, l := range strings.Split(string(fixturetest.Golden(t, "luks-"+name+".dump")), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "UUID:" {
			return f[1]
		}
	}
	t.Fatalf("no UUID in the luksDump of %s", name)
	return ""
}

func TestLUKSWrongKey(t *testing.T) {
	img := fixturetest.Image(t, "luks1-xts")
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("not the key SECRETWORD"), 0o600)
	for _, args := range [][]string{
		{"inspect", img, "--key-file", bad},
		{"inspect", img, "--json", "--keys-from-stdin"},
		{"ls", img, "luks:/", "--key-file", bad},
	} {
		out, errs, code := imgtoolStdin(t, "SECRETWORD\n", args...)
		if code != 1 || !strings.Contains(errs, "wrong passphrase or key file") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
		if strings.Contains(out+errs, "SECRETWORD") {
			t.Errorf("%v: output shows the key", args)
		}
	}
}

// TestLUKSDDAndExtract reads every LUKS fixture through the CLI, unlocked
// once by passphrase (stdin) and once by key file: dd equals the sha256
// the kernel's dm-crypt read, and extract equals the files the kernel
// mount listed.
func TestLUKSDDAndExtract(t *testing.T) {
	want := luksGolden(t)
	kf := luksKeyFile(t)
	pass := string(fixturetest.Golden(t, "luks.pass"))
	for _, name := range []string{"luks1-xts", "luks1-essiv-lvm", "luks2-pbkdf2", "luks2-argon2id", "luks2-argon2i-4k", "luks2-badprimary"} {
		t.Run(name, func(t *testing.T) {
			img := fixturetest.Image(t, name)
			keys := [][]string{{"--keys-from-stdin"}, {"--key-file", kf}}
			fs := "luks"
			vols := map[string]string{"luks": "/dev/mapper/" + name}
			if name == "luks1-essiv-lvm" {
				fs = "vgluks/root"
				vols[fs] = "/dev/vgluks/root"
			}
			for i, k := range keys {
				for addr, dev := range vols {
					out := filepath.Join(t.TempDir(), "dd")
					_, errs, code := imgtoolStdin(t, pass+"\n", append([]string{"dd", img, addr, "-o", out}, k...)...)
					if code != 0 {
						t.Fatalf("dd %s %v: exit %d: %s", addr, k, code, errs)
					}
					if got := sha256File(t, out); got != want[dev] {
						t.Errorf("dd %s %v: sha256 %s, kernel %s", addr, k, got, want[dev])
					}
				}
				if i > 0 {
					continue
				}
				dest := filepath.Join(t.TempDir(), "tree")
				_, errs, code := imgtoolStdin(t, pass+"\n", append([]string{"extract", img, fs + ":/", dest}, k...)...)
				if code != 0 {
					t.Fatalf("extract: exit %d: %s", code, errs)
				}
				if n := fixturetest.CheckTree(t, dest, fixturetest.Manifest(t, "luks-"+name+".manifest")); n < 10 {
					t.Errorf("only %d files checked", n)
				}
			}
		})
	}
}

// TestLUKSInspectJSONOpened: with the key, the JSON tree has the LUKS node
// unlocked with its child luks and the LVM inside; the passphrase appears
// nowhere in the output.
func TestLUKSInspectJSONOpened(t *testing.T) {
	img := fixturetest.Image(t, "luks1-essiv-lvm")
	pass := string(fixturetest.Golden(t, "luks.pass"))
	out, errs, code := imgtoolStdin(t, pass+"\n", "inspect", img, "--json", "--keys-from-stdin")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, w := range []string{`"locked": false`, `"address": "luks"`, `"address": "vgluks/root"`, `"cipher": "aes-cbc-essiv:sha256"`} {
		if !strings.Contains(out, w) {
			t.Errorf("JSON lacks %s", w)
		}
	}
	if strings.Contains(out+errs, pass) || strings.Contains(out+errs, "horse") {
		t.Errorf("output shows the passphrase")
	}
}
