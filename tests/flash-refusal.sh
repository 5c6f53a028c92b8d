#!/usr/bin/env bash
#! Checks that scripts/flash.sh refuses what it must, without writing anything:
#! a regular file, a missing path, a non-removable disk (the first whole disk
#! of non-zero size that lsblk reports with RM 0 and no usb/mmc transport,
#! e.g. /dev/vda) and one of its partitions, a mounted disk (FLASH_CHECK_ONLY=1, which never writes), no
#! argument at all. Needs no root. Ends with `N passed, M failed`.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FLASH=$ROOT/scripts/flash.sh
passed=0
failed=0

# $1 description, $2 expected message (grep -E), then the command.
expect_refusal() {
	local what=$1 pattern=$2 out status
	shift 2
	out=$("$@" 2>&1)
	status=$?
	if [ "$status" -eq 1 ] && grep -qE "$pattern" <<<"$out"; then
		echo "ok   $what"
		passed=$((passed + 1))
	else
		echo "FAIL $what: exit $status, expected 1 and /$pattern/; output:"
		printf '    %s\n' "${out//$'\n'/$'\n'    }"
		failed=$((failed + 1))
	fi
}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
printf 'not a disk' >"$TMP/x.img"
cp "$TMP/x.img" "$TMP/x.img.orig"
: >"$TMP/sdcard.img"

expect_refusal "regular file is not a block device" "refusing: .*x\.img is not a block device" \
	env CONFIRM=yes "$FLASH" "$TMP/x.img" "$TMP/sdcard.img"
if cmp -s "$TMP/x.img" "$TMP/x.img.orig"; then
	echo "ok   the regular file is unchanged"
	passed=$((passed + 1))
else
	echo "FAIL the regular file was changed"
	failed=$((failed + 1))
fi
expect_refusal "missing path" "refusing: .* does not exist" \
	env CONFIRM=yes "$FLASH" "$TMP/nonexistent"
expect_refusal "character device is not a block device" "refusing: /dev/null is not a block device" \
	env CONFIRM=yes "$FLASH" /dev/null
expect_refusal "no argument" "refusing: usage" env CONFIRM=yes "$FLASH"
expect_refusal "empty argument" "refusing: no device given" env CONFIRM=yes "$FLASH" ""

# A fixed disk: RM 0 and a transport other than usb/mmc.
fixed=$(lsblk -dnbpo NAME,TYPE,RM,SIZE,TRAN 2>/dev/null |
	awk '$2 == "disk" && $3 == "0" && $4 > 0 && $5 != "usb" && $5 != "mmc" { print $1; exit }')
if [ -n "$fixed" ]; then
	expect_refusal "fixed disk $fixed is not removable" "refusing: $fixed is not removable" \
		env CONFIRM=yes "$FLASH" "$fixed" "$TMP/sdcard.img"
	# One of its partitions, where it has any.
	part=$(lsblk -lnpo NAME,TYPE "$fixed" | awk '$2 == "part" { print $1; exit }')
	if [ -n "$part" ]; then
		expect_refusal "partition $part is not a whole disk" "refusing: $part is a partition" \
			env CONFIRM=yes "$FLASH" "$part" "$TMP/sdcard.img"
	fi
else
	echo "skip no fixed whole disk on this machine"
fi

# The disk that holds the root file system, with the removability check
# deferred (FLASH_CHECK_ONLY=1 never writes): refused as in use.
rootsrc=$(findmnt -nvo SOURCE / 2>/dev/null || true)
rootdisk=""
if [ -b "$rootsrc" ]; then
	rootdisk=/dev/$(lsblk -ndo PKNAME "$rootsrc" 2>/dev/null | head -n1)
	[ "$rootdisk" != /dev/ ] || rootdisk=$rootsrc
fi
if [ -n "$rootdisk" ] && [ "$(lsblk -dno TYPE "$rootdisk" 2>/dev/null)" = disk ]; then
	expect_refusal "root disk $rootdisk is in use" "refusing: $rootdisk is in use \(.*mounted on /" \
		env FLASH_CHECK_ONLY=1 CONFIRM=yes "$FLASH" "$rootdisk" "$TMP/sdcard.img"
else
	echo "skip the root file system is not on a local disk here"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
