#!/usr/bin/env python3
"""Names the longest non-preemptible stretches the stretch plugin kept:
for each, its length, the functions it began and ended in, and where its
instructions went, per function; with --order, the functions it ran
through in order (consecutive blocks of one function counted together).

    report.py STRETCH_OUT ELF [TOP] [--order]"""
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
    args = [a for a in sys.argv[1:] if a != "--order"]
    order = "--order" in sys.argv
    path, elf = args[0], args[1]
    top = int(args[2]) if len(args) > 2 else 8
    name = symbols_of(elf)
    stretches = []
    with open(path) as f:
        for line in f:
            if line.startswith("stretch "):
                words = line.split()
                stretches.append((int(words[1]), int(words[4].rstrip(","), 16), int(words[6], 16), collections.Counter(), []))
            else:
                vaddr, insns, runs = line.split()
                function, count = name(int(vaddr, 16)), int(insns) * int(runs)
                stretches[-1][3][function] += count
                path_so_far = stretches[-1][4]
                if path_so_far and path_so_far[-1][0] == function:
                    path_so_far[-1][1] += count
                else:
                    path_so_far.append([function, count])
    for insns, first, last, per_function, path_taken in stretches:
        print(f"{insns} instructions: {name(first)[:90]} .. {name(last)[:90]}")
        for function, count in per_function.most_common(top):
            print(f"  {count:8} {function[:150]}")
        if order:
            print("  in order:")
            for function, count in path_taken:
                print(f"    {count:8} {function[:150]}")


if __name__ == "__main__":
    main()
