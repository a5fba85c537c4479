package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// S3Config is the [s3] table of a guest config: how to reach the bucket of
// an s3:// dest or hosts entry. Credentials are never in it: they come
// from the SDK's usual chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
// AWS_PROFILE and ~/.aws/credentials and ~/.aws/config, web identity, the
// instance role).
type S3Config struct {
	// Endpoint is the server's URL (Ceph RGW, SeaweedFS, Garage, MinIO,
	// versitygw...). Default: AWS, or AWS_ENDPOINT_URL_S3 /
	// AWS_ENDPOINT_URL from the environment.
	Endpoint string `toml:"endpoint"`
	// Region; default from AWS_REGION or the profile, else us-east-1.
	Region string `toml:"region"`
	// PathStyle addresses buckets as ENDPOINT/BUCKET/KEY rather than
	// BUCKET.ENDPOINT/KEY; most self-hosted servers need it.
	PathStyle bool `toml:"path_style"`
	// Profile selects a shared-config profile (default AWS_PROFILE).
	Profile string `toml:"profile"`
	// PartSize is the multipart part size (default 8M, at least 5M). Two
	// parts are in memory at a time, whatever the dump's size.
	PartSize string `toml:"part_size"`
}

// DefaultPartSize is the multipart part size when none is configured.
const DefaultPartSize = 8 << 20

const minPartSize = 5 << 20

func (c S3Config) partSize() (int, error) {
	if c.PartSize == "" {
		return DefaultPartSize, nil
	}
	n, err := parseBytes(c.PartSize)
	if err != nil || n < minPartSize || n > 1<<30 {
		return 0, fmt.Errorf("s3.part_size %q: want a size from 5M to 1G", c.PartSize)
	}
	return int(n), nil
}

// parseBytes parses 8M, 16MiB, 1G, 1048576.
func parseBytes(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	mul := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mul = 1 << 10
		case 'M':
			mul = 1 << 20
		case 'G':
			mul = 1 << 30
		}
		if mul > 1 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mul {
		return 0, fmt.Errorf("bad size %q: want a whole number of bytes, K, M or G below 8 EiB", s)
	}
	return n * mul, nil
}

// S3Store is one guest's backups under s3://BUCKET/PREFIX/GUEST/.
//
// Data objects are written with streaming multipart uploads (S3 makes an
// object visible only when its upload completes, so a killed run or
// server leaves nothing that looks complete), manifests and dumpdates with
// one PutObject each. Two hosts never write one guest at once: Lock puts
// GUEST/lock with If-None-Match: * (a conditional write the server
// arbitrates).
type S3Store struct {
	client   *s3.Client
	bucket   string
	prefix   string // "PREFIX/GUEST/"
	partSize int
	loc      string
}

// parseS3URL splits s3://bucket/prefix.
func parseS3URL(dest string) (bucket, prefix string, err error) {
	u, err := url.Parse(dest)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return "", "", fmt.Errorf("%q: want s3://BUCKET[/PREFIX]", dest)
	}
	return u.Host, strings.Trim(u.Path, "/"), nil
}

// OpenS3 connects to the bucket of dest (s3://BUCKET[/PREFIX]) for guest
// and checks that the bucket exists and the credentials are accepted, so
// that a misconfiguration fails before any snapshot is taken.
func OpenS3(ctx context.Context, dest, guest string, c S3Config) (*S3Store, error) {
	bucket, prefix, err := parseS3URL(dest)
	if err != nil {
		return nil, err
	}
	ps, err := c.partSize()
	if err != nil {
		return nil, err
	}
	opts := []func(*awsconfig.LoadOptions) error{
		// Non-AWS servers reject the SDK's default trailing CRC checksums.
		awsconfig.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		awsconfig.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		awsconfig.WithRetryMaxAttempts(3),
		// A server that accepts a connection and then hangs fails the
		// request instead of the run.
		awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.ResponseHeaderTimeout = 2 * time.Minute
		})),
	}
	if c.Region != "" {
		opts = append(opts, awsconfig.WithRegion(c.Region))
	}
	if c.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(c.Profile))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: loading AWS configuration: %w", dest, err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.UsePathStyle = c.PathStyle
	})
	st := &S3Store{client: client, bucket: bucket, partSize: ps}
	if prefix != "" {
		st.prefix = prefix + "/"
	}
	st.prefix += guest + "/"
	st.loc = "s3://" + bucket + "/" + st.prefix
	// A HEAD response has no body, so no error code: ask with a GET, whose
	// error says what is wrong (NoSuchBucket, InvalidAccessKeyId, ...).
	_, err = client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(st.prefix), MaxKeys: aws.Int32(1)})
	if err != nil {
		return nil, st.err("", "ListObjectsV2", err)
	}
	return st, nil
}

// Location implements Store.
func (s *S3Store) Location() string { return s.loc }

func (s *S3Store) key(name string) string { return s.prefix + name }

