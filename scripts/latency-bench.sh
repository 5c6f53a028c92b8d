#!/usr/bin/env bash
#! The wake-up latency part of `make bench`: the rtlat peer's probes
#! (../shared/peers/rtlat: its libc-free `rtlat` and the unmodified
#! `cyclictest` of rt-tests 2.1, each idle and under its `mmstorm`) on Aspen,
#! Linux 6.1 and Linux 6.1 PREEMPT_RT, one QEMU line for all
#! (`-icount shift=0,sleep=off`: 1 µs of virtual time = 1,000 instructions,
#! so every figure repeats), through the peer's own `run.sh`.
#!
#! cyclictest's histogram files stay in the guest, so its boots use a copy
#! of the peer's image with two more lines in its runlist: Debian's static
#! busybox (`scripts/bootstrap.sh busybox`) prints each non-empty bucket
#! (`hist NAME NS COUNT`). scripts/latency-report.py turns the logs into
#! the table (min, avg, p50, p99, max in µs) and the histograms
#! (build/bench/latency-idle.svg, latency-storm.svg).
#!
#! Usage: scripts/latency-bench.sh ASPEN_IMAGE. Environment: RTLAT (the
#! peer, default ../shared/peers/rtlat), LATENCY_KERNELS (default
#! "aspen linux rt"), LATENCY_TOOLS (default "cyclictest rtlat"). A kernel
#! that cannot be had is left out, saying why.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=$ROOT/build/bench/latency
RTLAT=${RTLAT:-$ROOT/../shared/peers/rtlat}
KERNELS=${LATENCY_KERNELS:-aspen linux rt}
TOOLS=${LATENCY_TOOLS:-cyclictest rtlat}
[ $# -eq 1 ] || { echo "usage: $0 ASPEN_IMAGE" >&2; exit 2; }
IMAGE=$(readlink -f "$1")

say() { echo "latency-bench: $*"; }
if [ ! -x "$RTLAT/run.sh" ]; then
	say "skipped: no rtlat peer at $RTLAT"
	exit 0
fi
mkdir -p "$OUT"
rm -f "$OUT"/*.log
if [ ! -r "$RTLAT/build/cyclictest.cpio" ] || [ ! -r "$RTLAT/build/rtlat.cpio" ]; then
	"$RTLAT/build.sh" >"$OUT/peer-build.txt" 2>&1 || { say "the peer's build.sh failed (see $OUT/peer-build.txt)"; exit 1; }
fi

# cyclictest's image, plus the histogram dump.
busybox=${ASPEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aspen}/pkg/busybox-static/bin/busybox
ct_initrd=$RTLAT/build/cyclictest.cpio
if [ -x "$busybox" ] || scripts/bootstrap.sh busybox; then
	root=$OUT/root-cyclictest
	rm -rf "$root"
	cp -a "$RTLAT/build/root-cyclictest" "$root"
	install -m 0755 "$busybox" "$root/bin/busybox"
	# The peer's init splits a runlist line at blanks (no quoting): the
	# program goes in a file.
	echo '/^[0-9]/ && $2 > 0 { print "hist", name, $1 + 0, $2 + 0 }' >"$root/hist.awk"
	for name in ct-alone ct-mmstorm; do
		echo "/bin/busybox awk -v name=$name -f /hist.awk /tmp/$name.hist" >>"$root/runlist"
	done
	ct_initrd=$(scripts/mk-initramfs.sh "$root" "$OUT/cyclictest.cpio" | tail -n 1)
else
	say "no busybox: cyclictest's histograms are not drawn"
fi

for kernel in $KERNELS; do
	case $kernel in
	aspen) vmlinuz=$IMAGE ;;
	linux) vmlinuz=${LQ_CACHE:-/tmp/linux-qemu-peer}/vmlinuz ;;
	rt)
		vmlinuz=${RT_CACHE:-/tmp/linux-qemu-peer-rt}/vmlinuz
		[ -r "$vmlinuz" ] || "$RTLAT/setup.sh" >"$OUT/peer-setup.txt" 2>&1 || true
		;;
	*) say "unknown kernel $kernel"; exit 2 ;;
	esac
	if [ "$kernel" = linux ] && [ ! -r "$vmlinuz" ] && [ -x "$RTLAT/../linux-qemu/setup.sh" ]; then
		"$RTLAT/../linux-qemu/setup.sh" >"$OUT/peer-setup.txt" 2>&1 || true
	fi
	if [ ! -r "$vmlinuz" ]; then
		say "$kernel: no kernel at $vmlinuz (the peers' setup.sh could not fetch it): left out"
		continue
	fi
	for tool in $TOOLS; do
		initrd=$RTLAT/build/$tool.cpio
		[ "$tool" = cyclictest ] && initrd=$ct_initrd
		say "$kernel: $tool, idle and under mmstorm"
		# The peer's labels for its logs are per kernel; ours keep every run.
		(cd "$RTLAT" && VMLINUZ="$(readlink -f "$vmlinuz")" ASPEN_IMAGE="$IMAGE" INITRD="$(readlink -f "$initrd")" \
			LOGDIR="$OUT/peer-logs" SHOW=all ./run.sh "$tool" icount) >"$OUT/$kernel-$tool.log" 2>&1 ||
			say "$kernel: $tool did not finish cleanly (see $OUT/$kernel-$tool.log)"
	done
done
python3 scripts/latency-report.py "$OUT" build/bench
