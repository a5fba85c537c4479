package luks

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// goldenSHA reads fixtures/golden/luks.sha256: NAME DEVICE SHA256, as the
// kernel's dm-crypt in libguestfs's appliance read each device.
func goldenSHA(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(fixturetest.Golden(t, "luks.sha256")))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 {
			m[f[1]] = f[2]
		}
	}
	if len(m) < 6 {
		t.Fatalf("luks.sha256 has %d entries", len(m))
	}
	return m
}

func openFixture(t *testing.T, name string) (*Header, *os.File) {
	t.Helper()
	f, err := os.Open(fixturetest.Image(t, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	h, err := Parse(f, st.Size())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return h, f
}

func sum(t *testing.T, r io.ReaderAt, size int64) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, size)); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

var fixtures = []struct {
	name       string
	version    int
	cipher     string
	sectorSize int
	kdf        string
}{
	{"luks1-xts", 1, "aes-xts-plain64", 512, "pbkdf2"},
	{"luks1-essiv-lvm", 1, "aes-cbc-essiv:sha256", 512, "pbkdf2"},
	{"luks2-pbkdf2", 2, "aes-xts-plain64", 512, "pbkdf2"},
	{"luks2-argon2id", 2, "aes-xts-plain64", 4096, "argon2id"},
	{"luks2-argon2i-4k", 2, "aes-xts-plain64", 4096, "argon2i"},
	{"luks2-badprimary", 2, "aes-xts-plain64", 4096, "argon2id"},
}

// dumpField returns the value of the first "Key: value" line of a
// cryptsetup luksDump golden.
func dumpField(dump, key string) string {
	re := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(key) + `:\s*(.*?)\s*$`)
	if m := re.FindStringSubmatch(dump); m != nil {
		return m[1]
	}
	return ""
}

