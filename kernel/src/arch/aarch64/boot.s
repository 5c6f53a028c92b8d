// Aspen's entry point: the Linux arm64 image header, then early boot.
//
// Runs at the physical load address with the MMU off, so everything here is
// PC-relative. It parks every CPU but the first, drops to EL1, zeroes BSS,
// maps the kernel image, the DTB and the console UART with 2 MiB blocks in a
// temporary table tree (the same tree serves TTBR0 as an identity map and
// TTBR1 as the high half, since VA = 0xFFFF_0000_0000_0000 + PA keeps the
// table indices), turns the MMU on and jumps to `kernel_init` in the high
// half with x0 = the DTB's physical address. Secondary cores, once the
// kernel starts them, enter at `aspen_secondary_entry` (below).

.equ CURRENT_EL_EL3,        0b1100
.equ CURRENT_EL_EL2,        0b1000
.equ BLOCK_NORMAL,          0x0040000000000701  // valid block, AttrIndx 0, SH inner, AF, UXN
.equ BLOCK_DEVICE,          0x0060000000000405  // valid block, AttrIndx 1, AF, PXN, UXN
.equ TABLE_DESC,            0x3
.equ MAIR_VALUE,            {MAIR_EL1}          // mm's paging::MAIR_EL1, a const operand of global_asm!
.equ TCR_VALUE,             0xB5103510          // T0SZ=T1SZ=16, 4K granules, WB WA inner-shareable walks
.equ SCTLR_EL1_RES1,        0x30D00800
.equ SCTLR_EL1_MMU_ON,      (SCTLR_EL1_RES1 | (1 << 26) | (1 << 18) | (1 << 16) | (1 << 15) | (1 << 14) | (1 << 12) | (1 << 4) | (1 << 3) | (1 << 2) | 1)
// UCI, nTWE, nTWI, UCT, DZE (EL0 cache maintenance, WFE/WFI, CTR_EL0, DC ZVA,
// as Linux allows), I, SA0, SA, C, M
.equ HCR_EL2_RW,            (1 << 31)
.equ SCR_EL3_VALUE,         0x5B1               // RW, HCE, SMD, RES1[5:4], NS
.equ SPSR_EL1H_MASKED,      0x3C5               // EL1h, DAIF masked
.equ SPSR_EL2H_MASKED,      0x3C9               // EL2h, DAIF masked
.equ BLOCK_SHIFT,           21
.equ LOW_4G_BLOCKS,         2048                // 2 MiB blocks in the first 4 GiB
.equ SECONDARY_RECORDS,     {MAX_CPUS}          // entries of aspen_secondary_boot

.section .text.boot, "ax"
.global _start
_start:
    // Linux arm64 Image header (Documentation/arch/arm64/booting.rst).
    b       primary_entry                   // code0
    .long   0                               // code1
    .quad   0x80000                         // text_offset: RAM base + 512 KiB
    .quad   __image_size                    // image_size, including BSS and the boot stack
    .quad   0x2                             // flags: little endian, 4 KiB pages
    .quad   0, 0, 0                         // reserved
    .ascii  "ARM\x64"                       // magic
    .long   0                               // reserved (PE offset)

primary_entry:
    mov     x19, x0                         // DTB physical address (0 if none)

    // Only CPU 0 (MPIDR affinity 0.0.0) boots here; the kernel starts the
    // others at aspen_secondary_entry. A core that still arrives here (a
    // loader that releases every core at once) is parked.
    mrs     x1, mpidr_el1
    and     x1, x1, #0xffffff
    cbnz    x1, park

    bl      drop_to_el1

at_el1:
    // FP/SIMD at EL1 and EL0: the compiler uses SIMD registers for copies.
    mov     x1, #(3 << 20)
    msr     cpacr_el1, x1
    isb

    // Stop if the loader put the image anywhere but where it is linked.
    adr     x1, _start
    ldr     x2, =__kernel_phys_base
    cmp     x1, x2
    b.ne    wrong_load_address

    adrp    x1, __boot_stack_top
    add     x1, x1, :lo12:__boot_stack_top
    mov     sp, x1

    // Zero BSS (16-byte aligned at both ends by the linker script).
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:
    // Table tree: boot_l0[0] -> boot_l1, boot_l1[0..4] -> boot_l2 (4 tables,
    // indexed by PA >> 21 over the first 4 GiB).
    adrp    x20, boot_l0
    adrp    x21, boot_l1
    adrp    x22, boot_l2
    orr     x1, x21, #TABLE_DESC
    str     x1, [x20]
    mov     x3, #0
