#!/bin/sh
# Processes from the shell: background jobs, wait, kill, traps, subshells.
. "${0%/*}/lib.sh"

sleep 10 &
pid=$!
kill "$pid"
wait "$pid"
check "SIGTERM status from wait" 143 $?
(exit 7)
check "subshell exit status" 7 $?
sh -c 'kill -9 $$'
check "SIGKILL status" 137 $?
got=none
trap 'got=USR1' USR1
kill -USR1 $$
check "trap runs the handler" USR1 "$got"
trap - USR1
true &
wait $!
check "wait for a finished job" 0 $?
sleep 1 &
sleep 1 &
wait
check "wait for every job" 0 $?
check "exit status of a missing command" 127 "$(/no/such/program 2>/dev/null; echo $?)"
check "\$PPID is the parent" $$ "$(sh -c 'echo $PPID')"
check "a child's pid differs" yes "$(sh -c '[ $$ != '$$' ] && echo yes')"
check "env passes variables" aspen "$(X=aspen sh -c 'echo $X')"
check "exec replaces the shell" replaced "$(sh -c 'exec echo replaced; echo not')"
sleep 5 &
sleeper=$!
# Until the child has run execve it is a copy of this shell, not `sleep`.
tries=0
until pidof sleep | grep -qw $sleeper || [ $tries -ge 100 ]; do
	sleep 0.05
	tries=$((tries + 1))
done
check "pidof finds the sleeper" yes "$(pidof sleep | grep -qw $sleeper && echo yes)"
kill $sleeper
wait $sleeper
finish
