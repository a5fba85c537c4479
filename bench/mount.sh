#!/usr/bin/env bash
# bench/mount.sh: imgtool mount against its peer and against itself.
#
#  1. Mount to the first ls of the demo (dom0.img, the nested Xen disk):
#     `imgtool mount dom0.img MNT` started, then `ls MNT` answered;
#     median of N (default 11). Interleaved with guestmount -a dom0.img
#     -m /dev/VolGroup00/LogVol00 --ro (libguestfs boots its appliance),
#     G runs (default 3; 0 skips it).
#  2. A large file read through the mount (cat MNT/big) against
#     `imgtool cat IMG /big`: 512 MiB of random data in an ext4 image,
#     median of R (default 5) runs each, interleaved; a fresh mount per run
#     so the kernel's page cache of the FUSE file is cold, the image file
#     itself warm for both. Into three sinks: /dev/null, a pipe, a tmpfs
#     file.
# Run from the repository root as root: bash bench/mount.sh
# Result 2026-12-05 (2 cores, load average 31-46 from parallel builds and tests):
#   mount to first ls: imgtool median 284 ms (N=11, load 31) and 377 ms (load 40);
#   guestmount (TCG, no KVM here) 180 s (one run, load 31): ratio 633.
#   The issue's 100 ms target was not reached at this load; the in-test
#   single measurement (TestMountDom0Tree) was 67 ms at a lower load.
#   512 MiB through the mount 0.605 s vs imgtool cat 0.489 s: 0.80x (target 0.5x).
# Result 2026-12-05 08:28 (load average 5.5, G=0 R=3): mount to first ls
#   median 60.9 ms of 11 (68.5 49.1 115.4 155.9 115.4 40.2 58.8 65.8 60.9
#   47.6 43.0): within the 100 ms target; 512 MiB through the mount
#   0.346 s vs imgtool cat 0.197 s: throughput 0.56x (target >= 0.5x).
# Result 2026-12-06 03:48 (quiet: load 0.41-0.54, R=7 G=0): mount to first
#   ls median 8.8 ms of 11. 512 MiB through the mount against imgtool cat:
#   into /dev/null 0.190 s vs 0.029 s, 0.15x; into a pipe 0.319 s vs
#   0.437 s, 1.36x; into a tmpfs file 0.394 s vs 0.272 s, 0.69x. Into
#   /dev/null imgtool cat copies each byte once (pread at 17 GB/s from the
#   page cache) and the mount three times (the server's pread, its write
#   into /dev/fuse and the FUSE page cache, cat's read): 2.7 GB/s, with
#   the server's CPU (0.14 s, nearly all in those syscalls) the limit. A
#   prototype that spliced from the image file (go-fuse ReadResultFd over
#   the ext extents) gained 10% (0.14-0.16 s), so it was not kept. The
#   0.56x of 2026-12-05 was measured at load 5.5, where cat ran slower.
# Result 2026-12-06 05:28 (quiet: load 0.81-1.04, R=7 G=0 N=11): mount
#   to first ls median 8.1 ms of 11. 512 MiB, first read through a fresh
#   mount / re-read in the same mount / imgtool cat:
#     /dev/null  0.180 s / 0.063 s / 0.024 s: 0.13x / 0.38x
#     pipe       0.543 s / 0.411 s / 0.425 s: 0.78x / 1.03x
#     tmpfs file 0.378 s / 0.291 s / 0.267 s: 0.70x / 0.91x
#   The re-read never reaches the server (the kernel keeps the file's
#   pages), and still reaches only 0.38x of imgtool cat into /dev/null
#   (dd bs=1M like imgtool cat's reads: 50-69 ms against 24 ms): the
#   kernel's own read path for a FUSE file is slower than imgtool cat's
#   pread of the image file, so with /dev/null as the sink 0.5x is out of
#   reach of any FUSE server on this kernel (6.18). Into a pipe the first
#   read is 0.78-1.36x over this day's two quiet runs (noisy), into a
#   tmpfs file 0.69-0.70x.
set -euo pipefail
N=${N:-11}
G=${G:-3}
R=${R:-5}
W=${XBENCH:-/tmp/xbench}
mkdir -p "$W"
CGO_ENABLED=0 go build -o "$W/imgtool" ./cmd/imgtool
IMG=$W/dom0.img
[ -f "$IMG" ] || xz -dc fixtures/images/dom0.img.xz > "$IMG"
MNT=$(mktemp -d /tmp/mount-bench.XXXXXX)
cleanup() {
	mountpoint -q "$MNT" && fusermount3 -u -z "$MNT" || true
	rmdir "$MNT" 2>/dev/null || true
}
trap cleanup EXIT

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }

echo "load: $(uptime)"

