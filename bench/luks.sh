#!/usr/bin/env bash
# Decryption throughput of an unlocked LUKS2 volume (aes-xts-plain64, 4096-
# byte sectors, 256- and 512-bit keys) read with `imgtool dd VOL/luks` from a
# warm page cache to /dev/null, next to the peer: `cryptsetup benchmark`
# when the kernel has AF_ALG (algif_skcipher), else `openssl speed -decrypt
# -evp aes-{128,256}-xts` on 4096-byte buffers (both are memory-only, one
# thread, so the imgtool number is also taken with GOMAXPROCS=1; with all
# cores, dd reads and decrypts on each). Runs
# interleave; medians of N. Every figure is given twice: by wall time and
# by CPU time (user + sys: perf stat's task-clock for dd, BenchmarkDecrypt's
# cpuMB/s, openssl speed without -elapsed), because on a shared machine the
# wall time swings with the other load and the CPU time much less. The
# peer is memory-only, so the decryption alone is also measured
# (BenchmarkDecrypt, one core): that is the like-for-like ratio; the dd
# ratio adds reading the image (pread's page-cache copy, about half of dd's
# CPU), measured alone too (coreutils dd bs=1M), which bounds what one core
# can do: 1 / (1/read + 1/decrypt). Usage: [BASE=REV] bench/luks.sh [N]
# [SIZE_MIB]
#
# Proxy caveat: this machine's kernel has no AF_ALG ("Cipher aes-xts (with
# 256 bits key) is not available. Required kernel crypto interface not
# available. Ensure you have algif_skcipher kernel module loaded.") and no
# xts(aes) driver in /proc/crypto, so cryptsetup benchmark cannot run.
# OpenSSL 3.0's XTS is 128-bit AES-NI (masking VAES/VPCLMULQDQ with
# OPENSSL_ia32cap leaves its speed unchanged; masking AES-NI divides it by
# 19). A kernel >= 6.10 on this CPU would use its VAES XTS
# (xts-aes-vaes-avx2/avx10), likely faster than openssl 3.0 — the decrypt
# alone here uses the same method (VAES on YMM, tweaks by VPCLMULQDQ).
#
# Result 2026-12-05 13:06, N=5, 512 MiB, 2 shared cores (KVM vCPUs), load
# 1.25 -> 1.13, BASE=bcc7e64 (before the dd changes), wall / CPU MB/s:
#   aes-xts 256b: openssl 12301 / 12337; decrypt alone 19335 / 19225 (1.57
#   / 1.56); image read alone 7800 / 8002, so one core's bound 5558 / 5650
#   (0.45 / 0.46); dd 1 core 5010 / 4998 (0.41 / 0.41), 2 cores 8798 wall
#   (0.72). Base: 1 core 4612 / 4588 (0.37), 2 cores 4790 wall (0.39).
#   aes-xts 512b: openssl 8254 / 8487; decrypt alone 14971 / 14883 (1.81 /
#   1.75); read alone 9508 / 9644, bound 5815 / 5852 (0.70 / 0.69); dd 1
#   core 5276 / 5290 (0.64 / 0.62), 2 cores 8597 wall (1.04). Base: 1 core
#   4830 / 4753 (0.59 / 0.56), 2 cores 4844 wall (0.59).
# So dd reaches 90% of what one core can do (page-cache read, then decryption)
# and, reading on both cores, 0.72x (256b) and 1.04x (512b) of openssl's
# one-thread decryption by wall time. The 1-core ratio for 256b stays under
# 0.5 because reading the image alone is at 0.63x of openssl here: the
# page-cache copy (copy_to_iter) and lookup (filemap_get_entry, shmem) are
# 45-50% of dd's perf samples, the decryption 30%, Go's sysmon thread (its
# nanosleep wake-ups while dd is in pread) 8%. The read alone varies with the
# host: coreutils dd read 16.5 GB/s at 12:13 the same day (bound then about
# 0.7x for 256b). mmap instead of pread was slower here (reading 1 GiB through
# a mapping took 155 ms of CPU against pread's 80: page faults in a VM). The
# profile that led to the changes (pprof and perf, 1 GiB, 1 core): io.Copy to
# stdout goes through os.File.ReadFrom's generic path with 32 KiB reads, one
# pread and one decryption call per 32 KiB; 256 KiB reads save 9-17% of the
# CPU time; splitting a 256 KiB read's decryption across two cores cost more
# than it saved (luks.parallelPer).
# Earlier figures (10:36, N=3, 256 MiB, load 0.66, wall time then included
# perf stat's start-up): dd 1 core 3674 wall / 4978 CPU (0.29 / 0.39) for
# 256b, 3768 / 5151 (0.44 / 0.61) for 512b. Before the VAES path (load 5):
# decrypt alone 256b about 7500 MB/s CPU (0.59 of openssl), dd about 2000.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5}
MIB=${2:-512}
W=$(mktemp -d /dev/shm/luksbench.XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$W"' EXIT
CGO_ENABLED=0 go build -o "$W/imgtool" ./cmd/imgtool
# BASE=REV (a commit) also times imgtool dd built at REV, interleaved: before/after at one load.
if [ -n "${BASE:-}" ]; then
	mkdir "$W/base"
	git archive "$BASE" | tar -x -C "$W/base"
	(cd "$W/base" && CGO_ENABLED=0 go build -o "$W/imgtool-base" ./cmd/imgtool)
fi
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

# run_ms CMD... -> "WALL CPU" milliseconds of CMD (CPU: user + sys), its stdout to /dev/null:
# perf stat's duration_time and task-clock when perf works here, else GNU time (10 ms
# resolution). The wall time is the command's own: timing perf stat from outside added its
# start-up, 10-20 ms, to a dd of about 100 ms.
if perf stat -x, -e task-clock,duration_time true 2>/dev/null; then
	run_ms() { perf stat -x, -e task-clock,duration_time "$@" 2>&1 >/dev/null | awk -F, '/task-clock/{c = $1} /duration_time/{w = $1 / 1e6} END{print w, c}'; }
else
	run_ms() { { /usr/bin/time -f '%e %U %S' "$@" > /dev/null; } 2>&1 | awk 'END{print $1 * 1000, ($2 + $3) * 1000}'; }
fi
mbps() { # BYTES "WALL_MS CPU_MS" -> "WALL CPU" MB/s
	awk -v b="$1" -v t="$2" 'BEGIN{split(t, a, " "); printf "%.0f %.0f", b / (a[1] / 1e3) / 1e6, b / (a[2] / 1e3) / 1e6}'
}
mbps_dd() { # KS PROCS [BIN] -> "WALL CPU": MB/s of imgtool dd by wall time and by its CPU time
	mbps $((MIB << 20)) "$(GOMAXPROCS=$2 run_ms "${3:-$W/imgtool}" dd "$W/l$1.img" luks --key-file "$W/key")"
}
mbps_read() { # KS -> "WALL CPU" MB/s of reading the image alone (coreutils dd, 1 MiB reads): the pread floor under imgtool dd
	mbps $(((MIB + 16) << 20)) "$(run_ms dd if="$W/l$1.img" of=/dev/null bs=1M status=none)"
}
mbps_peer() { # KS -> "WALL CPU" MB/s of decryption (cryptsetup benchmark has no CPU figure: both are its number)
	if [ $peer = cryptsetup ]; then
		cryptsetup benchmark -c aes-xts -s "$1" | awk '/aes-xts/{v = $NF * 1.048576; printf "%.0f %.0f", v, v; exit}'
	else
		local alg=aes-128-xts
		[ "$1" = 512 ] && alg=aes-256-xts
		# openssl speed counts user CPU time unless given -elapsed.
		local w c
		w=$(openssl speed -elapsed -decrypt -seconds 1 -bytes 4096 -evp $alg 2>/dev/null | awk 'END{sub("k","",$2); printf "%.0f", $2 / 1000}')
		c=$(openssl speed -decrypt -seconds 1 -bytes 4096 -evp $alg 2>/dev/null | awk 'END{sub("k","",$2); printf "%.0f", $2 / 1000}')
		echo "$w $c"
	fi
}
mbps_mem() { # KS -> "WALL CPU" MB/s of the sector decryption alone (BenchmarkDecrypt, one core, 4096-byte sectors)
	GOMAXPROCS=1 "$W/luks.test" -test.run '^$' -test.bench "Decrypt/aes-xts-plain64-${1}b/4096\$" -test.benchtime 1s |
		awk '/MB\/s/{for (i = 2; i <= NF; i++) {if ($i == "MB/s") w = int($(i-1)); if ($i == "cpuMB/s") c = int($(i-1))} print w, c}'
}
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
col() { awk -v k="$1" '{print $k}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
echo "load: $(uptime | sed 's/.*load average: //'); peer: $peer; $MIB MiB per read; N=$N"
for ks in 256 512; do
	one=() all=() p=() mem=() rd=() base=() baseall=()
	for ((i = 0; i < N; i++)); do
		mem+=("$(mbps_mem $ks)")
		one+=("$(mbps_dd $ks 1)")
		p+=("$(mbps_peer $ks)")
		all+=("$(mbps_dd $ks "$(nproc)")")
		rd+=("$(mbps_read $ks)")
		if [ -n "${BASE:-}" ]; then
			base+=("$(mbps_dd $ks 1 "$W/imgtool-base")")
			baseall+=("$(mbps_dd $ks "$(nproc)" "$W/imgtool-base")")
		fi
	done
	for k in 1 2; do # 1: wall time, 2: CPU time
		m1=$(printf '%s\n' "${one[@]}" | col $k | median)
		ma=$(printf '%s\n' "${all[@]}" | col $k | median)
		mp=$(printf '%s\n' "${p[@]}" | col $k | median)
		mm=$(printf '%s\n' "${mem[@]}" | col $k | median)
		mr=$(printf '%s\n' "${rd[@]}" | col $k | median)
		by=wall
		[ $k = 2 ] && by=CPU
		# One core reads, then decrypts: at best 1 / (1/read + 1/decrypt).
		bound=$(awk -v r="$mr" -v d="$mm" 'BEGIN{printf "%.0f", 1 / (1 / r + 1 / d)}')
		echo "aes-xts ${ks}b by $by time: imgtool dd 1 core ${m1} MB/s, $(nproc) cores ${ma} MB/s; $peer ${mp} MB/s;" \
			"decrypt alone (memory, 1 core) ${mm} MB/s, ratio $(ratio "$mm" "$mp");" \
			"image read alone (coreutils dd bs=1M) ${mr} MB/s, so 1 core's bound ${bound} MB/s, ratio $(ratio "$bound" "$mp");" \
			"dd ratio 1 core $(ratio "$m1" "$mp"), all cores $(ratio "$ma" "$mp")"
		if [ -n "${BASE:-}" ]; then
			mb=$(printf '%s\n' "${base[@]}" | col $k | median)
			mba=$(printf '%s\n' "${baseall[@]}" | col $k | median)
			echo "  imgtool dd built at $BASE: 1 core ${mb} MB/s, ratio $(ratio "$mb" "$mp"), $(nproc) cores ${mba} MB/s," \
				"ratio $(ratio "$mba" "$mp"); this tree / $BASE: 1 core $(ratio "$m1" "$mb"), $(nproc) cores $(ratio "$ma" "$mba")"
		fi
	done
done
echo "load after: $(uptime | sed 's/.*load average: //')"
