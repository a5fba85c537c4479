#!/bin/bash
# Benchmark of a level-0 backup: imgtool backup (zstd, xz) against
# `dump -0 -f - /dev/loopN | bzip2` and `| xz -T2`, on an ext4 image of
# /usr/share made with mke2fs -d. One run each; prints wall time and size.
# Usage: bash bench/backup.sh [WORKDIR]   (needs root for losetup and dump)
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-$(mktemp -d /tmp/imgtool-bench.XXXXXX)}
mkdir -p "$W"
LOOP=
cleanup() { [ -n "$LOOP" ] && losetup -d "$LOOP"; }
trap cleanup EXIT

go build -o "$W/imgtool" ./cmd/imgtool
IMG=$W/usr-share.img
if [ ! -f "$IMG" ]; then
	used=$(du -sm /usr/share | cut -f1)
	mke2fs -q -F -t ext4 -d /usr/share "$IMG" "$((used * 13 / 10 + 64))M"
fi
echo "image: $(du -h --apparent-size "$IMG" | cut -f1) apparent, $(du -sh /usr/share | cut -f1) of /usr/share, $(nproc) cores"

mkdir -p "$W/conf.d" "$W/state"
for c in zstd xz; do
	rm -rf "$W/dest-$c" "$W/state"/*
	cat > "$W/conf.d/bench.conf" <<CFG
name = "bench"
sources = ["$IMG"]
dest = "$W/dest-$c"
compress = "$c"
[snapshot]
mode = "never"
CFG
	sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
	s=$(date +%s.%N)
	"$W/imgtool" backup --config-dir "$W/conf.d" --state-dir "$W/state" run --level 0
	e=$(date +%s.%N)
	f=$(ls "$W/dest-$c/bench/"*.dump* | grep -v json)
	printf '%-28s %8.2f s %12d bytes\n' "imgtool backup ($c)" "$(echo "$e - $s" | bc)" "$(stat -c %s "$f")"
	[ "$c" = xz ] && xz -t "$f" && echo "  xz -t: ok"
done

LOOP=$(losetup -r -f --show "$IMG")
for z in "bzip2" "xz -T2"; do
	sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
	s=$(date +%s.%N)
	dump -0 -q -f - "$LOOP" 2>/dev/null | $z > "$W/stock.out"
	e=$(date +%s.%N)
	printf '%-28s %8.2f s %12d bytes\n' "dump -0 | $z" "$(echo "$e - $s" | bc)" "$(stat -c %s "$W/stock.out")"
done
