# Sourced by every script here: `check NAME EXPECTED ACTUAL` prints
# `ok NAME` or `FAIL NAME: ...`; `finish` ends the script with status 0 only
# when every check passed. Scratch files go to $T, a directory of its own in
# /tmp that `finish` removes (so a test's files do not outlive it).
failures=0
T=$(mktemp -d /tmp/shtest.XXXXXX) || { echo "FAIL mktemp -d"; exit 1; }

check() {
	if [ "$2" = "$3" ]; then
		echo "ok $1"
	else
		echo "FAIL $1: expected [$2], got [$3]"
		failures=$((failures + 1))
	fi
}

finish() {
	rm -rf "$T"
	echo "$failures failed"
	[ "$failures" -eq 0 ]
	exit
}
