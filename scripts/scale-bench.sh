#!/usr/bin/env bash
#! The scaling benchmarks of issue 13 (`bench --scale`, user/bench/src/scale.rs):
#! the same static binary on Aspen and on Linux 6.1 (the linux-qemu peer's
#! kernel, when it can be had), QEMU virt with `-smp 4`, twice each: under
#! `-icount shift=0` (virtual time counts every vCPU's instructions: ticks per
#! operation is the machine's work per operation, and repeats) and without it
#! (MTTCG, the vCPUs really in parallel: a thread's wall time per
#! operation). Prints one table; the raw lines go to build/bench/scale-*.txt.
#!
#! Usage: scripts/scale-bench.sh [IMAGE]; environment: LQ_CACHE (the Linux
#! peer's kernel directory, default /tmp/linux-qemu-peer), SCALE_CPUS
#! (default 4).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=build/bench
mkdir -p "$OUT"
IMAGE=${1:-build/qemu-virt/Image}
LQ_CACHE=${LQ_CACHE:-/tmp/linux-qemu-peer}
CPUS=${SCALE_CPUS:-4}
[ -f "$IMAGE" ] || { echo "scale-bench: no kernel image at $IMAGE (make image)"; exit 1; }
bench=target/aarch64-unknown-none/release/bench
[ -x "$bench" ] || { echo "scale-bench: no $bench (make user)"; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/etc"
aarch64-linux-gnu-objcopy --strip-all target/aarch64-unknown-none/release/init "$root/init"
aarch64-linux-gnu-objcopy --strip-all "$bench" "$root/bin/bench"
printf '/bin/bench --scale\n' >"$root/etc/aspen-autorun"
initrd=$(scripts/mk-initramfs.sh "$root" "$OUT/scale-initramfs.cpio" | tail -n 1)

# $1 label, $2 kernel, $3 command line, $4 icount|wall.
boot() {
	local extra=()
	[ "$4" = icount ] && extra=(-icount shift=0)
	timeout -k 10 900 qemu-system-aarch64 -M virt -cpu cortex-a72 -smp "$CPUS" -m 1G -nographic -no-reboot \
		"${extra[@]}" -kernel "$2" -initrd "$initrd" -append "$3" </dev/null >"$OUT/scale-$1-$4.log" 2>&1
	tr -d '\r' <"$OUT/scale-$1-$4.log" | grep -E '^scale ' >"$OUT/scale-$1-$4.txt"
}

kernels=(aspen)
boot aspen "$IMAGE" quiet icount
boot aspen "$IMAGE" quiet wall
if [ -r "$LQ_CACHE/vmlinuz" ]; then
	kernels+=(linux)
	boot linux "$LQ_CACHE/vmlinuz" "console=ttyAMA0 quiet panic=-1" icount
	boot linux "$LQ_CACHE/vmlinuz" "console=ttyAMA0 quiet panic=-1" wall
else
	echo "scale-bench: no Linux peer kernel at $LQ_CACHE/vmlinuz: Aspen's figures only"
fi

echo "== scaling (-smp $CPUS): icount = machine ticks per operation (all vCPUs' instructions / 16),"
echo "   wall = a thread's counter ticks per operation without icount; xT1 = against one thread; Linux = Aspen / Linux"
python3 - "$OUT" "${kernels[@]}" <<'PY' | tee "$OUT/scale.txt"
import sys
out, kernels = sys.argv[1], sys.argv[2:]
def load(path):
    rows = {}
    for line in open(path):
        f = dict(p.split("=", 1) for p in line.split()[2:])
        rows[(line.split()[1], int(f["threads"]))] = f
    return rows
data = {(k, m): load(f"{out}/scale-{k}-{m}.txt") for k in kernels for m in ("icount", "wall")}
head = f"{'case':6} {'T':>2} | {'icount':>9} {'xT1':>5} {'Linux':>9} {'ratio':>6} | {'wall':>9} {'xT1':>5} {'Linux':>9} {'ratio':>6} | pinned ({'/'.join(kernels)})"
print(head)
for (case, t) in data[("aspen", "icount")]:
    cells = []
    for mode, key in (("icount", "ticks_per_op"), ("wall", "thread_ticks_per_op")):
        a = data[("aspen", mode)].get((case, t))
        a1 = data[("aspen", mode)].get((case, 1))
        l = data.get(("linux", mode), {}).get((case, t))
        av = float(a[key]) if a else None
        cells.append(f"{av:9.1f}" if av is not None else f"{'-':>9}")
        cells.append(f"{av / float(a1[key]):5.2f}" if a and a1 else f"{'-':>5}")
        lv = float(l[key]) if l else None
        cells.append(f"{lv:9.1f}" if lv is not None else f"{'-':>9}")
        cells.append(f"{av / lv:6.2f}" if av is not None and lv else f"{'-':>6}")
    pinned = "/".join(data.get((k, "wall"), {}).get((case, t), {}).get("pinned", "-") for k in kernels)
    print(f"{case:6} {t:>2} | {' '.join(cells[:4])} | {' '.join(cells[4:])} | {pinned}")
PY
