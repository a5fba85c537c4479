// Package s3test starts a real S3 server for tests: versitygw with its
// posix backend, on 127.0.0.1, built by scripts/setup.sh from its Go
// module into ~/.cache/imgtool/bin (or $IMGTOOL_VERSITYGW, or $PATH).
package s3test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// The root credentials of every test server.
const (
	Access = "imgtooltestkey"
	Secret = "imgtooltestsecret0123456789"
	Bucket = "fleet"
)

// versitygwPath finds the server: $IMGTOOL_VERSITYGW, the setup.sh cache,
// or $PATH.
func versitygwPath(t testing.TB) string {
	t.Helper()
	cands := []string{os.Getenv("IMGTOOL_VERSITYGW")}
	if home, err := os.UserHomeDir(); err == nil {
		cands = append(cands, filepath.Join(home, ".cache/imgtool/bin/versitygw"))
	}
	for _, c := range cands {
		if c != "" {
			if _, err := os.Stat(c); err == nil {
				return c
			}
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	t.Fatalf("versitygw (the S3 server these tests run against) is not installed: run scripts/setup.sh")
	return ""
}

// Server is a versitygw process serving a posix root, with the bucket
// Bucket created.
type Server struct {
	t    testing.TB
	bin  string
	root string
	Addr string
	cmd  *exec.Cmd
}

// Start starts a server on a free 127.0.0.1 port, points the AWS SDK's
// environment (credentials, region, no shared config, no instance
// metadata) at it for the rest of the test, and stops it at the end.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, bin: versitygwPath(t), root: t.TempDir()}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = l.Addr().String()
	l.Close()
	s.Restart()
	t.Cleanup(s.Kill)
	// Clients in these tests never look anywhere but the test server.
	t.Setenv("AWS_ACCESS_KEY_ID", Access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", Secret)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(s.root, "no-aws-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(s.root, "no-aws-credentials"))
	t.Setenv("AWS_PROFILE", "")
	_, err = s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(Bucket)})
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return s
}

// Restart starts the server (again, after Kill) on the same address and
// data.
func (s *Server) Restart() {
	s.t.Helper()
	data := filepath.Join(s.root, "data")
	os.MkdirAll(data, 0o755)
	s.cmd = exec.Command(s.bin, "--port", s.Addr, "--access", Access, "--secret", Secret, "--quiet", "posix", data)
	logf, _ := os.Create(filepath.Join(s.root, "server.log"))
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(s.root, "server.log"))
			s.t.Fatalf("versitygw did not listen on %s: %s", s.Addr, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill sends SIGKILL and waits.
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

// Endpoint is the server's URL.
func (s *Server) Endpoint() string { return "http://" + s.Addr }

// Client is an SDK client of the server with the root credentials.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.Endpoint()), UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: Access, SecretAccessKey: Secret}, nil
		}),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired, ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired})
}

// Keys lists every object key in the bucket.
func (s *Server) Keys(t testing.TB) []string {
	t.Helper()
	out, err := s.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var ks []string
	for _, o := range out.Contents {
		ks = append(ks, aws.ToString(o.Key))
	}
	return ks
}

// Uploads counts the unfinished multipart uploads in the bucket.
func (s *Server) Uploads(t testing.TB) int {
	t.Helper()
	out, err := s.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Uploads)
}
