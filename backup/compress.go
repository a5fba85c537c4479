package backup

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Compression kinds.
const (
	CompressZstd = "zstd"
	CompressXZ   = "xz"
	CompressNone = "none"
)

func compressExt(kind string) (string, error) {
	switch kind {
	case CompressZstd:
		return ".zst", nil
	case CompressXZ:
		return ".xz", nil
	case CompressNone:
		return "", nil
	}
	return "", fmt.Errorf("compression %q: want zstd, xz or none", kind)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// NewCompressor returns a writer compressing into w. Close flushes it (it
// does not close w).
func NewCompressor(kind string, w io.Writer) (io.WriteCloser, error) {
	return NewCompressorContext(context.Background(), kind, w)
}

// NewCompressorContext is NewCompressor whose writes and Close give up
// when ctx is done (xz chunks take seconds each; SIGTERM should not wait).
func NewCompressorContext(ctx context.Context, kind string, w io.Writer) (io.WriteCloser, error) {
	switch kind {
	case CompressZstd:
		// Tried and not kept: independent 4 MiB frames compressed on two
		// goroutines (EncodeAll; valid .zst, zstd -d reads them): /usr/share
		// 2.4-2.7 s instead of 2.9-3.0 s but 334 MB instead of 324 MB and
		// RSS 107-111 MB instead of 52 MB (two encoders' histories and the
		// chunks in flight); 2 MiB frames are +5% in size.
		// SpeedBetterCompression throughout: the 1M-small-file dump 106 ->
		// 95 MB for 1.6x the CPU and RSS 80-116 MB. What is kept instead is
		// adaptiveZstd: the default level, and best where it pays.
		return newAdaptiveZstd(ctx, w)
	case CompressXZ:
		p := newParallelXZ(w, xzChunk, runtime.GOMAXPROCS(0))
		p.ctx = ctx
		return p, nil
	case CompressNone:
		return nopCloser{w}, nil
	}
	return nil, fmt.Errorf("compression %q: want zstd, xz or none", kind)
}

// NewDecompressor returns a reader of the decompressed r.
func NewDecompressor(kind string, r io.Reader) (io.ReadCloser, error) {
	switch kind {
	case CompressZstd:
		d, err := zstd.NewReader(r)
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	case CompressXZ:
		d, err := xz.NewReader(r) // reads concatenated streams
		if err != nil {
			return nil, err
		}
		return io.NopCloser(d), nil
	case CompressNone:
		return io.NopCloser(r), nil
	}
	return nil, fmt.Errorf("compression %q: want zstd, xz or none", kind)
}

// xzChunk is the input size of one independent xz stream.
const xzChunk = 8 << 20

// xzConfig: a 1 MiB dictionary. ulikunitz/xz's default 8 MiB dictionary
// made it about 3× slower here for the same size on dump streams (measured
// on an 8 MiB piece of a /usr/share dump: 53 s vs 18 s on a loaded 2-core
// machine, 6.04 MB vs 6.05 MB).
var xzConfig = xz.WriterConfig{DictCap: 1 << 20}

// parallelXZ compresses fixed-size chunks of its input as independent xz
// streams on several goroutines and writes them in order. Concatenated
// .xz streams are a valid .xz file (xz -t and xz -d accept them).
type parallelXZ struct {
	w       io.Writer
	chunk   int
	buf     []byte
	pending []chan result
	sem     chan struct{}
	err     error
	started bool
	ctx     context.Context // nil: never cancelled
	pool    sync.Pool
}

type result struct {
	b   []byte
	err error
}

func newParallelXZ(w io.Writer, chunk, workers int) *parallelXZ {
	return &parallelXZ{w: w, chunk: chunk, sem: make(chan struct{}, max(workers, 1))}
}

func (p *parallelXZ) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		if p.err != nil {
			return n, p.err
		}
		if p.buf == nil {
			if v, ok := p.pool.Get().([]byte); ok {
				p.buf = v[:0]
			} else {
				p.buf = make([]byte, 0, p.chunk)
			}
		}
		k := min(len(b), p.chunk-len(p.buf))
		p.buf = append(p.buf, b[:k]...)
		b, n = b[k:], n+k
		if len(p.buf) == p.chunk {
			p.submit()
		}
	}
	return n, p.err
}

func (p *parallelXZ) submit() {
	p.started = true
	in := p.buf
	p.buf = nil
	ch := make(chan result, 1)
	p.pending = append(p.pending, ch)
	select {
	case p.sem <- struct{}{}:
	case <-p.done():
		p.pending = p.pending[:len(p.pending)-1]
		p.err = fmt.Errorf("xz: %w", context.Cause(p.ctx))
		return
	}
	go func() {
		defer func() { <-p.sem }()
		var out bytes.Buffer
		zw, err := xzConfig.NewWriter(&out)
		if err == nil {
			_, err = zw.Write(in)
		}
		if err == nil {
			err = zw.Close()
		}
		if cap(in) == p.chunk {
			//lint:ignore SA6002 a slice header in the pool is what the encoder reuses; the 24-byte allocation is negligible beside the chunk
			p.pool.Put(in[:0])
		}
		ch <- result{out.Bytes(), err}
	}()
	// Write finished chunks in order, keeping at most 2×workers in flight.
	for len(p.pending) > 0 && (len(p.pending) > 2*cap(p.sem) || isReady(p.pending[0])) {
		p.drainOne()
	}
}

func isReady(ch chan result) bool { return len(ch) > 0 }

func (p *parallelXZ) done() <-chan struct{} {
	if p.ctx == nil {
		return nil
	}
	return p.ctx.Done()
}

func (p *parallelXZ) drainOne() {
	var r result
	select {
	case r = <-p.pending[0]:
	case <-p.done():
		r.err = fmt.Errorf("xz: %w", context.Cause(p.ctx))
	}
	p.pending = p.pending[1:]
	if p.err == nil {
		p.err = r.err
	}
	if p.err == nil {
		_, p.err = p.w.Write(r.b)
	}
}

// Close compresses the last partial chunk and waits for every stream.
func (p *parallelXZ) Close() error {
	if len(p.buf) > 0 || !p.started {
		p.submit()
	}
	for len(p.pending) > 0 {
		p.drainOne()
	}
	return p.err
}
