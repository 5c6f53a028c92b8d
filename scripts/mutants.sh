#!/usr/bin/env bash
#! `make mutants`: applies each hand-made mutant of the TLB maintenance code
#! (scripts/mutants/*.patch) to the work tree, one at a time, runs the tests
#! that must catch it, and takes it out again. A mutant is CAUGHT when its
#! tests fail, MISSED when they pass. Exits 1 if any mutant is missed (or a
#! patch no longer applies), 0 otherwise; the tree is left as it was.
#!
#! The mm mutants run `cargo test -p aspen-mm --lib` (in release, without LTO,
#! in target/mutants so the main build cache stays warm); the HardwareTlb
#! mutant (f) builds the virt kernel and runs the TLBI check of its ELF
#! (aspen-tlbi-check). `scripts/mutants.sh NAME...` runs only the mutants
#! whose file names start with one of the NAMEs (`a`, `e1`, ...).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DIR=scripts/mutants
LOGS=build/mutants
mkdir -p "$LOGS"

# A fast profile for the many rebuilds: same code, no LTO, parallel codegen.
export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_DEBUG=0
MM_TARGET=target/mutants

applied=""
restore() {
	if [ -n "$applied" ]; then
		git apply -R "$applied" || echo "mutants: could not take $applied out again: check git status" >&2
		applied=""
	fi
	# proptest saves the failing cases a mutant caused: drop them.
	git checkout -q -- mm/proptest-regressions 2>/dev/null
	git ls-files --others --exclude-standard -- mm/proptest-regressions | while read -r f; do
		grep -qxF "$f" <<<"${untracked_before:-}" || rm -f "$f"
	done
}
# The files the mutants change must be unmodified, or a patch could mix
# with work in progress; so must proptest's saved failures, which a caught
# mutant adds to (they are put back after each mutant).
files="$(cat "$DIR"/*.patch | sed -n 's|^+++ b/||p' | sort -u) mm/proptest-regressions"
untracked_before=$(git ls-files --others --exclude-standard -- mm/proptest-regressions)
if ! git diff --quiet HEAD -- $files; then
	echo "mutants: these files have uncommitted changes; commit or stash them first:" >&2
	git diff --name-only HEAD -- $files >&2
	exit 2
fi
trap restore EXIT
trap 'restore; exit 130' INT TERM

# $1: the mutant's name. Runs the tests that must catch it; non-zero when
# they fail (the mutant is caught).
run_tests() {
	case $1 in
	f*)
		# The kernel as `make image` builds it (LTO decides what inlines where).
		env -u CARGO_PROFILE_RELEASE_LTO -u CARGO_PROFILE_RELEASE_CODEGEN_UNITS -u CARGO_PROFILE_RELEASE_DEBUG \
			make -s image >"$LOGS/$1.build.log" 2>&1 || return 1
		cargo build --release -q -p aspen-image-check &&
			target/release/aspen-tlbi-check build/qemu-virt/aspen.elf
		;;
	*)
		CARGO_TARGET_DIR=$MM_TARGET cargo test -q --release -p aspen-mm --lib
		;;
	esac
}

# Whether mutant $1 was asked for (all of them when no NAME was given).
wanted() {
	local prefix
	[ -z "$SELECT" ] && return 0
	for prefix in $SELECT; do
		case $1 in "$prefix"*) return 0 ;; esac
	done
	return 1
}

SELECT="$*"
ran_kernel=0
caught=0
missed=0
start=$(date +%s)
for patch in "$DIR"/*.patch; do
	name=$(basename "$patch" .patch)
	wanted "$name" || continue
	if ! git apply --check "$patch" 2>/dev/null; then
		echo "MISSED $name: the patch no longer applies (update it)"
		missed=$((missed + 1))
		continue
	fi
	git apply "$patch"
	applied=$patch
	case $name in f*) ran_kernel=1 ;; esac
	t0=$(date +%s)
	if run_tests "$name" >"$LOGS/$name.log" 2>&1; then
		echo "MISSED $name: every test passed ($(($(date +%s) - t0)) s; log $LOGS/$name.log)"
		missed=$((missed + 1))
	else
		why=$(grep -m1 -E "panicked at|^FAIL|error\[" -A1 "$LOGS/$name.log" | tail -n 1 | cut -c1-150)
		echo "CAUGHT $name ($(($(date +%s) - t0)) s): $why"
		caught=$((caught + 1))
	fi
	restore
done
# The kernel image built with mutant (f) must not stay behind.
if [ "$ran_kernel" -eq 1 ]; then
	env -u CARGO_PROFILE_RELEASE_LTO -u CARGO_PROFILE_RELEASE_CODEGEN_UNITS -u CARGO_PROFILE_RELEASE_DEBUG \
		make -s image >"$LOGS/rebuild.log" 2>&1 || echo "mutants: rebuilding the kernel failed (see $LOGS/rebuild.log)"
fi
echo "$caught caught, $missed missed ($(($(date +%s) - start)) s)"
[ "$missed" -eq 0 ]
