#!/usr/bin/env bash
# Before/after: the extract and inspect paths of revision REV against the
# work tree, interleaved in one run so both see the same load.
#   extract: `imgtool extract share.img / DEST` (bench/lib.sh's ext4 image of
#            /usr/share) to tmpfs, warm page cache; median wall and CPU.
#   inspect: `imgtool inspect` of the dom0 fixture, 50 per sample; median
#            wall and CPU of one.
# Prints the medians, the ratios (work tree / REV; < 1 is faster) and
# `uptime`'s load.
#
# Usage: bench/ab.sh REV [N]   (default N 5)
set -euo pipefail
cd "$(dirname "$0")/.."
REV=${1:?usage: bench/ab.sh REV [N]}
N=${2:-5}
R=50 # inspects per timed sample
. bench/lib.sh
mv "$W/imgtool" "$W/imgtool.new"
old=$(mktemp -d)
trap 'rm -rf "$T" "$old"; git worktree remove --force "$old/src" 2>/dev/null || true' EXIT
git worktree add -q --detach "$old/src" "$REV"
(cd "$old/src" && CGO_ENABLED=0 go build -o "$W/imgtool.old" ./cmd/imgtool)
xz -dc fixtures/images/dom0.img.xz > "$old/dom0.img"
cat "$W/share.img" > /dev/null

rm -f "$W"/ab.*
for ((i = 0; i < N; i++)); do
	for v in old new; do
		rm -rf "${T:?}/$v"
		$NICE /usr/bin/time -f '%e %U %S' -o "$T/time" "$W/imgtool.$v" extract "$W/share.img" / "$T/$v" >/dev/null 2>&1
		awk '{ printf "%s %.2f\n", $1, $2 + $3 }' "$T/time" >> "$W/ab.extract.$v"
		# one inspect takes a few ms, under time(1)'s 10 ms resolution:
		# time R of them and divide
		$NICE /usr/bin/time -f '%e %U %S' -o "$T/time" sh -c \
			'for i in $(seq "$2"); do "$0" inspect "$1" >/dev/null 2>&1; done' \
			"$W/imgtool.$v" "$old/dom0.img" "$R"
		awk -v r="$R" '{ printf "%.4f %.4f\n", $1 / r, ($2 + $3) / r }' "$T/time" >> "$W/ab.inspect.$v"
	done
	rm -rf "${T:?}/old" "${T:?}/new"
done
med() { sort -n -k"$2" "$1" | awk -v n="$N" -v k="$2" 'NR == int((n + 1) / 2) { print $k }'; }
for what in extract inspect; do
	ow=$(med "$W/ab.$what.old" 1) oc=$(med "$W/ab.$what.old" 2)
	nw=$(med "$W/ab.$what.new" 1) nc=$(med "$W/ab.$what.new" 2)
	printf '%s: %s wall %ss cpu %ss | work tree wall %ss cpu %ss | ratio wall %.2f cpu %.2f\n' \
		"$what" "$REV" "$ow" "$oc" "$nw" "$nc" "$(echo "$nw / $ow" | bc -l)" "$(echo "$nc / $oc" | bc -l)"
done
echo "N=$N; load: $(uptime)"
