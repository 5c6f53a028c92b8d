#!/usr/bin/env bash
#! `make bench`: Aspen's memory benchmarks (user/bench) under QEMU virt with
#! `-icount shift=0` (virtual time follows instructions, so the figures
#! repeat), the same static binary on Linux under the same QEMU line when the
#! Linux peer kernel can be had (../shared/peers/linux-qemu), side by side;
#! the size sweep of the same binary (`bench --sweep`: ratios and a plot,
#! build/bench/sweep.svg, by scripts/sweep-report.py); the scaling of
#! threads on four cores (scripts/scale-bench.sh; SCALE=0 skips it); the TLB crossover;
#! the wake-up latency of Aspen, Linux 6.1 and Linux 6.1 PREEMPT_RT with the
#! rtlat peer's probes, idle and under its memory storm
#! (scripts/latency-bench.sh: a table and histograms in
#! build/bench/latency-*.svg; LATENCY=0 skips it, about 15 minutes) and
#! the longest non-preemptible stretches under that storm (scripts/stretch.sh); then
#! the host benchmarks of the page-table operations (HOST_BENCH=0 skips).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=build
OUT=$BUILD/bench
mkdir -p "$OUT"
PEERS=${PEERS:-$ROOT/../shared/peers/linux-qemu}
LQ_CACHE=${LQ_CACHE:-/tmp/linux-qemu-peer}

scripts/bootstrap.sh toolchain qemu || exit 1
image=$(make -s image BOARD=qemu-virt | tail -n 1)
make -s user >/dev/null || exit 1

# An initramfs whose init runs the benchmarks and powers off.
root=$OUT/rootfs
rm -rf "$root"
mkdir -p "$root/bin" "$root/etc"
objcopy=aarch64-linux-gnu-objcopy
$objcopy --strip-all target/aarch64-unknown-none/release/init "$root/init"
$objcopy --strip-all target/aarch64-unknown-none/release/bench "$root/bin/bench"
printf '/bin/bench\n/bin/bench --sweep\n' >"$root/etc/aspen-autorun"
initrd=$(scripts/mk-initramfs.sh "$root" "$OUT/initramfs.cpio" | tail -n 1)

QEMU_LINE=(qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 1 -m 1G -nographic -no-reboot -icount shift=0)

# $1 label, $2 kernel, $3 command line: the bench lines of one boot.
boot() {
	timeout -k 10 600 "${QEMU_LINE[@]}" -kernel "$2" -initrd "$initrd" -append "$3" \
		</dev/null >"$OUT/$1.log" 2>&1
	tr -d '\r' <"$OUT/$1.log" | grep -E '^bench ' >"$OUT/$1.txt"
	tr -d '\r' <"$OUT/$1.log" | grep -E '^sweep ' >"$OUT/$1-sweep.txt"
}

echo "== Aspen ($image)"
boot aspen "$image" "quiet"
cat "$OUT/aspen.txt"

linux=""
if [ -x "$PEERS/setup.sh" ]; then
	if [ ! -r "$LQ_CACHE/vmlinuz" ]; then
		LQ_CACHE=$LQ_CACHE "$PEERS/setup.sh" >"$OUT/linux-setup.log" 2>&1 ||
			echo "bench: could not set up the Linux peer kernel (see $OUT/linux-setup.log)"
	fi
	if [ -r "$LQ_CACHE/vmlinuz" ]; then
		echo "== Linux ($(readlink -f "$LQ_CACHE/vmlinuz"))"
		boot linux "$LQ_CACHE/vmlinuz" "console=ttyAMA0 quiet panic=-1"
		cat "$OUT/linux.txt"
		linux=$OUT/linux.txt
	fi
else
	echo "bench: no Linux peer harness at $PEERS: Aspen's figures only"
fi

echo
echo "== $(date -u +%Y-%m-%d) $(qemu-system-aarch64 --version | head -n1), -M virt -cpu cortex-a72 -smp 1 -m 1G -icount shift=0; ticks per operation (1 tick = 16 instructions)"
awk -v linux="$linux" '
	function field(line, key,    i, n, parts) {
		n = split(line, parts, " ")
		for (i = 1; i <= n; i++) if (index(parts[i], key "=") == 1) return substr(parts[i], length(key) + 2)
		return ""
	}
	BEGIN {
		target["pf_anon"] = 0.5; target["cow_16m"] = 0.5; target["mmap_cycle"] = 0.5
		target["mprotect_toggle"] = 0.5; target["yield_pingpong"] = 0.5; target["thread_pingpong"] = 0.5
		target["fork_16m"] = 0.25
		if (linux != "") while ((getline line < linux) > 0) { split(line, w, " "); ref[w[2]] = field(line, "ticks_per_op") }
		printf "%-16s %14s %14s %8s %8s  %s\n", "bench", "Aspen", "Linux", "ratio", "target", "TLBI/op (page/asid/all)"
	}
	/^bench / {
		name = $2; a = field($0, "ticks_per_op"); l = ref[name]
		ratio = (l != "" && l > 0) ? sprintf("%.3f", a / l) : "-"
		ok = (ratio != "-" && ratio + 0 <= target[name]) ? "" : (ratio == "-" ? "" : " over")
		printf "%-16s %14s %14s %8s %8s  %s%s\n", name, a, (l == "" ? "-" : l), ratio, target[name], field($0, "tlbi_per_op"), ok
	}' "$OUT/aspen.txt" | tee "$OUT/table.txt"

# The size sweep: the same binary's `bench --sweep` on both kernels.
echo
echo "== size sweep (ticks per operation; ratio Aspen/Linux, target at most 0.7)"
python3 scripts/sweep-report.py "$OUT/aspen-sweep.txt" ${linux:+"$OUT/linux-sweep.txt"} "$OUT" | tee "$OUT/sweep.txt"

# Scaling with threads on four cores (`bench --scale`; SCALE=0 skips it, about 3 minutes).
if [ "${SCALE:-1}" = 1 ]; then
	echo
	LQ_CACHE=$LQ_CACHE scripts/scale-bench.sh "$image"
fi

# The TLB crossover (per-page invalidation against dropping the ASID and
# refilling): wall-clock time, since refills cost no instructions.
echo
echo "== TLB crossover (kernel, QEMU wall clock: per-page / whole-ASID ticks, refill included)"
timeout -k 10 600 qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 1 -m 1G -nographic -no-reboot \
	-semihosting-config enable=on,target=native -kernel "$image" -append "quiet semihosting aspen.kbench" \
	</dev/null 2>&1 | tr -d '\r' | grep -E '^kbench ' | tee "$OUT/kbench.txt"

if [ "${LATENCY:-1}" = 1 ]; then
	echo
	echo "== wake-up latency (../shared/peers/rtlat: cyclictest and rtlat, 10,000 periods of 1 ms, -icount shift=0,sleep=off)"
	scripts/latency-bench.sh "$image" | tee "$OUT/latency.txt"
	echo
	echo "== the longest non-preemptible stretches under mmstorm (scripts/stretch.sh, instructions)"
	if [ -x ../shared/peers/rtlat/run.sh ] || [ -n "${RTLAT:-}" ]; then
		scripts/stretch.sh "$image" | tee "$OUT/stretch.txt"
	else
		echo "stretch: skipped: no rtlat peer"
	fi
fi

if [ -x scripts/host-bench.sh ] && [ "${HOST_BENCH:-1}" = 1 ]; then
	echo
	echo "== host: page-table operations (criterion)"
	scripts/host-bench.sh
fi
