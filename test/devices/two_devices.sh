#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A second real device for test/devices/two_devices.c: a fresh zram device (hot_add), ext4 on it,
# mounted on a temp dir; removed again (unmount, reset, hot_remove) on every exit path. Exit 77 where
# the kernel or the machine lacks zram, mkfs.ext4 or root.
# Usage: two_devices.sh BINARY [ARGS...]  (the binary gets --fast-dir MOUNT --slow-dir $TMPDIR)
set -u
bin=$1; shift
skip() { echo "skip: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "not root (zram and the block throttle need it)"
command -v mkfs.ext4 >/dev/null || skip "mkfs.ext4 missing (e2fsprogs)"
if [ ! -e /sys/class/zram-control/hot_add ] && command -v modprobe >/dev/null; then
  modprobe zram num_devices=1 2>/dev/null || true
fi
[ -e /sys/class/zram-control/hot_add ] || skip "no zram in this kernel"
id=$(cat /sys/class/zram-control/hot_add 2>/dev/null) || skip "zram hot_add refused"
mnt=""
cleanup() {
  [ -n "$mnt" ] && { umount "$mnt" 2>/dev/null; rmdir "$mnt" 2>/dev/null; }
  echo 1 > "/sys/block/zram$id/reset" 2>/dev/null
  echo "$id" > /sys/class/zram-control/hot_remove 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
dev=/dev/zram$id
# No devtmpfs in some containers: make the node from the kernel's numbers.
[ -b "$dev" ] || mknod "$dev" b $(tr ':' ' ' < "/sys/block/zram$id/dev") || { echo "cannot make $dev"; exit 1; }
echo 1G > "/sys/block/zram$id/disksize" || { echo "cannot size zram$id"; exit 1; }
mkfs.ext4 -q -F "$dev" || { echo "mkfs.ext4 $dev failed"; exit 1; }
mnt=$(mktemp -d /tmp/auraio-zram-XXXXXX)
mount "$dev" "$mnt" || { echo "mount $dev failed"; exit 1; }
"$bin" --fast-dir "$mnt" --slow-dir "${TMPDIR:-$PWD}" "$@"
