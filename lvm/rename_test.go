package lvm

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
	"github.com/imgtool/imgtool/image"
)

// lvm2 is real lvm2 restricted to loop devices attached to the given files,
// with a private LVM_SYSTEM_DIR (as fixtures/scripts/lib.sh does).
type lvm2 struct {
	t     *testing.T
	env   []string
	loops []string
}

func newLVM2(t *testing.T, files ...string) *lvm2 {
	t.Helper()
	if _, err := exec.LookPath("lvm"); err != nil {
		t.Fatalf("lvm2 is required for this test (CI installs it): %v", err)
	}
	dir := t.TempDir()
	conf := "devices { obtain_device_list_from_udev = 0 scan_lvs = 0 }\n" +
		"activation { udev_sync = 0 udev_rules = 0 }\nglobal { activation = 0 }\nbackup { backup = 0 archive = 0 }\n"
	if err := os.WriteFile(filepath.Join(dir, "lvm.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	l := &lvm2{t: t, env: append(os.Environ(), "LVM_SYSTEM_DIR="+dir, "LVM_SUPPRESS_FD_WARNINGS=1")}
	for _, f := range files {
		l.attach(f)
	}
	return l
}

// attach attaches a loop device (losetup args... FILE last) and detaches it
// when the test ends.
func (l *lvm2) attach(file string, args ...string) {
	l.t.Helper()
	out, err := exec.Command("losetup", append(append([]string{"-f", "--show"}, args...), file)...).Output()
	if err != nil {
		l.t.Fatalf("losetup %s: %v", file, err)
	}
	dev := strings.TrimSpace(string(out))
	l.loops = append(l.loops, dev)
	l.t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
}

// run runs an lvm command with --devices for our loops and returns stdout.
func (l *lvm2) run(cmd string, args ...string) (string, error) {
	a := []string{cmd}
	for _, d := range l.loops {
		a = append(a, "--devices", d)
	}
	a = append(a, args...)
	c := exec.Command("lvm", a...)
	c.Env = l.env
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return string(out), &exec.ExitError{ProcessState: c.ProcessState, Stderr: stderr.Bytes()}
	}
	return string(out), nil
}

func (l *lvm2) report(cmd string, fields string) []map[string]string {
	l.t.Helper()
	out, err := l.run(cmd, "--reportformat", "json", "-o", fields)
	if err != nil {
		l.t.Fatalf("lvm %s: %v", cmd, err)
	}
	var rep struct {
		Report []map[string][]map[string]string `json:"report"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		l.t.Fatalf("lvm %s output: %v\n%s", cmd, err, out)
	}
	var rows []map[string]string
	for _, r := range rep.Report {
		for _, v := range r {
			rows = append(rows, v...)
		}
	}
	return rows
}

func (l *lvm2) detach() {
	for _, d := range l.loops {
		exec.Command("losetup", "-d", d).Run()
	}
	l.loops = nil
}

func TestRenameRoundTrip(t *testing.T) {
	cases := []struct {
		name     string
		images   []string
		vg, to   string
		newUUIDs bool
		shaFile  string
	}{
		{"linear", []string{"lvm-linear"}, "vglin", "vgrenamed", false, "lvm-linear.sha256"},
		{"wrapped-ring-two-mdas", []string{"lvm-wrap"}, "vgwrap", "vgwrap2", false, "lvm-wrap.sha256"},
		{"two-images-new-uuids", []string{"lvm-striped-a", "lvm-striped-b"}, "vgstripe", "vgclone", true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var paths []string
			var origSHA []string
			targets := map[string]WriteTarget{}
			var pvs []*PV
			for _, name := range tc.images {
				p := fixturetest.Copy(t, name)
				paths = append(paths, p)
				origSHA = append(origSHA, fixturetest.SHA256File(t, fixturetest.Image(t, name)))
				im, err := image.OpenWritable(p)
				if err != nil {
					t.Fatal(err)
				}
				defer im.Close()
				targets[p] = im
				pv, err := ReadPV(im, im.Size())
				if err != nil {
					t.Fatal(err)
				}
				pvs = append(pvs, pv)
			}
			vg := findVG(t, assemble(t, pvs...), tc.vg)
			plan, err := PlanRename(vg, tc.to, &RenameOptions{NewUUIDs: tc.newUUIDs})
			if err != nil {
				t.Fatalf("PlanRename: %v", err)
			}
			if !strings.Contains(plan.String(), tc.to) {
				t.Errorf("dry run does not mention the new name:\n%s", plan)
			}
			// Planning writes nothing.
			for i, p := range paths {
				if fixturetest.SHA256File(t, p) != origSHA[i] {
					t.Fatalf("%s changed by PlanRename", p)
				}
			}
			undoJSON, err := plan.Undo().Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if err := Apply(plan, targets); err != nil {
				t.Fatalf("Apply: %v", err)
			}

			// Real lvm2 sees the renamed VG and finds it consistent.
			l := newLVM2(t, paths...)
			vgsRows := l.report("vgs", "vg_name,vg_uuid,vg_seqno")
			if len(vgsRows) != 1 || vgsRows[0]["vg_name"] != tc.to || vgsRows[0]["vg_uuid"] != plan.NewVGUUID ||
				vgsRows[0]["vg_seqno"] != strconv.FormatUint(plan.NewSeqno, 10) {
				t.Errorf("lvm2 vgs after rename: %v; plan %s %s seqno %d", vgsRows, tc.to, plan.NewVGUUID, plan.NewSeqno)
			}
			for _, r := range l.report("pvs", "pv_uuid,vg_name") {
				found := false
				for _, nu := range plan.PVUUIDs {
					if nu == r["pv_uuid"] {
						found = true
					}
				}
				if !found || r["vg_name"] != tc.to {
					t.Errorf("lvm2 pvs row %v: not a PV of the renamed VG %v", r, plan.PVUUIDs)
				}
			}
			if out, err := l.run("vgck", tc.to); err != nil {
				t.Errorf("vgck %s failed: %v %s", tc.to, err, out)
			}
			if tc.newUUIDs {
				for old, nu := range plan.PVUUIDs {
					if old == nu {
						t.Errorf("PV %s kept its UUID", old)
					}
				}
			}
			l.detach()

			// Our reader agrees, and LV contents are untouched.
			var again []*PV
			for _, p := range paths {
				pv, err := ReadPV(targets[p], targets[p].(*image.Image).Size())
				if err != nil {
					t.Fatal(err)
				}
				again = append(again, pv)
			}
			vgs := assemble(t, again...)
			nv := findVG(t, vgs, tc.to)
			if nv.Seqno != plan.NewSeqno || nv.Inconsistent || len(nv.Notes) != 0 || nv.UUID != plan.NewVGUUID {
				t.Errorf("re-read: seqno %d uuid %s notes %v", nv.Seqno, nv.UUID, nv.Notes)
			}
			if tc.shaFile != "" {
				for k, v := range goldenSHA(t, tc.shaFile) {
					lvn := k[strings.IndexByte(k, '/')+1:]
					r, err := nv.LV(lvn).Open()
					if err != nil || shaOf(t, r) != v {
						t.Errorf("%s content changed by the rename (%v)", k, err)
					}
				}
			}

			// Undo restores every byte.
			u, err := ReadUndo(undoJSON)
			if err != nil {
				t.Fatal(err)
			}
			if err := Undo(u, targets, false); err != nil {
				t.Fatalf("Undo: %v", err)
			}
			for i, p := range paths {
				if got := fixturetest.SHA256File(t, p); got != origSHA[i] {
					t.Errorf("%s after undo: sha256 %s, original %s", p, got, origSHA[i])
				}
			}
			// A second undo finds the bytes are no longer the renamed ones.
			if err := Undo(u, targets, false); err == nil {
				t.Error("undo of an already undone rename should refuse")
			}
		})
	}
}

func TestRenameRefusesDamagedVG(t *testing.T) {
	vg := findVG(t, assemble(t, openPV(t, "lvm-corrupt")), "vgbad")
	if _, err := PlanRename(vg, "vgother", nil); err == nil {
		t.Fatal("rename of a VG whose newest copy is damaged should need Force")
	}
	if _, err := PlanRename(vg, "vgother", &RenameOptions{Force: true}); err != nil {
		t.Fatalf("with Force: %v", err)
	}
	vgm := findVG(t, assemble(t, openPV(t, "lvm-striped-b")), "vgstripe")
	if _, err := PlanRename(vgm, "vgother", nil); err == nil {
		t.Fatal("rename with a missing PV should need Force")
	}
	if _, err := PlanRename(vgm, "bad name", &RenameOptions{Force: true}); err == nil {
		t.Fatal("invalid VG name accepted")
	}
}
