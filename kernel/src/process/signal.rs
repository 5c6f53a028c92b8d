//! Signals: sending, the state they live in, and delivery on the way back
//! to user space.
//!
//! State: the actions are per process and shared by its threads (and by
//! `CLONE_SIGHAND` processes): [`SharedActions`]. A signal sent to a
//! process waits in the process's [`Pending`] set until a thread that does
//! not block it takes it; one sent to a thread (`tgkill`, a fault) waits in
//! that thread's. Each thread has its mask, its alternate stack and a
//! `work` word that is 0 unless something may need doing before it
//! returns to user space: the one relaxed load [`super::return_to_user`]
//! makes on every return.
//!
//! Delivery ([`deliver`]) takes the lowest-numbered pending signal the
//! thread does not block (synchronous ones first), and runs its default
//! action or sets up Linux's arm64 `rt_sigframe` for its handler. An
//! interrupted system call returns one of the [`Restart`] kinds; delivery
//! turns it into a restart of the call (`pc` back to the `svc`, `x0` from
//! the saved original) or `EINTR`, as Linux.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use aspen_abi::mman::{MapFlags, Prot};
use aspen_abi::signal::frame::{self, FrameExtras, FrameLayout, SavedState};
use aspen_abi::signal::{
    AltStack, DefaultAction, MaskHow, Restart, SaFlags, SigAction, SigInfo, SigNo, SigSet, Signal, StackT, NSIG,
    SIG_DFL, SIG_IGN, SI_KERNEL,
};
use aspen_abi::uaccess::{UserMemory, UserSlice};
use aspen_abi::wait::WaitStatus;
use aspen_mm::aspace::MappedFile;
use aspen_mm::errno::Errno;
use aspen_mm::object::FileObject;
use aspen_mm::VirtAddr;
use spin::Mutex;

use super::thread::{self, Thread};
use super::{Process, PROCESSES};
use crate::arch::context::FpState;
use crate::arch::exception::TrapFrame;
use crate::memory::user_env::KernelMm;
use crate::task::{sched, Pid};

/// `work` bit: a signal may be deliverable.
pub(super) const WORK_SIGNAL: u32 = 1;
/// `work` bit: the process may be ending.
pub(super) const WORK_ENDING: u32 = 2;
/// `work` bit: the system call returned a [`Restart`] kind.
pub(super) const WORK_RESTART: u32 = 4;
/// `work` bit: a stop of the process waits for this thread to park
/// ([`super::jobctl`]).
pub(super) const WORK_STOP: u32 = 8;

/// Most real-time signals queued in one pending set (beyond: `EAGAIN`).
const MAX_QUEUED: usize = 1024;

/// The action of every signal: a table shared copy-on-write, so that a
/// fork copies a pointer, not the table, until one side changes an action.
#[derive(Clone)]
pub struct Actions(Arc<[SigAction; NSIG as usize]>);

/// Actions shared by the threads of a process and `CLONE_SIGHAND` ones.
pub type SharedActions = Arc<Mutex<Actions>>;

/// `SIG_IGN` with nothing else: what `execve` leaves of an ignored signal.
const IGNORE: SigAction = SigAction { handler: SIG_IGN, ..SigAction::DEFAULT };

impl Actions {
    /// Every signal with its default action.
    pub fn new() -> SharedActions {
        Arc::new(Mutex::new(Actions(Arc::new([SigAction::DEFAULT; NSIG as usize]))))
    }

    /// The action of `signo`.
    pub fn get(&self, signo: SigNo) -> SigAction {
        self.0[signo.number() as usize - 1]
    }

    fn set(&mut self, signo: SigNo, action: SigAction) {
        Arc::make_mut(&mut self.0)[signo.number() as usize - 1] = action;
    }

    /// What `execve` and `CLONE_CLEAR_SIGHAND` leave: handlers back to the
    /// default, ignored signals still ignored, no flags or masks.
    pub fn reset_handlers(&mut self) {
        let reset = |action: &SigAction| if action.handler == SIG_IGN { IGNORE } else { SigAction::DEFAULT };
        if self.0.iter().all(|action| reset(action) == *action) {
            return;
        }
        for action in Arc::make_mut(&mut self.0).iter_mut() {
            *action = reset(action);
        }
    }
}

/// Signals waiting: standard ones once each (a second instance coalesces
/// with the first), real-time ones queued with their own `siginfo`.
#[derive(Default)]
pub struct Pending {
    set: SigSet,
    infos: VecDeque<SigInfo>,
}

