#!/usr/bin/env python3
"""Names the longest non-preemptible stretches the stretch plugin kept:
for each, its length, the functions it began and ended in, and where its
instructions went, per function.

    report.py STRETCH_OUT ELF [TOP]"""
import bisect
import collections
import subprocess
import sys


def symbols_of(elf):
    symbols = []
    nm = subprocess.run(["nm", "-C", "--defined-only", elf], capture_output=True, text=True, check=True)
    for line in nm.stdout.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW":
            symbols.append((int(parts[0], 16), parts[2]))
    symbols.sort()
    starts = [address for address, _ in symbols]

    def name(vaddr):
        i = bisect.bisect_right(starts, vaddr) - 1
        return symbols[i][1] if i >= 0 else "?"

    return name


def main():
    path, elf = sys.argv[1], sys.argv[2]
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    name = symbols_of(elf)
    stretches = []
    with open(path) as f:
        for line in f:
            if line.startswith("stretch "):
                words = line.split()
                stretches.append((int(words[1]), int(words[4].rstrip(","), 16), int(words[6], 16), collections.Counter()))
            else:
                vaddr, insns, runs = line.split()
                stretches[-1][3][name(int(vaddr, 16))] += int(insns) * int(runs)
    for insns, first, last, per_function in stretches:
        print(f"{insns} instructions: {name(first)[:90]} .. {name(last)[:90]}")
        for function, count in per_function.most_common(top):
            print(f"  {count:8} {function[:150]}")


if __name__ == "__main__":
    main()