// err turns an SDK error into one line naming the object and what to do.
func (s *S3Store) err(name, op string, err error) error {
	if err == nil {
		return nil
	}
	where := "s3://" + s.bucket
	if name != "" {
		where = s.loc + name
	}
	var ae smithy.APIError
	var re *smithyhttp.ResponseError
	status := 0
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		hint := ""
		switch {
		case code == "NoSuchBucket":
			return fmt.Errorf("%s: bucket %q does not exist", where, s.bucket)
		case code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" || code == "AccessDenied" ||
			code == "InvalidToken" || code == "ExpiredToken" || status == 403 ||
			strings.Contains(code, "UserNotFound"): // versitygw: unknown access key
			hint = " (credentials refused: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile)"
		case code == "NoSuchKey" || code == "NotFound":
			return fmt.Errorf("%s: %s: %w", where, op, os.ErrNotExist)
		}
		msg := ae.ErrorMessage()
		if msg == "" {
			msg = http.StatusText(status)
		}
		return fmt.Errorf("%s: %s: %s: %s%s", where, op, code, msg, hint)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %s: %w", where, op, context.Canceled)
	}
	// Transport errors (connection refused, reset): keep the cause, drop
	// the SDK's retry wrapping.
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %s: S3 server unreachable: %v", where, op, ue.Err)
	}
	return fmt.Errorf("%s: %s: %w", where, op, err)
}

func isNotFound(err error) bool {
	var re *smithyhttp.ResponseError
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	return errors.As(err, &nsk) || errors.As(err, &nf) || (errors.As(err, &re) && re.HTTPStatusCode() == 404)
}

// Open implements Store.
func (s *S3Store) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(name))})
	if err != nil {
		return nil, s.err(name, "GetObject", err)
	}
	return out.Body, nil
}

// Size implements Store.
func (s *S3Store) Size(ctx context.Context, name string) (int64, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(name))})
	if err != nil {
		if isNotFound(err) {
			return 0, fmt.Errorf("%s%s: %w", s.loc, name, os.ErrNotExist)
		}
		return 0, s.err(name, "HeadObject", err)
	}
	return aws.ToInt64(out.ContentLength), nil
}

// List implements Store: the objects directly under the guest's prefix.
func (s *S3Store) List(ctx context.Context) ([]string, error) {
	var out []string
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(s.prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.err("", "ListObjectsV2", err)
		}
		for _, o := range page.Contents {
			n := strings.TrimPrefix(aws.ToString(o.Key), s.prefix)
			if n != "" && !strings.Contains(n, "/") {
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// ReadFile implements Store.
func (s *S3Store) ReadFile(ctx context.Context, name string) ([]byte, error) {
	rc, err := s.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 64<<20))
	if err != nil {
		return nil, s.err(name, "GetObject", err)
	}
	return b, nil
}

// WriteFile implements Store: one PutObject, atomic on every S3 server.
func (s *S3Store) WriteFile(ctx context.Context, name string, data []byte) error {
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(name)),
		Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data)))})
	return s.err(name, "PutObject", err)
}

// Remove implements Store.
func (s *S3Store) Remove(ctx context.Context, name string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(name))})
	if err != nil && !isNotFound(err) {
		return s.err(name, "DeleteObject", err)
	}
	return nil
}

// lockInfo is the content of the lock object.
type lockInfo struct {
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
}

// LockName is the lock object of a guest in a bucket.
const LockName = "lock"

// Lock implements Store with a conditional PutObject (If-None-Match: *).
// A lock left by this same host is stale (the caller holds the host's
// flock, so no other run of this host is alive) and is taken over; a lock
// of another host is an error naming that host.
func (s *S3Store) Lock(ctx context.Context, host string) (func(context.Context) error, error) {
	info, _ := json.Marshal(lockInfo{Host: host, PID: os.Getpid(), Started: time.Now().UTC()})
	for try := 0; ; try++ {
		_, err := s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(LockName)),
			Body: bytes.NewReader(info), ContentLength: aws.Int64(int64(len(info))), IfNoneMatch: aws.String("*")})
		if err == nil {
			break
		}
		var re *smithyhttp.ResponseError
		if !errors.As(err, &re) || (re.HTTPStatusCode() != 412 && re.HTTPStatusCode() != 409) {
			return nil, s.err(LockName, "PutObject (lock)", err)
		}
		b, rerr := s.ReadFile(ctx, LockName)
		var held lockInfo
		if rerr == nil {
			json.Unmarshal(b, &held)
		}
		if rerr == nil && held.Host == host && try == 0 {
			if err := s.Remove(ctx, LockName); err != nil {
				return nil, err
			}
			continue
		}
		return nil, fmt.Errorf("%w: %s%s is held by host %q (pid %d) since %s; if that run is dead, delete the lock object",
			ErrLocked, s.loc, LockName, held.Host, held.PID, held.Started.Format(time.RFC3339))
	}
	return func(ctx context.Context) error { return s.Remove(ctx, LockName) }, nil
}