impl Pending {
    /// Adds `info`'s signal; `EAGAIN` for a real-time one when the queue
    /// is full (a standard signal always finds room: at most 31 more).
    fn add(&mut self, signo: SigNo, info: SigInfo) -> Result<(), Errno> {
        if self.set.contains(signo) && !signo.is_realtime() {
            return Ok(());
        }
        if signo.is_realtime() && self.infos.len() >= MAX_QUEUED {
            return Err(Errno::EAGAIN);
        }
        // No room for its information: refused as a full queue is.
        self.infos.try_reserve(1).map_err(|_| Errno::EAGAIN)?;
        self.set = self.set.with(signo);
        self.infos.push_back(info);
        Ok(())
    }

    /// Takes the first instance of `signo`.
    fn take(&mut self, signo: SigNo) -> Option<SigInfo> {
        let index = self.infos.iter().position(|info| info.signo() == Some(signo))?;
        let info = self.infos.remove(index)?;
        if !self.infos.iter().any(|info| info.signo() == Some(signo)) {
            self.set = self.set.without(signo);
        }
        Some(info)
    }

    /// Drops every instance of `signo`.
    fn discard(&mut self, signo: SigNo) {
        if self.set.contains(signo) {
            self.infos.retain(|info| info.signo() != Some(signo));
            self.set = self.set.without(signo);
        }
    }

    /// The signals waiting.
    pub fn set(&self) -> SigSet {
        self.set
    }

    /// How many instances wait (`SigQ` in `/proc/<pid>/status`).
    pub fn queued(&self) -> usize {
        self.infos.len()
    }
}

/// A thread's own signal state.
#[derive(Default)]
pub struct ThreadSignals {
    /// The signals it blocks.
    pub mask: SigSet,
    /// Signals sent to it alone.
    pub pending: Pending,
    /// Its alternate signal stack.
    pub altstack: AltStack,
    /// `rt_sigsuspend`'s mask to go back to once a handler's frame holds
    /// it (or no handler runs).
    saved_mask: Option<SigSet>,
    /// The original `x0` of a system call that returned a [`Restart`]
    /// kind (Linux's `orig_x0`).
    orig_x0: Option<u64>,
    /// The fault address of the fault signal it is about to take.
    fault_address: u64,
}

impl Thread {
    /// Recomputes the `work` bit that says a signal may be deliverable.
    pub(super) fn recalc_signals(&self) {
        let shared = self.process.pending.lock().set();
        let sig = self.signals.lock();
        if !((sig.pending.set() | shared) & !sig.mask).is_empty() {
            self.work.fetch_or(WORK_SIGNAL, Ordering::Relaxed);
        } else {
            self.work.fetch_and(!WORK_SIGNAL, Ordering::Relaxed);
        }
    }

    /// Whether a signal it does not block waits for it.
    pub(super) fn has_deliverable(&self) -> bool {
        if self.work.load(Ordering::Relaxed) & WORK_SIGNAL == 0 {
            return false;
        }
        let shared = self.process.pending.lock().set();
        let sig = self.signals.lock();
        !((sig.pending.set() | shared) & !sig.mask).is_empty()
    }

    /// Its mask.
    pub fn signal_mask(&self) -> SigSet {
        self.signals.lock().mask
    }

    /// Sets its mask (`SIGKILL` and `SIGSTOP` never in it).
    pub fn set_signal_mask(&self, mask: SigSet) {
        self.signals.lock().mask = mask.blockable();
        self.recalc_signals();
    }

    /// Records that the system call in progress returned a restart kind,
    /// with the `x0` it started with.
    pub fn note_restart(&self, orig_x0: u64) {
        self.signals.lock().orig_x0 = Some(orig_x0);
        self.work.fetch_or(WORK_RESTART, Ordering::Relaxed);
    }
}

impl Process {
    /// Its actions (shared with `CLONE_SIGHAND` processes).
    pub fn actions(&self) -> SharedActions {
        self.actions.lock().clone()
    }

    /// Sends `info` (signal `signo`) to the process: it waits for a thread
    /// that does not block it, the main thread first (Linux's
    /// `complete_signal`), which is woken.
    pub fn send(self: &Arc<Self>, signo: SigNo, info: SigInfo) -> Result<(), Errno> {
        if self.is_zombie() {
            return Ok(());
        }
        if signo == SigNo::from(Signal::Kill) {
            self.kill_group(WaitStatus::killed_by(signo));
            return Ok(());
        }
        let Some(main) = self.threads.lock().values().next().cloned() else { return Ok(()) };
        if !self.prepare(signo, &main) {
            return Ok(());
        }
        self.pending.lock().add(signo, info)?;
        let target = if !main.signal_mask().contains(signo) {
            Some(main)
        } else {
            self.threads.lock().values().find(|t| !t.signal_mask().contains(signo)).cloned()
        };
        if let Some(target) = target {
            target.recalc_signals();
            target.interrupt();
        }
        Ok(())
    }

