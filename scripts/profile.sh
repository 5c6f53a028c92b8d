#!/usr/bin/env bash
#! `scripts/profile.sh BENCH [TOP]`: where one of `user/bench`'s benchmarks
#! spends its instructions. Boots Aspen under QEMU -icount with a plugin
#! (tools/insn-profile) counting instructions per translation block, runs
#! `/bin/bench BENCH`, and prints the functions that ran, per operation.
#! The count covers the whole boot and the benchmark's set-up too; the
#! benchmark's own line gives the timed part.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BENCH=${1:?usage: scripts/profile.sh BENCH [TOP] (pf_anon, cow_16m, fork_16m, mmap_cycle, mprotect_toggle, yield_pingpong)}
TOP=${2:-25}
OUT=build/profile
mkdir -p "$OUT"
declare -A OPS=([pf_anon]=8192 [cow_16m]=20480 [fork_16m]=21 [mmap_cycle]=2000 [mprotect_toggle]=2000 [yield_pingpong]=20000)
[ -n "${OPS[$BENCH]:-}" ] || { echo "profile.sh: unknown benchmark $BENCH" >&2; exit 2; }

cc -O2 -shared -fPIC -o "$OUT/insn-profile.so" tools/insn-profile/plugin.c
image=$(make -s image BOARD=qemu-virt | tail -n 1)
make -s user >/dev/null
root=$OUT/rootfs
rm -rf "$root"
mkdir -p "$root/bin" "$root/etc"
aarch64-linux-gnu-objcopy --strip-all target/aarch64-unknown-none/release/init "$root/init"
aarch64-linux-gnu-objcopy --strip-all target/aarch64-unknown-none/release/bench "$root/bin/bench"
echo "/bin/bench $BENCH" >"$root/etc/aspen-autorun"
initrd=$(scripts/mk-initramfs.sh "$root" "$OUT/initramfs.cpio" | tail -n 1)

PROF_OUT=$OUT/$BENCH.blocks timeout -k 10 600 qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 1 -m 1G \
	-nographic -no-reboot -icount shift=0 -plugin "$OUT/insn-profile.so" \
	-kernel "$image" -initrd "$initrd" -append "quiet" </dev/null 2>&1 | tr -d '\r' | grep -E '^bench '
python3 tools/insn-profile/symbolize.py "$OUT/$BENCH.blocks" build/qemu-virt/aspen.elf "${OPS[$BENCH]}" "$TOP"
