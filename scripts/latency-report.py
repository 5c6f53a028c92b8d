#!/usr/bin/env python3
"""The wake-up latency report of `make bench` (scripts/latency-bench.sh):
reads the console logs LOGDIR/KERNEL-TOOL.log of the rtlat peer's runs and
prints one table (kernel, load, tool: min, avg, p50, p99, max in µs, samples),
then draws cyclictest's latency histograms, one SVG per load, every kernel on
the same logarithmic axes, into OUTDIR/latency-idle.svg and
OUTDIR/latency-storm.svg.

Usage: scripts/latency-report.py LOGDIR OUTDIR
"""
import math
import os
import re
import sys

KERNELS = {"aspen": "Aspen", "linux": "Linux 6.1", "rt": "Linux 6.1 PREEMPT_RT"}
COLOURS = {"aspen": "#1b7837", "linux": "#2166ac", "rt": "#b2182b"}
# The runs each probe makes: (name in the log, load, policy shown).
RUNS = {
    "cyclictest": [("ct-alone", "idle", "SCHED_FIFO 80"), ("ct-mmstorm", "memory storm", "SCHED_FIFO 80")],
    "rtlat": [("fifo-alone", "idle", "SCHED_FIFO 80"), ("fifo-mmstorm", "memory storm", "SCHED_FIFO 80")],
}
SUMMARY = re.compile(r"^(cyclictest|rtlat) name=(\S+) n=(\d+) unit=us (.*)$")
HIST = re.compile(r"^hist (\S+) (\d+) (\d+)$")


def read_log(path):
    """The summaries {name: {field: value}} and histograms {name: {ns: count}} of one log."""
    summaries, hists = {}, {}
    with open(path, errors="replace") as f:
        for line in f:
            line = line.strip()
            m = SUMMARY.match(line)
            if m:
                fields = dict(kv.split("=", 1) for kv in m.group(4).split())
                fields["n"] = m.group(3)
                summaries[m.group(2)] = fields
                continue
            m = HIST.match(line)
            if m:
                hists.setdefault(m.group(1), {})[int(m.group(2))] = int(m.group(3))
    return summaries, hists


def number(text):
    """A figure as printed: µs with two decimals (`>1,000.00` where the
    probe only knows a bound)."""
    bound = text.startswith(">")
    return (">" if bound else "") + f"{float(text.lstrip('>')):,.2f}"


def svg_histogram(title, series, path):
    """One histogram per kernel on log-log axes: x latency in µs, y samples."""
    width, height, left, right, top, bottom = 760, 420, 70, 20, 40, 60
    points = [(ns / 1000.0, count) for _, h in series for ns, count in h.items() if count > 0]
    if not points:
        return False
    x_lo = 10 ** math.floor(math.log10(max(min(p[0] for p in points), 0.1)))
    x_hi = 10 ** math.ceil(math.log10(max(p[0] for p in points) * 1.01))
    y_hi = 10 ** math.ceil(math.log10(max(p[1] for p in points) + 1))

    def x(us):
        span = math.log10(x_hi) - math.log10(x_lo)
        return left + (math.log10(max(us, x_lo)) - math.log10(x_lo)) / span * (width - left - right)

    def y(count):
        return height - bottom - math.log10(max(count, 1)) / math.log10(y_hi) * (height - top - bottom)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>']
    decade = x_lo
    while decade <= x_hi:
        out.append(f'<line x1="{x(decade):.1f}" y1="{top}" x2="{x(decade):.1f}" y2="{height - bottom}" stroke="#ddd"/>')
        out.append(f'<text x="{x(decade):.1f}" y="{height - bottom + 16}" text-anchor="middle">{decade:g}</text>')
        decade *= 10
    count = 1
    while count <= y_hi:
        out.append(f'<line x1="{left}" y1="{y(count):.1f}" x2="{width - right}" y2="{y(count):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(count) + 4:.1f}" text-anchor="end">{count:g}</text>')
        count *= 10
    out.append(f'<text x="{width / 2}" y="{height - 18}" text-anchor="middle">wake-up latency, µs of virtual time (log)</text>')
    out.append(f'<text x="16" y="{height / 2}" transform="rotate(-90 16 {height / 2})" text-anchor="middle">samples per 1 ns bucket (log)</text>')
    for row, (kernel, hist) in enumerate(series):
        colour = COLOURS[kernel]
        # Buckets merged per 1/50 of a decade so that the lines can be read.
        bins = {}
        for ns, c in hist.items():
            key = math.floor(math.log10(max(ns, 1) / 1000.0) * 50)
            bins[key] = bins.get(key, 0) + c
        line = " ".join(f"{x(10 ** ((k + 0.5) / 50)):.1f},{y(c):.1f}" for k, c in sorted(bins.items()))
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{line}"/>')
        out.append(f'<text x="{width - right - 10}" y="{top + 16 + 16 * row}" text-anchor="end" fill="{colour}">{KERNELS[kernel]}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return True


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    logdir, outdir = sys.argv[1], sys.argv[2]
    rows, hists = [], {"idle": [], "memory storm": []}
    for kernel in KERNELS:
        for tool, runs in RUNS.items():
            path = os.path.join(logdir, f"{kernel}-{tool}.log")
            if not os.path.exists(path):
                continue
            summaries, histograms = read_log(path)
            for name, load, policy in runs:
                s = summaries.get(name)
                if s is None:
                    rows.append((KERNELS[kernel], load, tool, None))
                    continue
                rows.append((KERNELS[kernel], load, tool, s))
                if name in histograms:
                    hists[load].append((kernel, histograms[name]))
    print("| kernel | load | tool | min µs | avg µs | p50 µs | p99 µs | max µs | samples |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kernel, load, tool, s in rows:
        if s is None:
            print(f"| {kernel} | {load} | {tool} | no result (see the log) | | | | | |")
            continue
        figures = " | ".join(number(s[k]) for k in ("min", "avg", "p50", "p99", "max"))
        print(f"| {kernel} | {load} | {tool} | {figures} | {s['n']} |")
    os.makedirs(outdir, exist_ok=True)
    for load, file in (("idle", "latency-idle.svg"), ("memory storm", "latency-storm.svg")):
        path = os.path.join(outdir, file)
        if svg_histogram(f"cyclictest wake-up latency, {load}", hists[load], path):
            print(f"latency-report: {path}")
    return 0 if rows and all(s is not None for *_, s in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
