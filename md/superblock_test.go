package md

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// toBigEndian090 rewrites a little-endian 0.90 superblock as a big-endian
// host would have written it, the way mdadm's --update=byteorder swaps
// one: every 32-bit word byte-swapped, and the two halves of each 64-bit
// field (events, cp_events, reshape_position) exchanged; then the checksum
// is recomputed as that host would.
func toBigEndian090(sb []byte) {
	for i := 0; i < sb090Bytes; i += 4 {
		binary.BigEndian.PutUint32(sb[i:], binary.LittleEndian.Uint32(sb[i:]))
	}
	for _, w := range []int{39, 41, 44} {
		a, b := sb[4*w:4*w+4], sb[4*w+4:4*w+8]
		var t [4]byte
		copy(t[:], a)
		copy(a, b)
		copy(b, t[:])
	}
	binary.BigEndian.PutUint32(sb[4*38:], csum090(sb, binary.BigEndian))
}

// TestBigEndian090: the r1v090 members rewritten in big-endian byte order
// parse to the same superblocks and assemble to the same bytes.
func TestBigEndian090(t *testing.T) {
	var les, bes []*Member
	for i := 0; i < 3; i++ {
		b, err := os.ReadFile(fixturetest.Image(t, fmt.Sprintf("md-r1v090-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		le, err := Read(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		les = append(les, &Member{Name: fmt.Sprint("le", i), R: bytes.NewReader(b), Size: int64(len(b)), SB: le})
		be := append([]byte(nil), b...)
		toBigEndian090(be[le.Offset : le.Offset+sb090Bytes])
		sb, err := Read(bytes.NewReader(be), int64(len(be)))
		if err != nil {
			t.Fatalf("big-endian member %d: %v", i, err)
		}
		if !sb.BigEndian || le.BigEndian {
			t.Fatalf("BigEndian: le %v, be %v", le.BigEndian, sb.BigEndian)
		}
		// Everything but the byte order and checksum is the same.
		got, want := *sb, *le
		got.BigEndian, got.Checksum = false, 0
		want.Checksum = 0
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
			t.Errorf("member %d:\n big-endian    %+v\n little-endian %+v", i, got, want)
		}
		bes = append(bes, &Member{Name: fmt.Sprint("be", i), R: bytes.NewReader(be), Size: int64(len(be)), SB: sb})
	}
	if les[0].SB.Events == 0 || les[2].SB.Events >= les[0].SB.Events {
		t.Fatalf("events %d/%d: the fixture should have a stale member 2", les[0].SB.Events, les[2].SB.Events)
	}
	a := Assemble(bes)[0]
	if len(a.Stale) != 1 || a.Stale[0] != bes[2] {
		t.Fatalf("stale %v", names(a.Stale))
	}
	checkArray(t, a, "r1v090")
}

// TestDamagedSuperblocks: a bad checksum or an impossible field is an
// error naming the superblock's byte offset; no superblock at all is
// ErrNoSuperblock.
func TestDamagedSuperblocks(t *testing.T) {
	b, err := os.ReadFile(fixturetest.Image(t, "md-r1v12-0"))
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(sb []byte)) []byte {
		c := append([]byte(nil), b...)
		f(c[4096 : 4096+4096])
		return c
	}
	fix := func(sb []byte) {
		n := int(binary.LittleEndian.Uint32(sb[220:]))
		binary.LittleEndian.PutUint32(sb[216:], csum1(sb, n))
	}
	cases := []struct {
		name string
		img  []byte
		want string
	}{
		{"checksum", mod(func(sb []byte) { sb[40] ^= 1 }), "superblock at byte 4096: checksum"},
		{"super offset", mod(func(sb []byte) { binary.LittleEndian.PutUint64(sb[144:], 16); fix(sb) }), "records its own offset as byte 8192"},
		{"data past end", mod(func(sb []byte) { binary.LittleEndian.PutUint64(sb[128:], 1<<40); fix(sb) }), "does not fit"},
		{"max_dev", mod(func(sb []byte) { binary.LittleEndian.PutUint32(sb[220:], 5000) }), "max_dev 5000"},
		{"raid disks", mod(func(sb []byte) { binary.LittleEndian.PutUint32(sb[92:], 0); fix(sb) }), "0 raid disks"},
		{"dev number", mod(func(sb []byte) { binary.LittleEndian.PutUint32(sb[160:], 3000); fix(sb) }), "device number 3000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(c.img), int64(len(c.img)))
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "MD 1.2 superblock at byte 4096") {
				t.Errorf("error %v, want one containing %q at byte 4096", err, c.want)
			}
		})
	}
	for _, n := range []int{0, 100, 5000, 128 << 10} {
		if _, err := Read(bytes.NewReader(make([]byte, n)), int64(n)); !errors.Is(err, ErrNoSuperblock) {
			t.Errorf("%d zero bytes: %v", n, err)
		}
	}
	// A member cut short before its data area ends cannot be opened.
	short := b[:2<<20]
	sb, err := Read(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	m := &Member{Name: "short", R: bytes.NewReader(short), Size: int64(len(short)), SB: sb}
	if _, err := Assemble([]*Member{m})[0].Open(); err == nil || !strings.Contains(err.Error(), "past its end") {
		t.Errorf("short member: %v", err)
	}
}