// Clean implements Store: aborts the guest's unfinished multipart uploads
// and deletes data objects that have no manifest.
func (s *S3Store) Clean(ctx context.Context) ([]string, error) {
	var did []string
	var errs []error
	in := &s3.ListMultipartUploadsInput{Bucket: &s.bucket, Prefix: aws.String(s.prefix)}
	for {
		out, err := s.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return did, s.err("", "ListMultipartUploads", err)
		}
		for _, u := range out.Uploads {
			_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: u.Key, UploadId: u.UploadId})
			if err != nil && !isNotFound(err) {
				errs = append(errs, s.err(strings.TrimPrefix(aws.ToString(u.Key), s.prefix), "AbortMultipartUpload", err))
				continue
			}
			did = append(did, "aborted incomplete upload s3://"+s.bucket+"/"+aws.ToString(u.Key))
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
	names, err := s.List(ctx)
	if err != nil {
		return did, err
	}
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	for _, n := range names {
		if orphanData(n, have) {
			if err := s.Remove(ctx, n); err != nil {
				errs = append(errs, err)
				continue
			}
			did = append(did, "removed incomplete "+s.loc+n)
		}
	}
	return did, errors.Join(errs...)
}

// Create implements Store: a streaming multipart upload. Memory is two
// parts: one filling while the previous one uploads. An object smaller
// than one part is sent with a single PutObject at Commit.
func (s *S3Store) Create(ctx context.Context, name string) (Upload, error) {
	u := &s3Upload{s: s, name: name, key: s.key(name), ctx: ctx, partSize: s.partSize}
	u.buf = make([]byte, 0, u.partSize)
	u.free = make(chan []byte, 1)
	u.free <- make([]byte, 0, u.partSize)
	return u, nil
}

type s3Upload struct {
	s        *S3Store
	name     string
	key      string
	ctx      context.Context
	partSize int

	buf      []byte      // filling
	free     chan []byte // the other buffer, back from its upload
	uploadID *string
	parts    []types.CompletedPart
	mu       sync.Mutex
	wg       sync.WaitGroup
	upErr    error
	done     bool
}

func (u *s3Upload) failed() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.upErr
}

func (u *s3Upload) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if err := u.failed(); err != nil {
			return n, err
		}
		k := min(len(p), u.partSize-len(u.buf))
		u.buf = append(u.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(u.buf) == u.partSize {
			if err := u.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// flush sends the full buffer as the next part, in the background, and
// takes the other buffer (waiting for its upload to finish).
func (u *s3Upload) flush() error {
	if u.uploadID == nil {
		out, err := u.s.client.CreateMultipartUpload(u.ctx, &s3.CreateMultipartUploadInput{Bucket: &u.s.bucket, Key: aws.String(u.key)})
		if err != nil {
			return u.s.err(u.name, "CreateMultipartUpload", err)
		}
		u.uploadID = out.UploadId
	}
	num := int32(len(u.parts) + 1)
	if num > 10000 {
		return fmt.Errorf("%s%s: over 10000 parts: raise s3.part_size", u.s.loc, u.name)
	}
	u.parts = append(u.parts, types.CompletedPart{PartNumber: aws.Int32(num)})
	data := u.buf
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		out, err := u.s.client.UploadPart(u.ctx, &s3.UploadPartInput{Bucket: &u.s.bucket, Key: aws.String(u.key),
			UploadId: u.uploadID, PartNumber: aws.Int32(num), Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data)))})
		u.mu.Lock()
		if err != nil && u.upErr == nil {
			u.upErr = u.s.err(u.name, fmt.Sprintf("UploadPart %d", num), err)
		} else if err == nil {
			u.parts[num-1].ETag = out.ETag
		}
		u.mu.Unlock()
		u.free <- data[:0]
	}()
	u.buf = <-u.free
	// The buffer came back when its upload ended; the one just sent is
	// now in flight. Wait for nothing else: two buffers in all.
	return u.failed()
}

func (u *s3Upload) Commit(ctx context.Context) error {
	if err := u.failed(); err != nil {
		return err
	}
	if u.uploadID == nil {
		_, err := u.s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &u.s.bucket, Key: aws.String(u.key),
			Body: bytes.NewReader(u.buf), ContentLength: aws.Int64(int64(len(u.buf)))})
		if err != nil {
			return u.s.err(u.name, "PutObject", err)
		}
		u.done = true
		return nil
	}
	if len(u.buf) > 0 {
		if err := u.flush(); err != nil {
			return err
		}
	}
	u.wg.Wait()
	if err := u.failed(); err != nil {
		return err
	}
	_, err := u.s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &u.s.bucket, Key: aws.String(u.key),
		UploadId: u.uploadID, MultipartUpload: &types.CompletedMultipartUpload{Parts: u.parts}})
	if err != nil {
		return u.s.err(u.name, "CompleteMultipartUpload", err)
	}
	u.done = true
	return nil
}

func (u *s3Upload) Abort(ctx context.Context) error {
	u.wg.Wait()
	if u.done || u.uploadID == nil {
		return nil
	}
	_, err := u.s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &u.s.bucket, Key: aws.String(u.key), UploadId: u.uploadID})
	if err != nil && !isNotFound(err) {
		return u.s.err(u.name, "AbortMultipartUpload", err)
	}
	u.done = true
	return nil
}