    /// What happens as `signo` is sent, before it is queued: `SIGCONT`
    /// and stop signals cancel each other's pending instances, and
    /// `SIGCONT` ends a stop whatever its action and mask; a signal the
    /// process ignores (and `thread` does not block) is dropped (`false`).
    fn prepare(&self, signo: SigNo, thread: &Thread) -> bool {
        let cont = SigNo::from(Signal::Cont);
        let stops = [Signal::Stop, Signal::Tstp, Signal::Ttin, Signal::Ttou].map(SigNo::from);
        let cancels: &[SigNo] = if signo == cont {
            &stops
        } else if stops.contains(&signo) {
            core::slice::from_ref(&cont)
        } else {
            &[]
        };
        for &other in cancels {
            self.pending.lock().discard(other);
            for t in self.threads.lock().values() {
                t.signals.lock().pending.discard(other);
            }
        }
        if signo == cont {
            self.resume();
        }
        let ignored = self.actions().lock().get(signo).ignores(signo);
        !ignored || thread.signal_mask().contains(signo)
    }

    /// Ends every thread of the process with `status` (a fatal signal).
    fn kill_group(&self, status: WaitStatus) {
        self.set_ending(|ending| {
            ending.group.get_or_insert(status.0);
        });
        for thread in self.threads.lock().values() {
            thread.interrupt();
        }
    }
}

impl Thread {
    /// Sends `info` (signal `signo`) to this thread alone.
    pub fn send(&self, signo: SigNo, info: SigInfo) -> Result<(), Errno> {
        if signo == SigNo::from(Signal::Kill) {
            self.process.kill_group(WaitStatus::killed_by(signo));
            return Ok(());
        }
        if !self.process.prepare(signo, self) {
            return Ok(());
        }
        self.signals.lock().pending.add(signo, info)?;
        self.recalc_signals();
        self.interrupt();
        Ok(())
    }

    /// A signal the thread itself raised by a fault (Linux's
    /// `force_sig_info`): if it blocks or ignores it, it is unblocked and
    /// its action reset to the default, so the fault kills instead of
    /// being lost or retried forever.
    pub fn force(&self, signo: SigNo, info: SigInfo, fault_address: u64) {
        let actions = self.process.actions();
        let mut actions = actions.lock();
        let action = actions.get(signo);
        let mut sig = self.signals.lock();
        if action.handler == SIG_IGN || sig.mask.contains(signo) {
            sig.mask = sig.mask.without(signo);
            actions.set(signo, SigAction::DEFAULT);
        }
        sig.fault_address = fault_address;
        // Fault signals are standard ones, which always find room.
        let _ = sig.pending.add(signo, info);
        drop(sig);
        drop(actions);
        self.recalc_signals();
    }
}

/// `mov x8, #139` (`__NR_rt_sigreturn`); `svc #0`.
const TRAMPOLINE_CODE: [u32; 2] = [0xd280_1168, 0xd400_0001];

/// The page an address space maps read-only and executable for handlers
/// to return through when they have no `SA_RESTORER`: one anonymous
/// object, made when first needed.
fn trampoline_page() -> Arc<FileObject<'static, KernelMm>> {
    static PAGE: spin::Once<Arc<FileObject<'static, KernelMm>>> = spin::Once::new();
    PAGE.call_once(|| {
        let object = FileObject::anonymous(crate::memory::user_env::get(), 4096);
        let code: Vec<u8> = TRAMPOLINE_CODE.iter().flat_map(|w| w.to_le_bytes()).collect();
        // An anonymous object's first page is always writable: only a
        // frame shortage at boot could refuse it, and then the page stays
        // zero (a handler's return faults, SIGSEGV).
        let _ = object.write(0, &code);
        object
    })
    .clone()
}

impl Process {
    /// The address of the trampoline page in its address space, mapped
    /// there first if need be (Linux's vDSO has it from exec on; mapping it
    /// on demand costs processes that never need it nothing).
    fn trampoline(&self) -> Result<u64, Errno> {
        let mapped = self.trampoline.load(Ordering::Relaxed);
        if mapped != 0 {
            return Ok(mapped);
        }
        let object = trampoline_page();
        let addr = self.with_mm(|mm| {
            let file = MappedFile::read_only(object);
            let hint = VirtAddr::new(super::exec::TRAMPOLINE_HINT);
            mm.mmap(hint, 4096, Prot::READ | Prot::EXEC, MapFlags::PRIVATE, Some(file), 0)
        })??;
        self.trampoline.store(addr.as_u64(), Ordering::Relaxed);
        Ok(addr.as_u64())
    }
}

