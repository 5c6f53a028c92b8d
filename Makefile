# Aspen: build, run and test.
#
#   make run   [BOARD=qemu-virt|rpi4]    boot Aspen under QEMU (virt by default)
#   make test                            lint, host tests, then the kernel's tests on both boards
#   make lint                            rustfmt and clippy (warnings are errors): host, kernel, user
#   make check-linux [SMP=4] [FULL=1]    the real programs' tests (user/libc, user/std) on the Linux peer
#   make ltp                             the LTP memory tests of ../shared/peers/ltp on the virt image
#   make fuzz-long [SEEDS=10] [ITER=200000]   the fuzzer's long run, one virt boot per seed (about 1-2 h)
#   make bench                           benchmarks: Aspen and Linux side by side, wake-up latency, host page tables
#   make image [BOARD=...]               build the kernel image; prints its path last
#   make sdcard [SDCARD_TESTS=1]         Pi 4 SD-card image; prints its path last
#   make check-sdcard                    build the SD-card image and check it on the host
#   make check-tlbi [BOARD=...]          the kernel's TLB invalidations: broadcast only (also in make test)
#   make mutants                         each TLB-maintenance mutant of scripts/mutants/ must fail a test
#   make loom                            model-check the ASID allocator's lock-free path and the share gate with loom
#   make flash DEV=/dev/sdX CONFIRM=yes  write the SD-card image to a removable disk
#   make test-board SERIAL=/dev/ttyUSB0 [BAUD=115200]   run the tests on a real Pi 4
#
# Everything the build needs is installed on first use by scripts/bootstrap.sh.

BOARD ?= qemu-virt
TARGET := aarch64-unknown-none-softfloat
BUILD := build
CARGO_HOST ?= cargo

ifeq ($(BOARD),qemu-virt)
  IMAGE_NAME := Image
else ifeq ($(BOARD),rpi4)
  IMAGE_NAME := kernel8.img
else
  $(error BOARD must be qemu-virt or rpi4, not '$(BOARD)')
endif

# Written by the bootstrap: which cargo cross-builds and with what flags.
-include $(BUILD)/toolchain.mk

ASPEN_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/aspen
RPI4_FW := $(ASPEN_CACHE)/rpi4
RPI4_DTB := $(RPI4_FW)/bcm2711-rpi-4-b.dtb
OBJCOPY := aarch64-linux-gnu-objcopy
QEMU := qemu-system-aarch64

CROSS_BUILD = $(CROSS_ENV) CARGO_TARGET_AARCH64_UNKNOWN_NONE_SOFTFLOAT_LINKER=ld.lld \
	$(CROSS_CARGO) build --release --target $(TARGET) $(CROSS_FLAGS) -p aspen-kernel

.PHONY: all image user libc-programs std-programs initramfs check-linux ltp fuzz-long run test lint bench bootstrap sdcard check-sdcard flash test-board clean check-tlbi mutants loom

all: image

$(BUILD)/toolchain.mk: scripts/bootstrap.sh
	scripts/bootstrap.sh toolchain

bootstrap:
	scripts/bootstrap.sh all

# $(call kernel,board,out-dir): builds the kernel for a board into out-dir.
define kernel
	$(CROSS_BUILD) --features board-$(1)
	mkdir -p $(2)
	cp target/$(TARGET)/release/aspen $(2)/aspen.elf
	$(OBJCOPY) -O binary $(2)/aspen.elf $(2)/$(if $(filter rpi4,$(1)),kernel8.img,Image)
endef

# IMAGE_DIR: where the image goes. ASPEN_DEFAULT_CMDLINE (environment): the
# command line used when the boot loader passes none (no device tree).
IMAGE_DIR ?= $(BUILD)/$(BOARD)

image: $(BUILD)/toolchain.mk
	$(call kernel,$(BOARD),$(IMAGE_DIR))
	@echo $(IMAGE_DIR)/$(IMAGE_NAME)

