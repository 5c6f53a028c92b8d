#!/usr/bin/env bash
#! `make check-linux`: boots the Linux peer kernel (Debian's 6.1 arm64, from
#! ../shared/peers/linux-qemu) under QEMU virt with Aspen's initramfs, whose
#! /init runs the user test suite's real-program tests (prog_*: user/libc
#! and user/std, see user/usertests/src/tests/programs.rs), and prints each
#! program's ok/FAIL lines and each test's result. Linux is the reference:
#! every program must pass there.
#!
#! Usage: scripts/linux-check.sh (after `make initramfs`; `make check-linux`
#! does both). Environment: SMP (CPUs, default 1, as the peer harness),
#! FULL=1 (the whole user test suite, not only prog_*), LQ_CACHE (the peer's
#! kernel cache, default /tmp/linux-qemu-peer), QEMU_TIMEOUT (seconds,
#! default 900). The console log is kept in build/linux-check/console.log.
#! Exits 0 only when every test passed.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=build/linux-check
PEERS=${PEERS:-$ROOT/../shared/peers/linux-qemu}
LQ_CACHE=${LQ_CACHE:-/tmp/linux-qemu-peer}
SMP=${SMP:-1}
QEMU_TIMEOUT=${QEMU_TIMEOUT:-900}

die() { echo "linux-check: error: $*" >&2; exit 1; }

[ -d build/rootfs ] || die "no build/rootfs: run \`make initramfs\` first"
if [ ! -r "$LQ_CACHE/vmlinuz" ]; then
	[ -x "$PEERS/setup.sh" ] || die "no Linux kernel in $LQ_CACHE and no peer harness at $PEERS"
	mkdir -p "$OUT"
	LQ_CACHE=$LQ_CACHE "$PEERS/setup.sh" >"$OUT/setup.log" 2>&1 ||
		die "could not set up the Linux peer kernel (see $OUT/setup.log)"
fi

# Aspen's initramfs, plus an autorun script for its /init.
rm -rf "$OUT/rootfs"
mkdir -p "$OUT"
cp -a build/rootfs "$OUT/rootfs"
if [ "${FULL:-}" = 1 ]; then
	tests=""
else
	tests=$(sed -n 's/^ *child("\(prog_[a-z_]*\)".*/\1/p' user/usertests/src/tests/mod.rs | tr '\n' ' ')
	[ -n "$tests" ] || die "no prog_* tests found in user/usertests/src/tests/mod.rs"
fi
echo "/bin/usertests --finish $tests" >"$OUT/rootfs/etc/aspen-autorun"
initrd=$(scripts/mk-initramfs.sh "$OUT/rootfs" "$OUT/initramfs.cpio" | tail -n 1)

echo "== Linux $(readlink -f "$LQ_CACHE/vmlinuz"), -smp $SMP: /bin/usertests --finish ${tests:-(all)}"
timeout -k 10 "$QEMU_TIMEOUT" qemu-system-aarch64 -M virt -cpu cortex-a72 -smp "$SMP" -m 1G -nographic -no-reboot \
	-kernel "$LQ_CACHE/vmlinuz" -initrd "$initrd" -append "console=ttyAMA0 quiet panic=-1" \
	</dev/null >"$OUT/console.log" 2>&1
qemu_status=$?
tr -d '\r' <"$OUT/console.log" | grep -E '^(ok |FAIL |TEST-OK|TEST-FAIL|TEST-DONE|RUN )'

passed=$(tr -d '\r' <"$OUT/console.log" | grep -c '^TEST-OK')
failed=$(tr -d '\r' <"$OUT/console.log" | grep -c '^TEST-FAIL')
finished=$(tr -d '\r' <"$OUT/console.log" | grep -c '^TEST-FINISHED')
echo "linux-check: QEMU exited with $qemu_status; console log in $OUT/console.log"
if [ "$finished" -eq 0 ]; then
	echo "linux-check: the run did not finish (no TEST-FINISHED)"
	failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
