package backup

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/zstd"
)

// adaptiveZstd compresses a dump stream with zstd at one of two levels,
// chosen as it goes. Most streams get SpeedDefault (about zstd -3). A
// stream that compresses very well at it — inode headers and small files,
// as a filesystem of a million small files gives — is switched to
// SpeedBestCompression, which on such input is both fast and far smaller:
// measured on the 1M-small-file bench dump, 105.8 MB at the default level
// and 42.8 MB at best, against 73.9 MB for `dump | zstd -T2`, with best
// running at 240 MB/s there. On ordinary file data best runs at tens of
// MB/s, so it is kept only while it stays fast; once it falls below
// adaptiveMinSpeed the stream goes back to the default level for good.
//
// A switch closes the current zstd frame and starts a new one with the
// other encoder: the output is a valid multi-frame .zst, which zstd -d
// and restore pipelines read as one stream. A stream that never switches
// is one frame.
//
// The encoders run synchronously on a goroutine of their own, fed by
// adaptiveBufs buffers of adaptiveBuf bytes, so the dump writer and the
// compression overlap on two cores and the time spent in the encoder can
// be measured. Memory: the buffers plus one encoder (the one not in use
// is dropped): about 8 MiB at the default level, 34 MiB of tables at best
// (klauspost's fixed long-match table). The tables hold no pointers, so
// a low GOGC costs little; `backup run` sets 20 (bench/backup.sh: RSS
// 72 MB on the small-file dump at best, 38 MB on /usr/share).
type adaptiveZstd struct {
	ctx    context.Context
	out    *countWriter
	cur    []byte // the buffer being filled
	full   chan []byte
	free   chan []byte
	done   chan struct{}
	err    error // set by the compressor before done is closed
	closed bool

	// The compressor goroutine's state.
	enc       *zstd.Encoder
	best      bool
	sticky    bool // best was too slow: stay at the default level
	winIn     int64
	winOut0   int64
	winTime   time.Duration
	switches  int
	frameSize int64 // adaptiveWindow; tests make it smaller
}

const (
	adaptiveBuf    = 512 << 10
	adaptiveBufs   = 2
	adaptiveWindow = 32 << 20 // input bytes between two decisions
	// adaptiveRatio: a window that compresses at least this well is
	// worth compressing at best.
	adaptiveRatio = 8
	// adaptiveMinSpeed: best is kept while it encodes at least this many
	// bytes per second of its own time.
	adaptiveMinSpeed = 100e6
)

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func newAdaptiveZstd(ctx context.Context, w io.Writer) (*adaptiveZstd, error) {
	a := &adaptiveZstd{
		ctx:       ctx,
		out:       &countWriter{w: w},
		full:      make(chan []byte, adaptiveBufs),
		free:      make(chan []byte, adaptiveBufs),
		done:      make(chan struct{}),
		frameSize: adaptiveWindow,
	}
	enc, err := newZstdEncoder(false, a.out)
	if err != nil {
		return nil, err
	}
	a.enc = enc
	for range adaptiveBufs - 1 {
		a.free <- make([]byte, 0, adaptiveBuf)
	}
	a.cur = make([]byte, 0, adaptiveBuf)
	go a.run()
	return a, nil
}

// newZstdEncoder makes an encoder at the default level or at best. A 4
// MiB window at the default level (measured on the /usr/share bench
// image: 8 MiB 320 MB output at 73 MB RSS; 4 MiB 324 MB at 50 MB; 2 MiB
// 333 MB at 46 MB); 1 MiB at best, where a larger one only cost time and
// memory on the small-file dump (4 MiB: 8.88 MB and 3.1 s per 512 MiB,
// 1 MiB: 8.71 MB and 2.4 s).
func newZstdEncoder(best bool, w io.Writer) (*zstd.Encoder, error) {
	if best {
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedBestCompression),
			zstd.WithWindowSize(256<<10), zstd.WithEncoderConcurrency(1))
	}
	return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithWindowSize(4<<20), zstd.WithEncoderConcurrency(1))
}

func (a *adaptiveZstd) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), cap(a.cur)-len(a.cur))
		a.cur = append(a.cur, p[:k]...)
		p, n = p[k:], n+k
		if len(a.cur) == cap(a.cur) {
			if err := a.send(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// send hands the current buffer to the compressor and takes a free one.
func (a *adaptiveZstd) send() error {
	select {
	case a.full <- a.cur:
	case <-a.done:
		return a.err
	case <-a.ctx.Done():
		return fmt.Errorf("zstd: %w", context.Cause(a.ctx))
	}
	select {
	case a.cur = <-a.free:
	case <-a.done:
		return a.err
	case <-a.ctx.Done():
		return fmt.Errorf("zstd: %w", context.Cause(a.ctx))
	}
	return nil
}

// Close compresses what is left, ends the frame and waits for the
// compressor. It does not close the underlying writer.
func (a *adaptiveZstd) Close() error {
	if a.closed {
		return a.err
	}
	a.closed = true
	if len(a.cur) > 0 {
		select {
		case a.full <- a.cur:
		case <-a.done:
		}
		a.cur = nil
	}
	close(a.full)
	<-a.done
	return a.err
}

func (a *adaptiveZstd) run() {
	defer close(a.done)
	for b := range a.full {
		if a.err == nil {
			a.err = a.compress(b)
		}
		a.free <- b[:0]
	}
	if a.err == nil {
		a.err = a.enc.Close()
	}
	if a.err != nil {
		a.err = fmt.Errorf("zstd: %w", a.err)
	}
}

func (a *adaptiveZstd) compress(b []byte) error {
	for len(b) > 0 {
		k := min(int64(len(b)), a.frameSize-a.winIn)
		t := time.Now()
		if _, err := a.enc.Write(b[:k]); err != nil {
			return err
		}
		a.winTime += time.Since(t)
		a.winIn += k
		b = b[k:]
		if a.winIn == a.frameSize {
			if err := a.decide(); err != nil {
				return err
			}
		}
	}
	return nil
}

// decide ends a window: it picks the level for the next one and switches
// encoders (a new frame) when the level changes.
func (a *adaptiveZstd) decide() error {
	out := a.out.n - a.winOut0
	ratio := float64(a.winIn) / float64(max(out, 1))
	speed := float64(a.winIn) / max(a.winTime.Seconds(), 1e-9)
	want := a.best
	switch {
	case !a.best:
		want = !a.sticky && ratio >= adaptiveRatio
	case speed < adaptiveMinSpeed:
		want, a.sticky = false, true
	case ratio < adaptiveRatio/2:
		want = false
	}
	a.winIn, a.winTime = 0, 0
	if want != a.best {
		if err := a.enc.Close(); err != nil {
			return err
		}
		a.enc = nil // garbage before the other encoder's tables are made
		enc, err := newZstdEncoder(want, a.out)
		if err != nil {
			return err
		}
		a.enc, a.best = enc, want
		a.switches++
	}
	a.winOut0 = a.out.n
	return nil
}
