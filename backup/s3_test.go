package backup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/imgtool/imgtool/backup/s3test"
)

// The S3 tests run against a real S3 server process (s3test: versitygw,
// posix backend) started on 127.0.0.1 by each test.

// s3Config writes a guest config backing up the filesystem image img to
// the bucket, with no pause and no snapshot.
func s3Config(t *testing.T, dir, name, endpoint, img, extra string) *Config {
	t.Helper()
	p := filepath.Join(dir, name+".conf")
	body := fmt.Sprintf(`name = %q
sources = [%q]
dest = "s3://%s/backups"
%s
[snapshot]
mode = "never"
[s3]
endpoint = %q
path_style = true
part_size = "5M"
`, name, img, s3test.Bucket, extra, endpoint)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func runS3(t *testing.T, c *Config, host string, at time.Time, level int) (*Result, error) {
	t.Helper()
	r := &Runner{StateDir: filepath.Join(t.TempDir(), "state"), Level: level, Now: func() time.Time { return at }, Host: host,
		Logger: slog.New(slog.DiscardHandler)}
	res, err := r.Run(context.Background(), []*Config{c})
	if len(res) != 1 {
		t.Fatalf("%d results", len(res))
	}
	return res[0], err
}

// A level 0 and a level 1 go to the bucket; another host (a fresh store,
// nothing local) lists, verifies and restores them, with imgtool's
// restorer and with stock restore -r fed from the bucket.
func TestS3LevelChainStockRestore(t *testing.T) {
	need(t, "mke2fs", "debugfs", "restore")
	srv := s3test.Start(t)
	dir := t.TempDir()
	img := buildFixtureFS(t, dir)
	os.WriteFile(img+".new1", patterned("new1", 5000), 0o644)
	tm := newChainTimes()
	c := s3Config(t, dir, "web1", srv.Endpoint(), img, "")

	r0, err := runS3(t, c, "hostA", tm.d0, 0)
	if err != nil {
		t.Fatalf("level 0: %v", err)
	}
	debugfsW(t, img, changes1(img, tm.c1))
	changeInPlace(t, img, "dir/change-me", []byte("CHANGED AT LEVEL 1"), tm.c1)
	r1, err := runS3(t, c, "hostA", tm.d1, 1)
	if err != nil {
		t.Fatalf("level 1: %v", err)
	}
	if len(r0.Backups) != 1 || len(r1.Backups) != 1 || r1.Backups[0].Level != 1 || r1.Backups[0].BaseFile != r0.Backups[0].File {
		t.Fatalf("backups: %+v / %+v", r0.Backups, r1.Backups)
	}
	keys := strings.Join(srv.Keys(t), " ")
	for _, m := range []*Manifest{r0.Backups[0], r1.Backups[0]} {
		for _, k := range []string{m.File, m.File + ".json"} {
			if !strings.Contains(keys, "backups/web1/"+k) {
				t.Errorf("object backups/web1/%s missing: %s", k, keys)
			}
		}
	}
	if !strings.Contains(keys, "backups/web1/dumpdates") || strings.Contains(keys, "backups/web1/lock") {
		t.Errorf("want dumpdates and no lock left: %s", keys)
	}

	// "Another host": everything from the bucket.
	ctx := context.Background()
	st, err := OpenStore(ctx, c.Dest, c.Name, c.S3)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := VerifyStore(ctx, st, false); err != nil || n != 2 {
		t.Fatalf("verify from the bucket: %d, %v", n, err)
	}
	var list strings.Builder
	if err := ListStores(ctx, &list, c.Dest, []string{"web1"}, c.S3); err != nil || strings.Count(list.String(), ".dump.zst") != 2 {
		t.Errorf("list: %v\n%s", err, list.String())
	}
	// debugfs rdump leaves out the FIFO; lost+found is mke2fs's.
	want := scanTree(t, rdump(t, img), "lost+found", "fifo")
	mine := filepath.Join(t.TempDir(), "mine")
	chain, warns, err := RestoreFrom(ctx, mine, st, "", time.Time{})
	if err != nil || len(chain) != 2 {
		t.Fatalf("restore from the bucket: %d dumps, %v (warnings %v)", len(chain), err, warns)
	}
	compareTrees(t, "imgtool restore from s3", want, scanTree(t, mine, "lost+found", "fifo"), true)

	// Stock restore -r, fed each object of the chain from the bucket.
	stock := t.TempDir()
	for _, m := range chain {
		rc, err := st.Open(ctx, m.File)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := NewDecompressor(m.Compress, bufio.NewReader(rc))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("restore", "-r", "-y", "-f", "-")
		cmd.Dir, cmd.Stdin = stock, zr
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("restore -r of %s from the bucket: %v\n%s", m.File, err, out)
		}
		zr.Close()
		rc.Close()
	}
	compareTrees(t, "stock restore -r from s3", want, scanTree(t, stock, "restoresymtable", "lost+found", "fifo"), false)

	// A tampered object fails verify.
	if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s3test.Bucket), Key: aws.String("backups/web1/" + r1.Backups[0].File),
		Body: strings.NewReader("not a dump")}); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyStore(ctx, st, false); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("verify of a replaced object: %v", err)
	}
}

