#!/bin/bash
# Undelete side by side: imgtool undelete, extundelete --restore-all and
# ext4magic -r on the kernel-made fixtures (fixtures/scripts/undelete.sh:
# 300 files written, 220 deleted incl. one subdirectory). For each tool:
# files recovered byte-exact (content equal to a sha256 recorded before the
# rm; each deleted file counted once), files recovered at their original
# path, wrong files (a file at a deleted file's path with other content),
# and the median wall time of RUNS interleaved runs.
# Usage: bash bench/undelete.sh [RUNS]   (needs extundelete and ext4magic)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
W=$(mktemp -d /tmp/imgtool-bench-undel.XXXXXX)
trap 'rm -rf "$W"' EXIT
go build -o "$W/imgtool" ./cmd/imgtool
echo "load: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores, $RUNS runs each, interleaved"

count() { # DIR GOLDEN -> "exact atpath wrong"
	python3 - "$1" "$2" <<'PY'
import hashlib, os, sys
d, g = sys.argv[1], sys.argv[2]
by_path, by_sum = {}, {}
for l in open(g):
    if l.startswith('#'): continue
    p, size, s = l.rstrip('\n').split('\t')
    by_path[p] = s; by_sum.setdefault((int(size), s), 0); by_sum[(int(size), s)] += 1
sizes = {k[0] for k in by_sum}
exact = atpath = wrong = 0
for root, _, files in os.walk(d):
    for n in files:
        p = os.path.join(root, n)
        st = os.lstat(p)
        if not os.path.isfile(p) or st.st_size not in sizes: continue
        s = hashlib.sha256(open(p, 'rb').read()).hexdigest()
        k = (st.st_size, s)
        if by_sum.get(k, 0) > 0:
            by_sum[k] -= 1; exact += 1
        rel = os.path.relpath(p, d)
        for cand in (rel, rel.split('/', 1)[-1]):
            if cand in by_path:
                if by_path[cand] == s: atpath += 1
                else: wrong += 1
                break
print(exact, atpath, wrong)
PY
}

for name in undel-ext4 undel-ext3 undel-reused; do
	xz -dc "fixtures/images/$name.img.xz" > "$W/$name.img"
	G=fixtures/golden/$name.deleted
	echo "== $name: $(grep -vc '^#' "$G") deleted files"
	declare -A T=()
	for r in $(seq "$RUNS"); do
		for tool in imgtool extundelete ext4magic; do
			out=$W/out-$tool
			rm -rf "$out" "$W/RECOVERED_FILES"; mkdir -p "$out"
			cp --sparse=always "$W/$name.img" "$W/copy.img"
			s=$(date +%s%N)
			case $tool in
			imgtool) "$W/imgtool" undelete "$W/copy.img" "$out" > /dev/null 2>&1 || true ;;
			extundelete) (cd "$W" && timeout 300 extundelete copy.img --restore-all > /dev/null 2>&1 || true; mv RECOVERED_FILES/* "$out"/ 2>/dev/null || true) ;;
			ext4magic) timeout 300 ext4magic "$W/copy.img" -r -d "$out" > /dev/null 2>&1 || true ;;
			esac
			e=$(date +%s%N)
			T[$tool]+="$(( (e - s) / 1000000 )) "
		done
	done
	for tool in imgtool extundelete ext4magic; do
		read -r exact atpath wrong < <(count "$W/out-$tool" "$G")
		med=$(echo "${T[$tool]}" | tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
		printf '  %-12s byte-exact %4d   at original path %4d   wrong %3d   median %6d ms\n' "$tool" "$exact" "$atpath" "$wrong" "$med"
	done
	unset T
done
