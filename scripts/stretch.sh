#!/usr/bin/env bash
#! The longest non-preemptible stretches of a kernel run under the rtlat
#! peer's memory storm (`mmstorm`, ../shared/peers/rtlat), measured from
#! outside by a QEMU plugin (tools/stretch/plugin.c): a stretch runs from a
#! trap from EL0, a pause point or a task switch to the next pause point,
#! switch or return to EL0, which is as long as a woken real-time task can
#! be kept waiting. Under `-icount shift=0,sleep=off` the counts repeat.
#! Prints each of the longest stretches, where it began and ended, and the
#! functions its instructions went to (tools/stretch/report.py). With
#! Debian's static busybox in the cache, a 1.8 MB file is also read and
#! copied with 1 MiB transfers after the storm.
#!
#! Usage: scripts/stretch.sh [IMAGE] (default build/qemu-virt/Image, with
#! its aspen.elf beside it). Environment: RTLAT (the peer), ITERS (storm
#! iterations, default 6), KEEP (stretches kept, default 8), TOP
#! (functions shown per stretch, default 6).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
IMAGE=$(readlink -f "${1:-$ROOT/build/qemu-virt/Image}")
ELF=$(dirname "$IMAGE")/aspen.elf
RTLAT=${RTLAT:-$ROOT/../shared/peers/rtlat}
OUT=$ROOT/build/stretch
mkdir -p "$OUT"
[ -r "$ELF" ] || { echo "stretch: no $ELF beside the image" >&2; exit 2; }
[ -x "$RTLAT/build/bin/mmstorm" ] || "$RTLAT/build.sh" >"$OUT/peer-build.txt" 2>&1 ||
	{ echo "stretch: no mmstorm (the rtlat peer's build.sh failed: $OUT/peer-build.txt)" >&2; exit 1; }

cc -O2 -Wall -shared -fPIC -o "$OUT/plugin.so" "$ROOT/tools/stretch/plugin.c"
rm -rf "$OUT/root"
cp -a "$RTLAT/build/root-rtlat" "$OUT/root"
printf '/bin/prep\n/bin/mmstorm iters=%s\n' "${ITERS:-6}" >"$OUT/root/runlist"
# With Debian's static busybox (scripts/bootstrap.sh busybox): reads and a
# write of a 1.8 MB file too.
busybox=${ASPEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aspen}/pkg/busybox-static/bin/busybox
if [ -x "$busybox" ]; then
	install -m 0755 "$busybox" "$OUT/root/bin/busybox"
	printf '%s\n' '/bin/busybox dd if=/bin/busybox of=/dev/null bs=1M' \
		'/bin/busybox dd if=/bin/busybox of=/tmp/copy bs=1M' >>"$OUT/root/runlist"
fi
initrd=$("$ROOT/scripts/mk-initramfs.sh" "$OUT/root" "$OUT/storm.cpio" | tail -n 1)

nm -C "$ELF" >"$OUT/symbols.txt"
symbol() { awk -v s="$1" '$3 == s { print $1 }' "$OUT/symbols.txt"; }
vectors=$(symbol aspen_vectors)
pause=$(awk '/aspen::task::sched::preempt_point/ { print $1; exit }' "$OUT/symbols.txt")
switch=$(symbol aspen_switch)
[ -n "$vectors" ] && [ -n "$pause" ] && [ -n "$switch" ] || { echo "stretch: symbols missing in $ELF" >&2; exit 1; }
# Traps from EL0: the lower-EL synchronous and IRQ vectors.
begin=$(printf '%x,%x' $((0x$vectors + 0x400)) $((0x$vectors + 0x480)))

STRETCH_BEGIN=$begin STRETCH_MARKS=$pause,$switch STRETCH_OUT=$OUT/stretch.txt STRETCH_KEEP=${KEEP:-8} \
	timeout 1200 qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 1 -m 1G -icount shift=0,sleep=off \
	-nographic -no-reboot -kernel "$IMAGE" -initrd "$initrd" -append "console=ttyAMA0" \
	-plugin "$OUT/plugin.so" >"$OUT/console.log" 2>&1 || { echo "stretch: QEMU failed ($OUT/console.log)" >&2; exit 1; }
grep -a '^mmstorm' "$OUT/console.log" || true
python3 "$ROOT/tools/stretch/report.py" "$OUT/stretch.txt" "$ELF" "${TOP:-6}"
