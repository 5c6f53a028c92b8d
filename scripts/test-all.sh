#!/usr/bin/env bash
#! `make test`: the lint step (`make lint`: rustfmt, and clippy with warnings
#! as errors), the host tests of every host-testable crate, the SD-card
#! image and flash-refusal checks, then the kernel's self-tests booted under
#! QEMU on each board through the serial-console runner, a session typed
#! into the console by the same runner (tests/console/*.session), and the
#! ASID rollover test with four busy cores (70,000 spaces, 8-bit ASIDs), the
#! LTP memory tests of the ltp peer (`scripts/ltp.sh`) on the virt image when
#! ../shared/peers/ltp is there (each test that does not pass counts as a
#! failure; without the peer the step is skipped and says so). Ends with the
#! combined `N passed, M failed`.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=build
LOGS=$BUILD/test-logs
mkdir -p "$LOGS"
ASPEN_CACHE=${ASPEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aspen}
RPI4_DTB=$ASPEN_CACHE/rpi4/bcm2711-rpi-4-b.dtb

scripts/bootstrap.sh toolchain qemu sdcard || exit 1

passed=0
failed=0
problems=()

# Adds the last `N passed, M failed` line of $2 to the totals; a step that
# exited non-zero ($3) without a failure counts as one failure.
tally() {
	local label=$1 out=$2 status=$3 summary p f
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
	p=${summary%% passed*}
	f=${summary#*, }
	f=${f%% failed*}
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0}))
	if [ "$status" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then
		failed=$((failed + 1))
		problems+=("$label: exited with status $status")
	fi
}

# Formatting and clippy first; any warning fails it, but the tests still run.
echo "== lint"
make -s lint 2>&1 | tee "$LOGS/lint.log"
tally "lint" "$LOGS/lint.log" "${PIPESTATUS[0]}"
while IFS= read -r line; do problems+=("$line"); done < <(grep '^lint: FAIL' "$LOGS/lint.log")

# Host tests: every workspace crate but the kernel (cargo's default members).
echo "== host tests"
cargo test --release 2>&1 | tee "$LOGS/host.log"
host_status=${PIPESTATUS[0]}
awk '/^test result:/ { for (i = 1; i <= NF; i++) {
	if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
	END { printf "%d passed, %d failed\n", p, f }' "$LOGS/host.log" >"$LOGS/host.sum"
tally "host tests" "$LOGS/host.sum" "$host_status"

echo "== make flash refuses what is not a removable disk"
tests/flash-refusal.sh 2>&1 | tee "$LOGS/flash-refusal.log"
tally "flash refusal" "$LOGS/flash-refusal.log" "${PIPESTATUS[0]}"

echo "== SD-card image"
make -s check-sdcard 2>&1 | tee "$LOGS/sdcard.log"
tally "SD-card image" "$LOGS/sdcard.log" "${PIPESTATUS[0]}"

cargo build --release -q -p aspen-runner || exit 1


# $1 label, then runner arguments.
kernel_run() {
	local label=$1
	shift
	echo "== kernel tests: $label"
	target/release/aspen-runner qemu --log "$LOGS/kernel-$label.log" "$@" | tee "$LOGS/kernel-$label.out"
	tally "kernel tests on $label" "$LOGS/kernel-$label.out" "${PIPESTATUS[0]}"
}

image() { # board, then make variables; prints the image path
	make -s image BOARD="$@" | tail -n 1
}

# test.ram_mib: what the machine has, for the device-tree test (QEMU's
# raspi4b describes 960 MiB of its 2 GiB in the Pi 4 device tree).
# Each run: the kernel's self-tests, then init runs the user test suite
# (`-- --run-tests`) and powers off.
virt=$(image qemu-virt)
# Every TLB invalidation in the kernels must reach every CPU (aspen-tlbi-check).
for elf in build/qemu-virt/aspen.elf build/rpi4/aspen.elf; do
	[ -f "$elf" ] || continue
	echo "== TLB invalidations of $elf"
	target/release/aspen-tlbi-check "$elf" | tee "$LOGS/tlbi-$(basename "$(dirname "$elf")").out"
	tally "TLBI check of $elf" "$LOGS/tlbi-$(basename "$(dirname "$elf")").out" "${PIPESTATUS[0]}"
done
kernel_run qemu-virt --board qemu-virt --kernel "$virt" --initrd build/initramfs.cpio \
	--memory 1G --append "semihosting aspen.ktest test.ram_mib=1024 -- --run-tests"
if [ -x "${LTP_DIR:-$ROOT/../shared/peers/ltp}/run.sh" ]; then
	echo "== LTP memory tests on qemu-virt"
	scripts/ltp.sh "$virt" 2>&1 | tee "$LOGS/ltp.out"
	tally "LTP" "$LOGS/ltp.out" "${PIPESTATUS[0]}"
else
	echo "== LTP memory tests: skipped, no ltp peer at ${LTP_DIR:-$ROOT/../shared/peers/ltp} (not counted)"
fi
# ASID rollover while four cores run (issue 13): 70,000 address spaces with
# the allocator narrowed to 8 bits (about 270 rollovers, each a pending local
# flush on every core) while a worker on each core checks its own memory.
rollover_root=$BUILD/rollover-rootfs
rm -rf "$rollover_root" && cp -a "$BUILD/rootfs" "$rollover_root"
echo '/bin/usertests --finish smp_asid_rollover_long' >"$rollover_root/etc/aspen-autorun"
scripts/mk-initramfs.sh "$rollover_root" "$BUILD/rollover.cpio" >/dev/null
kernel_run asid-rollover --board qemu-virt --kernel "$virt" --initrd "$BUILD/rollover.cpio" \
	--memory 1G --timeout 3600 --silence 600 --append "semihosting aspen.asid_bits=8 -- --run-tests"
# The SD card's own kernel8.img and initramfs.cpio, with its device tree.
kernel_run rpi4 --board rpi4 --kernel build/rpi4/kernel8.img --initrd build/initramfs.cpio \
	--dtb "$RPI4_DTB" --append "semihosting aspen.ktest test.ram_mib=960 -- --run-tests"
# The terminal as a person types into it: busybox sh (line editing, history,
# pipes, ^C, job control...), or /init's own shell when there is no busybox.
echo "== console typing: qemu-virt"
target/release/aspen-runner qemu --log "$LOGS/console-typing.log" --board qemu-virt --kernel "$virt" \
	--initrd build/initramfs.cpio --session tests/console/busybox.session \
	--session tests/console/init-shell.session | tee "$LOGS/console-typing.out"
tally "console typing" "$LOGS/console-typing.out" "${PIPESTATUS[0]}"
# No device tree (so no initrd either): board defaults, and the command
# line built into the image.
nodtb=$(ASPEN_DEFAULT_CMDLINE="aspen.ktest" image rpi4 IMAGE_DIR=build/rpi4-no-dtb)
kernel_run rpi4-no-dtb --board rpi4 --kernel "$nodtb"

echo
for p in "${problems[@]}"; do echo "problem: $p"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
