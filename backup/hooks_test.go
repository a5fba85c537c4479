package backup

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The command templates a run executes, expanded as a run expands them,
// against the real tools. lvcreate/lvremove run on a VG of a loop device
// with activation off and --test (no device-mapper here): a template with
// a wrong option fails at argument parsing (exit 3, "Error during parsing
// of command line"), a right one gets as far as needing the kernel's
// snapshot target.

func runSh(cmdline string, env ...string) (string, int) {
	c := exec.Command("/bin/sh", "-c", cmdline)
	c.Env = append(os.Environ(), env...)
	out, err := c.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return string(out), code
}

func TestHookTemplatesLVM(t *testing.T) {
	need(t, "lvcreate", "lvremove", "pvcreate", "vgcreate", "losetup")
	dir := t.TempDir()
	pv := filepath.Join(dir, "pv.img")
	sh(t, dir, "truncate", "-s", "64M", pv)
	loop := strings.TrimSpace(sh(t, dir, "losetup", "-f", "--show", pv))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	vg := fmt.Sprintf("imgtoolhk%d", os.Getpid())
	lvmArgs := " --devices " + loop + " --config 'global{activation=0}'"
	sh(t, dir, "sh", "-c", "pvcreate -q "+lvmArgs+" "+loop+" && vgcreate -q "+lvmArgs+" "+vg+" "+loop+
		" && lvcreate -q "+lvmArgs+" -an -Zn -L 16M -n web-root "+vg)
	t.Cleanup(func() { exec.Command("sh", "-c", "vgremove -q -f "+lvmArgs+" "+vg).Run() })

	// Every option of the default templates is in the tools' --help.
	for tool, tmpl := range map[string]string{"lvcreate": DefaultSnapCreate, "lvremove": DefaultSnapRemove} {
		help, _ := runSh(tool + " --help")
		for _, opt := range regexp.MustCompile(`--[a-z-]+`).FindAllString(tmpl, -1) {
			if !strings.Contains(help, opt) {
				t.Errorf("%s --help does not list %s", tool, opt)
			}
		}
	}

	c := &Config{Name: "web", Sources: []string{"/dev/" + vg + "/web-root"}, Dest: dir, Snapshot: SnapConfig{Mode: "always"}}
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	srcs, err := (&Runner{}).sourcesOf(c)
	if err != nil {
		t.Fatal(err)
	}
	s := srcs[0]
	if s.device != "/dev/"+vg+"/web-root-imgtool-snap" || s.cow != "/dev/mapper/"+vg+"-web--root--imgtool--snap-cow" {
		t.Errorf("device %s, cow %s", s.device, s.cow)
	}
	create, err := expand(c.Snapshot.Create, s.vars, true)
	if err != nil {
		t.Fatal(err)
	}
	out, code := runSh(create + " --test" + lvmArgs)
	if code == 3 || strings.Contains(out, "parsing of command line") || !strings.Contains(out, "Can't create snapshot without using device-mapper") {
		t.Errorf("%s: exit %d:\n%s", create, code, out)
	}
	// The control: a wrong option is refused at parsing.
	bad := strings.Replace(create, "--size", "--sise", 1)
	if out, code := runSh(bad + " --test" + lvmArgs); code != 3 || !strings.Contains(out, "parsing of command line") {
		t.Errorf("a misspelt option was not refused: exit %d:\n%s", code, out)
	}
	// lvremove of {vg}/{snap}: the snapshot cannot exist here, so the
	// template is aimed at the origin, in test mode.
	vars := map[string]string{}
	for k, v := range s.vars {
		vars[k] = v
	}
	vars["snap"] = "web-root"
	remove, err := expand(c.Snapshot.Remove, vars, true)
	if err != nil {
		t.Fatal(err)
	}
	if out, code := runSh(remove + " --test" + lvmArgs); code != 0 || !strings.Contains(out, `Logical volume "web-root" successfully removed`) {
		t.Errorf("%s: exit %d:\n%s", remove, code, out)
	}
}

// The pause/resume templates the config documents, against virsh (its
// built-in test driver, test:///default, has a running domain "test") and
// xl (its subcommand table: xl needs a Xen hypervisor to do anything).
func TestHookTemplatesVirshXl(t *testing.T) {
	need(t, "virsh")
	vars := map[string]string{"name": "test"}
	uri := "LIBVIRT_DEFAULT_URI=test:///default"
	pause, _ := expand("virsh suspend {name}", vars, true)
	if out, code := runSh(pause, uri); code != 0 || !strings.Contains(out, "Domain 'test' suspended") {
		t.Errorf("%s: exit %d:\n%s", pause, code, out)
	}
	// Each virsh process gets a fresh test driver whose domain runs: the
	// resume is refused for that reason, not for its syntax.
	resume, _ := expand("virsh resume {name}", vars, true)
	if out, code := runSh(resume, uri); code == 0 || !strings.Contains(out, "not paused") && !strings.Contains(out, "not in paused") {
		if code != 0 || !strings.Contains(out, "resumed") {
			t.Errorf("%s: exit %d:\n%s", resume, code, out)
		}
	}
	for _, cmd := range []string{"suspend", "resume"} {
		if out, _ := runSh("virsh help " + cmd); !strings.Contains(out, cmd+" <domain>") {
			t.Errorf("virsh help %s: no %q:\n%s", cmd, cmd+" <domain>", out)
		}
	}
	// The control: a misspelt subcommand is refused.
	if out, code := runSh("virsh suspnd test", uri); code == 0 {
		t.Errorf("virsh accepted a misspelt command:\n%s", out)
	}

	xls, _ := filepath.Glob("/usr/lib/xen-*/bin/xl")
	if len(xls) == 0 {
		t.Fatal("xl is required (xen-utils): scripts/setup.sh installs it")
	}
	list, _ := runSh(xls[0])
	for _, tmpl := range []string{"xl pause {name}", "xl unpause {name}"} {
		cmd, _ := expand(tmpl, vars, true)
		f := strings.Fields(cmd)
		if len(f) != 3 || !regexp.MustCompile(`(?m)^ `+f[1]+` `).MatchString(list) {
			t.Errorf("%s: subcommand %q is not in xl's list:\n%s", cmd, f[1], list)
		}
	}
	if regexp.MustCompile(`(?m)^ pase `).MatchString(list) {
		t.Error("the control matched")
	}
}
