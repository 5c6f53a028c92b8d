// EL1 exception vectors and the fault probe.
//
// Every vector saves the interrupted context as a `TrapFrame` (x0-x30,
// SP_EL0, ELR_EL1, SPSR_EL1: 34 double words) on the current stack, calls
// `aspen_exception_dispatch(frame, kind)` and restores whatever the handler
// left in the frame, so a handler can redirect the return.

.equ FRAME_SIZE, 34 * 8

.macro VECTOR kind
.balign 0x80
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #0]
    mov     x0, #\kind
    b       save_and_dispatch
.endm

.section .text.vectors, "ax"
.balign 2048
.global aspen_vectors
aspen_vectors:
    VECTOR 0        // current EL with SP_EL0: synchronous
    VECTOR 1        //   IRQ
    VECTOR 2        //   FIQ
    VECTOR 3        //   SError
    VECTOR 4        // current EL with SP_ELx
    VECTOR 5
    VECTOR 6
    VECTOR 7
    VECTOR 8        // lower EL, AArch64
    VECTOR 9
    VECTOR 10
    VECTOR 11
    VECTOR 12       // lower EL, AArch32
    VECTOR 13
    VECTOR 14
    VECTOR 15

save_and_dispatch:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, sp_el0
    stp     x30, x2, [sp, #240]
    mrs     x2, elr_el1
    mrs     x3, spsr_el1
    stp     x2, x3, [sp, #256]

    mov     x1, x0
    mov     x0, sp
    bl      aspen_exception_dispatch

// Returns from the `TrapFrame` at sp (also the first entry of a new user
// task). Interrupts are masked first: one taken between restoring ELR_EL1
// and the ERET would overwrite it. The ERET restores the frame's mask.
.global aspen_exception_return
aspen_exception_return:
    msr     daifset, #3
    ldp     x2, x3, [sp, #256]
    msr     elr_el1, x2
    msr     spsr_el1, x3
    ldp     x30, x2, [sp, #240]
    msr     sp_el0, x2
    ldp     x28, x29, [sp, #224]
    ldp     x26, x27, [sp, #208]
    ldp     x24, x25, [sp, #192]
    ldp     x22, x23, [sp, #176]
    ldp     x20, x21, [sp, #160]
    ldp     x18, x19, [sp, #144]
    ldp     x16, x17, [sp, #128]
    ldp     x14, x15, [sp, #112]
    ldp     x12, x13, [sp, #96]
    ldp     x10, x11, [sp, #80]
    ldp     x8, x9, [sp, #64]
    ldp     x6, x7, [sp, #48]
    ldp     x4, x5, [sp, #32]
    ldp     x2, x3, [sp, #16]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #FRAME_SIZE
    eret

// u64 aspen_probe(void (*f)(void *), void *arg, struct ProbeContext *ctx)
//
// Calls f(arg) and returns 0. If f faults, the exception handler resumes
// at aspen_probe_landing with x0 = ctx, which restores the callee-saved
// state saved here and returns 1 from aspen_probe instead.
.section .text.probe, "ax"
.global aspen_probe
aspen_probe:
    stp     x19, x20, [x2, #0]
    stp     x21, x22, [x2, #16]
    stp     x23, x24, [x2, #32]
    stp     x25, x26, [x2, #48]
    stp     x27, x28, [x2, #64]
    stp     x29, x30, [x2, #80]
    mov     x3, sp
    str     x3, [x2, #96]
    mov     x19, x2
    mov     x3, x0
    mov     x0, x1
    blr     x3
    mov     x0, #0
    ldr     x30, [x19, #88]
    ldr     x19, [x19, #0]
    ret

.global aspen_probe_landing
aspen_probe_landing:
    ldp     x19, x20, [x0, #0]
    ldp     x21, x22, [x0, #16]
    ldp     x23, x24, [x0, #32]
    ldp     x25, x26, [x0, #48]
    ldp     x27, x28, [x0, #64]
    ldp     x29, x30, [x0, #80]
    ldr     x1, [x0, #96]
    mov     sp, x1
    mov     x0, #1
    ret
