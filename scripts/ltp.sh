#!/usr/bin/env bash
#! `make ltp`: the LTP memory-management tests of the ltp peer
#! (`../shared/peers/ltp`, or `$LTP_DIR`) against Aspen's virt image ($1,
#! default build/qemu-virt/Image): builds the peer's initramfs with its
#! build.sh when it has none, boots it with its run.sh (console log in
#! build/ltp-console.log), and ends with the peer's summary as
#! `N passed, M failed`, plus one check of its own: the memory the kernel
#! reports unaccounted for at power off (`aspen: memory unaccounted for:
#! N kB`, against the start of the first process, with only it alive at
#! both moments) is within MEMORY_SLACK_KB (default 64) of nothing. Exit
#! status: 0 only when every test passed and memory came back; 2 when the
#! peer is not there.
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
passed=0
failed=1
if [ -n "$summary" ]; then
	summary=${summary#ltp: }
	passed=${summary%% passed*}
	failed=${summary#*, }
	failed=${failed%% failed*}
fi
# Free memory back at its baseline after the run.
slack=${MEMORY_SLACK_KB:-64}
grep -a '^aspen: memory' "$ROOT/build/ltp-console.log" | tr -d '\r'
unaccounted=$(tr -d '\r' <"$ROOT/build/ltp-console.log" | sed -n 's/^aspen: memory unaccounted for: \(-\{0,1\}[0-9]*\) kB$/\1/p' | tail -n 1)
if [ -n "$unaccounted" ] && [ "${unaccounted#-}" -le "$slack" ]; then
	echo "ltp: memory back at its baseline after the run (${unaccounted} kB unaccounted for, slack ${slack} kB)"
	passed=$((passed + 1))
else
	echo "ltp: FAIL memory after the run: ${unaccounted:-no report} kB unaccounted for (slack ${slack} kB)"
	failed=$((failed + 1))
	status=1
fi
echo "$passed passed, $failed failed"
exit "$status"
