package luks

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestMasterKeyMatchesCryptsetup formats small files with the host's
// cryptsetup in many combinations (LUKS1/LUKS2, ciphers, hashes, KDFs,
// stripes) and checks that Unlock recovers the volume key that
// `cryptsetup luksDump --dump-volume-key` prints, and that a wrong
// passphrase is refused.
func TestMasterKeyMatchesCryptsetup(t *testing.T) {
	if _, err := exec.LookPath("cryptsetup"); err != nil {
		t.Fatalf("cryptsetup is required for this test (scripts/setup.sh installs cryptsetup-bin): %v", err)
	}
	pb := []string{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"}
	ar := func(kind string) []string {
		return []string{"--pbkdf", kind, "--pbkdf-force-iterations", "4", "--pbkdf-memory", "64", "--pbkdf-parallel", "1"}
	}
	l2 := []string{"--type", "luks2", "--luks2-metadata-size", "16k", "--luks2-keyslots-size", "512k"}
	cases := []struct {
		name string
		args []string
	}{
		{"luks1-xts-sha256", append([]string{"--type", "luks1", "--cipher", "aes-xts-plain64", "--key-size", "512", "--hash", "sha256"}, pb...)},
		{"luks1-xts256-sha1", append([]string{"--type", "luks1", "--cipher", "aes-xts-plain64", "--key-size", "256", "--hash", "sha1"}, pb...)},
		{"luks1-essiv-sha512", append([]string{"--type", "luks1", "--cipher", "aes-cbc-essiv:sha256", "--key-size", "128", "--hash", "sha512"}, pb...)},
		{"luks1-cbc-plain-ripemd", append([]string{"--type", "luks1", "--cipher", "aes-cbc-plain", "--key-size", "256", "--hash", "ripemd160"}, pb...)},
		{"luks2-pbkdf2-sha384", append(append([]string{"--cipher", "aes-xts-plain64", "--hash", "sha384"}, l2...), pb...)},
		{"luks2-argon2i", append(append([]string{"--cipher", "aes-xts-plain64", "--key-size", "256"}, l2...), ar("argon2i")...)},
		{"luks2-argon2id-cbc", append(append([]string{"--cipher", "aes-cbc-essiv:sha256", "--key-size", "256"}, l2...), ar("argon2id")...)},
	}
	dir := t.TempDir()
	pass := "p\x01ss phrase"
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(dir, c.name+".img")
			if err := os.WriteFile(img, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(img, 4<<20); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"luksFormat", "-q", "--key-file=-"}, c.args...)
			cmd := exec.Command("cryptsetup", append(args, img)...)
			cmd.Stdin = strings.NewReader(pass)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("cryptsetup %v: %v\n%s", args, err, out)
			}
			cmd = exec.Command("cryptsetup", "luksDump", "--dump-volume-key", "-q", "--key-file=-", img)
			cmd.Stdin = strings.NewReader(pass)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("luksDump: %v\n%s", err, out)
			}
			m := regexp.MustCompile(`(?s)(?:MK|Volume key) dump:\s*((?:[0-9a-f]{2}\s*)+)`).FindSubmatch(out)
			if m == nil {
				t.Fatalf("no key in luksDump output")
			}
			want, _ := hex.DecodeString(strings.Join(strings.Fields(string(m[1])), ""))
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			h, err := Parse(f, 4<<20)
			if err != nil {
				t.Fatal(err)
			}
			ks := h.Keyslots[0]
			mk, err := h.openSlot(&ks, []byte(pass))
			if err != nil {
				t.Fatalf("open keyslot 0: %v", err)
			}
			if !bytes.Equal(mk, want) {
				t.Errorf("master key %x, cryptsetup says %x", mk, want)
			}
			if _, err := h.Unlock([]byte(pass + "x")); !errors.Is(err, ErrWrongKey) {
				t.Errorf("wrong passphrase: %v", err)
			}
		})
	}
}
