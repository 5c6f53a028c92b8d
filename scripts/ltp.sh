#!/usr/bin/env bash
#! `make ltp`: the LTP memory-management tests of the ltp peer
#! (`../shared/peers/ltp`, or `$LTP_DIR`) against Aspen's virt image ($1,
#! default build/qemu-virt/Image): builds the peer's initramfs with its
#! build.sh when it has none, boots it with its run.sh (console log in
#! build/ltp-console.log), and ends with the peer's summary as
#! `N passed, M failed`. Exit status: run.sh's (0 only when every test
#! passed); 2 when the peer is not there.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LTP_DIR=${LTP_DIR:-$ROOT/../shared/peers/ltp}
IMAGE=${1:-$ROOT/build/qemu-virt/Image}

if [ ! -x "$LTP_DIR/run.sh" ]; then
	echo "ltp: no LTP peer at $LTP_DIR (set LTP_DIR)"
	exit 2
fi
if [ ! -f "$LTP_DIR/build/initramfs.cpio" ]; then
	echo "== ltp: building the peer's initramfs"
	"$LTP_DIR/build.sh" || exit 1
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
VMLINUZ=$(cd "$(dirname "$IMAGE")" && pwd)/$(basename "$IMAGE") LOG="$ROOT/build/ltp-console.log" \
	"$LTP_DIR/run.sh" | tee "$out"
status=${PIPESTATUS[0]}
summary=$(grep -E '^ltp: [0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
if [ -n "$summary" ]; then
	echo "${summary#ltp: }"
else
	echo "0 passed, 1 failed"
fi
exit "$status"
