package osinspect

import (
	"reflect"
	"testing"
)

func TestParseFstab(t *testing.T) {
	got := ParseFstab("# comment\n\n/dev/VolGroup00/LogVol00 /  ext3 defaults 1 1\n" +
		"LABEL=/boot\t/boot\text3\tdefaults\t1\t2\n" +
		"UUID=abc /mnt/my\\040disk ext4 ro,noauto\n" +
		"  /dev/sr0 /media/cdrom0 udf,iso9660 user,noauto 0 0  # trailing\n" +
		"broken-line\n")
	want := []FstabEntry{
		{Line: 3, Spec: "/dev/VolGroup00/LogVol00", File: "/", Type: "ext3", Options: "defaults", Freq: 1, Pass: 1},
		{Line: 4, Spec: "LABEL=/boot", File: "/boot", Type: "ext3", Options: "defaults", Freq: 1, Pass: 2},
		{Line: 5, Spec: "UUID=abc", File: "/mnt/my disk", Type: "ext4", Options: "ro,noauto"},
		{Line: 6, Spec: "/dev/sr0", File: "/media/cdrom0", Type: "udf,iso9660", Options: "user,noauto"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseFstab:\n got %+v\nwant %+v", got, want)
	}
	if !got[2].HasOption("noauto") || got[2].HasOption("auto") {
		t.Error("HasOption")
	}
}

func TestLVMName(t *testing.T) {
	for _, c := range []struct{ spec, vg, lv string }{
		{"/dev/VolGroup00/LogVol00", "VolGroup00", "LogVol00"},
		{"/dev/mapper/centos-root", "centos", "root"},
		{"/dev/mapper/centos-home--data", "centos", "home-data"},
		{"/dev/mapper/my--vg-my--lv", "my-vg", "my-lv"},
		{"/dev/mapper/nodash", "", ""},
		{"/dev/sda1", "", ""},
		{"/dev/disk/by-uuid", "", ""},
		{"/dev/md/0", "", ""},
		{"UUID=x", "", ""},
	} {
		vg, lv, ok := lvmName(c.spec)
		if vg != c.vg || lv != c.lv || ok != (c.vg != "") {
			t.Errorf("lvmName(%q) = %q %q %v", c.spec, vg, lv, ok)
		}
	}
}

func TestParseOSRelease(t *testing.T) {
	kv := ParseOSRelease("NAME=\"CentOS Linux\"\nVERSION_ID='7'\nID=centos\n# c\nBAD\nPRETTY_NAME=\"a \\\"q\\\" b\"\n")
	if kv["NAME"] != "CentOS Linux" || kv["VERSION_ID"] != "7" || kv["ID"] != "centos" || kv["PRETTY_NAME"] != `a "q" b` {
		t.Errorf("%q", kv)
	}
	for _, c := range []struct {
		s            string
		major, minor int
	}{{"12.11\n", 12, 11}, {"7.9.2009", 7, 9}, {"12", 12, -1}, {"bookworm/sid", -1, -1}} {
		major, minor, _ := parseVersion(c.s)
		if major != c.major || minor != c.minor {
			t.Errorf("parseVersion(%q) = %d.%d", c.s, major, minor)
		}
	}
}
