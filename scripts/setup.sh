#!/usr/bin/env bash
# Installs the real tools the tests use as oracles, and the Go modules.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS="zstd fdisk e2fsprogs xfsprogs attr acl lvm2 dump qemu-utils thin-provisioning-tools dosfstools mtools squashfs-tools xorriso xz-utils util-linux tmux btrfs-progs cryptsetup-bin fuse3 extundelete ext4magic"
# issue 13: zstd -l is the oracle for declared sizes, bsdtar a second tar reader
PKGS="$PKGS libarchive-tools"
# issue 16: the backup hooks' argv is checked against virsh and xl
PKGS="$PKGS libvirt-clients xen-utils-4.17"
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