# --- 1. mount to first ls --------------------------------------------------
: > "$W/mount-imgtool.ms"
: > "$W/mount-guestmount.ms"
for i in $(seq 1 "$N"); do
	t0=$(now)
	"$W/imgtool" mount "$IMG" "$MNT" 2>/dev/null &
	pid=$!
	until mountpoint -q "$MNT"; do :; done
	ls "$MNT" >/dev/null
	t1=$(now)
	echo "scale=1; ($t1 - $t0) / 1000000" | bc >> "$W/mount-imgtool.ms"
	kill -TERM $pid
	wait $pid
	if [ "$i" -le "$G" ] && command -v guestmount >/dev/null; then
		t0=$(now)
		# no KVM here: the appliance runs under TCG, as everywhere in this project
		if LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg \
			guestmount --format=raw -a "$IMG" -m /dev/VolGroup00/LogVol00 --ro "$MNT"; then
			ls "$MNT" >/dev/null
			t1=$(now)
			echo "scale=1; ($t1 - $t0) / 1000000" | bc >> "$W/mount-guestmount.ms"
			guestunmount "$MNT"
		else
			echo "guestmount failed (run $i)" >&2
		fi
	fi
done
a=$(median < "$W/mount-imgtool.ms")
echo "mount to first ls, imgtool:    median $a ms of $N ($(tr '\n' ' ' < "$W/mount-imgtool.ms"))"
if [ -s "$W/mount-guestmount.ms" ]; then
	b=$(median < "$W/mount-guestmount.ms")
	echo "mount to first ls, guestmount: median $b ms of $(wc -l < "$W/mount-guestmount.ms") ($(tr '\n' ' ' < "$W/mount-guestmount.ms"))"
	echo "ratio guestmount/imgtool: $(echo "scale=1; $b / $a" | bc)"
fi

# --- 2. large file throughput -----------------------------------------------
BIG=$W/bigfile.img
if [ ! -f "$BIG" ]; then
	mkdir -p "$W/bigsrc"
	head -c $((512 * 1024 * 1024)) /dev/urandom > "$W/bigsrc/big"
	mke2fs -q -F -t ext4 -d "$W/bigsrc" "$BIG" 600M
	rm -rf "$W/bigsrc"
fi
cat "$BIG" > /dev/null # the image warm in the page cache for both
# Three sinks: /dev/null (the source alone: imgtool cat copies each byte
# once, the mount three times: pread in the server, its write into
# /dev/fuse and the page cache, cat's read), a pipe and a tmpfs file
# (where a user's bytes go).
sinks="null pipe file"
for k in $sinks; do : > "$W/read-mount-$k.s"; : > "$W/read-warm-$k.s"; : > "$W/read-cat-$k.s"; done
sink() { # KIND CMD...: run CMD with its stdout into the sink
	local k=$1
	shift
	case $k in
	null) "$@" > /dev/null ;;
	pipe) "$@" | cat > /dev/null ;;
	file) "$@" > /dev/shm/mount-bench.out && rm -f /dev/shm/mount-bench.out ;;
	esac
}
for i in $(seq 1 "$R"); do
	for k in $sinks; do
		"$W/imgtool" mount "$BIG" "$MNT" 2>/dev/null &
		pid=$!
		until mountpoint -q "$MNT"; do sleep 0.01; done
		t0=$(now)
		sink $k cat "$MNT/big"
		t1=$(now)
		echo "scale=3; ($t1 - $t0) / 1000000000" | bc >> "$W/read-mount-$k.s"
		# Read again in the same mount: the kernel keeps the file's pages
		# (keep_cache), so a re-read never reaches the server.
		t0=$(now)
		sink $k cat "$MNT/big"
		t1=$(now)
		echo "scale=3; ($t1 - $t0) / 1000000000" | bc >> "$W/read-warm-$k.s"
		kill -TERM $pid
		wait $pid
		t0=$(now)
		sink $k "$W/imgtool" cat "$BIG" /big
		t1=$(now)
		echo "scale=3; ($t1 - $t0) / 1000000000" | bc >> "$W/read-cat-$k.s"
	done
done
for k in $sinks; do
	m=$(median < "$W/read-mount-$k.s")
	c=$(median < "$W/read-cat-$k.s")
	w=$(median < "$W/read-warm-$k.s")
	echo "512 MiB into $k: through the mount median $m s ($(echo "scale=0; 512 / $m" | bc) MiB/s), imgtool cat $c s ($(echo "scale=0; 512 / $c" | bc) MiB/s); mount/cat throughput $(echo "scale=2; $c / $m" | bc); re-read in the same mount $w s, $(echo "scale=2; $c / $w" | bc)"
done
echo "load: $(uptime)"