3:  add     x1, x22, x3, lsl #12
    orr     x1, x1, #TABLE_DESC
    str     x1, [x21, x3, lsl #3]
    add     x3, x3, #1
    cmp     x3, #4
    b.lo    3b

    // The kernel image, from its 2 MiB block to its end.
    ldr     x4, =BLOCK_NORMAL
    adr     x1, _start
    ldr     x2, =__image_size
    add     x2, x1, x2
    bl      map_blocks
    // The DTB (at most 2 MiB, so at most two blocks).
    cbz     x19, 4f
    mov     x1, x19
    add     x2, x19, #(2 << 20)
    bl      map_blocks
4:  // The console UART.
    ldr     x4, =BLOCK_DEVICE
    ldr     x1, =__boot_uart_phys
    add     x2, x1, #1
    bl      map_blocks

    ldr     x1, =MAIR_VALUE
    msr     mair_el1, x1
    ldr     x1, =TCR_VALUE
    mrs     x2, id_aa64mmfr0_el1
    and     x2, x2, #0x7                    // PARange -> TCR.IPS
    bfi     x1, x2, #32, #3
    msr     tcr_el1, x1
    msr     ttbr0_el1, x20
    msr     ttbr1_el1, x20
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    ldr     x1, =SCTLR_EL1_MMU_ON
    msr     sctlr_el1, x1
    isb

    // Into the high half.
    ldr     x1, =__boot_stack_top
    mov     sp, x1
    mov     x0, x19
    ldr     x1, =kernel_init
    mov     x29, xzr
    mov     x30, xzr
    br      x1

// Drops this core to EL1h with DAIF masked, from EL3 or EL2 as the loader
// left it, and returns (to x30) at EL1. Clobbers x1.
drop_to_el1:
    msr     daifset, #0xf
    mrs     x1, CurrentEL
    and     x1, x1, #0xc
    cmp     x1, #CURRENT_EL_EL3
    b.eq    drop_from_el3
    cmp     x1, #CURRENT_EL_EL2
    b.eq    drop_from_el2
    ret

drop_from_el3:
    ldr     x1, =SCR_EL3_VALUE
    msr     scr_el3, x1
    mov     x1, #SPSR_EL2H_MASKED
    msr     spsr_el3, x1
    adr     x1, drop_from_el2
    msr     elr_el3, x1
    eret

drop_from_el2:
    mov     x1, #HCR_EL2_RW                 // EL1 is AArch64; nothing trapped to EL2
    msr     hcr_el2, x1
    mov     x1, #0x3                        // EL1PCTEN, EL1PCEN: EL1 owns the physical timer
    msr     cnthctl_el2, x1
    msr     cntvoff_el2, xzr
    mov     x1, #0x33ff                     // CPTR_EL2: RES1 bits, FP/SIMD not trapped
    msr     cptr_el2, x1
    msr     hstr_el2, xzr
    ldr     x1, =SCTLR_EL1_RES1
    msr     sctlr_el1, x1
    mov     x1, #SPSR_EL1H_MASKED
    msr     spsr_el2, x1
    msr     elr_el2, x30
    eret

// A secondary core's entry, at its physical address with the MMU off (PSCI
// CPU_ON or the spin table sends it here; x0 is not used: QEMU's raspi
// stub passes 0). The boot core has filled this core's record in
// `aspen_secondary_boot` (64 bytes, indexed by MPIDR affinity 0, cleaned
// to the point of coherency): MAIR, TCR, TTBR1, SCTLR as the boot core
// runs with them, the stack top, the per-CPU block for TPIDR_EL1 and the
// Rust entry. TTBR0 gets the boot identity map for the instruction that
// turns the MMU on; the Rust entry replaces it.
.global aspen_secondary_entry
aspen_secondary_entry:
    bl      drop_to_el1
    mov     x1, #(3 << 20)                  // FP/SIMD at EL1 and EL0
    msr     cpacr_el1, x1
    isb
    mrs     x1, mpidr_el1
    and     x1, x1, #0xff
    cmp     x1, #SECONDARY_RECORDS
    b.hs    park
    adrp    x2, aspen_secondary_boot
    add     x2, x2, :lo12:aspen_secondary_boot
    add     x2, x2, x1, lsl #6
    ldp     x3, x4, [x2, #0]                // MAIR, TCR
    msr     mair_el1, x3
    msr     tcr_el1, x4
    adrp    x3, boot_l0
    msr     ttbr0_el1, x3
    ldp     x3, x4, [x2, #16]               // TTBR1, SCTLR
    msr     ttbr1_el1, x3
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    msr     sctlr_el1, x4
    isb
    ldp     x3, x4, [x2, #32]               // stack top, per-CPU block
    mov     sp, x3
    msr     tpidr_el1, x4
    ldr     x3, [x2, #48]                   // entry (high half)
    mov     x0, x1
    mov     x29, xzr
    mov     x30, xzr
    br      x3

// Maps [x1, x2) with 2 MiB blocks of attributes x4 into boot_l2 (base x22),
// keeping blocks already mapped. Addresses at or above 4 GiB are skipped.
map_blocks:
    lsr     x1, x1, #BLOCK_SHIFT
    sub     x2, x2, #1
    lsr     x2, x2, #BLOCK_SHIFT
5:  cmp     x1, x2
    b.hi    7f
    cmp     x1, #LOW_4G_BLOCKS
    b.hs    7f
    ldr     x3, [x22, x1, lsl #3]
    cbnz    x3, 6f
    orr     x3, x4, x1, lsl #BLOCK_SHIFT
    str     x3, [x22, x1, lsl #3]
6:  add     x1, x1, #1
    b       5b
7:  ret

// The image must run where it is linked: say so on the UART (MMU off, so
// the UART is reached at its physical address) and stop.
wrong_load_address:
    ldr     x1, =__boot_uart_phys
    adr     x2, wrong_load_message
8:  ldrb    w3, [x2], #1
    cbz     w3, park
9:  ldr     w4, [x1, #0x18]                 // UARTFR
    tbnz    w4, #5, 9b                      // TXFF
    str     w3, [x1]
    b       8b

park:
    wfe
    b       park

wrong_load_message:
    .asciz  "Aspen: loaded at the wrong address; set kernel_address=0x80000 (Pi) or use the Image header's text_offset\r\n"

.section .bss.boot_tables, "aw", %nobits
.balign 4096
boot_l0:    .space 4096
boot_l1:    .space 4096
boot_l2:    .space 4 * 4096
