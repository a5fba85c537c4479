#!/usr/bin/env bash
# Salvage of a damaged filesystem: `imgtool extract --salvage IMG / DEST`
# against debugfs's catastrophic mode on a backup superblock,
# `debugfs -c -s SB -b BS -R 'rdump / DEST' IMG` (what one runs by hand
# when the primary descriptors are gone), on the ext4 image of /usr/share
# that bench/extract.sh builds, with its primary group descriptor block
# zeroed. DEST is on tmpfs, the page cache warm. Prints the median wall
# and CPU time (user+sys) of N runs of each, their ratio, imgtool's peak
# RSS, and how many regular files of /usr/share each copy has with the
# right content (sha256 at the same path), out of all of them.
#
# Usage: bench/salvage.sh [N]   (default 5; root, for owners as debugfs)
#
# Result 2026-11-21, Debian, 2 cores, one fuzzer running on the other core
# (load average 1.7), /usr/share = 580 MB, 43,717 regular files, N=7:
#   imgtool extract --salvage: median wall 0.77 s, cpu 1.03 s, peak RSS 27 MB;
#                              43,717 of 43,717 files correct
#   debugfs -c -s 32768 -b 4096 rdump: median wall 1.14 s, cpu 1.13 s;
#                              43,717 of 43,717 files correct
#   ratio wall 0.68, cpu 0.91
# With one zeroed block both recover everything (debugfs only once told
# where a backup is); the corpus comparison (salvage TestCompareDebugfs)
# is where the damage is varied: 2,151 correct files against debugfs's 888.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5}
. bench/lib.sh

# The damage: every block of the primary descriptor table zeroed.
cp --sparse=always "$W/share.img" "$W/damaged.img"
bs=$(dumpe2fs -h "$W/damaged.img" 2>/dev/null | awk -F: '/^Block size/ { print $2 + 0 }')
bpg=$(dumpe2fs -h "$W/damaged.img" 2>/dev/null | awk -F: '/^Blocks per group/ { print $2 + 0 }')
gdt=$(dumpe2fs "$W/damaged.img" 2>/dev/null | sed -n 's/^ *Primary superblock at 0, Group descriptors at 1-\([0-9]*\).*/\1/p' | head -1)
dd if=/dev/zero of="$W/damaged.img" bs="$bs" seek=1 count="$gdt" conv=notrunc status=none
if debugfs -c -R 'ls /' "$W/damaged.img" >/dev/null 2>&1 && [ "$(debugfs -c -R 'ls /' "$W/damaged.img" 2>/dev/null | wc -w)" -gt 3 ]; then
	echo "debugfs still reads the damaged image through its primary descriptors: the damage did not take" >&2
	exit 1
fi

cat "$W/damaged.img" > /dev/null

run() {
	local name=$1 rc=0
	shift
	rm -rf "${T:?}/$name"
	[ "$name" = debugfs ] && mkdir "$T/$name"
	$NICE /usr/bin/time -f '%e %U %S %M' -o "$T/time" "$@" >/dev/null 2>"$T/err" || rc=$?
	# imgtool exits 3 when the salvage has losses or notes; that is a result.
	if [ "$rc" != 0 ] && ! { [ "$name" = imgtool ] && [ "$rc" = 3 ]; }; then
		echo "$name failed ($rc):" >&2
		tail -5 "$T/err" >&2
		exit 1
	fi
	awk '{ printf "%s %.2f %s\n", $1, $2 + $3, $4 }' "$T/time" >> "$W/s-$name.times"
}
rm -f "$W/s-imgtool.times" "$W/s-debugfs.times"
for ((i = 0; i < N; i++)); do
	run imgtool "$W/imgtool" extract --salvage --no-progress "$W/damaged.img" / "$T/imgtool"
	run debugfs debugfs -c -s "$bpg" -b "$bs" -R "rdump / $T/debugfs" "$W/damaged.img"
done
med() { sort -n -k"$2" "$1" | awk -v n="$N" -v k="$2" 'NR == int((n + 1) / 2) { print $k }'; }
iw=$(med "$W/s-imgtool.times" 1); ic=$(med "$W/s-imgtool.times" 2); ir=$(sort -n -k3 "$W/s-imgtool.times" | tail -1 | cut -d' ' -f3)
dw=$(med "$W/s-debugfs.times" 1); dc=$(med "$W/s-debugfs.times" 2)

# Correct regular files: same content as in /usr/share at the same path.
sums() { (cd "$1" && find . -type f ! -path './#orphans/*' ! -name 'salvage-report.*' -print0 | sort -z | xargs -0 -r sha256sum) | sort; }
sums "$src" > "$W/src.sums"
total=$(wc -l < "$W/src.sums")
ig=$(sums "$T/imgtool" | comm -12 "$W/src.sums" - | wc -l)
dg=$(sums "$T/debugfs" | comm -12 "$W/src.sums" - | wc -l)

echo "image: $(du -h --apparent-size "$W/damaged.img" | cut -f1) ext4 from $src, primary descriptor blocks 1-$gdt zeroed; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "imgtool extract --salvage: median wall ${iw}s, cpu ${ic}s, peak RSS $((ir / 1024)) MB; files correct $ig of $total"
echo "debugfs -c -s $bpg -b $bs rdump: median wall ${dw}s, cpu ${dc}s; files correct $dg of $total"
echo "ratio imgtool/debugfs: wall $(awk -v a="$iw" -v b="$dw" 'BEGIN { printf "%.2f", a / b }'), cpu $(awk -v a="$ic" -v b="$dc" 'BEGIN { printf "%.2f", a / b }')"
