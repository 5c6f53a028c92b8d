#!/usr/bin/env bash
#! Writes the Aspen SD card image to a removable disk.
#!
#! Usage: CONFIRM=yes scripts/flash.sh DEV [IMAGE]
#!   (make flash DEV=/dev/sdX CONFIRM=yes)
#!
#! IMAGE defaults to $IMAGE, then build/rpi4/sdcard.img. DEV is refused, and
#! nothing is written, unless every one of these holds:
#! - DEV is a block device (symbolic links such as /dev/disk/by-id/... are
#!   followed) and a whole disk: no /sys/class/block/NAME/partition, and lsblk
#!   reports TYPE disk;
#! - DEV is removable: /sys/block/NAME/removable is 1, or lsblk -dno TRAN
#!   reports the transport usb or mmc (USB card readers often report
#!   removable 0);
#! - neither DEV nor any partition on it is mounted (/proc/mounts, lsblk
#!   MOUNTPOINTS), used as swap (/proc/swaps) or held by another device
#!   (device-mapper, RAID: /sys/class/block/NAME/holders);
#! - DEV is not read-only (/sys/class/block/NAME/ro is 0: an SD card's
#!   write-protect switch makes it 1);
#! - IMAGE is a non-empty regular file no larger than DEV;
#! - CONFIRM=yes is set in the environment, after the disk's model, size and
#!   partitions have been shown.
#! It then writes IMAGE with dd (4 MiB blocks, fsync) and runs sync. Every
#! refusal is one "flash: refusing: ..." line on stderr and exit status 1.
#!
#! FLASH_CHECK_ONLY=1 (for tests) never writes: it runs every check, a device
#! that is not removable is refused only after the checks that follow (so the
#! mount checks can be tried on a fixed disk), and where all pass it says so
#! and exits 0 without asking for CONFIRM.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)

refuse() { echo "flash: refusing: $*" >&2; exit 1; }
die() { echo "flash: error: $*" >&2; exit 1; }

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	refuse "usage: CONFIRM=yes $0 DEV [IMAGE] (for example make flash DEV=/dev/sdX CONFIRM=yes)"
fi
ARG=$1
IMAGE=${2:-${IMAGE:-$ROOT/build/rpi4/sdcard.img}}
[ -n "$ARG" ] || refuse "no device given (DEV=/dev/sdX)"
command -v lsblk >/dev/null || die "lsblk not found (apt-get install util-linux)"

# --- the device ---------------------------------------------------------------
[ -e "$ARG" ] || refuse "$ARG does not exist"
DEV=$(readlink -f -- "$ARG")
[ -b "$DEV" ] || refuse "$ARG is not a block device"
NAME=$(basename -- "$DEV")
SYS=/sys/class/block/$NAME
[ -d "$SYS" ] || refuse "$ARG: no $SYS, cannot tell what device this is"
[ ! -e "$SYS/partition" ] || refuse "$ARG is a partition, not a whole disk (give the disk, e.g. /dev/sdb, not /dev/sdb1)"
TYPE=$(lsblk -dno TYPE -- "$DEV" 2>/dev/null | tr -d ' ') || TYPE=""
[ "$TYPE" = disk ] || refuse "$ARG is of type '${TYPE:-unknown}', not a whole disk"

REMOVABLE=$(cat "/sys/block/$NAME/removable" 2>/dev/null || echo 0)
TRAN=$(lsblk -dno TRAN -- "$DEV" 2>/dev/null | tr -d ' ') || TRAN=""
CHECK_ONLY=${FLASH_CHECK_ONLY:-}
NOT_REMOVABLE=""
if [ "$REMOVABLE" != 1 ] && [ "$TRAN" != usb ] && [ "$TRAN" != mmc ]; then
	NOT_REMOVABLE="$ARG is not removable (removable=$REMOVABLE, transport '${TRAN:-none}'): only removable, USB or MMC disks are written"
	[ "$CHECK_ONLY" = 1 ] || refuse "$NOT_REMOVABLE"
