//! Threads and the calls they synchronise with: raw `clone` threads
//! ([`spawn_thread`], joined through their `CLONE_CHILD_CLEARTID` word),
//! `futex`, robust lists and the scheduling calls.
//!
//! The rest of this crate keeps process-global state (the heap, the stdout
//! buffer) without locks: a thread body must use neither, and report
//! through atomics instead.

use core::arch::asm;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::mem::{self, MapFlags, Prot};
use crate::raw::{syscall0, syscall2, syscall3, syscall6, Sysno};
use crate::time::Timespec;
use crate::Errno;

pub use aspen_abi::futex::{FUTEX_OWNER_DIED, FUTEX_PRIVATE_FLAG, FUTEX_TID_MASK, FUTEX_WAITERS};

/// `FUTEX_WAIT`.
pub const FUTEX_WAIT: u32 = 0;
/// `FUTEX_WAKE`.
pub const FUTEX_WAKE: u32 = 1;
/// `FUTEX_REQUEUE`.
pub const FUTEX_REQUEUE: u32 = 3;
/// `FUTEX_CMP_REQUEUE`.
pub const FUTEX_CMP_REQUEUE: u32 = 4;
/// `FUTEX_WAKE_OP`.
pub const FUTEX_WAKE_OP: u32 = 5;
/// `FUTEX_LOCK_PI`.
pub const FUTEX_LOCK_PI: u32 = 6;
/// `FUTEX_UNLOCK_PI`.
pub const FUTEX_UNLOCK_PI: u32 = 7;
/// `FUTEX_TRYLOCK_PI`.
pub const FUTEX_TRYLOCK_PI: u32 = 8;
/// `FUTEX_WAIT_BITSET`.
pub const FUTEX_WAIT_BITSET: u32 = 9;
/// `FUTEX_WAKE_BITSET`.
pub const FUTEX_WAKE_BITSET: u32 = 10;
/// `FUTEX_CLOCK_REALTIME`.
pub const FUTEX_CLOCK_REALTIME: u32 = 256;

/// `SCHED_OTHER`.
pub const SCHED_OTHER: i32 = 0;
/// `SCHED_FIFO`.
pub const SCHED_FIFO: i32 = 1;
/// `SCHED_RR`.
pub const SCHED_RR: i32 = 2;
/// `SCHED_RESET_ON_FORK`, or-ed into a policy.
pub const SCHED_RESET_ON_FORK: i32 = 0x4000_0000;

/// `FUTEX_OP(op, oparg, cmp, cmparg)` of `<linux/futex.h>`.
pub const fn futex_op(op: u32, oparg: u32, cmp: u32, cmparg: u32) -> u32 {
    ((op & 0xf) << 28) | ((cmp & 0xf) << 24) | ((oparg & 0xfff) << 12) | (cmparg & 0xfff)
}

/// futex(2) with every argument raw: `timeout` is a pointer to a
/// `struct timespec` or, for the requeues and `FUTEX_WAKE_OP`, `val2`.
pub fn futex(
    word: *const AtomicU32,
    op: u32,
    val: u32,
    timeout: usize,
    word2: usize,
    val3: u32,
) -> Result<usize, Errno> {
    // SAFETY: the kernel reads and writes only the futex words, which the
    // caller passes as atomics (or bad pointers on purpose), and reads the
    // timeout.
    let ret = unsafe {
        syscall6(Sysno::Futex.number(), word as usize, op as usize, val as usize, timeout, word2, val3 as usize)
    };
    Errno::result(ret)
}

/// `FUTEX_WAIT` on `word` while it holds `expected`, for at most `timeout`.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<&Timespec>) -> Result<(), Errno> {
    let timeout = timeout.map_or(0, |t| t as *const Timespec as usize);
    futex(word, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, expected, timeout, 0, 0).map(drop)
}

/// `FUTEX_WAKE`: wakes up to `count` waiters of `word`; how many.
pub fn futex_wake(word: &AtomicU32, count: u32) -> Result<usize, Errno> {
    futex(word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, count, 0, 0, 0)
}

/// How many threads wait on the private futex `word`: requeued onto itself
/// (`FUTEX_REQUEUE`, none woken), which counts them without disturbing them.
pub fn futex_waiters(word: &AtomicU32) -> Result<usize, Errno> {
    futex(word, FUTEX_REQUEUE | FUTEX_PRIVATE_FLAG, 0, i32::MAX as usize, word as *const AtomicU32 as usize, 0)
}

/// gettid(2).
pub fn gettid() -> i32 {
    // SAFETY: no memory is involved.
    unsafe { syscall0(Sysno::Gettid.number()) as i32 }
}

/// Bytes of a thread's stack.
pub const THREAD_STACK: usize = 64 * 1024;

