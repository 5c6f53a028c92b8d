#!/usr/bin/env bash
#! Installs what building, running and testing Aspen needs, idempotently.
#!
#! Usage: scripts/bootstrap.sh [toolchain|qemu|sdcard|busybox|peers|all]...
#!
#! - toolchain: a Rust toolchain that can build for $TARGET (below). Prefers
#!   `rustup target add`; where that cannot download, falls back to Debian's
#!   rustc-web + cargo-web + rust-web-src and builds core/alloc with build-std.
#!   Writes build/toolchain.mk, which the Makefile includes. Also the C cross
#!   compiler with glibc (user/libc's programs) and, with rustup only, the
#!   $STD_TARGET target for user/std's programs (STD_CARGO in toolchain.mk;
#!   empty, and the programs skipped, without it).
#! - qemu: qemu-system-aarch64 with the raspi4b machine (QEMU 9 or later). On
#!   Debian 12 it comes from the backports suite, whose apt entry is derived
#!   from the machine's own Debian entry.
#! - sdcard: cpio, mtools, fdisk, dosfstools; Pi 4 firmware and device tree
#!   (Debian's raspi-firmware and arm64 kernel packages, extracted, not
#!   installed) into $ASPEN_CACHE.
#! - busybox: Debian's arm64 busybox-static (the shell `make run` ends at),
#!   busybox (dynamically linked) and libc6 (its loader and libraries),
#!   extracted, not installed, into $ASPEN_CACHE/pkg; scripts/userland.sh puts
#!   them into the initramfs. Fails, saying why, where they cannot be
#!   downloaded: the initramfs is then made without them.
#! - peers: what ../shared/peers/linux-qemu needs to build its binaries.
#!
#! Each step first checks whether its work is already done, so a second run is
#! quick. Set ASPEN_TOOLCHAIN=debian to force the build-std path.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
ASPEN_CACHE=${ASPEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aspen}
# The kernel's target (soft-float) and user space's (hard-float).
TARGET=aarch64-unknown-none-softfloat
USER_TARGET=aarch64-unknown-none
# Rust std for the test programs of user/std (static, musl).
STD_TARGET=aarch64-unknown-linux-musl
export DEBIAN_FRONTEND=noninteractive

say() { echo "bootstrap: $*" >&2; }
die() { echo "bootstrap: error: $*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null; then SUDO="sudo"; fi
fi

APT_UPDATED=""
apt_update() {
	[ -n "$APT_UPDATED" ] && return 0
	command -v apt-get >/dev/null || die "apt-get not found: install the packages named above by hand"
	say "apt-get update"
	$SUDO apt-get update -qq || die "apt-get update failed"
	APT_UPDATED=1
}

# Installs the named Debian packages that are not installed yet.
apt_install() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	apt_update
	say "installing ${missing[*]}"
	$SUDO apt-get install -y -qq "${missing[@]}" >/dev/null || die "could not install ${missing[*]}"
}

os_codename() { . /etc/os-release; echo "${VERSION_CODENAME:-}"; }
os_id() { . /etc/os-release; echo "${ID:-}"; }

# The machine's own Debian apt entry for its release, turned into one for
# $codename-backports with main and non-free-firmware. Written in deb822 form.
ensure_backports() {
	local codename list
	codename=$(os_codename)
	[ "$(os_id)" = debian ] || return 1
	list=/etc/apt/sources.list.d/aspen-backports.sources
	[ -f "$list" ] && return 0
	grep -rqs "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/ && return 0
	local uri keyring
	uri=$(derive_debian_uri) || die "no Debian apt source entry found to derive ${codename}-backports from"
	keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	say "adding ${codename}-backports (derived from the existing Debian entry)"
	$SUDO tee "$list" >/dev/null <<EOT
Types: deb
URIs: $uri
Suites: ${codename}-backports
Components: main non-free-firmware
Signed-By: $keyring
EOT
	APT_UPDATED=""
}

