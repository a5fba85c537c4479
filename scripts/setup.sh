#!/usr/bin/env bash
# Installs the real tools the tests use as oracles, and the Go modules.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS="zstd fdisk e2fsprogs xfsprogs attr acl lvm2 dump qemu-utils thin-provisioning-tools dosfstools mtools squashfs-tools xorriso xz-utils util-linux tmux btrfs-progs cryptsetup-bin fuse3 extundelete ext4magic"
# issue 13: zstd -l is the oracle for declared sizes, bsdtar a second tar reader
PKGS="$PKGS libarchive-tools"
# issue 16: the backup hooks' argv is checked against virsh and xl
PKGS="$PKGS libvirt-clients xen-utils-4.17"
# issue 18: fetches e2fsprogs' source tarball (below)
PKGS="$PKGS curl"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
go mod download

# The S3 server the backup tests run against (a real process on 127.0.0.1):
# versitygw, built once from its Go module and cached by version.
VERSITYGW_VERSION=v1.8.0
BIN="${IMGTOOL_CACHE:-$HOME/.cache/imgtool}/bin"
if [ "$(cat "$BIN/versitygw.version" 2>/dev/null)" != "$VERSITYGW_VERSION" ] || [ ! -x "$BIN/versitygw" ]; then
	mkdir -p "$BIN"
	GOBIN="$BIN" go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
	echo "$VERSITYGW_VERSION" >"$BIN/versitygw.version"
fi

# e2fsprogs' own test images that the shared corpus lacks (issue 18 names
# j_recover_fast_commit), from Debian's source tarball of the e2fsprogs
# installed above, checked against the sha256 in its .dsc and cached.
E2FS_VERSION=1.47.0
E2FS_SHA256=6667afde56eef0c6af26684974400e4d2288ea49e9441bf5e6229195d51a3578
E2FS_DIR="${IMGTOOL_CACHE:-$HOME/.cache/imgtool}/e2fsprogs-$E2FS_VERSION"
if [ ! -f "$E2FS_DIR/tests/j_recover_fast_commit/image.gz" ]; then
	mkdir -p "$E2FS_DIR"
	tgz=$(mktemp)
	curl -fsSL -o "$tgz" "http://deb.debian.org/debian/pool/main/e/e2fsprogs/e2fsprogs_$E2FS_VERSION.orig.tar.gz"
	echo "$E2FS_SHA256  $tgz" | sha256sum -c --quiet
	tar -xzf "$tgz" -C "$E2FS_DIR" --strip-components=1 "e2fsprogs-$E2FS_VERSION/tests/j_recover_fast_commit"
	rm -f "$tgz"
fi