/// The `clone` flags of a thread, as C libraries pass them.
const THREAD_FLAGS: usize = 0x100 // CLONE_VM
    | 0x200 // CLONE_FS
    | 0x400 // CLONE_FILES
    | 0x800 // CLONE_SIGHAND
    | 0x1_0000 // CLONE_THREAD
    | 0x4_0000 // CLONE_SYSVSEM
    | 0x8_0000 // CLONE_SETTLS
    | 0x10_0000 // CLONE_PARENT_SETTID
    | 0x20_0000; // CLONE_CHILD_CLEARTID

/// A running thread: its id, its stack, and the word the kernel clears
/// (and futex-wakes) when it ends.
pub struct Thread {
    tid: i32,
    stack: usize,
    /// Set to the id by `CLONE_PARENT_SETTID`, cleared at exit; in the
    /// thread's stack mapping (its lowest word), which outlives the thread.
    word: *const AtomicU32,
}

impl Thread {
    /// Its thread id.
    pub fn tid(&self) -> i32 {
        self.tid
    }

    /// Waits until the thread has ended, then frees its stack.
    pub fn join(self) -> Result<(), Errno> {
        // SAFETY: the word lives in the stack mapping, unmapped only below.
        let word = unsafe { &*self.word };
        loop {
            let tid = word.load(Ordering::Acquire);
            if tid == 0 {
                break;
            }
            // Shared, as the kernel's wake of the word is (as C libraries
            // wait for it): a private wait would not meet it on Linux.
            match futex(word, FUTEX_WAIT, tid, 0, 0, 0).map(drop) {
                Ok(()) | Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
        // SAFETY: the thread has ended; nothing uses its stack any more.
        unsafe { mem::munmap(self.stack, THREAD_STACK) }
    }
}

/// Starts a thread of this process running `body(arg)` on a stack of its
/// own, then `exit` (the thread alone). The body must not use the heap or
/// stdout (see the module doc).
pub fn spawn_thread(body: extern "C" fn(usize), arg: usize) -> Result<Thread, Errno> {
    // SAFETY: a fresh private mapping, used only as the thread's stack.
    let stack = unsafe {
        mem::mmap(0, THREAD_STACK, Prot::READ | Prot::WRITE, MapFlags::PRIVATE | MapFlags::ANONYMOUS, -1, 0)
    }?;
    let word = stack as *const AtomicU32;
    // SAFETY: the mapping is ours, readable and writable.
    unsafe { (*word).store(u32::MAX, Ordering::Relaxed) };
    let top = stack + THREAD_STACK;
    // The thread pointer: a block at the bottom of the stack (unused).
    let tls = stack + 64;
    let ret: isize;
    // SAFETY: the child runs on its own stack (`top`), calls `body(arg)`
    // from registers the kernel copies into it (x9, x10), and ends with
    // `exit`, never returning into this function's frame; the parent
    // returns normally with the child's id.
    unsafe {
        asm!(
            "svc #0",
            "cbnz x0, 2f",
            "mov x0, x10",
            "blr x9",
            "mov x0, #0",
            "mov x8, #93",
            "svc #0",
            "2:",
            in("x8") Sysno::Clone.number(),
            inlateout("x0") THREAD_FLAGS as isize => ret,
            in("x1") top,
            in("x2") word as usize,
            in("x3") tls,
            in("x4") word as usize,
            in("x9") body as usize,
            in("x10") arg,
            options(nostack),
        )
    };
    match Errno::result(ret) {
        Ok(tid) => Ok(Thread { tid: tid as i32, stack, word }),
        Err(e) => {
            // SAFETY: no thread was made; the stack is unused.
            unsafe { mem::munmap(stack, THREAD_STACK) }?;
            Err(e)
        }
    }
}

/// sched_setscheduler(2) with `priority` as its `struct sched_param`.
pub fn sched_setscheduler(pid: i32, policy: i32, priority: i32) -> Result<(), Errno> {
    // SAFETY: the kernel reads one int.
    Errno::result(unsafe {
        syscall3(Sysno::SchedSetscheduler.number(), pid as usize, policy as usize, &priority as *const i32 as usize)
    })
    .map(drop)
}

/// sched_getscheduler(2).
pub fn sched_getscheduler(pid: i32) -> Result<i32, Errno> {
    // SAFETY: no memory is involved.
    Errno::result(unsafe { syscall2(Sysno::SchedGetscheduler.number(), pid as usize, 0) }).map(|p| p as i32)
}

/// sched_getparam(2): the real-time priority.
pub fn sched_getparam(pid: i32) -> Result<i32, Errno> {
    let mut priority = -1i32;
    // SAFETY: the kernel writes one int.
    Errno::result(unsafe {
        syscall2(Sysno::SchedGetparam.number(), pid as usize, &mut priority as *mut i32 as usize)
    })?;
    Ok(priority)
}

/// sched_setparam(2).
pub fn sched_setparam(pid: i32, priority: i32) -> Result<(), Errno> {
    // SAFETY: the kernel reads one int.
    Errno::result(unsafe { syscall2(Sysno::SchedSetparam.number(), pid as usize, &priority as *const i32 as usize) })
        .map(drop)
}