# Aspen's own user space (user/): static Linux aarch64 programs. They may use
# FP/SIMD, so they build for the hard-float target.
USER_TARGET := aarch64-unknown-none
USER_OUT := target/$(USER_TARGET)/release
USER_PROGRAMS := init usertests fuzz hello bench

user: $(BUILD)/toolchain.mk
	$(CROSS_ENV) CARGO_TARGET_AARCH64_UNKNOWN_NONE_LINKER=ld.lld $(CROSS_CARGO) build --release \
		--target $(USER_TARGET) $(CROSS_FLAGS) $(foreach p,$(USER_PROGRAMS),-p aspen-$(p))

# Real programs that test the ABI libc and Rust's std build on (threads,
# futexes, signals, timers, ...); usertests runs each (tests/programs.rs).
# C against glibc, static (user/libc/NAME.c -> /bin/c/NAME):
LIBC_CC := aarch64-linux-gnu-gcc
LIBC_CFLAGS := -static -pthread -O2 -Wall -Werror
LIBC_PROGRAMS := threads futex pi robust pshared signals process timers sched limits mremap
LIBC_OUT := $(BUILD)/libc

libc-programs: $(LIBC_PROGRAMS:%=$(LIBC_OUT)/%)

$(LIBC_OUT)/%: user/libc/%.c user/libc/check.h
	@mkdir -p $(LIBC_OUT)
	$(LIBC_CC) $(LIBC_CFLAGS) -o $@ $<

# Rust std for musl, static (user/std, a cargo workspace of its own ->
# /bin/std/NAME), linked by the C cross compiler with musl's own crt and
# libc from the Rust target. Needs rustup (STD_CARGO, from build/toolchain.mk);
# with Debian's rustc-web there is no musl std, and they are skipped.
STD_TARGET := aarch64-unknown-linux-musl
STD_PROGRAMS := threads process panic
STD_TARGET_DIR := target/std
STD_OUT := $(STD_TARGET_DIR)/$(STD_TARGET)/release
STD_BUILD = CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=$(LIBC_CC) $(STD_CARGO)

std-programs: $(BUILD)/toolchain.mk
ifeq ($(STD_CARGO),)
	@echo "std-programs: SKIPPED: no rustup toolchain with $(STD_TARGET) (Debian rustc-web fallback); /bin/std/* will be missing and their tests fail"
else
	$(STD_BUILD) build --release --target $(STD_TARGET) --target-dir $(STD_TARGET_DIR) \
		--manifest-path user/std/Cargo.toml
endif

# The initramfs: /init, /bin/usertests, /bin/fuzz, /bin/hello, /bin/c/*,
# /bin/std/* (when built), /etc/aspen-release, the shell-script tests in
# /usr/share/aspen/shell; Debian's busybox (with its applet links in /bin)
# and libc6 when they can be fetched (scripts/userland.sh); mk-initramfs.sh
# adds /dev, /dev/console, /tmp and /proc.
ASPEN_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
ROOTFS := $(BUILD)/rootfs
INITRAMFS := $(BUILD)/initramfs.cpio

initramfs: user libc-programs std-programs
	rm -rf $(ROOTFS)
	mkdir -p $(ROOTFS)/etc $(ROOTFS)/bin/c
	echo "Aspen $(ASPEN_VERSION)" >$(ROOTFS)/etc/aspen-release
	$(OBJCOPY) --strip-all $(USER_OUT)/init $(ROOTFS)/init
	$(OBJCOPY) --strip-all $(USER_OUT)/usertests $(ROOTFS)/bin/usertests
	$(OBJCOPY) --strip-all $(USER_OUT)/fuzz $(ROOTFS)/bin/fuzz
	$(OBJCOPY) --strip-all $(USER_OUT)/hello $(ROOTFS)/bin/hello
	$(foreach p,$(LIBC_PROGRAMS),$(OBJCOPY) --strip-all $(LIBC_OUT)/$(p) $(ROOTFS)/bin/c/$(p) &&) true
