#!/bin/sh
# The text tools and the shell's own language.
. "${0%/*}/lib.sh"

check "sed" "hello aspen" "$(echo hello world | sed 's/world/aspen/')"
check "awk" 6 "$(echo 1 2 3 | awk '{ print $1 + $2 + $3 }')"
check "grep -c" 2 "$(printf 'a\nb\na\n' | grep -c a)"
check "sort | uniq -c" "2 a" "$(printf 'b\na\na\n' | sort | uniq -c | head -n 1 | awk '{ print $1, $2 }')"
check "tr" ABC "$(echo abc | tr a-z A-Z)"
check "cut" b "$(echo a:b:c | cut -d: -f2)"
check "md5sum of nothing" d41d8cd98f00b204e9800998ecf8427e "$(md5sum </dev/null | cut -d' ' -f1)"
check "sha256sum of abc" ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad \
	"$(printf abc | sha256sum | cut -d' ' -f1)"
check "expr" 42 "$(expr 6 \* 7)"
check "arithmetic" 1024 "$((1 << 10))"
check "printf" 0x00ff "$(printf '0x%04x' 255)"
v=/usr/share/aspen
check "parameter expansion" "usr/share/aspen aspen 16" "${v#/} ${v##*/} ${#v}"
f() { local x=inner; echo "$x $1"; }
x=outer
check "functions and local" "inner arg outer" "$(f arg) $x"
s=""
for i in 1 2 3; do s="$s$i"; done
check "for loop" 123 "$s"
case aspen.sh in *.sh) c=script ;; *) c=other ;; esac
check "case" script "$c"
check "test and [" yes "$([ 3 -gt 2 ] && test -n x && echo yes)"
check "od -b" "141 142" "$(printf ab | od -b | awk 'NR == 1 { print $2, $3 }')"
check "date +%s is a number" yes "$(date +%s | grep -qE '^[0-9]+$' && echo yes)"
finish