/// The current thread.
fn me() -> Arc<Thread> {
    thread::current().expect("signals of a kernel thread")
}

/// Raises the fault signal `signal` (`code`, `si_addr` = `addr`) on the
/// current thread; it is delivered on the way back to user space.
pub fn force_fault(signal: Signal, code: i32, addr: u64) {
    me().force(SigNo::from(signal), SigInfo::fault(signal, code, addr), addr);
}

/// Takes the next signal of `allowed` waiting for `thread` (its own
/// first, then its process's), among those it does not block unless
/// `blocked_too` (`rt_sigtimedwait` takes blocked ones).
/// A POSIX timer's signal re-arms its timer as it is taken.
fn dequeue(thread: &Thread, allowed: SigSet, blocked_too: bool) -> Option<(SigNo, SigInfo)> {
    let (signo, mut info) = take_pending(thread, allowed, blocked_too)?;
    if info.code == aspen_abi::timer::SI_TIMER {
        super::posix_timer::signal_taken(&thread.process, &mut info);
    }
    Some((signo, info))
}

fn take_pending(thread: &Thread, allowed: SigSet, blocked_too: bool) -> Option<(SigNo, SigInfo)> {
    let mut sig = thread.signals.lock();
    let allowed = if blocked_too { allowed } else { allowed & !sig.mask };
    if let Some(signo) = (sig.pending.set() & allowed).next() {
        return sig.pending.take(signo).map(|info| (signo, info));
    }
    drop(sig);
    let mut shared = thread.process.pending.lock();
    let signo = (shared.set() & allowed).next()?;
    shared.take(signo).map(|info| (signo, info))
}

/// What the current thread does with its pending signals before it returns
/// to user space through `frame`: end with its process, run default
/// actions, set up handler frames, restart or fail an interrupted call.
/// Out of line and cold: the check before it, on every return to user
/// space, keeps a small stack frame.
#[cold]
#[inline(never)]
pub fn deliver(frame: &mut TrapFrame) {
    let me = me();
    me.work.fetch_and(!(WORK_RESTART | WORK_ENDING), Ordering::Relaxed);
    let mut orig_x0 = me.signals.lock().orig_x0.take();
    loop {
        if me.process.must_end(&me) {
            drop(me);
            super::exit_thread(0);
        }
        if me.work.load(Ordering::Relaxed) & WORK_STOP != 0 {
            me.process.park(&me);
            continue;
        }
        let Some((signo, info)) = dequeue(&me, SigSet(u64::MAX), false) else { break };
        let actions = me.process.actions();
        let mut actions = actions.lock();
        let action = actions.get(signo);
        if action.is_handler() {
            if action.flags.contains(SaFlags::RESETHAND) {
                actions.set(signo, SigAction::DEFAULT);
            }
            drop(actions);
            if let Some(orig) = orig_x0.take() {
                restart_or_fail(frame, orig, Some(action.flags));
            }
            if let Err(()) = setup_frame(&me, frame, signo, &info, &action) {
                force_sigsegv(&me, signo);
            }
            continue;
        }
        drop(actions);
        if action.handler == SIG_IGN {
            continue;
        }
        match signo.default_action() {
            // SIGCONT did its work as it was sent.
            DefaultAction::Ignore | DefaultAction::Continue => {}
            DefaultAction::Stop => default_stop(&me, signo),
            DefaultAction::Terminate | DefaultAction::CoreDump => {
                let (pid, name) = (me.process.pid, super::name(&me.process));
                if SigSet::SYNCHRONOUS.contains(signo) && info.code > 0 {
                    let (addr, pc) = (info.fields[0], frame.elr);
                    log::warn!(
                        "pid {pid} ({name}): killed by {signo} (code {}, addr {addr:#x}, pc {pc:#x})",
                        info.code
                    );
                } else {
                    log::info!("pid {pid} ({name}): killed by {signo}");
                }
                me.process.kill_group(WaitStatus::killed_by(signo));
            }
        }
    }
    if let Some(orig) = orig_x0 {
        restart_or_fail(frame, orig, None);
    }
    let mut sig = me.signals.lock();
    if let Some(mask) = sig.saved_mask.take() {
        sig.mask = mask;
    }
    drop(sig);
    me.recalc_signals();
}

