#!/bin/sh
# Redirection: files in /tmp, descriptors, here-documents, device files.
. "${0%/*}/lib.sh"

echo one >"$T/f"
echo two >>"$T/f"
check "> then >>" "one two" "$(xargs echo <"$T/f")"
check "< input" 2 "$(wc -l <"$T/f")"
check "2>&1" err "$(sh -c 'echo err >&2' 2>&1)"
check "2>/dev/null" "" "$(ls /no/such/file 2>/dev/null)"
check "here-document" "x=1" "$(cat <<END
x=$((0 + 1))
END
)"
exec 3>"$T/g"
echo three >&3
exec 3>&-
check "exec 3>file" three "$(cat "$T/g")"
set -C
(echo clobber >"$T/f") 2>/dev/null
check "noclobber refuses" 1 $?
set +C
check "<> opens read-write" one "$(head -n 1 <>"$T/f")"
check "/dev/null reads empty" 0 "$(wc -c </dev/null)"
check "head -c of /dev/zero" 4096 "$(head -c 4096 /dev/zero | wc -c)"
check "/dev/urandom gives bytes" 64 "$(head -c 64 /dev/urandom | wc -c)"
check "writing to /dev/full fails" 1 "$(echo x 2>/dev/null >/dev/full; echo $?)"
: >"$T/f"
check ": > truncates" 0 "$(wc -c <"$T/f")"
dd if=/dev/zero of="$T/sparse" bs=1 count=1 seek=1048575 2>/dev/null
check "dd seek makes a 1 MiB file" 1048576 "$(wc -c <"$T/sparse")"
check "a missing file's error" 1 "$(cat "$T/missing" 2>/dev/null; echo $?)"
finish
