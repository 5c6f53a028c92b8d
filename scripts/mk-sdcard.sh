#!/usr/bin/env bash
#! Builds a bootable Raspberry Pi 4 SD card image for Aspen, without root.
#!
#! Usage: scripts/mk-sdcard.sh KERNEL8_IMG INITRAMFS_CPIO OUT.img
#!
#! The image has an MBR (dos) partition table with one partition, type 0x0c
#! (W95 FAT32 LBA), from sector 2048 (1 MiB) to the end, formatted FAT32
#! (512-byte clusters, so even the 64 MiB default has well over the 65525
#! clusters that make a genuine FAT32). The partition holds the firmware
#! (start4.elf, fixup4.dat), the device tree (bcm2711-rpi-4-b.dtb), config.txt
#! and cmdline.txt (from bsp/rpi4/boot/), kernel8.img and initramfs.cpio.
#!
#! Environment:
#!   ASPEN_CACHE        where `scripts/bootstrap.sh sdcard` put the firmware
#!                      (default ~/.cache/aspen; files in $ASPEN_CACHE/rpi4/)
#!   ASPEN_CMDLINE      replaces the text of bsp/rpi4/boot/cmdline.txt
#!   SDCARD_MIB         image size in MiB (default 64, grown to fit the files)
#!   SOURCE_DATE_EPOCH  the timestamp of every file (default 1980-01-01, the
#!                      earliest FAT date)
#!
#! Reproducible: fixed disk identifier and volume serial, fixed timestamps;
#! the same inputs give the same bytes. Prints OUT as the last line.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ASPEN_CACHE=${ASPEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aspen}
FIRMWARE=$ASPEN_CACHE/rpi4
BOOT_TEMPLATES=$ROOT/bsp/rpi4/boot

# Fixed identifiers: "ASPE" as the MBR disk identifier and the FAT serial.
DISK_ID=0x41535045
VOLUME_SERIAL=41535045
VOLUME_LABEL=ASPEN-BOOT
PART_START=2048 # sectors of 512 bytes: 1 MiB

die() { echo "mk-sdcard: error: $*" >&2; exit 1; }

[ $# -eq 3 ] || die "usage: $0 KERNEL8_IMG INITRAMFS_CPIO OUT.img"
KERNEL=$1
INITRAMFS=$2
OUT=$3

for tool in sfdisk mformat mcopy mdir; do
	command -v "$tool" >/dev/null ||
		die "$tool not found: run scripts/bootstrap.sh sdcard (installs fdisk and mtools)"
done
[ -f "$KERNEL" ] || die "kernel image $KERNEL not found: run make image BOARD=rpi4"
[ -f "$INITRAMFS" ] || die "initramfs $INITRAMFS not found: build it with scripts/mk-initramfs.sh"
for f in start4.elf fixup4.dat bcm2711-rpi-4-b.dtb; do
	[ -f "$FIRMWARE/$f" ] || die "$FIRMWARE/$f not found: run scripts/bootstrap.sh sdcard"
done
[ -f "$BOOT_TEMPLATES/config.txt" ] || die "$BOOT_TEMPLATES/config.txt not found"
[ -f "$BOOT_TEMPLATES/cmdline.txt" ] || die "$BOOT_TEMPLATES/cmdline.txt not found"

# The arm64 Linux image header's magic, "ARM\x64" at offset 56, which Aspen's
# image carries too. Anything else is most likely not a kernel image.
if [ "$(od -An -tx1 -j56 -N4 "$KERNEL" | tr -d ' \n')" != 41524d64 ]; then
	die "$KERNEL has no arm64 image header (magic ARM\\x64 at offset 56): not a kernel8.img"
fi

# The files of the boot partition: name on the card, source.
TMP=$OUT.tmp
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"; rm -f "$TMP"' EXIT
cp "$BOOT_TEMPLATES/config.txt" "$WORK/config.txt"
if [ -n "${ASPEN_CMDLINE:-}" ]; then
	case $ASPEN_CMDLINE in *$'\n'*) die "ASPEN_CMDLINE must be one line" ;; esac
	printf '%s\n' "$ASPEN_CMDLINE" >"$WORK/cmdline.txt"
else
	cp "$BOOT_TEMPLATES/cmdline.txt" "$WORK/cmdline.txt"
fi
FILES=(
	"start4.elf=$FIRMWARE/start4.elf"
	"fixup4.dat=$FIRMWARE/fixup4.dat"
	"bcm2711-rpi-4-b.dtb=$FIRMWARE/bcm2711-rpi-4-b.dtb"
	"config.txt=$WORK/config.txt"
	"cmdline.txt=$WORK/cmdline.txt"
	"kernel8.img=$KERNEL"
	"initramfs.cpio=$INITRAMFS"
)

# Size: at least SDCARD_MIB, and room for the files plus 8 MiB for the FATs,
# directories and cluster slack.
total=0
for entry in "${FILES[@]}"; do
	total=$((total + $(stat -c %s "${entry#*=}")))
done
mib=${SDCARD_MIB:-64}
case $mib in '' | *[!0-9]*) die "SDCARD_MIB must be a number of MiB, not '$mib'" ;; esac
need=$(((total + (1 << 20) - 1) / (1 << 20) + 1 + 8))
[ "$mib" -ge "$need" ] || mib=$need
[ "$mib" -ge 40 ] || die "SDCARD_MIB=$mib is too small for a FAT32 partition (at least 40)"
sectors=$((mib * 2048))
part_sectors=$((sectors - PART_START))
# 512-byte clusters up to 256 MiB, 4 KiB above: at least 65525 clusters either way.
if [ "$mib" -le 256 ]; then cluster=1; else cluster=8; fi

# mtools: a partition inside an image file has no floppy geometry to check,
# and SOURCE_DATE_EPOCH stands in for "now" in every timestamp mtools writes.
export MTOOLS_SKIP_CHECK=1 TZ=UTC
epoch=${SOURCE_DATE_EPOCH:-315532800}
case $epoch in '' | *[!0-9]*) die "SOURCE_DATE_EPOCH must be a number of seconds, not '$epoch'" ;; esac
[ "$epoch" -ge 315532800 ] || epoch=315532800 # FAT dates start in 1980
export SOURCE_DATE_EPOCH=$epoch

mkdir -p "$(dirname "$OUT")"
rm -f "$TMP"
truncate -s "${mib}M" "$TMP"

printf 'label: dos\nlabel-id: %s\nunit: sectors\nstart=%d, size=%d, type=c\n' \
	"$DISK_ID" "$PART_START" "$part_sectors" |
	sfdisk --no-reread --no-tell-kernel --quiet "$TMP" >/dev/null ||
	die "sfdisk could not write the partition table"

FAT="$TMP@@$((PART_START * 512))"
mformat -i "$FAT" -F -c "$cluster" -T "$part_sectors" -H "$PART_START" \
	-N "$VOLUME_SERIAL" -v "$VOLUME_LABEL" :: ||
	die "mformat could not create the FAT32 file system"
for entry in "${FILES[@]}"; do
	mcopy -i "$FAT" "${entry#*=}" "::${entry%%=*}" ||
		die "mcopy could not copy ${entry#*=} as ${entry%%=*}"
done

echo "mk-sdcard: ${mib} MiB, FAT32 partition from sector $PART_START:" >&2
mdir -i "$FAT" :: >&2
mv -f "$TMP" "$OUT"
echo "$OUT"