/// The default action of stop signal `signo`, taken by `me`: a stop of its
/// process begins. As Linux, the terminal's stop signals do nothing to an
/// orphaned group (nobody is left to continue it); SIGSTOP always stops.
fn default_stop(me: &Thread, signo: SigNo) {
    if signo != SigNo::from(Signal::Stop) && super::jobctl::is_orphaned_pgrp(me.process.pgid()) {
        return;
    }
    me.process.begin_stop(signo);
}

/// Takes the stop signals with their default action that `me` would take
/// next on its way back to user space, beginning the stop they ask for (as
/// delivery would): for a wait that a stop pauses instead of ending
/// ([`Thread::park_for_stop`]).
pub(super) fn take_default_stops(me: &Thread) {
    while let Some(signo) = next_pending(me) {
        let stops = matches!(signo.default_action(), DefaultAction::Stop);
        if !stops || me.process.actions().lock().get(signo).handler != SIG_DFL {
            return;
        }
        if dequeue(me, SigSet(0).with(signo), false).is_none() {
            return;
        }
        default_stop(me, signo);
    }
}

/// The signal [`dequeue`] would take next for `thread` (its own first).
fn next_pending(thread: &Thread) -> Option<SigNo> {
    let sig = thread.signals.lock();
    let own = (sig.pending.set() & !sig.mask).next();
    let mask = sig.mask;
    drop(sig);
    own.or_else(|| (thread.process.pending.lock().set() & !mask).next())
}

/// An interrupted system call: restarted (`x0` back to `orig_x0`, `pc`
/// back to the `svc`) or failed with `EINTR`, given the handler that runs
/// (`None`: no handler).
fn restart_or_fail(frame: &mut TrapFrame, orig_x0: u64, handler: Option<SaFlags>) {
    let Some(restart) = Restart::from_result(frame.x[0]) else { return };
    if restart.restarts(handler) {
        frame.x[0] = orig_x0;
        frame.elr -= 4;
    } else {
        frame.x[0] = Errno::EINTR.as_neg() as u64;
    }
}

/// A frame that could not be written (Linux's `force_sigsegv`): SIGSEGV,
/// with its default action if the frame was for SIGSEGV itself.
fn force_sigsegv(me: &Thread, signo: SigNo) {
    let segv = SigNo::from(Signal::Segv);
    if signo == segv {
        me.process.actions().lock().set(segv, SigAction::DEFAULT);
    }
    me.force(segv, SigInfo::fault(Signal::Segv, SI_KERNEL, 0), 0);
}

/// Writes the `rt_sigframe` for `signo`'s handler on the user stack (or
/// the alternate one) and points `frame` at the handler.
fn setup_frame(me: &Thread, frame: &mut TrapFrame, signo: SigNo, info: &SigInfo, action: &SigAction) -> Result<(), ()> {
    // Without SA_RESTORER (glibc passes none on arm64), the handler returns
    // to the trampoline page, as Linux's vDSO sigtramp; a process sharing
    // the actions of the one that installed the handler maps its own.
    let restorer = if action.flags.contains(SaFlags::RESTORER) {
        action.restorer
    } else {
        me.process.trampoline().map_err(drop)?
    };
    let mut sig = me.signals.lock();
    let sp = frame.sp_el0;
    let top = sig.altstack.frame_top(sp, action.flags);
    let layout = FrameLayout::below(top).ok_or(())?;
    let (vregs, fpsr, fpcr) = FpState::current().parts();
    let state = SavedState {
        regs: frame.x,
        sp,
        pc: frame.elr,
        pstate: frame.spsr,
        fpsr,
        fpcr,
        vregs,
        sigmask: sig.saved_mask.unwrap_or(sig.mask),
    };
    let is_fault = SigSet::SYNCHRONOUS.contains(signo) && info.code > 0;
    let fault_address = if is_fault { core::mem::take(&mut sig.fault_address) } else { 0 };
    let extras = FrameExtras { fault_address, esr: None, stack: sig.altstack.report(sp) };
    let siginfo = action.flags.contains(SaFlags::SIGINFO).then_some(info);
    let bytes = frame::encode(&state, &extras, siginfo, &layout);
    let autodisarm = sig.altstack.flags & aspen_abi::signal::SS_AUTODISARM != 0;
    drop(sig);
    let dst = UserSlice::new(layout.frame, layout.len()).map_err(|_| ())?;
    crate::syscall::user().write(dst, &bytes).map_err(|_| ())?;

    let mut sig = me.signals.lock();
    if autodisarm && action.flags.contains(SaFlags::ONSTACK) {
        sig.altstack = AltStack::default();
    }
    // The handler runs with its mask added (and the signal, unless
    // SA_NODEFER); an rt_sigsuspend mask is over.
    let mut mask = sig.mask | action.mask;
    if !action.flags.contains(SaFlags::NODEFER) {
        mask = mask.with(signo);
    }
    sig.mask = mask.blockable();
    sig.saved_mask = None;
    drop(sig);

    frame.x[0] = u64::from(signo.number());
    if let Some(()) = siginfo.map(drop) {
        frame.x[1] = layout.frame;
        frame.x[2] = layout.frame + frame::UC_OFFSET;
    }
    frame.sp_el0 = layout.frame;
    frame.x[29] = layout.record;
    frame.x[30] = restorer;
    frame.elr = action.handler;
    // BTYPE cleared, as Linux's setup_return.
    frame.spsr &= !(0b11 << 10);
    Ok(())
}