ifneq ($(STD_CARGO),)
	mkdir -p $(ROOTFS)/bin/std
	$(foreach p,$(STD_PROGRAMS),$(OBJCOPY) --strip-all $(STD_OUT)/$(p) $(ROOTFS)/bin/std/$(p) &&) true
endif
	mkdir -p $(ROOTFS)/usr/share/aspen
	cp -r tests/shell $(ROOTFS)/usr/share/aspen/shell
	scripts/bootstrap.sh busybox && scripts/userland.sh $(ROOTFS) || \
		echo "initramfs: WITHOUT Debian's busybox and libc6 (see above): /init falls back to Aspen's own shell, and the busybox tests fail"
	scripts/mk-initramfs.sh $(ROOTFS) $(INITRAMFS)

# Boots the Linux peer kernel (../shared/peers/linux-qemu) with this
# initramfs and runs the real programs' tests there (Linux is the reference).
# SMP=4 boots four CPUs; FULL=1 runs the whole user test suite.
check-linux: initramfs
	SMP="$(SMP)" FULL="$(FULL)" scripts/linux-check.sh

ltp:
	$(MAKE) -s image BOARD=qemu-virt
	scripts/ltp.sh $(BUILD)/qemu-virt/Image

# Not part of `make test`: ten seeds of 200,000 calls take one to two hours.
SEEDS ?= 10
ITER ?= 200000
fuzz-long:
	$(MAKE) -s image initramfs BOARD=qemu-virt
	SEEDS=$(SEEDS) ITER=$(ITER) scripts/fuzz-long.sh $(BUILD)/qemu-virt/Image

# QEMU command lines for `make run`.
QEMU_virt := $(QEMU) -M virt -cpu cortex-a72 -smp 4 -m 1G -nographic -no-reboot \
	-semihosting-config enable=on,target=native -append "semihosting"
QEMU_rpi4 := $(QEMU) -M raspi4b -nographic -no-reboot \
	-semihosting-config enable=on,target=native -append "semihosting"

run: image initramfs
	scripts/bootstrap.sh qemu
ifeq ($(BOARD),rpi4)
	@scripts/bootstrap.sh sdcard || echo "make run: no Pi 4 device tree; booting on board defaults"
	$(QEMU_rpi4) $(if $(wildcard $(RPI4_DTB)),-dtb $(RPI4_DTB)) \
		-kernel $(BUILD)/rpi4/$(IMAGE_NAME) -initrd $(INITRAMFS)
else
	$(QEMU_virt) -kernel $(BUILD)/qemu-virt/$(IMAGE_NAME) -initrd $(INITRAMFS)
endif

test: $(BUILD)/toolchain.mk
	scripts/test-all.sh

# rustfmt, then clippy with warnings as errors over the host crates, the
# kernel for each board (same toolchain and flags as `image`) and the user
# programs; `make test` runs it first. Skips clippy, saying so, where the
# toolchain has none.
lint: $(BUILD)/toolchain.mk
	CARGO_HOST="$(CARGO_HOST)" CROSS_CARGO="$(CROSS_CARGO)" CROSS_ENV="$(CROSS_ENV)" CROSS_FLAGS="$(CROSS_FLAGS)" \
		TARGET=$(TARGET) USER_TARGET=$(USER_TARGET) USER_PROGRAMS="$(USER_PROGRAMS)" \
		STD_CARGO="$(STD_CARGO)" STD_TARGET=$(STD_TARGET) STD_TARGET_DIR=$(STD_TARGET_DIR) scripts/lint.sh

# Every TLBI in the kernel (BOARD) reaches every CPU, but the allowed local
# flushes (tests/image-check/src/tlbi.rs).
check-tlbi: image
	$(CARGO_HOST) build --release -q -p aspen-image-check
	target/release/aspen-tlbi-check $(BUILD)/$(BOARD)/aspen.elf

