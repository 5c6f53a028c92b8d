#!/usr/bin/env bash
#! Adds Debian's busybox and C library (arm64, extracted by
#! `scripts/bootstrap.sh busybox` into $ASPEN_CACHE/pkg) to a root directory
#! that becomes the initramfs:
#!
#! - /bin/busybox: busybox-static, the shell `make run` ends at; one symbolic
#!   link per applet in /bin (`/bin/ls -> busybox`, 269 of them in Debian 12's
#!   1.35), none over a file that is already there (Aspen's own programs stay);
#!   /sbin, /usr/bin and /usr/sbin lead to /bin, as on a merged-/usr system.
#! - /bin/busybox-dyn: the dynamically linked busybox, and libc6's /lib (its
#!   loader /lib/ld-linux-aarch64.so.1 and libraries), for the dynamic-linking
#!   test.
#! - /etc/passwd, /etc/group (root), /etc/profile (prompt, PATH), /etc/mtab.
#!
#! The applet names are read from busybox's own table of them (a sorted,
#! NUL-separated list that starts "[", "[[") rather than from running it,
#! which would need an arm64 machine; the user tests check the list against
#! `busybox --list` on Aspen.
#!
#! Usage: scripts/userland.sh ROOTDIR. Without the packages it changes
#! nothing, says why on stderr and exits 1.
set -euo pipefail

die() { echo "userland: $*" >&2; exit 1; }
[ $# -eq 1 ] && [ -d "$1" ] || die "usage: $0 ROOTDIR"
ROOTDIR=$1
PKG=${ASPEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aspen}/pkg
STATIC=$PKG/busybox-static/bin/busybox
DYNAMIC=$PKG/busybox/bin/busybox
LIBC=$PKG/libc6/lib
for f in "$STATIC" "$DYNAMIC" "$LIBC/ld-linux-aarch64.so.1"; do
	[ -e "$f" ] || die "no $f (\`scripts/bootstrap.sh busybox\` fetches Debian's busybox-static, busybox and libc6)"
done

mkdir -p "$ROOTDIR/bin" "$ROOTDIR/usr" "$ROOTDIR/etc"
install -m 0755 "$STATIC" "$ROOTDIR/bin/busybox"
install -m 0755 "$DYNAMIC" "$ROOTDIR/bin/busybox-dyn"
cp -a "$LIBC" "$ROOTDIR/"

python3 - "$ROOTDIR/bin" <<'PY'
import os, sys

bindir = sys.argv[1]
data = open(os.path.join(bindir, "busybox"), "rb").read()
start = data.find(b"[\0[[\0")
if start < 0:
    sys.exit("userland: no applet table in busybox")
names = data[start:data.find(b"\0\0", start)].decode().split("\0")
if names != sorted(names) or len(names) < 100:
    sys.exit(f"userland: busybox's applet table does not look right ({len(names)} names)")
for name in names:
    link = os.path.join(bindir, name)
    if not os.path.lexists(link):
        os.symlink("busybox", link)
PY

ln -sfn bin "$ROOTDIR/sbin"
ln -sfn ../bin "$ROOTDIR/usr/bin"
ln -sfn ../bin "$ROOTDIR/usr/sbin"
echo "root:x:0:0:root:/:/bin/sh" >"$ROOTDIR/etc/passwd"
echo "root:x:0:" >"$ROOTDIR/etc/group"
ln -sfn ../proc/mounts "$ROOTDIR/etc/mtab"
cat >"$ROOTDIR/etc/profile" <<'EOF'
# Login shells on Aspen's console (busybox sh).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PS1='aspen:\w\$ '
EOF
