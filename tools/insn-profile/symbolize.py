#!/usr/bin/env python3
"""Attributes an insn-profile (vaddr, instructions, runs per block) to the
kernel's functions, from the ELF's symbols, and prints the top ones per
operation.

    symbolize.py PROFILE ELF OPS [TOP]

Blocks below the kernel's half count as "<user>". Assembly labels without a
symbol (the exception vectors) count towards the symbol before them."""
import bisect
import collections
import subprocess
import sys


def symbol_names(elf):
    """A function from an address to the name of the ELF's text symbol
    that holds it (the nearest one at or below it)."""
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
    profile, elf, ops = sys.argv[1], sys.argv[2], float(sys.argv[3])
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 25
    name_of = symbol_names(elf)
    totals = collections.Counter()
    with open(profile) as f:
        for line in f:
            vaddr, insns, runs = line.split()
            vaddr = int(vaddr, 16)
            name = "<user>" if vaddr < 0xFFFF000000000000 else name_of(vaddr)
            totals[name] += int(insns) * int(runs)
    everything = sum(totals.values())
    print(f"{everything / ops:10.0f} instructions per operation ({everything} in all, {ops:.0f} operations)")
    for name, count in totals.most_common(top):
        print(f"{count / ops:10.0f} {100 * count / everything:5.1f}%  {name[:140]}")


if __name__ == "__main__":
    main()
