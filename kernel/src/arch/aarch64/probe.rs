//! Running kernel code that may fault, and getting the fault back as a
//! value instead of a crash.
//!
//! `probe(f)` runs `f`; if `f` takes a synchronous exception at EL1, the
//! exception handler resumes execution at the end of `probe`, which returns
//! the decoded fault. Tests use it to show that writing kernel text or
//! executing kernel data faults; the machinery is the same the kernel uses
//! for fallible access to user memory.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicPtr, Ordering};

use aspen_mm::asid::MAX_CPUS;

use super::cpu::cpu_id;
use super::exception::{Syndrome, TrapFrame};

/// What `aspen_probe` saves to resume after a fault (x19-x30, SP) and what
/// the handler reports. Layout shared with `exception.s`.
#[repr(C)]
struct ProbeContext {
    callee_saved: [u64; 12],
    sp: u64,
    fault: UnsafeCell<Option<Fault>>,
}

/// A fault taken inside a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub syndrome: Syndrome,
    /// Address of the faulting instruction.
    pub elr: u64,
}

static ACTIVE: [AtomicPtr<ProbeContext>; MAX_CPUS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CPUS];

extern "C" {
    fn aspen_probe(f: extern "C" fn(*mut u8), arg: *mut u8, ctx: *mut u8) -> u64;
    fn aspen_probe_landing();
}

struct Call<F, R> {
    f: Option<F>,
    result: MaybeUninit<R>,
}

extern "C" fn trampoline<F: FnOnce() -> R, R>(arg: *mut u8) {
    // SAFETY: `probe` passes a pointer to its live `Call<F, R>`.
    let call = unsafe { &mut *(arg as *mut Call<F, R>) };
    if let Some(f) = call.f.take() {
        call.result.write(f());
    }
}

/// Runs `f`, returning its result, or the fault it took.
///
/// After a fault, `f`'s stack frames are abandoned without running
/// destructors: `f` must not hold locks or other state that needs dropping
/// at the point where it may fault.
pub fn probe<F: FnOnce() -> R, R>(f: F) -> Result<R, Fault> {
    let mut call = Call { f: Some(f), result: MaybeUninit::uninit() };
    let mut ctx = ProbeContext { callee_saved: [0; 12], sp: 0, fault: UnsafeCell::new(None) };
    let slot = &ACTIVE[cpu_id() % MAX_CPUS];
    let previous = slot.swap(&mut ctx, Ordering::AcqRel);
    // SAFETY: `aspen_probe` saves the callee-saved registers and SP in `ctx`
    // and calls `trampoline` with `call`, both of which outlive the call. On
    // a fault, `recover` redirects the exception return to the landing pad,
    // which restores that state and returns 1 as if from `aspen_probe`.
    let faulted = unsafe {
        aspen_probe(
            trampoline::<F, R>,
            &mut call as *mut Call<F, R> as *mut u8,
            &mut ctx as *mut ProbeContext as *mut u8,
        )
    };
    slot.store(previous, Ordering::Release);
    if faulted != 0 {
        // SAFETY: the handler wrote the fault before resuming at the landing pad.
        return Err(unsafe { (*ctx.fault.get()).expect("probe landed without a recorded fault") });
    }
    // SAFETY: `aspen_probe` returned normally, so the trampoline ran `f` to completion.
    Ok(unsafe { call.result.assume_init() })
}

/// Called by the exception dispatcher for synchronous exceptions at EL1:
/// if a probe is active on this CPU, records the fault and redirects the
/// return to the probe's landing pad.
pub fn recover(frame: &mut TrapFrame, syndrome: Syndrome) -> bool {
    let ctx = ACTIVE[cpu_id() % MAX_CPUS].swap(core::ptr::null_mut(), Ordering::AcqRel);
    if ctx.is_null() {
        return false;
    }
    // SAFETY: a non-null slot points at the `ProbeContext` of a `probe` call
    // still running on this CPU (its frame is below us on this stack).
    unsafe { *(*ctx).fault.get() = Some(Fault { syndrome, elr: frame.elr }) };
    frame.elr = aspen_probe_landing as *const () as u64;
    frame.x[0] = ctx as u64;
    true
}