fi

[ "$(cat "$SYS/ro" 2>/dev/null || echo 0)" = 0 ] ||
	refuse "$ARG is read-only (is the card's write-protect switch on?)"

# The disk and its partitions, as device paths and as major:minor numbers.
mapfile -t NODES < <(lsblk -lnpo NAME -- "$DEV")
in_use=()
for node in "${NODES[@]}"; do
	majmin=$(lsblk -dno MAJ:MIN -- "$node" | tr -d ' ')
	# /proc/mounts: the source may be another name of the node (by-uuid, ...).
	while read -r src mnt _; do
		[ -b "$src" ] || continue
		if [ "$(readlink -f -- "$src")" = "$node" ] ||
			[ "$(lsblk -dno MAJ:MIN -- "$src" 2>/dev/null | tr -d ' ')" = "$majmin" ]; then
			in_use+=("$node mounted on $mnt")
		fi
	done </proc/mounts
	# Mounts lsblk knows of (MOUNTPOINTS since util-linux 2.37, else MOUNTPOINT).
	mps=$(lsblk -dno MOUNTPOINTS -- "$node" 2>/dev/null || lsblk -dno MOUNTPOINT -- "$node" 2>/dev/null || true)
	while read -r mp; do
		[ -z "$mp" ] || in_use+=("$node mounted on $mp")
	done <<<"$mps"
	while read -r swap _; do
		if [ "$swap" != Filename ] && [ "$(readlink -f -- "$swap")" = "$node" ]; then
			in_use+=("$node used as swap")
		fi
	done </proc/swaps
	for holder in "/sys/class/block/$(basename -- "$node")/holders/"*; do
		if [ -e "$holder" ]; then in_use+=("$node held by $(basename -- "$holder")"); fi
	done
done
if [ ${#in_use[@]} -gt 0 ]; then
	list=$(printf '%s\n' "${in_use[@]}" | sort -u | paste -sd ';' | sed 's/;/; /g')
	refuse "$ARG is in use ($list): unmount every partition of it first"
fi

# --- the image ----------------------------------------------------------------
[ -f "$IMAGE" ] || refuse "image $IMAGE not found: build it with make sdcard"
IMAGE_BYTES=$(stat -c %s -- "$IMAGE")
[ "$IMAGE_BYTES" -gt 0 ] || refuse "image $IMAGE is empty"
DEV_BYTES=$(($(cat "$SYS/size") * 512))
[ "$DEV_BYTES" -gt 0 ] || refuse "$ARG has size 0 (no card in the reader?)"
[ "$IMAGE_BYTES" -le "$DEV_BYTES" ] ||
	refuse "image $IMAGE ($IMAGE_BYTES bytes) is larger than $ARG ($DEV_BYTES bytes)"

[ -z "$NOT_REMOVABLE" ] || refuse "$NOT_REMOVABLE"

# --- show, confirm, write -----------------------------------------------------
echo "flash: $IMAGE ($((IMAGE_BYTES / 1048576)) MiB) would overwrite ALL of $DEV:"
lsblk -o NAME,SIZE,TYPE,TRAN,RM,MODEL,VENDOR,SERIAL,LABEL,FSTYPE -- "$DEV" | sed 's/^/    /' ||
	lsblk -- "$DEV" || true
if [ "$CHECK_ONLY" = 1 ]; then
	echo "flash: FLASH_CHECK_ONLY=1: every check passed; nothing written"
	exit 0
fi
if [ "${CONFIRM:-}" != yes ]; then
	refuse "CONFIRM=yes is not set; check the disk above, then run again with CONFIRM=yes"
fi
[ -w "$DEV" ] || die "no write permission on $DEV: run as root (sudo) or join the disk group"

echo "flash: writing $IMAGE to $DEV"
dd if="$IMAGE" of="$DEV" bs=4M conv=fsync status=progress
sync
echo "flash: done; $DEV can be removed"
