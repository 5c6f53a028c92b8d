#!/bin/sh
# Pipes and command substitution: data through pipes, SIGPIPE, statuses.
# (No named pipe: Aspen has no mknodat yet, so mkfifo is ENOSYS.)
. "${0%/*}/lib.sh"

check "echo | cat" hello "$(echo hello | cat)"
check "three-stage pipeline" 3 "$(printf 'a\nb\nc\n' | cat | wc -l)"
check "1 MiB through a pipe" 1048576 "$(dd if=/dev/zero bs=4096 count=256 2>/dev/null | wc -c)"
check "SIGPIPE ends yes" 1000 "$(yes | head -n 1000 | wc -l)"
check "a pipeline's status is its last command's" 0 "$(false | true; echo $?)"
check "! negates a pipeline" 1 "$(! true | true; echo $?)"
check "sort -n -r of 10000 numbers" 10000 "$(seq 1 10000 | sort -n -r | head -n 1)"
check "nested substitution" "a b" "$(echo "$(echo a) $(echo b)")"
check "read loop over a pipe" 55 "$(seq 1 10 | { s=0; while read -r n; do s=$((s + n)); done; echo $s; })"
check "xargs" "1 2 3" "$(printf '1\n2\n3\n' | xargs echo)"
check "tee writes both" "x x" "$(echo x | tee "$T/tee" | cat - "$T/tee" | xargs echo)"
check "64 KiB + 1 written before the reader reads" 65537 "$(head -c 65537 /dev/zero | { sleep 1; wc -c; })"
finish
