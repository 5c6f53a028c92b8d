#!/bin/sh
# /proc and the tools that read it: ps, free, uptime, mount, top.
. "${0%/*}/lib.sh"

check "ps lists this shell" yes "$(ps | awk -v p=$$ '$1 == p { print "yes" }')"
sleep 30 &
pid=$!
# Until the child has run execve, it is a copy of this shell.
tries=0
while [ "$(tr '\0' ' ' </proc/$pid/cmdline)" != "sleep 30 " ] && [ $tries -lt 100 ]; do
	sleep 0.05
	tries=$((tries + 1))
done
check "/proc/PID/cmdline" "sleep 30" "$(tr '\0' ' ' </proc/$pid/cmdline | sed 's/ $//')"
check "ps shows the sleeper" "sleep 30" "$(ps | awk -v p=$pid '$1 == p { print $(NF - 1), $NF }')"
check "/proc/PID/stat's parent" $$ "$(cut -d' ' -f4 /proc/$pid/stat)"
kill $pid
wait $pid
read -r stat </proc/self/stat
check "/proc/self is the reader" $$ "${stat%% *}"
check "Threads of a shell" 1 "$(awk '/^Threads:/ { print $2 }' /proc/$$/status)"
check "VmRSS is in kB" kB "$(awk '/^VmRSS:/ { print $3 }' /proc/$$/status)"
check "free's total is MemTotal" "$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)" "$(free | awk '/^Mem:/ { print $2 }')"
check "uptime shows the load" yes "$(uptime | grep -q 'load average' && echo yes)"
check "/proc/uptime has two figures" 2 "$(wc -w </proc/uptime)"
check "/proc/loadavg has five fields" 5 "$(wc -w </proc/loadavg)"
check "mount shows /proc" proc "$(mount | awk '$3 == "/proc" { print $5 }' | head -n 1)"
check "top -b -n 1" yes "$(top -b -n 1 | head -n 1 | grep -q '^Mem:' && echo yes)"
check "cpuinfo has a processor" yes "$(grep -q '^processor' /proc/cpuinfo && echo yes)"
check "/proc/stat has a cpu line" yes "$(grep -q '^cpu ' /proc/stat && echo yes)"
finish