/// `rt_sigreturn`: restores what the frame at the user stack pointer
/// saved. A bad frame ends in SIGSEGV. Returns the restored `x0`.
pub fn sigreturn(frame: &mut TrapFrame) -> u64 {
    let me = me();
    let sp = frame.sp_el0;
    let state = sp
        .is_multiple_of(16)
        .then(|| UserSlice::new(sp, frame::FRAME_SIZE).ok())
        .flatten()
        .and_then(|src| crate::syscall::user().read_bytes(src).ok())
        .and_then(|bytes| frame::decode(&bytes).ok());
    let Some((state, stack)) = state else {
        log::info!("pid {}: rt_sigreturn with a bad frame at {sp:#x}", me.process.pid);
        me.force(SigNo::from(Signal::Segv), SigInfo::fault(Signal::Segv, SI_KERNEL, 0), 0);
        return frame.x[0];
    };
    frame.x = state.regs;
    frame.sp_el0 = state.sp;
    frame.elr = state.pc;
    frame.spsr = state.pstate;
    FpState::from_parts(state.vregs, state.fpsr, state.fpcr).make_current();
    let mut sig = me.signals.lock();
    sig.mask = state.sigmask;
    // As Linux's restore_altstack: errors other than EFAULT are ignored.
    let _ = sig.altstack.set(stack, state.sp);
    drop(sig);
    me.recalc_signals();
    frame.x[0]
}

/// `rt_sigaction(signo, act, oact)` with the new action read already.
pub fn sigaction(signo: u64, new: Option<SigAction>) -> Result<SigAction, Errno> {
    let signo = SigNo::new(signo).ok_or(Errno::EINVAL)?;
    if new.is_some() && signo.is_kernel_only() {
        return Err(Errno::EINVAL);
    }
    let me = me();
    if new.is_some_and(|new| new.is_handler() && !new.flags.contains(SaFlags::RESTORER)) {
        me.process.trampoline()?;
    }
    let actions = me.process.actions();
    let mut actions = actions.lock();
    let old = actions.get(signo);
    if let Some(new) = new {
        actions.set(signo, new);
        drop(actions);
        // POSIX: setting an action that ignores a pending signal discards it.
        if new.ignores(signo) {
            me.process.pending.lock().discard(signo);
            for thread in me.process.threads.lock().values() {
                thread.signals.lock().pending.discard(signo);
                thread.recalc_signals();
            }
        }
    }
    Ok(old)
}

/// `rt_sigprocmask(how, set)`: the old mask.
pub fn sigprocmask(how: MaskHow, set: Option<SigSet>) -> SigSet {
    let me = me();
    let old = me.signal_mask();
    if let Some(set) = set {
        me.set_signal_mask(how.apply(old, set));
    }
    old
}

/// `rt_sigpending`: what waits for the thread or its process, blocked.
pub fn sigpending() -> SigSet {
    let me = me();
    let shared = me.process.pending.lock().set();
    let sig = me.signals.lock();
    (sig.pending.set() | shared) & sig.mask
}

/// Puts `mask` in force in place of the thread's own mask for a wait
/// (`rt_sigsuspend`, `ppoll`, `pselect6`); [`restore_temporary_mask`] ends it.
pub fn set_temporary_mask(mask: SigSet) {
    let me = me();
    {
        let mut sig = me.signals.lock();
        let old = core::mem::replace(&mut sig.mask, mask.blockable());
        sig.saved_mask = Some(old);
    }
    me.recalc_signals();
}

