#!/usr/bin/env bash
#! Packs a directory into a cpio archive in the "newc" format that kernels read
#! as an initramfs.
#!
#! Usage: scripts/mk-initramfs.sh ROOTDIR OUT.cpio
#!
#! - Reproducible: entries in sorted order (parents before children), owner and
#!   group 0, inode numbers counted from 1, every mtime SOURCE_DATE_EPOCH (0
#!   when unset), one link per entry. The same ROOTDIR gives the same bytes,
#!   so running it again is harmless.
#! - Needs no root: the records are written here (by a small Python 3 program)
#!   rather than by GNU cpio, which can only copy device nodes that exist. The
#!   archive always holds the directories dev, tmp and proc and the character
#!   devices dev/console (5:1, mode 0600), dev/tty (5:0) and the memory
#!   devices dev/null, zero, full, random, urandom (1:3, 5, 7, 8, 9; mode
#!   0666), whatever ROOTDIR has.
#! - Keeps each entry's permission bits, less group and other write (as under
#!   umask 022, so the caller's umask does not change the archive) unless the
#!   sticky bit is set; regular files, directories, symbolic links, FIFOs and
#!   device nodes are packed, sockets are skipped.
#! - Prints OUT as the last line.
set -euo pipefail

die() { echo "mk-initramfs: error: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: $0 ROOTDIR OUT.cpio"
ROOTDIR=$1
OUT=$2
[ -d "$ROOTDIR" ] || die "$ROOTDIR is not a directory"
command -v python3 >/dev/null || die "python3 not found (apt-get install python3)"
mkdir -p "$(dirname "$OUT")"

python3 - "$ROOTDIR" "$OUT" <<'PY'
import os, stat, sys

root, out = sys.argv[1], sys.argv[2]
try:
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH") or 0)
except ValueError:
    sys.exit("mk-initramfs: error: SOURCE_DATE_EPOCH is not a number")

# name (no leading "./") -> (mode, rdev_major, rdev_minor, data)
entries = {}

def walk(rel):
    path = os.path.join(root, rel) if rel else root
    for name in os.listdir(path):
        r = os.path.join(rel, name) if rel else name
        p = os.path.join(root, r)
        st = os.lstat(p)
        m = st.st_mode
        perm = stat.S_IMODE(m)
        if not perm & stat.S_ISVTX:
            perm &= ~0o022  # as under umask 022, whatever the caller's umask
        if stat.S_ISDIR(m):
            entries[r] = (stat.S_IFDIR | perm, 0, 0, b"")
            walk(r)
        elif stat.S_ISREG(m):
            with open(p, "rb") as f:
                entries[r] = (stat.S_IFREG | perm, 0, 0, f.read())
        elif stat.S_ISLNK(m):
            entries[r] = (stat.S_IFLNK | 0o777, 0, 0, os.fsencode(os.readlink(p)))
        elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
            kind = stat.S_IFCHR if stat.S_ISCHR(m) else stat.S_IFBLK
            entries[r] = (kind | perm, os.major(st.st_rdev), os.minor(st.st_rdev), b"")
        elif stat.S_ISFIFO(m):
            entries[r] = (stat.S_IFIFO | perm, 0, 0, b"")
        else:
            print(f"mk-initramfs: skipping {r}: not a file, directory, link or device",
                  file=sys.stderr)

walk("")

# What every Aspen initramfs has.
for d, perm in (("dev", 0o755), ("tmp", 0o1777), ("proc", 0o555)):
    e = entries.get(d)
    if e is None:
        entries[d] = (stat.S_IFDIR | perm, 0, 0, b"")
    elif not stat.S_ISDIR(e[0]):
        sys.exit(f"mk-initramfs: error: {d} in {root} is not a directory")
entries["dev/console"] = (stat.S_IFCHR | 0o600, 5, 1, b"")
for name, minor in (("null", 3), ("zero", 5), ("full", 7), ("random", 8), ("urandom", 9)):
    entries[f"dev/{name}"] = (stat.S_IFCHR | 0o666, 1, minor, b"")
entries["dev/tty"] = (stat.S_IFCHR | 0o666, 5, 0, b"")

def pad4(n):
    return b"\0" * (-n % 4)

def record(ino, name, mode, rmaj, rmin, data):
    nameb = os.fsencode(name) + b"\0"
    fields = (ino, mode, 0, 0, 2 if stat.S_ISDIR(mode) else 1, mtime, len(data),
              0, 0, rmaj, rmin, len(nameb), 0)
    hdr = b"070701" + b"".join(b"%08X" % v for v in fields)
    return hdr + nameb + pad4(len(hdr) + len(nameb)) + data + pad4(len(data))

chunks = []
names = sorted(entries, key=lambda n: os.fsencode(n).split(b"/"))
for ino, name in enumerate(names, start=1):
    chunks.append(record(ino, name, *entries[name]))
chunks.append(record(0, "TRAILER!!!", 0, 0, 0, b""))
blob = b"".join(chunks)
blob += b"\0" * (-len(blob) % 512)

tmp = out + ".tmp"
with open(tmp, "wb") as f:
    f.write(blob)
os.replace(tmp, out)
PY
echo "$OUT"
