#!/usr/bin/env bash
# Decryption throughput of an unlocked LUKS2 volume (aes-xts-plain64, 4096-
# byte sectors, 256- and 512-bit keys) read with `imgtool dd VOL/luks` from a
# warm page cache to /dev/null, next to the peer: `cryptsetup benchmark`
# when the kernel has AF_ALG (algif_skcipher), else `openssl speed -evp
# aes-{128,256}-xts` on 4096-byte buffers (both are memory-only, one thread,
# so the imgtool number is also taken with GOMAXPROCS=1). Runs interleave;
# medians of N. The peer is memory-only, so the decryption alone is also
# measured (BenchmarkDecrypt, one core): that is the like-for-like ratio;
# the dd ratio adds reading the image. Usage: bench/luks.sh [N] [SIZE_MIB]
# Result 2026-12-05 (2 shared cores, load 27 -> 23; no AF_ALG here, so the
# peer is openssl speed, which uses VAES): aes-xts 256b decrypt alone
# 1225 MB/s vs openssl 2573 (0.48), dd 640 MB/s one core (0.25);
# aes-xts 512b decrypt alone 1043 vs 1412 (0.74), dd 373 / 585 MB/s
# (0.26 one core, 0.41 two cores). Under this load the numbers swing by 2x
# between runs; the dd path spends about half its CPU in pread.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5}
MIB=${2:-512}
W=$(mktemp -d /dev/shm/luksbench.XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$W"' EXIT
CGO_ENABLED=0 go build -o "$W/imgtool" ./cmd/imgtool
go test -c -o "$W/luks.test" ./luks
printf 'bench' > "$W/key"
for ks in 256 512; do
	truncate -s $((MIB + 16))M "$W/l$ks.img"
	cryptsetup luksFormat -q --type luks2 --cipher aes-xts-plain64 --key-size $ks --sector-size 4096 \
		--pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file "$W/key" "$W/l$ks.img"
	# Non-zero ciphertext everywhere (the content does not matter for speed).
	head -c $((MIB << 20)) /dev/urandom | dd of="$W/l$ks.img" bs=1M seek=16 conv=notrunc status=none
	cat "$W/l$ks.img" > /dev/null
done
peer=openssl
if cryptsetup benchmark -c aes-xts -s 256 >/dev/null 2>&1; then peer=cryptsetup; fi

mbps_dd() { # KS PROCS -> MB/s of imgtool dd
	local t0 t1
	t0=$(date +%s%N)
	GOMAXPROCS=$2 "$W/imgtool" dd "$W/l$1.img" luks --key-file "$W/key" > /dev/null
	t1=$(date +%s%N)
	awk -v b=$((MIB << 20)) -v ns=$((t1 - t0)) 'BEGIN{printf "%.0f", b / (ns / 1e9) / 1e6}'
}
mbps_peer() { # KS -> MB/s
	if [ $peer = cryptsetup ]; then
		cryptsetup benchmark -c aes-xts -s "$1" | awk '/aes-xts/{print $(NF-1)*1.048576; exit}'
	else
		local alg=aes-128-xts
		[ "$1" = 512 ] && alg=aes-256-xts
		openssl speed -elapsed -seconds 2 -bytes 4096 -evp $alg 2>/dev/null | awk 'END{sub("k","",$2); printf "%.0f", $2 / 1000}'
	fi
}
mbps_mem() { # KS -> MB/s of the sector decryption alone (BenchmarkDecrypt, one core, 4096-byte sectors)
	GOMAXPROCS=1 "$W/luks.test" -test.run '^$' -test.bench "Decrypt/aes-xts-plain64-${1}b/4096\$" -test.benchtime 1s |
		awk '/MB\/s/{for (i = 1; i <= NF; i++) if ($i == "MB/s") print int($(i-1))}'
}
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
echo "load: $(uptime | sed 's/.*load average: //'); peer: $peer; $MIB MiB per read; N=$N"
for ks in 256 512; do
	one=() all=() p=() mem=()
	for ((i = 0; i < N; i++)); do
		mem+=("$(mbps_mem $ks)")
		one+=("$(mbps_dd $ks 1)")
		p+=("$(mbps_peer $ks)")
		all+=("$(mbps_dd $ks "$(nproc)")")
	done
	m1=$(printf '%s\n' "${one[@]}" | median)
	ma=$(printf '%s\n' "${all[@]}" | median)
	mp=$(printf '%s\n' "${p[@]}" | median)
	mm=$(printf '%s\n' "${mem[@]}" | median)
	echo "aes-xts ${ks}b: imgtool dd 1 core ${m1} MB/s, $(nproc) cores ${ma} MB/s; $peer ${mp} MB/s;" \
		"decrypt alone (memory, 1 core) ${mm} MB/s, ratio $(awk -v a="$mm" -v b="$mp" 'BEGIN{printf "%.2f", a/b}');" \
		"dd ratio 1 core $(awk -v a="$m1" -v b="$mp" 'BEGIN{printf "%.2f", a/b}'), all cores $(awk -v a="$ma" -v b="$mp" 'BEGIN{printf "%.2f", a/b}')"
done
echo "load after: $(uptime | sed 's/.*load average: //')"
