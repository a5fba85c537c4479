package dump

import (
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/imgtool/imgtool/ext"
)

// BenchmarkWriteImage dumps the ext image $DUMP_BENCH_IMAGE to io.Discard
// at level $DUMP_BENCH_LEVEL (default 0) with base date $DUMP_BENCH_BASE
// (Unix seconds; levels above 0). For profiling the writer on the bench
// images (bench/backup.sh builds them):
//
//	DUMP_BENCH_IMAGE=/tmp/xbench/small9.img DUMP_BENCH_LEVEL=9 \
//	DUMP_BENCH_BASE=$(cat /tmp/xbench/small9.base) \
//	go test ./dump -run - -bench WriteImage -benchtime 1x -cpuprofile cpu.out
func BenchmarkWriteImage(b *testing.B) {
	path := os.Getenv("DUMP_BENCH_IMAGE")
	if path == "" {
		b.Skip("DUMP_BENCH_IMAGE not set")
	}
	level, _ := strconv.Atoi(os.Getenv("DUMP_BENCH_LEVEL"))
	base, _ := strconv.ParseInt(os.Getenv("DUMP_BENCH_BASE"), 10, 64)
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	for b.Loop() {
		fsys, err := ext.Open(f, st.Size(), nil)
		if err != nil {
			b.Fatal(err)
		}
		src, err := NewFSSource(b.Context(), ext.NewVFS(fsys))
		if err != nil {
			b.Fatal(err)
		}
		opts := WriteOptions{Level: level, Date: time.Now(), HonorNodump: level >= 1}
		if level > 0 {
			opts.BaseDate = time.Unix(base, 0)
		}
		stats, err := Write(io.Discard, src, opts)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(stats.Dumped), "dumped")
		b.ReportMetric(float64(stats.Bytes), "bytes")
		b.ReportMetric(float64(stats.DirsRead), "dirsread")
	}
}
