#!/usr/bin/env bash
#! `make lint`, also the first step of `make test`: rustfmt, then clippy with
#! every warning an error (on top of the workspace's [workspace.lints]) over
#!
#! - the host crates (cargo's default members), all targets, as `make test`
#!   builds them (--release);
#! - the kernel for each board, cross-built with the toolchain and flags of
#!   `make image` (build/toolchain.mk);
#! - the user programs of `make user`, for the user target;
#! - the Rust std test programs (user/std, a workspace of its own) for the
#!   musl target, where the toolchain has it (STD_CARGO set).
#!
#! Each of these is one check; the output ends with `N passed, M failed`. A
#! check whose tool is missing (no rustfmt; no clippy, or one that is not
#! from the same toolchain as the rustc it would run beside, as with Debian's
#! rustc-web fallback) is skipped and says so; it is not counted.
#!
#! Run through `make lint`, which passes the toolchain variables below.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

for v in CARGO_HOST CROSS_CARGO TARGET USER_TARGET USER_PROGRAMS; do
	if [ -z "${!v:-}" ]; then
		echo "lint: $v is not set; run this through \`make lint\`" >&2
		exit 2
	fi
done
CROSS_ENV=${CROSS_ENV:-}
CROSS_FLAGS=${CROSS_FLAGS:-}
STD_CARGO=${STD_CARGO:-}

passed=0
failed=0
results=()

# $1 label, then the command. Counts it as passed or failed by its status.
check() {
	local label=$1 log status n
	shift
	log=$(mktemp)
	echo "== lint: $label"
	"$@" 2>&1 | tee "$log"
	status=${PIPESTATUS[0]}
	if [ "$status" -eq 0 ]; then
		passed=$((passed + 1))
		results+=("ok    $label")
	else
		failed=$((failed + 1))
		# Diagnostics, not cargo's own summaries of them.
		n=$(grep -E '^(warning|error)(\[[A-Za-z0-9_]+\])?: ' "$log" |
			grep -cvE 'could not compile|generated [0-9]+ warnings?|build failed|aborting due to')
		results+=("FAIL  $label ($n diagnostics)")
	fi
	rm -f "$log"
}

skip() {
	echo "lint: SKIPPED $1: $2"
	results+=("skip  $1: $2")
}

# Why `$1 clippy` (cargo, with the environment words in $2) cannot be used:
# prints the reason, or nothing when it can. Clippy checks the workspace's
# crates with its own compiler while cargo builds the rest (core and alloc
# too, with build-std) with rustc, so the two must be the same build.
clippy_problem() {
	local cargo=$1 envs=$2 version hash rustc rustc_hash
	version=$(env $envs "$cargo" clippy --version 2>/dev/null | head -n 1)
	if [ -z "$version" ]; then
		echo "\`$cargo clippy\` is not installed"
		return
	fi
	rustc=$(env $envs sh -c 'echo "${RUSTC:-rustc}"')
	hash=$(sed -n 's/^clippy [^ ]* (\([0-9a-f]*\) .*/\1/p' <<<"$version")
	rustc_hash=$(env $envs "$rustc" -vV 2>/dev/null | sed -n 's/^commit-hash: //p')
	if [ -z "$hash" ] || [ -z "$rustc_hash" ] || [ "${rustc_hash#"$hash"}" = "$rustc_hash" ]; then
		echo "$version is not from the same toolchain as $rustc (${rustc_hash:-unknown commit})"
	fi
}

if $CARGO_HOST fmt --version >/dev/null 2>&1; then
	check "rustfmt (cargo fmt --all --check)" $CARGO_HOST fmt --all --check
	check "rustfmt: user/std" $CARGO_HOST fmt --all --check --manifest-path user/std/Cargo.toml
else
	skip "rustfmt" "\`$CARGO_HOST fmt\` is not installed"
fi

why=$(clippy_problem "$CARGO_HOST" "")
if [ -z "$why" ]; then
	check "clippy: host crates" $CARGO_HOST clippy --release --all-targets --keep-going -- -D warnings
else
	skip "clippy: host crates" "$why"
fi

why=$(clippy_problem "$CROSS_CARGO" "$CROSS_ENV")
if [ -z "$why" ]; then
	for board in qemu-virt rpi4; do
		check "clippy: kernel ($board)" env $CROSS_ENV "$CROSS_CARGO" clippy --release --target "$TARGET" \
			$CROSS_FLAGS -p aspen-kernel --features "board-$board" --keep-going -- -D warnings
	done
	check "clippy: user programs" env $CROSS_ENV "$CROSS_CARGO" clippy --release --target "$USER_TARGET" \
		$CROSS_FLAGS $(printf -- '-p aspen-%s ' $USER_PROGRAMS) --keep-going -- -D warnings
else
	skip "clippy: kernel and user programs" "$why"
fi

if [ -z "$STD_CARGO" ]; then
	skip "clippy: user/std" "no toolchain with ${STD_TARGET:-the musl target}"
elif why=$(clippy_problem "$STD_CARGO" "") && [ -n "$why" ]; then
	skip "clippy: user/std" "$why"
else
	check "clippy: user/std" "$STD_CARGO" clippy --release --target "$STD_TARGET" --target-dir "$STD_TARGET_DIR" \
		--manifest-path user/std/Cargo.toml --keep-going -- -D warnings
fi

echo
for r in "${results[@]}"; do echo "lint: $r"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
