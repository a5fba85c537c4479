package backup

import (
	"context"
	"os"
	"path/filepath"
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
