package osinspect

import (
	"strings"
	"testing"
)

// FuzzFstab: fstab and os-release text from a guest is hostile input;
// parsing never panics and keeps every field free of the separators.
func FuzzFstab(f *testing.F) {
	f.Add("/dev/VolGroup00/LogVol00 / ext3 defaults 1 1\nLABEL=/boot /boot ext3 defaults 1 2\n")
	f.Add("UUID=x /mnt/a\\040b ext4 ro 0 0\n\\\\\\0 \\777 x\n")
	f.Add("NAME=\"CentOS\"\nVERSION_ID='7'\n")
	f.Fuzz(func(t *testing.T, s string) {
		for _, e := range ParseFstab(s) {
			if e.Line <= 0 || e.File == "" && e.Spec == "" {
				t.Fatalf("entry %+v", e)
			}
			if strings.ContainsAny(e.Type+e.Options, " \t\n") {
				t.Fatalf("field with a separator: %+v", e)
			}
		}
		ParseOSRelease(s)
		parseVersion(s)
		lvmName(s)
		unescapeUdev(s)
	})
}
