#!/usr/bin/env bash
#! `make fuzz-long`: the system-call fuzzer's long run. Boots the virt image
#! once per seed (one QEMU at a time), each boot running
#! `/bin/fuzz --seed N --iterations ITER` between two reads of
#! /proc/meminfo, and prints a table: per seed the time the fuzzer took, its
#! two verdicts (no crash or unexpected end; free memory back at its
#! baseline), free memory after the run against its baseline, the kernel
#! heap in use before and after, and the memory the kernel's power-off
#! report finds unaccounted for against the start of the first process.
#!
#! Usage: scripts/fuzz-long.sh [IMAGE]; environment: SEEDS (how many seeds,
#! default 10, seeds 1..SEEDS), FIRST_SEED (default 1), ITER (calls per seed,
#! default 200000), FUZZ_ARGS (more fuzzer arguments), TIMEOUT (seconds per
#! boot, default 3600), LOG_DIR (consoles, default build/fuzz-long). Exit
#! status 0 only when every seed passed both checks and memory came back.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
IMAGE=${1:-$ROOT/build/qemu-virt/Image}
SEEDS=${SEEDS:-10}
FIRST_SEED=${FIRST_SEED:-1}
ITER=${ITER:-200000}
FUZZ_ARGS=${FUZZ_ARGS:-}
TIMEOUT=${TIMEOUT:-3600}
LOG_DIR=${LOG_DIR:-$ROOT/build/fuzz-long}
ROOTFS=$ROOT/build/rootfs

[ -f "$IMAGE" ] || { echo "fuzz-long: no kernel image at $IMAGE (make image)"; exit 1; }
[ -x "$ROOTFS/bin/fuzz" ] || { echo "fuzz-long: no $ROOTFS/bin/fuzz (make initramfs)"; exit 1; }
mkdir -p "$LOG_DIR"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A copy of the root file system whose autorun script this run writes.
cp -a "$ROOTFS" "$work/root"

# The value (kB) of a /proc/meminfo line in its first (before) or last (after) copy.
meminfo_kb() { # LOG NAME first|last
	local lines
	lines=$(tr -d '\r' <"$1" | sed -n "s/^$2: *\([0-9]*\) kB\$/\1/p")
	if [ "$3" = first ]; then head -n 1 <<<"$lines"; else tail -n 1 <<<"$lines"; fi
}

failures=0
printf '%-6s %8s  %-7s %-7s %14s %11s %11s %12s\n' seed seconds crash memory "free vs base" "heap before" "heap after" "unaccounted"
for ((seed = FIRST_SEED; seed < FIRST_SEED + SEEDS; seed++)); do
	log=$LOG_DIR/seed-$seed.log
	cat >"$work/root/etc/aspen-autorun" <<EOF
/bin/cat /proc/meminfo
/bin/fuzz --seed $seed --iterations $ITER $FUZZ_ARGS
/bin/cat /proc/meminfo
EOF
	"$ROOT/scripts/mk-initramfs.sh" "$work/root" "$work/initramfs.cpio" >/dev/null || exit 1
	start=$(date +%s)
	timeout "$TIMEOUT" nice qemu-system-aarch64 -M virt -cpu cortex-a72 -m 1G -nographic -no-reboot \
		-semihosting-config enable=on,target=native -kernel "$IMAGE" -initrd "$work/initramfs.cpio" \
		-append "semihosting" </dev/null >"$log" 2>&1
	status=$?
	seconds=$(($(date +%s) - start))
	clean=$(tr -d '\r' <"$log")
	verdict() {
		if grep -q "^TEST-OK $1" <<<"$clean"; then echo ok
		elif grep -q "^TEST-FAIL $1" <<<"$clean"; then echo FAIL
		else echo none; fi
	}
	crash=$(verdict syscalls_never_crash_the_kernel)
	memory=$(verdict free_memory_back_at_baseline)
	free=$(sed -n 's/^fuzz: free memory [0-9]* bytes after the run, [0-9]* before (\([-+0-9]*\) bytes.*/\1/p' <<<"$clean" | tail -n 1)
	run_ms=$(sed -n 's/^fuzz: [0-9]* system calls in [0-9]* batches, \([0-9]*\) ms.*/\1/p' <<<"$clean" | tail -n 1)
	unaccounted=$(sed -n 's/^aspen: memory unaccounted for: \(-\{0,1\}[0-9]*\) kB$/\1/p' <<<"$clean" | tail -n 1)
	heap_before=$(meminfo_kb "$log" KernelHeap first)
	heap_after=$(meminfo_kb "$log" KernelHeap last)
	if grep -qE 'KERNEL PANIC|UNEXPECTED EXCEPTION' <<<"$clean"; then crash=PANIC; fi
	[ "$status" -eq 124 ] && crash="${crash}/timeout"
	printf '%-6s %8s  %-7s %-7s %14s %11s %11s %12s\n' "$seed" "${run_ms:+$((run_ms / 1000))}" "$crash" "$memory" \
		"${free:-?} B" "${heap_before:-?} kB" "${heap_after:-?} kB" "${unaccounted:-?} kB"
	if [ "$crash" != ok ] || [ "$memory" != ok ] || [ "${unaccounted:-x}" != 0 ]; then
		failures=$((failures + 1))
	fi
	echo "fuzz-long: seed $seed: boot took $seconds s, console in $log" >&2
done
echo "fuzz-long: $SEEDS seeds x $ITER calls: $((SEEDS - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
