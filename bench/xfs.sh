#!/usr/bin/env bash
# XFS extraction speed: `imgtool extract IMG / DEST` against the kernel: a
# read-only loop mount of the same image and
# `cp -a` (warm: mounted once, page and dentry caches warm). The image is an
# XFS of this machine's /usr/share (mkfs.xfs, populated through a loop
# mount, built once into $W). Runs interleave; prints medians of wall and
# CPU time, their ratio, peak RSS, and how many entries each copy gets
# wrong against the mounted image (type, mode, owner, mtime ns, target).
#
# Usage: bench/xfs.sh [N]   (default 5; root: loop mounts, owners)
#
# Results 2026-12-05 16:53, Debian 12, 2 cores, a background fuzzer
# paused (SIGSTOP) and two helper sessions idle (ps) for the run, /usr/share =
# 806 MB in 59,647 entries, 2.1 GB
# image, destination tmpfs, N=5:
#   imgtool extract: wall 0.59 s, cpu 1.03 s, peak RSS 44 MB |
#   kernel mount + cp -a (warm): wall 1.55 s, cpu 1.55 s |
#   ratio wall 0.38, cpu 0.66 | entries differing: imgtool 0, cp -a 0
# Busy runs swing: at load ~2 (a fuzzer on one core) the same day, wall 0.63
# / cpu 0.87; at load 22-35, wall 0.15 / cpu 0.64 (the kernel's cp -a fares
# worse under load). Profile (IMGTOOL_CPUPROFILE, quiet): pwrite into the
# destination 36% of CPU, openat of new files 21% (the walking goroutine),
# pread of the image 11%; the walk is one goroutine, the copies 2 workers.
# `imgtool inspect` of the nested fixture (host VG centos holding a guest
# disk with VG centos and an XFS root): 5 ms wall, 15 MB RSS (7 runs).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5}
. bench/lib.sh

img=$W/share-xfs.img
if [ ! -f "$img" ] || [ "$(cat "$W/share-xfs.stamp" 2>/dev/null)" != "$stamp" ]; then
	echo "building $img from $src..."
	rm -f "$img"
	truncate -s $((bytes * 2 + 512 * 1024 * 1024)) "$img"
	mkfs.xfs -q -f "$img"
	mkdir -p "$W/xfsbuild"
	mount -o loop "$img" "$W/xfsbuild"
	cp -a "$src/." "$W/xfsbuild/"
	umount "$W/xfsbuild"
	echo "$stamp" > "$W/share-xfs.stamp"
fi
cat "$img" > /dev/null # warm the page cache
mnt=$W/xfsmnt
mkdir -p "$mnt"
mount -o ro,loop "$img" "$mnt"
trap 'umount "$mnt"; rm -rf "${T:?}"/imgtool "${T:?}"/kernel' EXIT
cp -a "$mnt/." "$T/warm" && rm -rf "${T:?}/warm" # warm the dentry/inode caches

run() {
	local name=$1
	shift
	rm -rf "${T:?}/$name"
	$NICE /usr/bin/time -f '%e %U %S %M' -o "$T/time" "$@" >/dev/null 2>"$T/err" || {
		echo "$name failed:" >&2
		cat "$T/err" >&2
		exit 1
	}
	awk '{ printf "%s %.2f %s\n", $1, $2 + $3, $4 }' "$T/time" >> "$W/xfs-$name.times"
}
rm -f "$W/xfs-imgtool.times" "$W/xfs-kernel.times"
for ((i = 0; i < N; i++)); do
	run imgtool "$W/imgtool" extract "$img" / "$T/imgtool"
	run kernel cp -a "$mnt/." "$T/kernel"
done
med() { sort -n -k"$2" "$1" | awk -v n="$N" -v k="$2" 'NR == int((n + 1) / 2) { print $k }'; }
iw=$(med "$W/xfs-imgtool.times" 1); ic=$(med "$W/xfs-imgtool.times" 2); ir=$(sort -n -k3 "$W/xfs-imgtool.times" | tail -1 | cut -d' ' -f3)
kw=$(med "$W/xfs-kernel.times" 1); kc=$(med "$W/xfs-kernel.times" 2)
list() { (cd "$1" && find . -mindepth 1 -printf '%T@ %y %m %U %G %p -> %l\n' | sort -k6); }
list "$mnt" > "$W/xfs-src.list"
idiff=$(comm -3 "$W/xfs-src.list" <(list "$T/imgtool") | wc -l)
kdiff=$(comm -3 "$W/xfs-src.list" <(list "$T/kernel") | wc -l)
echo "image: $(du -h --apparent-size "$img" | cut -f1) XFS of $src ($bytes bytes, $(wc -l < "$W/xfs-src.list") entries); N=$N; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "imgtool extract: median wall ${iw}s, cpu ${ic}s, peak RSS $((ir / 1024)) MB"
echo "kernel mount + cp -a (warm): median wall ${kw}s, cpu ${kc}s"
echo "ratio imgtool/kernel: wall $(awk -v a="$iw" -v b="$kw" 'BEGIN { printf "%.2f", a / b }'), cpu $(awk -v a="$ic" -v b="$kc" 'BEGIN { printf "%.2f", a / b }')"
echo "entries differing from the mounted image (type/mode/owner/mtime/target): imgtool $idiff, kernel cp -a $kdiff"
