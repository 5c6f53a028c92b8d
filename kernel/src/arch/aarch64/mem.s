// memcpy, memmove and memset for the kernel, in place of compiler_builtins'
// portable ones (weak symbols), which move a misaligned source about a
// byte per instruction: a file page filled from the initramfs, a read
// through the page cache, an execve's image spent most of their time there.
// These move 64 bytes per step with paired loads and stores, then 8, then
// 1. Unaligned accesses are fine: the kernel runs with SCTLR_EL1.A clear,
// and these are for Normal memory only (device registers are reached with
// volatile accesses of their own width, never through memcpy).

.section .text.mem, "ax"

// void *memcpy(void *dst, const void *src, size_t n)
.global memcpy
memcpy:
    mov     x3, x0
copy_forward:
    subs    x2, x2, #64
    b.lo    2f
1:  ldp     x4, x5, [x1]
    ldp     x6, x7, [x1, #16]
    ldp     x8, x9, [x1, #32]
    ldp     x10, x11, [x1, #48]
    add     x1, x1, #64
    stp     x4, x5, [x3]
    stp     x6, x7, [x3, #16]
    stp     x8, x9, [x3, #32]
    stp     x10, x11, [x3, #48]
    add     x3, x3, #64
    subs    x2, x2, #64
    b.hs    1b
2:  adds    x2, x2, #56
    b.lo    4f
3:  ldr     x4, [x1], #8
    str     x4, [x3], #8
    subs    x2, x2, #8
    b.hs    3b
4:  adds    x2, x2, #8
    b.eq    6f
5:  ldrb    w4, [x1], #1
    strb    w4, [x3], #1
    subs    x2, x2, #1
    b.ne    5b
6:  ret

// void *memmove(void *dst, const void *src, size_t n): forward unless the
// destination starts inside the source, then backward from the end.
.global memmove
memmove:
    mov     x3, x0
    sub     x4, x0, x1
    cmp     x4, x2
    b.hs    copy_forward
    add     x1, x1, x2
    add     x3, x3, x2
    subs    x2, x2, #64
    b.lo    2f
1:  ldp     x4, x5, [x1, #-16]
    ldp     x6, x7, [x1, #-32]
    ldp     x8, x9, [x1, #-48]
    ldp     x10, x11, [x1, #-64]
    sub     x1, x1, #64
    stp     x4, x5, [x3, #-16]
    stp     x6, x7, [x3, #-32]
    stp     x8, x9, [x3, #-48]
    stp     x10, x11, [x3, #-64]
    sub     x3, x3, #64
    subs    x2, x2, #64
    b.hs    1b
2:  adds    x2, x2, #56
    b.lo    4f
3:  ldr     x4, [x1, #-8]!
    str     x4, [x3, #-8]!
    subs    x2, x2, #8
    b.hs    3b
4:  adds    x2, x2, #8
    b.eq    6f
5:  ldrb    w4, [x1, #-1]!
    strb    w4, [x3, #-1]!
    subs    x2, x2, #1
    b.ne    5b
6:  ret

// void *memset(void *dst, int c, size_t n)
.global memset
memset:
    mov     x3, x0
    and     x1, x1, #0xff
    mov     x4, #0x0101010101010101
    mul     x1, x1, x4
    subs    x2, x2, #64
    b.lo    2f
1:  stp     x1, x1, [x3]
    stp     x1, x1, [x3, #16]
    stp     x1, x1, [x3, #32]
    stp     x1, x1, [x3, #48]
    add     x3, x3, #64
    subs    x2, x2, #64
    b.hs    1b
2:  adds    x2, x2, #56
    b.lo    4f
3:  str     x1, [x3], #8
    subs    x2, x2, #8
    b.hs    3b
4:  adds    x2, x2, #8
    b.eq    6f
5:  strb    w1, [x3], #1
    subs    x2, x2, #1
    b.ne    5b
6:  ret
