# Aspen: build, run and test.
#
#   make run   [BOARD=qemu-virt|rpi4]   boot Aspen under QEMU (virt by default)
#   make test                           host tests, then the kernel's tests on both boards
#   make image [BOARD=...]              build the kernel image; prints its path last
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
RPI4_DTB := $(ASPEN_CACHE)/rpi4/bcm2711-rpi-4-b.dtb
OBJCOPY := aarch64-linux-gnu-objcopy
QEMU := qemu-system-aarch64
RUNNER := target/release/aspen-runner

CROSS_BUILD = $(CROSS_ENV) CARGO_TARGET_AARCH64_UNKNOWN_NONE_SOFTFLOAT_LINKER=ld.lld \
	$(CROSS_CARGO) build --release --target $(TARGET) $(CROSS_FLAGS) -p aspen-kernel

.PHONY: all image test-image run test test-host test-kernel runner bootstrap clean FORCE

all: image

$(BUILD)/toolchain.mk: scripts/bootstrap.sh
	scripts/bootstrap.sh toolchain

bootstrap:
	scripts/bootstrap.sh all

# $(call kernel,board,features,out-dir)
define kernel
	$(CROSS_BUILD) --features board-$(1)$(2)
	mkdir -p $(3)
	cp target/$(TARGET)/release/aspen $(3)/aspen.elf
	$(OBJCOPY) -O binary $(3)/aspen.elf $(3)/$(if $(filter rpi4,$(1)),kernel8.img,Image)
endef

image: $(BUILD)/toolchain.mk
	$(call kernel,$(BOARD),,$(BUILD)/$(BOARD))
	@echo $(BUILD)/$(BOARD)/$(IMAGE_NAME)

test-image: $(BUILD)/toolchain.mk
	$(call kernel,$(BOARD),$(comma)ktest,$(BUILD)/$(BOARD)/ktest)
	@echo $(BUILD)/$(BOARD)/ktest/$(IMAGE_NAME)

comma := ,

# QEMU command lines for `make run`.
QEMU_virt := $(QEMU) -M virt -cpu cortex-a72 -m 1G -nographic -no-reboot \
	-semihosting-config enable=on,target=native -append "semihosting"
QEMU_rpi4 := $(QEMU) -M raspi4b -nographic -no-reboot \
	-semihosting-config enable=on,target=native -append "semihosting"

run: image
	scripts/bootstrap.sh qemu
ifeq ($(BOARD),rpi4)
	@scripts/bootstrap.sh sdcard || echo "make run: no Pi 4 device tree; booting on board defaults"
	$(QEMU_rpi4) $(if $(wildcard $(RPI4_DTB)),-dtb $(RPI4_DTB)) -kernel $(BUILD)/rpi4/$(IMAGE_NAME)
else
	$(QEMU_virt) -kernel $(BUILD)/qemu-virt/$(IMAGE_NAME)
endif

runner:
	$(CARGO_HOST) build --release -q -p aspen-runner

test: $(BUILD)/toolchain.mk
	scripts/test-all.sh

clean:
	$(CARGO_HOST) clean
	rm -rf $(BUILD)
