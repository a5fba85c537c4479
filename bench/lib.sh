# Shared set-up of the filesystem benches (extract.sh, salvage.sh); source
# it from the repository root with N set. It sets:
#   W     the work directory ($XBENCH, default /tmp/xbench)
#   src   /usr/share, and bytes, its size
#   T     a tmpfs destination with room for the copies (removed on exit)
#   NICE  "nice -n -15" when root (the benches compare tools, not neighbours)
# and builds $W/imgtool and $W/share.img (an ext4 image of $src made by
# mke2fs -d, rebuilt only when $src changes).
W=${XBENCH:-/tmp/xbench}
mkdir -p "$W"
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

CGO_ENABLED=0 go build -o "$W/imgtool" ./cmd/imgtool

src=/usr/share
bytes=$(du -sb "$src" | cut -f1)
stamp="$bytes $(find "$src" | wc -l)"
if [ ! -f "$W/share.img" ] || [ "$(cat "$W/share.stamp" 2>/dev/null)" != "$stamp" ]; then
	echo "building $W/share.img from $src ($bytes bytes)..."
	rm -f "$W/share.img"
	truncate -s $((bytes * 2 + 256 * 1024 * 1024)) "$W/share.img"
	mke2fs -q -F -t ext4 -d "$src" "$W/share.img"
	echo "$stamp" > "$W/share.stamp"
fi

# tmpfs destination: /dev/shm when it has room for two copies, else our own.
need=$((bytes * 3))
avail=$(df -B1 --output=avail /dev/shm 2>/dev/null | tail -1 || echo 0)
if [ "$avail" -gt "$need" ]; then
	T=$(mktemp -d /dev/shm/xbench.XXXXXX)
	trap 'rm -rf "$T"' EXIT
else
	T=$W/mnt
	mkdir -p "$T"
	mount -t tmpfs -o size=$((need / 1024 / 1024))m tmpfs "$T"
	trap 'umount "$T"' EXIT
fi

NICE=
[ "$(id -u)" = 0 ] && NICE="nice -n -15"
