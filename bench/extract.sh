#!/usr/bin/env bash
# Whole-filesystem extraction speed: `imgtool extract IMG / DEST` against
# `debugfs -R 'rdump / DEST' IMG` on an ext4 image of this machine's
# /usr/share (mke2fs -t ext4 -d, built once into $W and reused), extracting
# to tmpfs with a warm page cache. Prints the median wall time and CPU time
# (user+sys) of N runs of each, their ratio, imgtool's peak RSS
# (/usr/bin/time -v's "Maximum resident set size", Debian package `time`),
# and how many entries each copy gets wrong against /usr/share itself
# (type, mode, uid, gid, mtime seconds, symlink target; mke2fs -d stores no
# nanoseconds, so only seconds can be compared here).
#
# Usage: bench/extract.sh [N]   (default 5; needs root for owners, as debugfs)
#
# Results 2026-11-21, Debian, 2 cores (AMD EPYC VM), /usr/share = 580 MB in
# 50,901 entries (43,717 files, 3,224 dirs, 3,962 symlinks, no hard links),
# 1.5 GB image, DEST on /dev/shm. The machine was shared with other builds
# and fuzzers (load average 9-19 on 2 cores), so wall times swing 2-3x from
# run to run; CPU time (user+sys) is the steady number.
# On the quiet machine at the end of the session (load average 0.7-1.0):
#   N=7: imgtool wall 0.56 s, cpu 0.95 s | debugfs wall 1.15 s, cpu 1.14 s |
#        ratio wall 0.49, cpu 0.83 | imgtool peak RSS 26 MB
#   N=9: imgtool wall 0.56 s, cpu 0.96 s | debugfs wall 1.17 s, cpu 1.16 s |
#        ratio wall 0.48, cpu 0.83 | imgtool peak RSS 25 MB
# Earlier, under load from parallel builds:
#   N=7, nice -15:  imgtool wall 4.12 s, cpu 1.12 s | debugfs wall 7.44 s,
#                   cpu 1.21 s | ratio wall 0.55, cpu 0.93 | imgtool peak RSS 24 MB
#   N=7, nice -15:  ratio wall 0.84, cpu 0.88 (earlier build), RSS 25 MB
#   quiet moments:  imgtool 0.79-0.99 s wall vs debugfs 1.14-1.63 s (~0.7)
#   fidelity:       imgtool 0 entries differ from /usr/share; debugfs 7,924
#                   (every symlink's mtime is the extraction time)
# So: memory well under 100 MB; CPU at parity with debugfs (the kernel's
# per-file work — create, write, set times — is most of it); the 0.5x wall
# target was met in one run and missed in others, and is not demonstrated
# on this loaded machine.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5}
. bench/lib.sh

cat "$W/share.img" > /dev/null # warm the page cache

# run NAME CMD...: one timed run into $T/NAME; appends "wall cpu rss_kb".
run() {
	local name=$1
	shift
	rm -rf "${T:?}/$name"
	[ "$name" = debugfs ] && mkdir "$T/$name"
	$NICE /usr/bin/time -f '%e %U %S %M' -o "$T/time" "$@" >/dev/null 2>"$T/err" || {
		echo "$name failed:" >&2
		cat "$T/err" >&2
		exit 1
	}
	awk '{ printf "%s %.2f %s\n", $1, $2 + $3, $4 }' "$T/time" >> "$W/$name.times"
}
rm -f "$W/imgtool.times" "$W/debugfs.times"
for ((i = 0; i < N; i++)); do
	run imgtool "$W/imgtool" extract "$W/share.img" / "$T/imgtool"
	run debugfs debugfs -R "rdump / $T/debugfs" "$W/share.img"
done
med() { sort -n -k"$2" "$1" | awk -v n="$N" -v k="$2" 'NR == int((n + 1) / 2) { print $k }'; }
iw=$(med "$W/imgtool.times" 1); ic=$(med "$W/imgtool.times" 2); ir=$(sort -n -k3 "$W/imgtool.times" | tail -1 | cut -d' ' -f3)
dw=$(med "$W/debugfs.times" 1); dc=$(med "$W/debugfs.times" 2)

# Fidelity against the source tree.
list() { (cd "$1" && find . -mindepth 1 ! -path ./lost+found -printf '%TY%Tm%Td%TH%TM%TS %y %m %U %G %p -> %l\n' | sed -E 's/^([0-9]+)\.[0-9]+ /\1 /' | sort -k6); }
list "$src" > "$W/src.list"
list "$T/imgtool" > "$W/imgtool.list"
list "$T/debugfs" > "$W/debugfs.list"
idiff=$(sort "$W/src.list" | comm -3 - <(sort "$W/imgtool.list") | wc -l)
ddiff=$(sort "$W/src.list" | comm -3 - <(sort "$W/debugfs.list") | wc -l)

echo "image: $(du -h --apparent-size "$W/share.img" | cut -f1) ext4 from $src ($bytes bytes, $(wc -l < "$W/src.list") entries); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "imgtool: median wall ${iw}s, cpu ${ic}s, peak RSS $((ir / 1024)) MB"
echo "debugfs: median wall ${dw}s, cpu ${dc}s"
echo "ratio imgtool/debugfs: wall $(awk -v a="$iw" -v b="$dw" 'BEGIN { printf "%.2f", a / b }'), cpu $(awk -v a="$ic" -v b="$dc" 'BEGIN { printf "%.2f", a / b }')"
echo "entries differing from $src (type/mode/owner/mtime/target, either side): imgtool $idiff, debugfs $ddiff"
sort "$W/src.list" | comm -3 - <(sort "$W/debugfs.list") | head -4 | sed 's/^/  debugfs e.g.: /'
