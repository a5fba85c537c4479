package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgtool/imgtool/fixtures/fixturetest"
)

// imgtool runs the CLI in-process and returns stdout, stderr and the exit code.
func imgtool(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestVersionHelpCompletion(t *testing.T) {
	if out, _, code := imgtool(t, "--version"); code != 0 || !strings.Contains(out, "imgtool version") {
		t.Errorf("--version: %d %q", code, out)
	}
	if out, _, code := imgtool(t, "--help"); code != 0 || !strings.Contains(out, "inspect") {
		t.Errorf("--help: %d %q", code, out)
	}
	if out, _, code := imgtool(t, "completion", "bash"); code != 0 || !strings.Contains(out, "__start_imgtool") {
		t.Errorf("completion bash: %d, %d bytes", code, len(out))
	}
}

func TestExitCodes(t *testing.T) {
	if _, _, code := imgtool(t, "inspect", "--no-such-flag"); code != exitUsage {
		t.Errorf("bad flag: exit %d, want %d", code, exitUsage)
	}
	if _, _, code := imgtool(t, "frobnicate"); code != exitUsage {
		t.Errorf("unknown command: exit %d, want %d", code, exitUsage)
	}
	_, errs, code := imgtool(t, "inspect", "/nonexistent/disk.img")
	if code != exitError || !strings.Contains(errs, "no such file") {
		t.Errorf("missing image: exit %d, %q", code, errs)
	}
	_, errs, code = imgtool(t, "inspect", t.TempDir())
	if code != exitError || !strings.Contains(errs, "directory") {
		t.Errorf("directory: exit %d, %q", code, errs)
	}
	empty := filepath.Join(t.TempDir(), "empty.img")
	os.WriteFile(empty, nil, 0o644)
	_, errs, code = imgtool(t, "inspect", empty)
	if code != exitError || !strings.Contains(errs, "empty") {
		t.Errorf("empty: exit %d, %q", code, errs)
	}
}

func TestInspectDemo(t *testing.T) {
	out, errs, code := imgtool(t, "inspect")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "demo") {
		t.Errorf("demo not announced on stderr: %q", errs)
	}
	for _, want := range []string{"VolGroup00/domu1/VolGroup00/LogVol00", "VG name clash", "guestswap"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo tree lacks %q:\n%s", want, out)
		}
	}
}

func TestInspectJSONAndDD(t *testing.T) {
	path := fixturetest.Image(t, "dom0")
	out, errs, code := imgtool(t, "inspect", path, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var tree struct {
		Roots []json.RawMessage `json:"roots"`
	}
	if err := json.Unmarshal([]byte(out), &tree); err != nil || len(tree.Roots) != 1 {
		t.Fatalf("json: %v, %d roots", err, len(tree.Roots))
	}
	// dd of the guest root LV equals the bytes at the offset blkid was
	// run at by the fixture script (fixtures/golden/dom0-blkid.txt).
	const addr = "VolGroup00/domu1/VolGroup00/LogVol00"
	var off, size int64
	for _, line := range strings.Split(string(fixturetest.Golden(t, "dom0-blkid.txt")), "\n") {
		var a string
		if n, _ := sscan(line, &a, &off, &size); n == 3 && a == addr {
			break
		}
	}
	if size == 0 {
		t.Fatal("golden lacks " + addr)
	}
	dst := filepath.Join(t.TempDir(), "lv.img")
	if _, errs, code := imgtool(t, "dd", path, addr, "-o", dst); code != 0 {
		t.Fatalf("dd: exit %d: %s", code, errs)
	}
	got := fixturetest.SHA256File(t, dst)
	f, _ := os.Open(path)
	defer f.Close()
	h := sha256.New()
	io.Copy(h, io.NewSectionReader(f, off, size))
	if want := string(hexs(h.Sum(nil))); got != want {
		t.Errorf("dd sha256 %s, image bytes at %d+%d %s", got, off, size, want)
	}
	if _, _, code := imgtool(t, "dd", path, addr, "-o", dst); code != exitError {
		t.Errorf("dd over an existing file: exit %d, want refusal", code)
	}
}

// dd with an empty volume writes the whole virtual disk: for qcow2, VMDK
// and VHD fixtures it equals qemu-img convert -O raw (fixtures/golden/fmt-sums.txt).
func TestDDWholeDiskMatchesQemu(t *testing.T) {
	want := map[string]string{}
	for _, line := range strings.Split(string(fixturetest.Golden(t, "fmt-sums.txt")), "\n") {
		if f := strings.Fields(line); len(f) == 3 {
			want[f[0]] = f[2]
		}
	}
	for _, name := range []string{"fmt-qcow2-zstd.qcow2", "fmt-vmdk-stream.vmdk", "fmt-vhd-dynamic.vhd"} {
		src, err := fixturetest.Decompress(filepath.Join(fixturetest.ImagesDir(), name+".xz"))
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(t.TempDir(), "raw.img")
		if _, errs, code := imgtool(t, "dd", src, "", "-o", dst); code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, errs)
		}
		if got := fixturetest.SHA256File(t, dst); want[name] == "" || got != want[name] {
			t.Errorf("%s: dd sha256 %s, qemu-img convert %q", name, got, want[name])
		}
	}
}
