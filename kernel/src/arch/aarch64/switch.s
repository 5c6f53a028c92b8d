// Task switching and task entry.
//
// A `CpuContext` holds what a task keeps across `aspen_switch`: the
// callee-saved registers x19-x28, the frame pointer x29, the return
// address x30, the stack pointer, and the task's user thread pointers
// TPIDR_EL0 and TPIDRRO_EL0 (the kernel never uses them itself). Everything
// else is caller-saved and already on the task's stack.

.arch_extension fp
.arch_extension simd

.section .text.switch, "ax"

// void aspen_switch(CpuContext *prev, const CpuContext *next)
.global aspen_switch
aspen_switch:
    stp     x19, x20, [x0, #0]
    stp     x21, x22, [x0, #16]
    stp     x23, x24, [x0, #32]
    stp     x25, x26, [x0, #48]
    stp     x27, x28, [x0, #64]
    stp     x29, x30, [x0, #80]
    mov     x9, sp
    mrs     x10, tpidr_el0
    mrs     x11, tpidrro_el0
    str     x9, [x0, #96]
    stp     x10, x11, [x0, #104]
    ldp     x19, x20, [x1, #0]
    ldp     x21, x22, [x1, #16]
    ldp     x23, x24, [x1, #32]
    ldp     x25, x26, [x1, #48]
    ldp     x27, x28, [x1, #64]
    ldp     x29, x30, [x1, #80]
    ldr     x9, [x1, #96]
    ldp     x10, x11, [x1, #104]
    mov     sp, x9
    msr     tpidr_el0, x10
    msr     tpidrro_el0, x11
    ret

// First run of a user task: x19 = what to call first (the scheduler's end
// of the switch); its kernel stack holds the `TrapFrame` to return to EL0
// with. Interrupts stay masked until the ERET unmasks them from the frame's
// SPSR: an interrupt between restoring ELR_EL1 and the ERET would
// overwrite it.
.global aspen_task_entry_user
aspen_task_entry_user:
    blr     x19
    b       aspen_exception_return

// First run of a kernel thread: x19 = entry function, x20 = its argument,
// x21 = what to call first (the scheduler's end of the switch), x22 = what
// to call when the entry function returns (ends the thread; never returns).
.global aspen_task_entry_kernel
aspen_task_entry_kernel:
    blr     x21
    mov     x0, x20
    blr     x19
    blr     x22

// void aspen_fp_save(FpState *)  /  void aspen_fp_restore(const FpState *)
// q0-q31, then FPCR and FPSR.
.global aspen_fp_save
aspen_fp_save:
    stp     q0, q1, [x0, #0]
    stp     q2, q3, [x0, #32]
    stp     q4, q5, [x0, #64]
    stp     q6, q7, [x0, #96]
    stp     q8, q9, [x0, #128]
    stp     q10, q11, [x0, #160]
    stp     q12, q13, [x0, #192]
    stp     q14, q15, [x0, #224]
    stp     q16, q17, [x0, #256]
    stp     q18, q19, [x0, #288]
    stp     q20, q21, [x0, #320]
    stp     q22, q23, [x0, #352]
    stp     q24, q25, [x0, #384]
    stp     q26, q27, [x0, #416]
    stp     q28, q29, [x0, #448]
    stp     q30, q31, [x0, #480]
    mrs     x1, fpcr
    mrs     x2, fpsr
    add     x0, x0, #512
    stp     x1, x2, [x0]
    ret

.global aspen_fp_restore
aspen_fp_restore:
    ldp     q0, q1, [x0, #0]
    ldp     q2, q3, [x0, #32]
    ldp     q4, q5, [x0, #64]
    ldp     q6, q7, [x0, #96]
    ldp     q8, q9, [x0, #128]
    ldp     q10, q11, [x0, #160]
    ldp     q12, q13, [x0, #192]
    ldp     q14, q15, [x0, #224]
    ldp     q16, q17, [x0, #256]
    ldp     q18, q19, [x0, #288]
    ldp     q20, q21, [x0, #320]
    ldp     q22, q23, [x0, #352]
    ldp     q24, q25, [x0, #384]
    ldp     q26, q27, [x0, #416]
    ldp     q28, q29, [x0, #448]
    ldp     q30, q31, [x0, #480]
    add     x0, x0, #512
    ldp     x1, x2, [x0]
    msr     fpcr, x1
    msr     fpsr, x2
    ret
