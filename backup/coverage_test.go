package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// buildMixedDisk makes a GPT disk with real tools: p1 ext4, p2 btrfs
// (mkfs.btrfs -r), p3 random bytes (no known signature), p4 LUKS1
// (cryptsetup, no key given to imgtool), p5 all zeros, p6 swap.
func buildMixedDisk(t *testing.T, dir string) string {
	t.Helper()
	need(t, "sfdisk", "mke2fs", "mkswap", "mkfs.btrfs", "cryptsetup")
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "etc"), 0o755)
	os.WriteFile(filepath.Join(src, "etc/hostname"), []byte("mixed\n"), 0o644)
	parts := []struct {
		name string
		mb   int
	}{{"ext4", 16}, {"btrfs", 120}, {"random", 4}, {"luks", 4}, {"zero", 4}, {"swap", 4}}
	var script strings.Builder
	script.WriteString("label: gpt\n")
	start := int64(2048)
	disk := filepath.Join(dir, "disk.img")
	sh(t, dir, "truncate", "-s", fmt.Sprintf("%dM", 2+16+120+4+4+4+4+2), disk)
	var starts []int64
	for _, p := range parts {
		fmt.Fprintf(&script, "start=%d,size=%d\n", start, p.mb*2048)
		starts = append(starts, start)
		start += int64(p.mb) * 2048
	}
	sh(t, dir, "sh", "-c", "printf '"+script.String()+"' | sfdisk -q "+disk)
	for i, p := range parts {
		img := filepath.Join(dir, p.name+".img")
		sh(t, dir, "truncate", "-s", fmt.Sprintf("%dM", p.mb), img)
		switch p.name {
		case "ext4":
			sh(t, dir, "mke2fs", "-q", "-F", "-t", "ext4", "-d", src, img)
		case "btrfs":
			sh(t, dir, "mkfs.btrfs", "-q", "-r", src, img)
		case "random":
			b := make([]byte, 1<<20)
			rng := rand.New(rand.NewPCG(3, 4))
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			os.WriteFile(img, b, 0o644)
		case "luks":
			key := filepath.Join(dir, "key")
			os.WriteFile(key, []byte("not given to imgtool"), 0o600)
			sh(t, dir, "cryptsetup", "luksFormat", "--batch-mode", "--type", "luks1", "--pbkdf-force-iterations", "1000", "--key-file", key, img)
		case "swap":
			sh(t, dir, "mkswap", img)
		}
		sh(t, dir, "dd", "if="+img, "of="+disk, "bs=512", fmt.Sprintf("seek=%d", starts[i]), "conv=notrunc,sparse", "status=none")
	}
	return disk
}

func localConfig(t *testing.T, dir, disk, extra string) *Config {
	t.Helper()
	p := filepath.Join(dir, "g.conf")
	os.WriteFile(p, []byte(fmt.Sprintf("name = \"g\"\nsources = [%q]\ndest = %q\n%s\n[snapshot]\nmode = \"never\"\n",
		disk, filepath.Join(dir, "backup"), extra)), 0o644)
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// quietRunner: a Runner with its state under dir, no logs, and a clock
// fixed at 2026-01-01 02:00 local.
func quietRunner(dir string) *Runner {
	return &Runner{StateDir: filepath.Join(dir, "state"), Level: -1, Host: "h", Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return time.Date(2026, 1, 1, 2, 0, 0, 0, time.Local) }}
}

