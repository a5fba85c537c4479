package extract

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/imgtool/imgtool/ext"
	"golang.org/x/sys/unix"
)

// TestACLRoundTrip: a POSIX ACL set through the kernel (VFS xattr format)
// on a source file, copied into an image by mke2fs -d (which stores it in
// ext4's compact format), must come back out of Run byte for byte as the
// kernel gave it.
// The kernel's POSIX ACL xattr format (posix_acl_xattr, version 2).
const (
	vfsACLVersion  = 2
	aclUserObj     = 0x01
	aclUser        = 0x02
	aclGroupObj    = 0x04
	aclGroup       = 0x08
	aclMask        = 0x10
	aclOther       = 0x20
	aclUndefinedID = 0xFFFFFFFF
)

func TestACLRoundTrip(t *testing.T) {
	requireRoot(t)
	tmp := tmpfsDir(t)
	src := filepath.Join(tmp, "src")
	os.Mkdir(src, 0o755)
	f := filepath.Join(src, "f")
	os.WriteFile(f, []byte("acl\n"), 0o664)
	le := binary.LittleEndian
	acl := le.AppendUint32(nil, vfsACLVersion)
	for _, e := range [][3]uint32{{aclUserObj, 6, aclUndefinedID}, {aclUser, 4, 1234}, {aclGroupObj, 4, aclUndefinedID},
		{aclGroup, 6, 5678}, {aclMask, 6, aclUndefinedID}, {aclOther, 4, aclUndefinedID}} {
		acl = le.AppendUint16(acl, uint16(e[0]))
		acl = le.AppendUint16(acl, uint16(e[1]))
		acl = le.AppendUint32(acl, e[2])
	}
	if err := unix.Setxattr(f, "system.posix_acl_access", acl, 0); err != nil {
		t.Fatalf("tmpfs without POSIX ACLs? %v", err)
	}
	want := make([]byte, 256)
	n, err := unix.Getxattr(f, "system.posix_acl_access", want)
	if err != nil {
		t.Fatal(err)
	}
	want = want[:n]
	img := filepath.Join(tmp, "acl.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(img, 8<<20)
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-d", src, img).CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v %s", err, out)
	}
	r, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fsys, err := ext.Open(r, 8<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(tmp, "out")
	rep, err := Run(context.Background(), ext.NewVFS(fsys), []string{"/f"}, dest, Options{Xattrs: true, Owner: true})
	if err != nil || rep.Partial() {
		t.Fatal(err, rep.Problems)
	}
	got := make([]byte, 256)
	n, err = unix.Getxattr(dest, "system.posix_acl_access", got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:n], want) {
		t.Errorf("ACL %x, want %x", got[:n], want)
	}
}
