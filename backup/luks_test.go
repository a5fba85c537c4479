package backup

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// TestKeyFilesOpenLUKS: a source whose LVM sits inside LUKS is backed up
// when the config names its key file (the ext4 LV inside is dumped), and
// is left out (exit 6 material) without it.
func TestKeyFilesOpenLUKS(t *testing.T) {
	dir := t.TempDir()
	disk := fixturetest.Copy(t, "luks1-essiv-lvm")
	key := filepath.Join(dir, "luks.key")
	if err := os.WriteFile(key, fixturetest.Golden(t, "luks.key"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := quietRunner(dir)

	c := localConfig(t, dir, disk, "[key_files]\n"+`"`+disk+`" = "`+key+`"`)
	res, err := r.Run(context.Background(), []*Config{c})
	if err != nil {
		t.Fatalf("run with key_files: %v", err)
	}
	if len(res[0].Backups) != 1 || res[0].Backups[0].Volume != "vgluks/root" {
		t.Fatalf("backups %+v, want vgluks/root", res[0].Backups)
	}

	c = localConfig(t, dir, disk, "")
	if _, err := r.Run(context.Background(), []*Config{c}); err == nil {
		t.Fatal("run without the key succeeded; the LUKS volume must be reported left out")
	}
}

// TestLUKSHeadersOpenDetached: a source whose LUKS header was made apart
// (cryptsetup luksFormat --header; fixtures/scripts/luks-detached.sh) is
// backed up when the config names the header in luks_headers, as
// "VOLUME=FILE" for a partition and as FILE for the whole source, with
// its key in key_files: the ext4 inside is dumped. Without the header the
// data volume is left out; a header for a source not listed, or empty, is
// a config error.
func TestLUKSHeadersOpenDetached(t *testing.T) {
	key := filepath.Join(t.TempDir(), "luks.key")
	if err := os.WriteFile(key, fixturetest.Golden(t, "luks.key"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ data, hdr, vol string }{
		{"luks2-detached-disk", "luks2-detached-hdr", "p1"},
		{"luks1-detached-data", "luks1-detached-hdr", ""},
	} {
		t.Run(c.data, func(t *testing.T) {
			dir := t.TempDir()
			disk := fixturetest.Copy(t, c.data)
			spec := fixturetest.Image(t, c.hdr)
			if c.vol != "" {
				spec = c.vol + "=" + spec
			}
			r := quietRunner(dir)
			conf := localConfig(t, dir, disk, "[key_files]\n"+`"`+disk+`" = "`+key+`"`+"\n[luks_headers]\n"+`"`+disk+`" = "`+spec+`"`)
			res, err := r.Run(context.Background(), []*Config{conf})
			if err != nil {
				t.Fatalf("run with luks_headers: %v", err)
			}
			want := strings.TrimPrefix(c.vol+"/luks", "/")
			if len(res[0].Backups) != 1 || res[0].Backups[0].Volume != want {
				t.Fatalf("backups %+v, want %s", res[0].Backups, want)
			}

			conf = localConfig(t, dir, disk, "[key_files]\n"+`"`+disk+`" = "`+key+`"`)
			if _, err := r.Run(context.Background(), []*Config{conf}); err == nil {
				t.Fatal("run without the header succeeded; the encrypted data must be reported left out")
			}
		})
	}
	p := filepath.Join(t.TempDir(), "g.conf")
	for _, bad := range []string{`"/elsewhere" = "h.img"`, `"/dev/vg0/g" = ""`} {
		os.WriteFile(p, []byte("name = \"g\"\nsources = [\"/dev/vg0/g\"]\ndest = \"/backup\"\n[luks_headers]\n"+bad+"\n"), 0o644)
		if _, err := LoadConfig(p); err == nil || !strings.Contains(err.Error(), "luks_headers") {
			t.Errorf("luks_headers %s: %v, want a luks_headers error", bad, err)
		}
	}
}