/// Ends a wait with a temporary mask: the thread's own mask is back at
/// once, unless the wait was `interrupted` by a signal, which is then
/// delivered with the temporary mask still in force and puts the thread's
/// own back itself (Linux's `restore_saved_sigmask_unless`).
pub fn restore_temporary_mask(interrupted: bool) {
    if interrupted {
        return;
    }
    let me = me();
    {
        let mut sig = me.signals.lock();
        if let Some(mask) = sig.saved_mask.take() {
            sig.mask = mask;
        }
    }
    me.recalc_signals();
}

/// `rt_sigsuspend(mask)`: waits with `mask` until a signal is delivered;
/// always interrupted (`EINTR` after the handler, or restarted when no
/// handler runs).
pub fn sigsuspend(mask: SigSet) -> Errno {
    let me = me();
    set_temporary_mask(mask);
    while !me.interrupted() {
        sched::block(None);
    }
    Restart::NoHand.errno()
}

/// `rt_sigtimedwait(set, deadline)`: takes a pending signal of `set`,
/// waiting until `deadline` (counter ticks) for one. `EAGAIN` at the
/// deadline, `EINTR` when another signal interrupts.
pub fn sigtimedwait(set: SigSet, deadline: Option<u64>) -> Result<(SigNo, SigInfo), Errno> {
    let me = me();
    let set = set.blockable();
    let expired = || deadline.is_some_and(|d| crate::arch::timer::ticks() >= d);
    let mut taken = dequeue(&me, set, true);
    if taken.is_none() && !expired() {
        // Unblocked while it waits, so that a signal of the set wakes it.
        let blocked = me.signal_mask();
        me.set_signal_mask(blocked & !set);
        while !me.interrupted() && !expired() {
            sched::block(deadline);
        }
        me.set_signal_mask(blocked);
        taken = dequeue(&me, set, true);
    }
    me.recalc_signals();
    match taken {
        Some(taken) => Ok(taken),
        None if expired() => Err(Errno::EAGAIN),
        None => Err(Errno::EINTR),
    }
}

/// `sigaltstack(new)` with the thread's stack pointer at `sp`: the old
/// stack as reported before any change.
pub fn sigaltstack(new: Option<StackT>, sp: u64) -> Result<StackT, Errno> {
    let me = me();
    let mut sig = me.signals.lock();
    let old = sig.altstack.report(sp);
    if let Some(new) = new {
        sig.altstack.set(new, sp)?;
    }
    Ok(old)
}

/// A thread by id, in any process (`ENOMEM` when the heap has no room
/// for the list of processes it looks through, one lock at a time).
fn find_thread(tid: Pid) -> Result<Option<Arc<Thread>>, Errno> {
    let processes: Vec<Arc<Process>> = {
        let _preload = crate::heap::preload(process_list_bound())?;
        PROCESSES.lock().values().cloned().collect()
    };
    Ok(processes.iter().find_map(|p| p.threads.lock().get(&tid).cloned()))
}

/// Heap a list of processes takes while it is made: a reference per task
/// at most (processes are fewer), twice as the vector doubles.
fn process_list_bound() -> usize {
    (crate::task::task_count() as usize + 8) * 2 * core::mem::size_of::<Arc<Process>>()
}

/// A copy of `process`'s credentials (a list of groups), made in a
/// preloaded section: `ENOMEM` when the heap has no room for it.
fn creds_of(process: &Process) -> Result<aspen_abi::cred::Credentials, Errno> {
    let groups = process.creds.lock().groups.len();
    let _preload = crate::heap::preload(groups * core::mem::size_of::<u32>() + 64)?;
    Ok(process.creds.lock().clone())
}

/// The signal of a `kill`-family call: 0 (`None`: only check the target)
/// or a signal number; `EINVAL` otherwise.
fn signal_arg(sig: u64) -> Result<Option<SigNo>, Errno> {
    match sig {
        0 => Ok(None),
        n => SigNo::new(n).map(Some).ok_or(Errno::EINVAL),
    }
}

/// Linux's `check_kill_permission` for a signal (or the check of signal
/// 0) from process `sender`, whose credentials are `sender_creds` (read
/// once by the caller, however many targets it has), to `target`: its own
/// process, the same user (`Credentials::may_signal`), or `SIGCONT` within
/// its session; else `EPERM`.
fn may_kill(
    sender: &Process,
    sender_creds: &aspen_abi::cred::Credentials,
    target: &Process,
    signo: Option<SigNo>,
) -> Result<(), Errno> {
    if core::ptr::eq(sender, target) {
        return Ok(());
    }
    if sender_creds.may_signal(&target.creds.lock()) {
        return Ok(());
    }
    if signo == Some(SigNo::from(Signal::Cont)) && sender.sid() == target.sid() {
        return Ok(());
    }
    Err(Errno::EPERM)
}