// Two hosts back up two guests into one bucket at the same time; and a
// host never takes over a guest that another host is writing.
func TestS3TwoHostsOneBucket(t *testing.T) {
	need(t, "mke2fs")
	srv := s3test.Start(t)
	dir := t.TempDir()
	var cfgs []*Config
	for _, g := range []string{"a", "b"} {
		d := filepath.Join(dir, g)
		os.MkdirAll(d, 0o755)
		cfgs = append(cfgs, s3Config(t, d, "guest-"+g, srv.Endpoint(), buildFixtureFS(t, d), ""))
	}
	at := time.Date(2026, 1, 1, 2, 0, 0, 0, time.Local)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, c := range cfgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = runS3(t, c, fmt.Sprintf("host%d", i), at, -1)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("host%d: %v", i, err)
		}
	}
	ctx := context.Background()
	for _, c := range cfgs {
		st, _ := OpenStore(ctx, c.Dest, c.Name, c.S3)
		ms, _, _ := ReadManifestsFrom(ctx, st)
		if len(ms) != 1 || ms[0].Guest != c.Name {
			t.Errorf("%s: manifests %+v", c.Name, ms)
		}
		if n, err := VerifyStore(ctx, st, false); err != nil || n != 1 {
			t.Errorf("%s: verify %d %v", c.Name, n, err)
		}
	}

	// The same guest from two hosts at once: the conditional lock lets one
	// in and tells the other who holds it.
	st, _ := OpenStore(ctx, cfgs[0].Dest, cfgs[0].Name, cfgs[0].S3)
	unlock, err := st.Lock(ctx, "host1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = runS3(t, cfgs[0], "host0", at.Add(24*time.Hour), -1)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), `host "host1"`) {
		t.Errorf("run while another host holds the guest: %v", err)
	}
	if ms, _, _ := ReadManifestsFrom(ctx, st); len(ms) != 1 {
		t.Errorf("a locked-out run wrote %d manifests", len(ms)-1)
	}
	unlock(ctx)
	// Truly concurrent runs of one guest: never two writers; whatever
	// lands verifies.
	var ok atomic.Int32
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := runS3(t, cfgs[0], fmt.Sprintf("racer%d", i), at.Add(48*time.Hour+time.Duration(i)*time.Minute), 0)
			if err == nil {
				ok.Add(1)
			} else if !errors.Is(err, ErrLocked) {
				t.Errorf("racer%d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() == 0 {
		t.Error("neither concurrent run succeeded")
	}
	if n, err := VerifyStore(ctx, st, false); err != nil || n != 1+int(ok.Load()) {
		t.Errorf("after the race: %d backups, %v (want %d)", n, err, 1+ok.Load())
	}
}

// slowProxy forwards TCP to the server at a bounded rate, so that an
// upload is still running when the test kills the server.
func slowProxy(t *testing.T, target string, bytesPerSec int) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { io.Copy(c, u); c.Close() }()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if _, werr := u.Write(buf[:n]); werr != nil {
							return
						}
						time.Sleep(time.Duration(n) * time.Second / time.Duration(bytesPerSec))
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + l.Addr().String()
}