# The hand-made mutants of the TLB maintenance code (scripts/mutants/*.patch),
# each of which a test must catch; about 7 minutes, so not part of `make test`.
mutants: $(BUILD)/toolchain.mk
	scripts/mutants.sh

# The ASID allocator's switch path and rollover, and the share gate of
# faults and the space's lock, under loom (every interleaving); in its own
# target directory, as --cfg loom rebuilds all.
loom:
	RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom $(CARGO_HOST) test --release -p aspen-mm --lib loom_tests

# Benchmarks: Aspen and Linux side by side under QEMU -icount, wake-up latency
# (the rtlat peer; LATENCY=0 skips it), then the host
# benchmarks of the page-table operations. HOST_BENCH=0 skips the latter.
bench: $(BUILD)/toolchain.mk
	scripts/bench.sh

# --- Raspberry Pi 4 SD card ---------------------------------------------------

RPI4_OUT := $(BUILD)/rpi4
SDCARD := $(RPI4_OUT)/sdcard.img
IMAGE_CHECK := target/release/aspen-image-check
# SDCARD_TESTS=1: the card's kernel runs its self-tests at boot, then init
# runs the user tests (for test-board).
SDCARD_CMDLINE := $(shell cat bsp/rpi4/boot/cmdline.txt)$(if $(SDCARD_TESTS), aspen.ktest -- --run-tests)
# The config.txt lines the Pi 4 cannot boot Aspen without.
RPI4_CONFIG_LINES := arm_64bit=1 enable_uart=1 init_uart_clock=48000000 \
	kernel=kernel8.img kernel_address=0x80000 device_tree=bcm2711-rpi-4-b.dtb

sdcard: $(BUILD)/toolchain.mk initramfs
	scripts/bootstrap.sh sdcard
	$(call kernel,rpi4,$(RPI4_OUT))
	printf '%s\n' "$(SDCARD_CMDLINE)" >$(RPI4_OUT)/cmdline.txt
	ASPEN_CMDLINE="$(SDCARD_CMDLINE)" scripts/mk-sdcard.sh $(RPI4_OUT)/kernel8.img $(INITRAMFS) $(SDCARD)

check-sdcard: sdcard
	$(CARGO_HOST) build --release -q -p aspen-image-check
	$(IMAGE_CHECK) $(SDCARD) \
		--expect start4.elf=$(RPI4_FW)/start4.elf \
		--expect fixup4.dat=$(RPI4_FW)/fixup4.dat \
		--expect bcm2711-rpi-4-b.dtb=$(RPI4_DTB) \
		--expect config.txt=bsp/rpi4/boot/config.txt \
		--expect cmdline.txt=$(RPI4_OUT)/cmdline.txt \
		--expect kernel8.img=$(RPI4_OUT)/kernel8.img \
		--expect initramfs.cpio=$(INITRAMFS) \
		$(foreach line,$(RPI4_CONFIG_LINES),--config-line $(line)) \
		--config-line "initramfs initramfs.cpio followkernel" \
		--cmdline "$(SDCARD_CMDLINE)"

# Writes the image built by `make sdcard`; builds nothing, so it can run under
# sudo. scripts/flash.sh refuses anything but an unmounted removable whole disk.
flash:
	CONFIRM="$(CONFIRM)" IMAGE="$(SDCARD)" scripts/flash.sh "$(DEV)"

# A Pi 4 booted from a card made with `make sdcard SDCARD_TESTS=1`, on a
# serial adapter: reset the board when the runner says so.
BAUD ?= 115200
test-board:
	@[ -n "$(SERIAL)" ] || { echo "make test-board: set SERIAL=/dev/ttyUSB0 (the board's serial adapter)"; exit 2; }
	$(CARGO_HOST) build --release -q -p aspen-runner
	target/release/aspen-runner serial --device $(SERIAL) --baud $(BAUD) --log $(BUILD)/test-board.log

clean:
	$(CARGO_HOST) clean
	rm -rf $(BUILD)