/// `kill(pid, sig)`: a process (pid > 0), the caller's process group (0),
/// every process but init and the caller (-1), or process group `-pid`.
/// Permission is checked per target as Linux: one process `EPERM`; a group
/// succeeds when one member could be signalled, else the last error; `-1`
/// passes over those the caller may not signal.
pub fn kill(pid: i32, sig: u64) -> Result<(), Errno> {
    let signo = signal_arg(sig)?;
    let me = thread::with_current(|t| t.process.clone());
    let info = |signo| SigInfo::from_process(signo, aspen_abi::signal::SI_USER, me.pid);
    let single = match pid {
        // A thread's id names its process, as Linux.
        p if p > 0 => Some(match Process::get(p as Pid) {
            Some(process) => process,
            None => find_thread(p as Pid)?.map(|t| t.process.clone()).ok_or(Errno::ESRCH)?,
        }),
        i32::MIN => return Err(Errno::ESRCH),
        _ => None,
    };
    // The lists are made in a preloaded section (ENOMEM, nothing sent);
    // the signals are sent outside it (a queued signal's information is
    // the target's, refused as a full queue when the heap has no room).
    let targets: Vec<Arc<Process>> = {
        let _preload = crate::heap::preload(2 * process_list_bound())?;
        match (single, pid) {
            (Some(process), _) => alloc::vec![process],
            (None, -1) => super::Process::all().into_iter().filter(|p| p.pid > 1 && p.pid != me.pid).collect(),
            (None, p) => {
                let group = if p == 0 { me.pgid() } else { p.unsigned_abs() };
                let members: Vec<Arc<Process>> =
                    super::Process::all().into_iter().filter(|p| p.pgid() == group && !p.is_zombie()).collect();
                if members.is_empty() {
                    return Err(Errno::ESRCH);
                }
                members
            }
        }
    };
    if targets.is_empty() {
        return Err(Errno::ESRCH);
    }
    let (mut delivered, mut last_error) = (false, None);
    let my_creds = creds_of(&me)?;
    for target in &targets {
        let sent = may_kill(&me, &my_creds, target, signo).and_then(|()| match signo {
            Some(signo) => target.send(signo, info(signo)),
            None => Ok(()),
        });
        match sent {
            Ok(()) => delivered = true,
            Err(Errno::EPERM) if pid == -1 => {}
            Err(e) => last_error = Some(e),
        }
    }
    match last_error {
        Some(e) if !delivered => Err(e),
        _ => Ok(()),
    }
}

/// `tgkill(tgid, tid, sig)` (`tgid` `None`: `tkill`).
pub fn tgkill(tgid: Option<i32>, tid: i32, sig: u64) -> Result<(), Errno> {
    if tid <= 0 || tgid.is_some_and(|t| t <= 0) {
        return Err(Errno::EINVAL);
    }
    let signo = signal_arg(sig)?;
    let thread = find_thread(tid as Pid)?.ok_or(Errno::ESRCH)?;
    if tgid.is_some_and(|tgid| thread.process.pid != tgid as Pid) {
        return Err(Errno::ESRCH);
    }
    let me = thread::with_current(|t| t.process.clone());
    let my_creds = creds_of(&me)?;
    may_kill(&me, &my_creds, &thread.process, signo)?;
    let Some(signo) = signo else { return Ok(()) };
    thread.send(signo, SigInfo::from_process(signo, aspen_abi::signal::SI_TKILL, me.pid))
}

/// `rt_sigqueueinfo(pid, sig, info)`: `info` as the caller wrote it, to
/// itself; to another process only with a negative `si_code` other than
/// `SI_TKILL` (`EPERM`), as Linux.
pub fn sigqueueinfo(pid: i32, sig: u64, mut info: SigInfo) -> Result<(), Errno> {
    let signo = signal_arg(sig)?;
    let me = thread::with_current(|t| t.process.pid);
    if pid <= 0 {
        return Err(Errno::ESRCH);
    }
    if (info.code >= 0 || info.code == aspen_abi::signal::SI_TKILL) && pid as Pid != me {
        return Err(Errno::EPERM);
    }
    let target = Process::get(pid as Pid).ok_or(Errno::ESRCH)?;
    let me = thread::with_current(|t| t.process.clone());
    let my_creds = creds_of(&me)?;
    may_kill(&me, &my_creds, &target, signo)?;
    let Some(signo) = signo else { return Ok(()) };
    info.signo = signo.number() as i32;
    target.send(signo, info)
}
