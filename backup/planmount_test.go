package backup

import (
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// TestPlanNamesMountPoints (issue 17 point 2): `backup plan` names each
// volume by where its guest mounts it, and those names are virt-inspector's
// (fixtures/golden/os-*.inspector.xml, libguestfs's appliance on the same
// images).
func TestPlanNamesMountPoints(t *testing.T) {
	for _, name := range []string{"os-centos5", "os-debian", "os-rhel7"} {
		t.Run(name, func(t *testing.T) {
			var insp struct {
				OS []struct {
					Mounts []struct {
						Dev   string `xml:"dev,attr"`
						Point string `xml:",chardata"`
					} `xml:"mountpoints>mountpoint"`
				} `xml:"operatingsystem"`
			}
			if err := xml.Unmarshal(fixturetest.Golden(t, name+".inspector.xml"), &insp); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{}
			for _, o := range insp.OS {
				for _, m := range o.Mounts {
					addr := strings.TrimPrefix(m.Dev, "/dev/")
					if n, ok := strings.CutPrefix(m.Dev, "/dev/sda"); ok {
						addr = "p" + n
					}
					want[addr] = m.Point
				}
			}
			if len(want) < 2 {
				t.Fatalf("virt-inspector golden has %d mounts", len(want))
			}
			dir := t.TempDir()
			c := localConfig(t, dir, fixturetest.Image(t, name), "")
			plan := (&Runner{Level: -1}).Plan(c, time.Date(2026, 1, 2, 2, 0, 0, 0, time.Local))
			got := map[string]string{}
			for _, v := range plan.Volumes {
				if v.MountPoint != "" && v.MountPoint != "swap" {
					got[v.Address] = v.MountPoint
				}
			}
			for a, p := range want {
				if got[a] != p {
					t.Errorf("%s: plan says %q, virt-inspector %q", a, got[a], p)
				}
			}
			var sb strings.Builder
			plan.WriteText(&sb)
			if !strings.Contains(sb.String(), "MOUNTED ON") || !strings.Contains(sb.String(), " /home ") && name == "os-centos5" {
				t.Errorf("plan text:\n%s", sb.String())
			}
			if t.Failed() {
				t.Logf("got %v\nplan:\n%s", got, sb.String())
			}
		})
	}
}