// kill -9 of the server during a multipart upload: the run fails with one
// line, nothing in the bucket looks like a backup, and the next run (the
// server back) succeeds and clears the abandoned upload.
func TestS3ServerKilledMidUpload(t *testing.T) {
	need(t, "mke2fs")
	srv := s3test.Start(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	big := make([]byte, 24<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	os.WriteFile(filepath.Join(src, "random.bin"), big, 0o644)
	img := filepath.Join(dir, "fs.img")
	sh(t, dir, "mke2fs", "-q", "-F", "-t", "ext4", "-d", src, img, "40M")
	c := s3Config(t, dir, "db1", slowProxy(t, srv.Addr, 8<<20), img, `compress = "none"`)
	at := time.Date(2026, 1, 1, 2, 0, 0, 0, time.Local)

	done := make(chan error, 1)
	go func() {
		_, err := runS3(t, c, "hostA", at, 0)
		done <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for srv.Uploads(t) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no multipart upload started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	srv.Kill()
	var err error
	select {
	case err = <-done:
	case <-time.After(90 * time.Second):
		t.Fatal("the run hangs after the server died")
	}
	if err == nil {
		t.Fatal("the run succeeded with the server killed")
	}
	if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "db1") {
		t.Errorf("want one line naming the guest, got %q", err)
	}
	srv.Restart()
	for _, k := range srv.Keys(t) {
		if strings.Contains(k, ".dump") {
			t.Errorf("after the kill the bucket holds %s", k)
		}
	}
	if _, err := runS3(t, c, "hostA", at.Add(time.Hour), 0); err != nil {
		t.Fatalf("the run after the server came back: %v", err)
	}
	if n := srv.Uploads(t); n != 0 {
		t.Errorf("%d abandoned multipart uploads left", n)
	}
	st, _ := OpenStore(context.Background(), c.Dest, c.Name, c.S3)
	if n, err := VerifyStore(context.Background(), st, false); err != nil || n != 1 {
		t.Errorf("verify: %d %v", n, err)
	}
}

// Retention deletes from the bucket, never a base that a kept backup
// needs.
func TestS3Retention(t *testing.T) {
	need(t, "mke2fs")
	srv := s3test.Start(t)
	dir := t.TempDir()
	c := s3Config(t, dir, "ret", srv.Endpoint(), buildFixtureFS(t, dir), "[retention]\nkeep_full = 1\n")
	day := func(m time.Month, d int) time.Time { return time.Date(2026, m, d, 2, 0, 0, 0, time.Local) }
	var files []string
	for _, at := range []time.Time{day(1, 1), day(1, 2), day(2, 1), day(2, 2)} {
		r, err := runS3(t, c, "h", at, -1)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, r.Backups[0].File)
	}
	var have []string
	for _, k := range srv.Keys(t) {
		if strings.HasSuffix(k, ".json") {
			have = append(have, strings.TrimSuffix(strings.TrimPrefix(k, "backups/ret/"), ".json"))
		}
	}
	if strings.Join(have, " ") != files[2]+" "+files[3] {
		t.Errorf("after retention the bucket has %v, want %v", have, files[2:])
	}
	for _, k := range srv.Keys(t) {
		if strings.Contains(k, files[0]) || strings.Contains(k, files[1]) {
			t.Errorf("%s not deleted", k)
		}
	}
}

// Wrong credentials and a missing bucket: one clear line, before anything
// else happens.
func TestS3Refusals(t *testing.T) {
	need(t, "mke2fs")
	srv := s3test.Start(t)
	dir := t.TempDir()
	img := buildFixtureFS(t, dir)
	at := time.Date(2026, 1, 1, 2, 0, 0, 0, time.Local)

	c := s3Config(t, dir, "g", srv.Endpoint(), img, "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	_, err := runS3(t, c, "h", at, -1)
	if err == nil || !strings.Contains(err.Error(), "credentials refused") || strings.Contains(err.Error(), "\n") {
		t.Errorf("wrong secret: %v", err)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3test.Secret)
	t.Setenv("AWS_ACCESS_KEY_ID", "nosuchkey")
	_, err = runS3(t, c, "h", at, -1)
	if err == nil || !strings.Contains(err.Error(), "credentials refused") {
		t.Errorf("unknown key: %v", err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", s3test.Access)

	c.Dest = "s3://no-such-bucket/x"
	_, err = runS3(t, c, "h", at, -1)
	if err == nil || !strings.Contains(err.Error(), `bucket "no-such-bucket" does not exist`) {
		t.Errorf("missing bucket: %v", err)
	}
	srv.Kill()
	c.Dest = "s3://" + s3test.Bucket + "/x"
	_, err = runS3(t, c, "h", at, -1)
	if err == nil || !strings.Contains(err.Error(), "unreachable") || !errors.Is(err, syscall.ECONNREFUSED) && !strings.Contains(err.Error(), "refused") {
		t.Errorf("server down: %v", err)
	}
}
