#!/usr/bin/env python3
"""Names the longest non-preemptible stretches the stretch plugin kept:
for each, its length, the functions it began and ended in, and where its
instructions went, per function; with --order, the functions it ran
through in order (consecutive blocks of one function counted together).

    report.py STRETCH_OUT ELF [TOP] [--order]"""
import collections
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "insn-profile"))
from symbolize import symbol_names  # noqa: E402


def main():
    args = [a for a in sys.argv[1:] if a != "--order"]
    order = "--order" in sys.argv
    path, elf = args[0], args[1]
    top = int(args[2]) if len(args) > 2 else 8
    name = symbol_names(elf)
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