# Prints the URI of the machine's main Debian archive entry (not security).
derive_debian_uri() {
	local codename f
	codename=$(os_codename)
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v suite="$codename" '
			/^[[:space:]]*$/ { if (ok && uri != "") { print uri; exit } ok = 0; uri = ""; next }
			/^URIs:/ { uri = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
			END { if (ok && uri != "") print uri }' "$f" | grep -v security | head -n1 && return 0
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk -v suite="$codename" '$1 == "deb" {
			u = $2; s = $3; if ($2 ~ /^\[/) { u = $3; s = $4 }
			if (s == suite && u !~ /security/) { print u; exit } }' "$f" | head -n1 | grep . && return 0
	done
	return 1
}

# Ensures the Debian component non-free-firmware is enabled for the release
# suite (raspi-firmware lives there); adds an entry of its own if needed.
ensure_non_free_firmware() {
	[ "$(os_id)" = debian ] || return 0
	apt-cache show raspi-firmware >/dev/null 2>&1 && return 0
	local codename list uri
	codename=$(os_codename)
	list=/etc/apt/sources.list.d/aspen-firmware.sources
	[ -f "$list" ] && return 0
	uri=$(derive_debian_uri) || die "no Debian apt source entry found to derive non-free-firmware from"
	say "enabling non-free-firmware for $codename"
	$SUDO tee "$list" >/dev/null <<EOT
Types: deb
URIs: $uri
Suites: $codename
Components: non-free-firmware
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOT
	APT_UPDATED=""
	apt_update
}

# Whether rustup has (or can add) target $1.
rustup_target() {
	rustup target list --installed 2>/dev/null | grep -qx "$1" && return 0
	timeout 120 rustup target add "$1" >/dev/null 2>&1
	rustup target list --installed 2>/dev/null | grep -qx "$1"
}

step_toolchain() {
	mkdir -p "$BUILD_DIR"
	local out=$BUILD_DIR/toolchain.mk
	apt_install lld binutils-aarch64-linux-gnu gcc-aarch64-linux-gnu
	if [ "${ASPEN_TOOLCHAIN:-auto}" != debian ] && command -v rustup >/dev/null &&
		command -v cargo >/dev/null && rustup_target "$TARGET" && rustup_target "$USER_TARGET"; then
		local std_cargo=""
		if rustup_target "$STD_TARGET"; then
			std_cargo=$(command -v cargo)
		else
			say "rustup cannot add $STD_TARGET: the Rust std programs (user/std) will be skipped"
		fi
		cat >"$out" <<EOT
# Written by scripts/bootstrap.sh: rustup with the $TARGET and $USER_TARGET targets.
CROSS_CARGO := $(command -v cargo)
CROSS_ENV :=
CROSS_FLAGS :=
# Builds user/std for $STD_TARGET; empty when rustup could not add it.
STD_CARGO := $std_cargo
EOT
		say "toolchain: rustup ($(cargo --version))"
		# make lint's tools (it skips them, saying so, where they cannot be had).
		local component
		for component in clippy rustfmt; do
			rustup component list --installed 2>/dev/null | grep -q "^$component" ||
				timeout 120 rustup component add "$component" >/dev/null 2>&1 ||
				say "rustup cannot add $component: make lint will skip it"
		done
		return 0
	fi
	say "rustup cannot provide $TARGET here; using Debian's rustc-web with build-std"
	apt_install rustc-web cargo-web rust-web-src
	[ -x /usr/bin/cargo ] || die "/usr/bin/cargo missing after installing cargo-web"
	cat >"$out" <<EOT
# Written by scripts/bootstrap.sh: Debian rustc-web, core and alloc built from source.
CROSS_CARGO := /usr/bin/cargo
CROSS_ENV := RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc
CROSS_FLAGS := -Z build-std=core,alloc -Z build-std-features=compiler-builtins-mem
# No musl std without rustup: the Rust std programs (user/std) are skipped.
STD_CARGO :=
EOT
	say "toolchain: $(/usr/bin/cargo --version) with build-std"
}

qemu_has_raspi4b() {
	command -v qemu-system-aarch64 >/dev/null &&
		qemu-system-aarch64 -machine help 2>/dev/null | grep -q '^raspi4b'
}

step_qemu() {
	qemu_has_raspi4b && return 0
	apt_update
	local cand
	cand=$(apt-cache policy qemu-system-arm | awk '/Candidate:/ { print $2 }')
	# Debian's qemu 1:7.x has no raspi4b; 1:9 and later do.
	if dpkg --compare-versions "${cand:-0}" lt 1:9 && ensure_backports; then
		apt_update
		say "installing qemu-system-arm from $(os_codename)-backports"
		$SUDO apt-get install -y -qq -t "$(os_codename)-backports" qemu-system-arm >/dev/null ||
			die "could not install qemu-system-arm from backports"
	else
		apt_install qemu-system-arm
	fi
	qemu_has_raspi4b || die "qemu-system-aarch64 $(qemu-system-aarch64 --version | head -n1) has no raspi4b machine; QEMU 9 or later is needed"
}

# Extracts a Debian package (name:arch, or name for Architecture: all) into
# $ASPEN_CACHE/pkg/<name> and prints that directory. Nothing is installed.
extract_pkg() {
	local spec=$1 pkg=${1%%:*} dir=$ASPEN_CACHE/pkg/${1%%:*}
	if [ ! -f "$dir/.done" ]; then
		dpkg --print-foreign-architectures | grep -qx arm64 || {
			$SUDO dpkg --add-architecture arm64
			APT_UPDATED=""
		}
		apt_update
		mkdir -p "$ASPEN_CACHE/deb" "$dir"
		chmod 0777 "$ASPEN_CACHE/deb" 2>/dev/null || true
		(cd "$ASPEN_CACHE/deb" && rm -f "${pkg}"_*.deb && apt-get download -qq "$spec" >/dev/null) ||
			die "could not download $spec"
		dpkg-deb -x "$ASPEN_CACHE/deb/${pkg}"_*.deb "$dir"
		rm -f "$ASPEN_CACHE/deb/${pkg}"_*.deb
		touch "$dir/.done"
	fi
	echo "$dir"
}

# Pi 4 firmware and device tree into $ASPEN_CACHE/rpi4.
step_sdcard() {
	apt_install cpio mtools fdisk dosfstools python3
	local out=$ASPEN_CACHE/rpi4
	if [ -f "$out/start4.elf" ] && [ -f "$out/fixup4.dat" ] && [ -f "$out/bcm2711-rpi-4-b.dtb" ]; then
		return 0
	fi
	mkdir -p "$out"
	ensure_non_free_firmware
	local fw kpkg kdir dtb
	fw=$(extract_pkg raspi-firmware)
	cp "$(find "$fw" -name start4.elf | head -n1)" "$out/start4.elf"
	cp "$(find "$fw" -name fixup4.dat | head -n1)" "$out/fixup4.dat"
	apt_update
	kpkg=$(apt-cache depends linux-image-arm64:arm64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[^ :]*\).*/\1/p' | head -n1)
	[ -n "$kpkg" ] || die "cannot resolve Debian's arm64 kernel package (for bcm2711-rpi-4-b.dtb)"
	kdir=$(extract_pkg "$kpkg:arm64")
	dtb=$(find "$kdir" -name bcm2711-rpi-4-b.dtb | head -n1)
	[ -n "$dtb" ] || die "$kpkg has no bcm2711-rpi-4-b.dtb"
	cp "$dtb" "$out/bcm2711-rpi-4-b.dtb"
	# The kernel package is large and only its device tree is needed.
	rm -rf "$kdir"
	mkdir -p "$kdir" && touch "$kdir/.done"
	say "Pi 4 firmware and device tree in $out"
}

# Debian's busybox (static and dynamic) and libc6 for arm64, extracted.
step_busybox() {
	local spec
	for spec in busybox-static:arm64 busybox:arm64 libc6:arm64; do
		extract_pkg "$spec" >/dev/null
	done
}

step_peers() {
	apt_install gcc-aarch64-linux-gnu cpio
}

[ $# -eq 0 ] && set -- all
for step in "$@"; do
	case $step in
	toolchain) step_toolchain ;;
	qemu) step_qemu ;;
	sdcard) step_sdcard ;;
	busybox) step_busybox ;;
	peers) step_peers ;;
	all) step_toolchain; step_qemu; step_sdcard; step_busybox ;;
	*) die "unknown step '$step' (toolchain, qemu, sdcard, busybox, peers, all)" ;;
	esac
done
