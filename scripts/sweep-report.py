#!/usr/bin/env python3
"""The size sweep of `make bench` (`bench --sweep`, user/bench/src/sweep.rs):
reads the `sweep ...` lines of one Aspen boot and, when there is one, of one
Linux boot of the same binary; prints ticks per operation and per page, the
ratio Aspen/Linux and whether it is within the target; draws the ratio
against the size in pages, one line per case, into OUTDIR/sweep.svg.

Usage: scripts/sweep-report.py ASPEN.txt [LINUX.txt] OUTDIR
"""
import math
import os
import re
import sys

TARGET = 0.7
LINE = re.compile(r"^sweep (\S+) pages=(\d+) n=(\d+) ticks_per_op=([\d.]+) ticks_per_page=([\d.]+)")
PALETTE = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
           "#1f78b4", "#b2182b", "#4d9221"]


def read(path):
    """{(case, pages): (ticks_per_op, ticks_per_page)} in the file's order."""
    out = {}
    if path is None or not os.path.exists(path):
        return out
    with open(path, errors="replace") as f:
        for line in f:
            m = LINE.match(line.strip())
            if m:
                out[(m.group(1), int(m.group(2)))] = (float(m.group(4)), float(m.group(5)))
    return out


def plot(ratios, path):
    """Ratio (log) against pages (log), one polyline per case."""
    width, height, left, right, top, bottom = 820, 460, 70, 190, 40, 60
    xs = [p for case in ratios.values() for p, _ in case]
    ys = [r for case in ratios.values() for _, r in case]
    x_lo, x_hi = 10 ** math.floor(math.log10(min(xs))), 10 ** math.ceil(math.log10(max(xs) * 1.01))
    y_lo = 10 ** math.floor(math.log10(min(ys + [TARGET]) * 0.99))
    y_hi = 10 ** math.ceil(math.log10(max(ys + [1.0]) * 1.01))

    def x(v):
        return left + (math.log10(v) - math.log10(x_lo)) / (math.log10(x_hi) - math.log10(x_lo)) * (width - left - right)

    def y(v):
        return height - bottom - (math.log10(v) - math.log10(y_lo)) / (math.log10(y_hi) - math.log10(y_lo)) * (height - top - bottom)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{(width - right + left) / 2}" y="22" text-anchor="middle" font-size="15">Aspen / Linux 6.1, ticks per operation (lower is better)</text>']
    v = x_lo
    while v <= x_hi:
        out.append(f'<line x1="{x(v):.1f}" y1="{top}" x2="{x(v):.1f}" y2="{height - bottom}" stroke="#ddd"/>')
        out.append(f'<text x="{x(v):.1f}" y="{height - bottom + 16}" text-anchor="middle">{v:g}</text>')
        v *= 10
    for v in [y_lo * 10 ** k for k in range(int(round(math.log10(y_hi / y_lo))) + 1)]:
        out.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{width - right}" y2="{y(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    for v, style, label in ((1.0, "#000", "parity"), (TARGET, "#b2182b", f"target {TARGET}")):
        out.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{width - right}" y2="{y(v):.1f}" stroke="{style}" stroke-dasharray="5,4"/>')
        out.append(f'<text x="{width - right - 4}" y="{y(v) - 4:.1f}" text-anchor="end" fill="{style}">{label}</text>')
    out.append(f'<text x="{(width - right + left) / 2}" y="{height - 18}" text-anchor="middle">size in 4 KiB pages (log)</text>')
    out.append(f'<text x="16" y="{height / 2}" transform="rotate(-90 16 {height / 2})" text-anchor="middle">ratio (log)</text>')
    for i, (case, points) in enumerate(ratios.items()):
        colour = PALETTE[i % len(PALETTE)]
        line = " ".join(f"{x(p):.1f},{y(r):.1f}" for p, r in sorted(points))
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{line}"/>')
        for p, r in points:
            out.append(f'<circle cx="{x(p):.1f}" cy="{y(r):.1f}" r="3" fill="{colour}"/>')
        out.append(f'<text x="{width - right + 10}" y="{top + 14 + 16 * i}" fill="{colour}">{case}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    aspen = read(sys.argv[1])
    linux = read(sys.argv[2]) if len(sys.argv) == 4 else {}
    outdir = sys.argv[-1]
    if not aspen:
        print("sweep-report: no sweep lines from Aspen")
        return 1
    print(f"{'case':<18} {'pages':>6} {'Aspen/op':>12} {'Linux/op':>12} {'Aspen/page':>11} {'Linux/page':>11} {'ratio':>7}")
    ratios, over = {}, []
    for (case, pages), (a_op, a_page) in aspen.items():
        l_op, l_page = linux.get((case, pages), (None, None))
        ratio = a_op / l_op if l_op else None
        mark = "" if ratio is None or ratio <= TARGET else "  over"
        if ratio is not None:
            ratios.setdefault(case, []).append((pages, ratio))
            if ratio > TARGET:
                over.append(f"{case}@{pages}")
        fmt = lambda v: "-" if v is None else f"{v:,.1f}"
        print(f"{case:<18} {pages:>6} {fmt(a_op):>12} {fmt(l_op):>12} {fmt(a_page):>11} {fmt(l_page):>11} "
              f"{'-' if ratio is None else f'{ratio:.3f}':>7}{mark}")
    if ratios:
        os.makedirs(outdir, exist_ok=True)
        path = os.path.join(outdir, "sweep.svg")
        plot(ratios, path)
        print(f"sweep-report: {len(over)} of {sum(len(v) for v in ratios.values())} cases above {TARGET}"
              f"{': ' + ', '.join(over) if over else ''}; plot in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
