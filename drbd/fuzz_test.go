package drbd

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// FuzzRead: the meta data area (bitmap, activity log, superblock) of each
// drbdmeta-made fixture, as a small device.
func FuzzRead(f *testing.F) {
	for _, name := range fixtureNames {
		b, err := os.ReadFile(fixturetest.Image(f, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[len(b)-48<<10:])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fixturetest.Watchdog(10 * time.Second)()
		r := bytes.NewReader(data)
		m, err := Read(r, int64(len(data)))
		if err != nil {
			return
		}
		_ = m.String()
		m.BitsSet(r, 0)
		Compare(m, m)
		if m.DataSize() < 0 || m.DataSize() > int64(len(data)) {
			t.Fatalf("DataSize %d outside the %d-byte device", m.DataSize(), len(data))
		}
	})
}
