#!/usr/bin/env bash
#! `make test`: the host tests of every host-testable crate, then the
#! kernel's own tests booted under QEMU on each board through the
#! serial-console runner. Ends with the combined `N passed, M failed`.
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

# Host tests: every workspace crate but the kernel (cargo's default members).
echo "== host tests"
cargo test --release 2>&1 | tee "$LOGS/host.log"
host_status=${PIPESTATUS[0]}
read -r host_passed host_failed < <(awk '/^test result:/ {
	for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
	END { print p + 0, f + 0 }' "$LOGS/host.log")
passed=$((passed + host_passed))
failed=$((failed + host_failed))
if [ "$host_status" -ne 0 ] && [ "$host_failed" -eq 0 ]; then
	failed=$((failed + 1))
	problems+=("host tests: cargo test exited with $host_status")
fi

cargo build --release -q -p aspen-runner || exit 1
RUNNER=target/release/aspen-runner

# $1 label, $2 board, then runner arguments.
kernel_run() {
	local label=$1 board=$2 image log summary p f status
	shift 2
	echo "== kernel tests: $label"
	image=$(make -s test-image BOARD="$board" | tail -n 1)
	if [ ! -f "$image" ]; then
		failed=$((failed + 1))
		problems+=("$label: the test image did not build")
		return
	fi
	log=$LOGS/kernel-$label.log
	"$RUNNER" qemu --board "$board" --kernel "$image" --log "$log" "$@" | tee "$LOGS/kernel-$label.out"
	status=${PIPESTATUS[0]}
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$LOGS/kernel-$label.out" | tail -n 1)
	p=${summary%% passed*}
	f=${summary#*, }
	f=${f%% failed*}
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0}))
	if [ "$status" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then
		failed=$((failed + 1))
		problems+=("$label: runner exited with $status")
	fi
}

# test.ram_mib: what the machine has, for the device-tree test (QEMU's
# raspi4b describes 960 MiB of its 2 GiB in the Pi 4 device tree).
kernel_run qemu-virt qemu-virt --memory 1G --append "semihosting test.ram_mib=1024"
kernel_run rpi4 rpi4 --dtb "$RPI4_DTB" --append "semihosting test.ram_mib=960"
kernel_run rpi4-no-dtb rpi4

echo
for p in "${problems[@]}"; do echo "problem: $p"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