func skippedSummary(sk []Skipped) string {
	var out []string
	for _, s := range sk {
		out = append(out, fmt.Sprintf("%s:%v:%s", s.Volume, s.LeftOut, s.Reason))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// A btrfs, a partition of unknown content and a LUKS volume without a key
// are never skipped silently: the run backs up the rest and fails with
// IncompleteError naming each; plan says the same; swap and an all-zero
// partition are fine; the skip list accepts the others.
func TestNeverSilent(t *testing.T) {
	dir := t.TempDir()
	disk := buildMixedDisk(t, dir)
	c := localConfig(t, dir, disk, "")
	r := quietRunner(dir)
	res, err := r.Run(context.Background(), []*Config{c})
	var ie *IncompleteError
	if !errors.As(err, &ie) {
		t.Fatalf("run: want IncompleteError, got %v", err)
	}
	if len(res[0].Backups) != 1 || res[0].Backups[0].Volume != "p1" {
		t.Errorf("the ext4 was not backed up: %+v", res[0].Backups)
	}
	want := strings.Join([]string{
		"p2:true:btrfs: imgtool cannot dump this filesystem type",
		"p3:true:unknown signature: holds data but no filesystem imgtool recognises",
		"p4:true:LUKS encrypted, not opened: encrypted: not readable without the key; LUKS1 volume " + luksUUID(t, disk) + " is locked: give a passphrase or key file to open it",
		"p5:false:empty (all zeros)",
		"p6:false:swap",
	}, "\n")
	if got := skippedSummary(res[0].Skipped); got != want {
		t.Errorf("skipped:\n%s\nwant:\n%s", got, want)
	}
	lines := ie.Lines()
	if len(lines) != 3 || !strings.Contains(lines[0], disk+"#p2: btrfs") || !strings.Contains(lines[2], "#p4: LUKS") {
		t.Errorf("one line per volume left out, got %q", lines)
	}
	for _, l := range lines {
		if strings.Contains(l, "\n") || !strings.HasPrefix(l, "guest g: NOT backed up: ") {
			t.Errorf("line %q", l)
		}
	}

	plan := r.Plan(c, time.Date(2026, 1, 2, 2, 0, 0, 0, time.Local))
	if got := skippedSummary(plan.LeftOut); got != strings.Join(strings.Split(want, "\n")[:3], "\n") {
		t.Errorf("plan left out:\n%s", got)
	}

	// Accepted in the skip list: a clean run, the volumes still named.
	c = localConfig(t, dir, disk, `skip = ["p2", "p3", "`+disk+`#p4"]`)
	res, err = r.Run(context.Background(), []*Config{c})
	if err != nil {
		t.Fatalf("run with the skip list: %v", err)
	}
	got := skippedSummary(res[0].Skipped)
	for _, w := range []string{`p2:false:listed in skip ("p2")`, `p4:false:listed in skip ("` + disk + `#p4")`, "p6:false:swap"} {
		if !strings.Contains(got, w) {
			t.Errorf("skipped with the skip list:\n%s\nwant %s", got, w)
		}
	}
	if plan := r.Plan(c, time.Now()); len(plan.LeftOut) != 0 {
		t.Errorf("plan with the skip list leaves out %+v", plan.LeftOut)
	}

	// verify: coverage of what should be backed up, and restorable chains.
	ctx := context.Background()
	st, _ := GuestStore(ctx, c)
	if err := VerifyCoverage(ctx, c, st); err != nil {
		t.Errorf("coverage with the skip list: %v", err)
	}
	if err := VerifyCoverage(ctx, localConfig(t, dir, disk, ""), st); err == nil || strings.Count(err.Error(), "NOT backed up") != 3 {
		t.Errorf("coverage without the skip list: %v", err)
	}
	r.Level = 1
	r.Now = func() time.Time { return time.Date(2026, 1, 3, 2, 0, 0, 0, time.Local) }
	res, err = r.Run(ctx, []*Config{c})
	if err != nil || res[0].Backups[0].Level != 1 {
		t.Fatalf("level 1: %v", err)
	}
	if _, err := VerifyStore(ctx, st, false); err != nil {
		t.Errorf("verify: %v", err)
	}
	// Lose the level 1's base (the newest level 0): verify says the newest
	// backup cannot be restored.
	base := res[0].Backups[0].BaseFile
	st.Remove(ctx, base+".json")
	st.Remove(ctx, base)
	if _, err := VerifyStore(ctx, st, false); err == nil || !strings.Contains(err.Error(), "cannot be restored") {
		t.Errorf("verify with the base gone: %v", err)
	}
	// Lose every backup of p1: coverage says so.
	ms, _, _ := ReadManifestsFrom(ctx, st)
	for _, m := range ms {
		st.Remove(ctx, m.File+".json")
	}
	if err := VerifyCoverage(ctx, c, st); err == nil || !strings.Contains(err.Error(), disk+"#p1 should be backed up") {
		t.Errorf("coverage with no backup of p1: %v", err)
	}
}

// luksUUID is the UUID cryptsetup wrote in p4's header.
func luksUUID(t *testing.T, disk string) string {
	t.Helper()
	return strings.TrimSpace(sh(t, filepath.Dir(disk), "cryptsetup", "luksUUID", filepath.Join(filepath.Dir(disk), "luks.img")))
}
