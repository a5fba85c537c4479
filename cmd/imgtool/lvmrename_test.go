package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// realLVM runs lvm2 restricted to the given loop devices, with a private
// LVM_SYSTEM_DIR (activation off, no backups), as the fixture scripts do.
type realLVM struct {
	t    *testing.T
	env  []string
	devs []string
}

func newRealLVM(t *testing.T) *realLVM {
	dir := t.TempDir()
	conf := "devices { obtain_device_list_from_udev = 0 scan_lvs = 0 }\nactivation { udev_sync = 0 udev_rules = 0 }\nglobal { activation = 0 }\nbackup { backup = 0 archive = 0 }\n"
	if err := os.WriteFile(filepath.Join(dir, "lvm.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return &realLVM{t: t, env: append(os.Environ(), "LVM_SYSTEM_DIR="+dir, "LVM_SUPPRESS_FD_WARNINGS=1")}
}

// attach adds a read-write loop device over [off, off+size) of path.
func (l *realLVM) attach(path string, off, size int64) {
	out, err := exec.Command("losetup", "-f", "--show", "-o", itoa(off), "--sizelimit", itoa(size), path).Output()
	if err != nil {
		l.t.Fatalf("losetup: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	l.devs = append(l.devs, dev)
	l.t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
}

func (l *realLVM) run(args ...string) (string, string, error) {
	full := []string{args[0]}
	for _, d := range l.devs {
		full = append(full, "--devices", d)
	}
	full = append(full, args[1:]...)
	cmd := exec.Command("lvm", full...)
	cmd.Env = l.env
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// goldenVolume returns offset and size of addr from dom0-blkid.txt.
func goldenVolume(t *testing.T, addr string) (int64, int64) {
	for _, line := range strings.Split(string(fixturetest.Golden(t, "dom0-blkid.txt")), "\n") {
		var a string
		var off, size int64
		if n, _ := sscan(line, &a, &off, &size); n == 3 && a == addr {
			return off, size
		}
	}
	t.Fatalf("golden lacks %s", addr)
	return 0, 0
}

// The rename round trip of the LVM issue: rename the guest's VolGroup00 on
// a copy of the dom0 image, let real lvm2 look at the host PV and the nested
// guest PV together, then undo byte for byte.
func TestLVMRenameRoundTrip(t *testing.T) {
	for _, newUUIDs := range []bool{false, true} {
		name := "same-uuids"
		if newUUIDs {
			name = "new-uuids"
		}
		t.Run(name, func(t *testing.T) {
			img := fixturetest.Copy(t, "dom0")
			orig := fixturetest.SHA256File(t, img)
			const guestVG = "VolGroup00/domu1/VolGroup00"

			// Before: lvm2 sees two VGs of one name and complains.
			before := newRealLVM(t)
			before.attachGolden(img, "p2")
			before.attachGolden(img, "VolGroup00/domu1/p2")
			if _, errs, _ := before.run("vgs"); !strings.Contains(errs, "Fix duplicate VG names") {
				t.Fatalf("control: lvm2 did not complain about the clash before the rename:\n%s", errs)
			}

			args := []string{"lvm", "rename", img, guestVG, "guest00"}
			if newUUIDs {
				args = append(args, "--new-uuids")
			}
			out, errOut, code := imgtool(t, args...)
			if code != 0 || !strings.Contains(out, "dry run") {
				t.Fatalf("dry run: exit %d\n%s%s", code, out, errOut)
			}
			if fixturetest.SHA256File(t, img) != orig {
				t.Fatal("dry run wrote to the image")
			}
			undo := filepath.Join(t.TempDir(), "undo.json")
			out, errOut, code = imgtool(t, append(args, "--write", "--undo-file", undo)...)
			if code != 0 {
				t.Fatalf("rename --write: exit %d\n%s%s", code, out, errOut)
			}

			// imgtool sees no clash any more.
			out, _, _ = imgtool(t, "inspect", img)
			if strings.Contains(out, "clash") || !strings.Contains(out, "VolGroup00/domu1/guest00/LogVol00") {
				t.Errorf("after rename, inspect shows:\n%s", out)
			}

			// Real lvm2: both VGs, no duplicate warning, vgck passes.
			l := newRealLVM(t)
			l.attachGolden(img, "p2")
			l.attachGolden(img, "VolGroup00/domu1/p2")
			vgs, errs, err := l.run("vgs", "--reportformat", "json", "-o", "vg_name,vg_uuid,vg_seqno")
			if err != nil || strings.Contains(strings.ToLower(errs), "duplicate") {
				t.Fatalf("vgs after rename: %v\n%s\n%s", err, vgs, errs)
			}
			for _, vg := range []string{"\"VolGroup00\"", "\"guest00\""} {
				if !strings.Contains(vgs, vg) {
					t.Errorf("vgs lacks %s:\n%s", vg, vgs)
				}
			}
			for _, vg := range []string{"VolGroup00", "guest00"} {
				if out, errs, err := l.run("vgck", vg); err != nil {
					t.Errorf("vgck %s: %v\n%s%s", vg, err, out, errs)
				}
			}
			pvs, _, _ := l.run("pvs", "--reportformat", "json", "-o", "pv_uuid,vg_name")
			var rep struct {
				Report []struct {
					PV []map[string]string `json:"pv"`
				} `json:"report"`
			}
			json.Unmarshal([]byte(pvs), &rep)
			oldGuestPV := lvm2Report(t, "dom0-guest-pvs.json", "pv")[0]["pv_uuid"]
			sawOld := false
			for _, p := range rep.Report[0].PV {
				if p["pv_uuid"] == oldGuestPV {
					sawOld = true
				}
			}
			if sawOld == newUUIDs {
				t.Errorf("new-uuids=%v but the guest PV UUID %s present=%v: %s", newUUIDs, oldGuestPV, sawOld, pvs)
			}

			out, errOut, code = imgtool(t, "lvm", "undo", undo)
			if code != 0 {
				t.Fatalf("undo: exit %d\n%s%s", code, out, errOut)
			}
			if fixturetest.SHA256File(t, img) != orig {
				t.Fatal("undo did not restore the image byte for byte")
			}
		})
	}
}

// attachGolden attaches the volume at addr of the dom0 fixture's golden.
func (l *realLVM) attachGolden(img, addr string) {
	off, size := goldenVolume(l.t, addr)
	l.attach(img, off, size)
}
