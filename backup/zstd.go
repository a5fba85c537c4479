package backup

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// adaptiveZstd compresses a dump stream with zstd at one of two levels,
// chosen as it goes. Most streams get SpeedDefault (about zstd -3). A
// stream that compresses very well at it — inode headers and small files,
// as a filesystem of a million small files gives — is switched to
// SpeedBestCompression, which on such input is both fast and far smaller:
// measured on the 1M-small-file bench dump, 105.8 MB at the default level
// and 42.8 MB at best, against 73.9 MB for `dump | zstd -T2`, with best
// running at 240 MB/s there. On ordinary file data best runs at tens of
// MB/s, so it is kept only while it stays fast: after two windows in a
// row below adaptiveMinSpeed (of the compressor thread's CPU time) the
// stream goes back to the default level for good.
//
// A switch closes the current zstd frame and starts a new one with the
// other encoder: the output is a valid multi-frame .zst, which zstd -d
// and restore pipelines read as one stream. A stream that never switches
// is one frame.
//
// The encoders run on a goroutine of their own, fed by adaptiveBufs
// buffers of adaptiveBuf bytes, so the dump writer and the compression
// overlap on two cores. The best encoder runs synchronously there (one
// block at a time: it gains nothing from more), so the time spent in it
// can be measured; the default one keeps klauspost's asynchronous block
// encoding (with one goroutine fewer, /usr/share took 2.6-2.75 s instead
// of 1.8-2.2 s). Memory: the buffers plus one encoder (the one not in use
// is dropped): about 8 MiB at the default level, 34 MiB of tables at best
// (klauspost's fixed long-match table). The tables hold no pointers, so
// collecting often costs little: `backup run` sets GOGC 20, and holdHeap
// keeps the heap close to what is live while best is in use.
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
	slow      int  // consecutive windows best ran below adaptiveMinSpeed
	winIn     int64
	winOut0   int64
	winTime   time.Duration
	switches  int
	prevLimit int64 // the memory limit before holdHeap's; 0: none held
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

// countWriter counts what it writes. The default encoder writes from
// its own goroutine, so the count is atomic.
type countWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func newAdaptiveZstd(ctx context.Context, w io.Writer) (*adaptiveZstd, error) {
	a := &adaptiveZstd{
		ctx:       ctx,
		out:       &countWriter{w: w},
		full:      make(chan []byte, adaptiveBufs),
		free:      make(chan []byte, adaptiveBufs), // room for every buffer: the compressor never blocks on it
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
	return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithWindowSize(4<<20))
}

func (a *adaptiveZstd) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if a.cur == nil {
			if err := a.take(); err != nil {
				return n, err
			}
		}
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

// send hands the current buffer to the compressor; the buffer is then
// the compressor's (a.cur is nil).
func (a *adaptiveZstd) send() error {
	select {
	case a.full <- a.cur:
		a.cur = nil
		return nil
	case <-a.done:
		return a.err
	case <-a.ctx.Done():
		return fmt.Errorf("zstd: %w", context.Cause(a.ctx))
	}
}

// take makes a free buffer the current one.
func (a *adaptiveZstd) take() error {
	select {
	case a.cur = <-a.free:
		return nil
	case <-a.done:
		return a.err
	case <-a.ctx.Done():
		return fmt.Errorf("zstd: %w", context.Cause(a.ctx))
	}
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
	}
	a.cur = nil
	close(a.full)
	<-a.done
	return a.err
}

func (a *adaptiveZstd) run() {
	defer close(a.done)
	// Best's speed is measured in this thread's CPU time: wall time
	// counted the waits for a core that the dump writer, the collector
	// and cold reads share with it (a cold bench run measured best below
	// its threshold and fell back: 76 MB instead of 42).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for b := range a.full {
		if a.err == nil {
			a.err = a.compress(b)
		}
		a.free <- b[:0]
	}
	if a.err == nil {
		a.err = a.enc.Close()
	}
	a.holdHeap(false)
	if a.err != nil {
		a.err = fmt.Errorf("zstd: %w", a.err)
	}
}

func (a *adaptiveZstd) compress(b []byte) error {
	for len(b) > 0 {
		k := min(int64(len(b)), a.frameSize-a.winIn)
		t := threadCPU()
		if _, err := a.enc.Write(b[:k]); err != nil {
			return err
		}
		a.winTime += threadCPU() - t
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
	out := a.out.n.Load() - a.winOut0
	ratio := float64(a.winIn) / float64(max(out, 1))
	speed := float64(a.winIn) / max(a.winTime.Seconds(), 1e-9)
	want := a.best
	switch {
	case !a.best:
		want = !a.sticky && ratio >= adaptiveRatio
	case speed < adaptiveMinSpeed:
		// Twice in a row: then best is slow on this data, not just
		// on one window.
		a.slow++
		if a.slow >= 2 {
			want, a.sticky = false, true
		}
	case ratio < adaptiveRatio/2:
		want = false
	}
	if a.best && speed >= adaptiveMinSpeed {
		a.slow = 0
	}
	a.winIn, a.winTime = 0, 0
	if want != a.best {
		if err := a.enc.Close(); err != nil {
			return err
		}
		a.enc = nil
		if want {
			// Collect the default encoder before best's tables are
			// made, not beside them: a rare event (at most twice a
			// stream), and 8 MiB off the run's peak RSS.
			runtime.GC()
		}
		enc, err := newZstdEncoder(want, a.out)
		if err != nil {
			return err
		}
		a.enc, a.best = enc, want
		a.switches++
		a.holdHeap(want)
	}
	a.winOut0 = a.out.n.Load()
	return nil
}

// bestHeadroom is how far above what is live when best starts the
// runtime's memory may grow while best is in use.
const bestHeadroom = 6 << 20

// holdHeap sets, while a best encoder is in use, a soft memory limit just
// above what is live once its tables are made (they hold no pointers, so
// the collector marks little and running it often is cheap). Without it
// the runtime kept freed spans and the 1M-small-file run's RSS was 68 MB;
// with it 63 MB, for 4% more time (bench/backup.sh). The limit is soft: a
// run that needs more gets more, with more collection. Runs dump one
// volume at a time; the previous limit comes back when best ends.
func (a *adaptiveZstd) holdHeap(on bool) {
	switch {
	case on && a.prevLimit == 0:
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		inUse := ms.HeapAlloc + ms.StackSys + ms.MSpanSys + ms.MCacheSys + ms.GCSys + ms.OtherSys + ms.BuckHashSys
		prev := debug.SetMemoryLimit(-1)
		if lim := int64(inUse) + bestHeadroom; lim < prev {
			a.prevLimit = prev
			debug.SetMemoryLimit(lim)
		}
	case !on && a.prevLimit != 0:
		debug.SetMemoryLimit(a.prevLimit)
		a.prevLimit = 0
	}
}

// threadCPU is the CPU time of the calling thread (the compressor's,
// locked to it).
func threadCPU() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