func TestFixturesUnlockLikeTheKernel(t *testing.T) {
	want := goldenSHA(t)
	pass := fixturetest.Golden(t, "luks.pass")
	key := fixturetest.Golden(t, "luks.key")
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			h, _ := openFixture(t, fx.name)
			dump := string(fixturetest.Golden(t, "luks-"+fx.name+".dump"))
			if h.Version != fx.version || h.Cipher() != fx.cipher || h.Segment.SectorSize != fx.sectorSize {
				t.Errorf("header: version %d cipher %s sector %d", h.Version, h.Cipher(), h.Segment.SectorSize)
			}
			if u := dumpField(dump, "UUID"); u != h.UUID {
				t.Errorf("UUID %q, luksDump says %q", h.UUID, u)
			}
			if len(h.Keyslots) != 2 || h.Keyslots[0].KDF != fx.kdf {
				t.Errorf("keyslots %+v", h.Keyslots)
			}
			if fx.version == 2 {
				if ss := dumpField(dump, "sector"); ss != itoa(int64(h.Segment.SectorSize))+" [bytes]" {
					t.Errorf("sector size %d, luksDump says %q", h.Segment.SectorSize, ss)
				}
				off := dumpField(dump, "offset")
				if off != "" && !strings.HasPrefix(off, itoa(h.Segment.Offset)+" ") {
					t.Errorf("data offset %d, luksDump says %q", h.Segment.Offset, off)
				}
			} else if po := dumpField(dump, "Payload offset"); po != itoa(h.Segment.Offset/512) {
				t.Errorf("payload offset %d sectors, luksDump says %s", h.Segment.Offset/512, po)
			}
			for _, k := range []struct {
				how string
				b   []byte
			}{{"passphrase", pass}, {"key file", key}} {
				v, err := h.Unlock(k.b)
				if err != nil {
					t.Fatalf("unlock by %s: %v", k.how, err)
				}
				if got, w := sum(t, v, v.Size()), want["/dev/mapper/"+fx.name]; got != w {
					t.Errorf("unlocked by %s: sha256 %s, kernel %s (%d bytes)", k.how, got, w, v.Size())
				}
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestWrongKey(t *testing.T) {
	for _, name := range []string{"luks1-xts", "luks2-argon2id"} {
		h, _ := openFixture(t, name)
		_, err := h.Unlock([]byte("correct horse imgtoo"))
		if !errors.Is(err, ErrWrongKey) {
			t.Fatalf("%s: wrong passphrase gave %v", name, err)
		}
		if strings.Contains(err.Error(), "imgtoo") {
			t.Errorf("error leaks the passphrase: %v", err)
		}
	}
}

func TestBadPrimaryUsesSecondary(t *testing.T) {
	h, _ := openFixture(t, "luks2-badprimary")
	if !strings.Contains(strings.Join(h.Notes, "\n"), "primary LUKS2 header unusable") {
		t.Errorf("notes %q do not report the damaged primary", h.Notes)
	}
	good, _ := openFixture(t, "luks2-pbkdf2")
	if len(good.Notes) != 0 {
		t.Errorf("undamaged header has notes %q", good.Notes)
	}
}

// TestUnalignedReads: windows at odd offsets and lengths equal the same
// bytes of one whole read (the bounce-buffer path against the in-place one).
func TestUnalignedReads(t *testing.T) {
	for _, name := range []string{"luks1-essiv-lvm", "luks2-argon2i-4k"} {
		h, _ := openFixture(t, name)
		v, err := h.Unlock(fixturetest.Golden(t, "luks.pass"))
		if err != nil {
			t.Fatal(err)
		}
		all := make([]byte, v.Size())
		if n, err := v.ReadAt(all, 0); n != len(all) || (err != nil && err != io.EOF) {
			t.Fatalf("%s: whole read %d: %v", name, n, err)
		}
		for _, w := range [][2]int64{{1, 1}, {511, 2}, {4095, 4098}, {12345, 77777}, {v.Size() - 3, 3}, {v.Size() - 5000, 5000}, {0, 3<<20 + 7}} {
			b := make([]byte, w[1])
			n, err := v.ReadAt(b, w[0])
			if n != len(b) || (err != nil && err != io.EOF) {
				t.Fatalf("%s: read %v: %d, %v", name, w, n, err)
			}
			if !bytes.Equal(b, all[w[0]:w[0]+w[1]]) {
				t.Errorf("%s: window %v differs", name, w)
			}
		}
		if _, err := v.ReadAt(make([]byte, 10), v.Size()); err != io.EOF {
			t.Errorf("%s: read at the end: %v", name, err)
		}
	}
}

// TestLargeReadsLikeTheKernel: the volume read in 256 KiB calls (what
// imgtool dd issues), 1 MiB calls (dd -o) and one call equals the
// kernel's bytes on one core and on two (where a read of parallelPer a
// core is decrypted on both), and a read error part-way through a large
// read is returned.
func TestLargeReadsLikeTheKernel(t *testing.T) {
	want := goldenSHA(t)
	pass := fixturetest.Golden(t, "luks.pass")
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2} {
		runtime.GOMAXPROCS(procs)
		for _, name := range []string{"luks1-xts", "luks1-essiv-lvm", "luks2-argon2i-4k"} {
			h, f := openFixture(t, name)
			v, err := h.Unlock(pass)
			if err != nil {
				t.Fatal(err)
			}
			if v.Size() < 2*parallelPer {
				t.Fatalf("%s: %d bytes, too small to be decrypted on two cores", name, v.Size())
			}
			for _, rs := range []int64{256 << 10, 1 << 20, v.Size()} {
				s := sha256.New()
				p := make([]byte, rs)
				for off := int64(0); off < v.Size(); off += rs {
					n, err := v.ReadAt(p[:min(rs, v.Size()-off)], off)
					if err != nil && err != io.EOF {
						t.Fatalf("%s: GOMAXPROCS %d: read %d at %d: %v", name, procs, rs, off, err)
					}
					s.Write(p[:n])
				}
				if got := hex.EncodeToString(s.Sum(nil)); got != want["/dev/mapper/"+name] {
					t.Errorf("%s: GOMAXPROCS %d, %d-byte reads: sha256 %s, kernel %s", name, procs, rs, got, want["/dev/mapper/"+name])
				}
			}
			bad := *v
			bad.r = &failAfter{r: f, at: v.off + 300<<10}
			if _, err := bad.ReadAt(make([]byte, v.Size()), 0); !errors.Is(err, errFailAfter) {
				t.Errorf("%s: GOMAXPROCS %d: read across a failing byte: %v", name, procs, err)
			}
		}
	}
}

var errFailAfter = errors.New("failing sector")

// failAfter is a ReaderAt that fails for reads reaching past at.
type failAfter struct {
	r  io.ReaderAt
	at int64
}

func (f *failAfter) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.at {
		return 0, errFailAfter
	}
	return f.r.ReadAt(p, off)
}
