//! Signals: handlers with `siginfo` (kill, tgkill, rt_sigqueueinfo), fault
//! handlers that fix the fault and return, the alternate stack, restart
//! rules, masks, waiting, `SIGCHLD`, process groups, default actions,
//! `execve`'s reset, and the FP/SIMD registers a handler must not disturb.

use core::arch::asm;
use core::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};

use aspen_sys::mem::{self, MapFlags, Prot, PAGE_SIZE as P};
use aspen_sys::process::{self, Fork, SIGCHLD, SIGSEGV};
use aspen_sys::signal::{
    self, SaFlags, SigInfo, SigSet, StackT, CLD_EXITED, CLD_KILLED, SEGV_ACCERR, SEGV_MAPERR, SIG_DFL, SIG_IGN,
    SI_QUEUE, SI_TKILL, SI_USER,
};
use aspen_sys::time::{self, Timespec};
use aspen_sys::Errno;

use crate::ensure;
use crate::harness::{child_status, expect_errno, join, spawn, Context, Ctx, Region, Stage, TestResult};

const SIGUSR1: i32 = 10;
const SIGUSR2: i32 = 12;
const SIGTERM: i32 = 15;
const SIGCONT: i32 = 18;
const SIGURG: i32 = 23;
const SIGWINCH: i32 = 28;
const SIGRTMIN: i32 = 34;

/// How many times a handler ran, and what it saw last.
static COUNT: AtomicUsize = AtomicUsize::new(0);
static SIGNO: AtomicI32 = AtomicI32::new(0);
static CODE: AtomicI32 = AtomicI32::new(0);
static PID: AtomicI32 = AtomicI32::new(0);
static ADDR: AtomicU64 = AtomicU64::new(0);
static VALUE: AtomicU64 = AtomicU64::new(0);
static STATUS: AtomicI32 = AtomicI32::new(0);
/// The handler's view of the mask, or of its stack pointer.
static SEEN: AtomicU64 = AtomicU64::new(0);

fn reset() {
    COUNT.store(0, Ordering::SeqCst);
    for a in [&SIGNO, &CODE, &PID, &STATUS] {
        a.store(0, Ordering::SeqCst);
    }
    for a in [&ADDR, &VALUE, &SEEN] {
        a.store(0, Ordering::SeqCst);
    }
}

fn count() -> usize {
    COUNT.load(Ordering::SeqCst)
}

extern "C" fn record(signo: i32, info: *const SigInfo, _uc: *mut u8) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let info = unsafe { &*info };
    SIGNO.store(signo, Ordering::SeqCst);
    CODE.store(info.code, Ordering::SeqCst);
    PID.store(info.fields[0] as u32 as i32, Ordering::SeqCst);
    ADDR.store(info.fields[0], Ordering::SeqCst);
    VALUE.store(info.fields[1], Ordering::SeqCst);
    STATUS.store(info.fields[1] as u32 as i32, Ordering::SeqCst);
    COUNT.fetch_add(1, Ordering::SeqCst);
}

extern "C" fn counter(signo: i32) {
    SIGNO.store(signo, Ordering::SeqCst);
    COUNT.fetch_add(1, Ordering::SeqCst);
}

extern "C" fn see_mask(_signo: i32) {
    SEEN.store(signal::sigprocmask(signal::SIG_BLOCK, None).map_or(u64::MAX, |m| m.0), Ordering::SeqCst);
    COUNT.fetch_add(1, Ordering::SeqCst);
}

/// Handlers with siginfo: kill (SI_USER, si_pid), tgkill (SI_TKILL),
/// rt_sigqueueinfo (SI_QUEUE with its value), real-time signals queued.
pub fn handler_siginfo(_: &Context) -> TestResult {
    reset();
    let me = process::getpid();
    signal::handle_info(SIGUSR1, record, SaFlags::empty()).ctx("sigaction")?;
    signal::kill(me, SIGUSR1).ctx("kill")?;
    ensure!(count() == 1, "the handler ran {} times after kill", count());
    ensure!(SIGNO.load(Ordering::SeqCst) == SIGUSR1, "signo {}", SIGNO.load(Ordering::SeqCst));
    ensure!(CODE.load(Ordering::SeqCst) == SI_USER, "kill's si_code {}", CODE.load(Ordering::SeqCst));
    ensure!(PID.load(Ordering::SeqCst) == me, "si_pid {} for pid {me}", PID.load(Ordering::SeqCst));
    signal::tgkill(me, signal::gettid(), SIGUSR1).ctx("tgkill")?;
    ensure!(count() == 2 && CODE.load(Ordering::SeqCst) == SI_TKILL, "tgkill: si_code {}", CODE.load(Ordering::SeqCst));
    let mut info = signal::empty_info();
    info.code = SI_QUEUE;
    info.fields[0] = me as u64;
    info.fields[1] = 0x1234_5678;
    signal::handle_info(SIGRTMIN, record, SaFlags::empty()).ctx("sigaction(SIGRTMIN)")?;
    signal::sigprocmask(signal::SIG_BLOCK, Some(signal::set_of(&[SIGRTMIN]))).ctx("block")?;
    for _ in 0..3 {
        signal::sigqueueinfo(me, SIGRTMIN, &info).ctx("rt_sigqueueinfo")?;
    }
    ensure!(count() == 2, "a blocked signal ran its handler");
    signal::sigprocmask(signal::SIG_UNBLOCK, Some(signal::set_of(&[SIGRTMIN]))).ctx("unblock")?;
    ensure!(count() == 5, "3 queued real-time signals ran the handler {} times", count() - 2);
    ensure!(CODE.load(Ordering::SeqCst) == SI_QUEUE, "si_code {}", CODE.load(Ordering::SeqCst));
    ensure!(VALUE.load(Ordering::SeqCst) == 0x1234_5678, "si_value {:#x}", VALUE.load(Ordering::SeqCst));
    expect_errno("kill with signal 65", signal::kill(me, 65), Errno::EINVAL)?;
    expect_errno("sigaction(SIGKILL)", signal::handle(9, counter, SaFlags::empty()), Errno::EINVAL)?;
    expect_errno("tgkill of another group", signal::tgkill(1, signal::gettid(), 0), Errno::ESRCH)?;
    signal::kill(me, 0).ctx("kill(me, 0)")?;
    Ok(())
}

/// The page the SIGSEGV handler makes writable, or maps.
static FIX_PAGE: AtomicUsize = AtomicUsize::new(0);

extern "C" fn fix_protection(signo: i32, info: *const SigInfo, uc: *mut u8) {
    record(signo, info, uc);
    let page = FIX_PAGE.load(Ordering::SeqCst);
    // SAFETY: the page is the test's own mapping.
    if unsafe { mem::mprotect(page, P, Prot::READ | Prot::WRITE) }.is_err() {
        process::exit_group(90);
    }
}

extern "C" fn fix_mapping(signo: i32, info: *const SigInfo, uc: *mut u8) {
    record(signo, info, uc);
    let page = FIX_PAGE.load(Ordering::SeqCst);
    let flags = MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::FIXED;
    // SAFETY: the page was the test's own and is unmapped.
    if unsafe { mem::mmap(page, P, Prot::READ | Prot::WRITE, flags, -1, 0) }.is_err() {
        process::exit_group(91);
    }
}

/// A SIGSEGV handler fixes the fault and returns: the store is retried.
/// `SEGV_ACCERR` for a read-only page, `SEGV_MAPERR` for an unmapped one,
/// `si_addr` the address.
pub fn segv_handler_retries(_: &Context) -> TestResult {
    reset();
    let r = Region::anon(2, Prot::READ, MapFlags::PRIVATE)?;
    FIX_PAGE.store(r.page(0), Ordering::SeqCst);
    signal::handle_info(SIGSEGV, fix_protection, SaFlags::empty()).ctx("sigaction")?;
    r.write(8, 0x5a);
    ensure!(r.read(8) == 0x5a, "the retried store did not land");
    ensure!(count() == 1, "the handler ran {} times", count());
    ensure!(CODE.load(Ordering::SeqCst) == SEGV_ACCERR, "si_code {}", CODE.load(Ordering::SeqCst));
    ensure!(ADDR.load(Ordering::SeqCst) == r.page(0) as u64 + 8, "si_addr {:#x}", ADDR.load(Ordering::SeqCst));

    // SAFETY: page 1 is only touched through the handler's new mapping.
    unsafe { mem::munmap(r.page(1), P) }.ctx("munmap")?;
    FIX_PAGE.store(r.page(1), Ordering::SeqCst);
    signal::handle_info(SIGSEGV, fix_mapping, SaFlags::empty()).ctx("sigaction")?;
    r.write(P + 16, 0xa5);
    ensure!(r.read(P + 16) == 0xa5, "the retried store did not land");
    ensure!(CODE.load(Ordering::SeqCst) == SEGV_MAPERR, "si_code {}", CODE.load(Ordering::SeqCst));
    ensure!(ADDR.load(Ordering::SeqCst) == r.page(1) as u64 + 16, "si_addr {:#x}", ADDR.load(Ordering::SeqCst));
    Ok(())
}

extern "C" fn see_stack(_signo: i32) {
    let local = 0u8;
    SEEN.store(&local as *const u8 as u64, Ordering::SeqCst);
    let on = signal::sigaltstack(None).map_or(-1, |s| s.flags);
    STATUS.store(on, Ordering::SeqCst);
    let change = StackT { sp: 0, flags: signal::SS_DISABLE, size: 0 };
    CODE.store(signal::sigaltstack(Some(&change)).err().map_or(0, |e| e.as_i32()), Ordering::SeqCst);
    COUNT.fetch_add(1, Ordering::SeqCst);
}

/// The handler of an SA_ONSTACK action runs on the alternate stack, which
/// reports SS_ONSTACK there and cannot be changed from it (EPERM); a stack
/// below MINSIGSTKSZ is ENOMEM.
pub fn altstack(_: &Context) -> TestResult {
    reset();
    let stack = Region::anon(4, Prot::READ | Prot::WRITE, MapFlags::PRIVATE)?;
    let small = StackT { sp: stack.addr as u64, flags: 0, size: signal::MINSIGSTKSZ - 1 };
    expect_errno("a small alternate stack", signal::sigaltstack(Some(&small)), Errno::ENOMEM)?;
    let alt = StackT { sp: stack.addr as u64, flags: 0, size: 4 * P as u64 };
    let old = signal::sigaltstack(Some(&alt)).ctx("sigaltstack")?;
    ensure!(old.flags == signal::SS_DISABLE, "no stack at first, but flags {}", old.flags);
    signal::handle(SIGUSR1, see_stack, SaFlags::ONSTACK).ctx("sigaction")?;
    signal::kill(process::getpid(), SIGUSR1).ctx("kill")?;
    ensure!(count() == 1, "the handler did not run");
    let sp = SEEN.load(Ordering::SeqCst);
    ensure!(
        sp > alt.sp && sp < alt.sp + alt.size,
        "the handler's stack {sp:#x} is outside the alternate stack {:#x}+{:#x}",
        alt.sp,
        alt.size
    );
    ensure!(STATUS.load(Ordering::SeqCst) == signal::SS_ONSTACK, "flags on it: {}", STATUS.load(Ordering::SeqCst));
    ensure!(CODE.load(Ordering::SeqCst) == Errno::EPERM.as_i32(), "change on it: {}", CODE.load(Ordering::SeqCst));
    let now = signal::sigaltstack(None).ctx("sigaltstack")?;
    ensure!(now.flags == 0 && now.sp == alt.sp && now.size == alt.size, "after the handler: {now:?}");
    Ok(())
}

/// wait4 interrupted by a handler: restarted with SA_RESTART (it reaps the
/// child), EINTR without.
pub fn restart_wait4(_: &Context) -> TestResult {
    for restart in [true, false] {
        reset();
        let flags = if restart { SaFlags::RESTART } else { SaFlags::empty() };
        signal::handle(SIGUSR1, counter, flags).ctx("sigaction")?;
        let pid = spawn(|| {
            time::sleep_ms(30).ctx("nanosleep")?;
            signal::kill(process::getppid(), SIGUSR1).ctx("kill(parent)")?;
            time::sleep_ms(30).ctx("nanosleep")?;
            Ok(())
        })?;
        let first = process::wait4(pid, 0);
        ensure!(count() == 1, "SA_RESTART {restart}: the handler ran {} times", count());
        if restart {
            ensure!(first.map(|r| r.0) == Ok(pid), "SA_RESTART: wait4 returned {first:?}");
        } else {
            expect_errno("wait4 without SA_RESTART", first, Errno::EINTR)?;
            join(pid, "child")?;
        }
    }
    Ok(())
}

/// SA_RESETHAND: the action is the default once delivered; SA_NODEFER: the
/// signal is not blocked in its handler (it is without).
pub fn resethand_nodefer(_: &Context) -> TestResult {
    reset();
    let me = process::getpid();
    signal::handle(SIGUSR1, counter, SaFlags::RESETHAND).ctx("sigaction")?;
    signal::kill(me, SIGUSR1).ctx("kill")?;
    ensure!(count() == 1, "the handler ran {} times", count());
    let now = signal::action_of(SIGUSR1).ctx("sigaction")?;
    ensure!(now.handler == SIG_DFL, "after SA_RESETHAND the handler is {:#x}", now.handler);
    for (flags, blocked) in [(SaFlags::empty(), true), (SaFlags::NODEFER, false)] {
        signal::handle(SIGUSR2, see_mask, flags).ctx("sigaction")?;
        signal::kill(me, SIGUSR2).ctx("kill")?;
        let mask = SigSet(SEEN.load(Ordering::SeqCst));
        let has = mask.0 & signal::set_of(&[SIGUSR2]).0 != 0;
        ensure!(has == blocked, "{flags:?}: SIGUSR2 in the handler's mask {mask:?}: {has}");
    }
    let after = signal::sigprocmask(signal::SIG_BLOCK, None).ctx("sigprocmask")?;
    ensure!(after.0 == 0, "the mask after the handlers is {after:?}");
    Ok(())
}

/// A blocked signal stays pending; sigsuspend takes it with EINTR and
/// restores the mask; sigprocmask's rules.
pub fn mask_pending_suspend(_: &Context) -> TestResult {
    reset();
    let me = process::getpid();
    let usr1 = signal::set_of(&[SIGUSR1]);
    signal::handle(SIGUSR1, counter, SaFlags::empty()).ctx("sigaction")?;
    signal::sigprocmask(signal::SIG_BLOCK, Some(usr1 | signal::set_of(&[9, 19]))).ctx("block")?;
    let mask = signal::sigprocmask(signal::SIG_BLOCK, None).ctx("sigprocmask")?;
    ensure!(mask == usr1, "SIGKILL/SIGSTOP blocked: {mask:?}");
    signal::kill(me, SIGUSR1).ctx("kill")?;
    ensure!(count() == 0, "a blocked signal ran its handler");
    let pending = signal::sigpending().ctx("sigpending")?;
    ensure!(pending == usr1, "pending {pending:?}");
    let e = signal::sigsuspend(SigSet(0));
    ensure!(e == Errno::EINTR, "sigsuspend: {e}");
    ensure!(count() == 1, "the handler ran {} times in sigsuspend", count());
    let mask = signal::sigprocmask(signal::SIG_BLOCK, None).ctx("sigprocmask")?;
    ensure!(mask == usr1, "the mask after sigsuspend: {mask:?}");
    ensure!(signal::sigpending().ctx("sigpending")?.0 == 0, "still pending");
    expect_errno("sigprocmask how=3", signal::sigprocmask(3, Some(usr1)), Errno::EINVAL)?;
    Ok(())
}

/// rt_sigtimedwait: EAGAIN after its timeout, else the signal and its info.
pub fn sigtimedwait(_: &Context) -> TestResult {
    let usr2 = signal::set_of(&[SIGUSR2]);
    signal::sigprocmask(signal::SIG_BLOCK, Some(usr2)).ctx("block")?;
    let timeout = Timespec::from_nanos(20_000_000);
    let start = time::counter();
    expect_errno("sigtimedwait with nothing pending", signal::sigtimedwait(usr2, Some(&timeout)), Errno::EAGAIN)?;
    let waited = (time::counter() - start) * 1000 / time::counter_frequency();
    ensure!(waited >= 19, "the 20 ms timeout ended after {waited} ms");
    signal::kill(process::getpid(), SIGUSR2).ctx("kill")?;
    let (signo, info) = signal::sigtimedwait(usr2, Some(&timeout)).ctx("sigtimedwait")?;
    ensure!(signo == SIGUSR2 && info.signo == SIGUSR2 && info.code == SI_USER, "got {signo}: {info:?}");
    ensure!(signal::sigpending().ctx("sigpending")?.0 == 0, "still pending");
    Ok(())
}

/// SIGCHLD with CLD_EXITED/CLD_KILLED, si_pid and si_status when a child
/// ends; with SA_NOCLDWAIT or SIGCHLD ignored, children are reaped at once
/// (wait4: ECHILD).
pub fn sigchld(_: &Context) -> TestResult {
    reset();
    let chld = signal::set_of(&[SIGCHLD]);
    signal::handle_info(SIGCHLD, record, SaFlags::empty()).ctx("sigaction")?;
    signal::sigprocmask(signal::SIG_BLOCK, Some(chld)).ctx("block")?;
    let pid = match process::fork().ctx("fork")? {
        Fork::Child => process::exit_group(3),
        Fork::Parent(pid) => pid,
    };
    let e = signal::sigsuspend(SigSet(0));
    ensure!(e == Errno::EINTR && count() == 1, "sigsuspend: {e}, handler ran {} times", count());
    ensure!(CODE.load(Ordering::SeqCst) == CLD_EXITED, "si_code {}", CODE.load(Ordering::SeqCst));
    ensure!(PID.load(Ordering::SeqCst) == pid, "si_pid {} for {pid}", PID.load(Ordering::SeqCst));
    ensure!(STATUS.load(Ordering::SeqCst) == 3, "si_status {}", STATUS.load(Ordering::SeqCst));
    let (_, status) = process::wait4(pid, 0).ctx("wait4")?;
    ensure!(status.exit_code() == Some(3), "status {status}");

    reset();
    let pid = match process::fork().ctx("fork")? {
        Fork::Child => {
            let _ = signal::kill(process::getpid(), SIGUSR1);
            process::exit_group(5)
        }
        Fork::Parent(pid) => pid,
    };
    let e = signal::sigsuspend(SigSet(0));
    ensure!(e == Errno::EINTR && count() == 1, "sigsuspend: {e}, handler ran {} times", count());
    ensure!(CODE.load(Ordering::SeqCst) == CLD_KILLED, "si_code {} for a killed child", CODE.load(Ordering::SeqCst));
    ensure!(STATUS.load(Ordering::SeqCst) == SIGUSR1, "si_status {}", STATUS.load(Ordering::SeqCst));
    process::wait4(pid, 0).ctx("wait4")?;

    // SA_NOCLDWAIT: the handler runs, and no zombie is left.
    reset();
    signal::handle_info(SIGCHLD, record, SaFlags::NOCLDWAIT).ctx("sigaction")?;
    let pid = match process::fork().ctx("fork")? {
        Fork::Child => process::exit_group(6),
        Fork::Parent(pid) => pid,
    };
    let e = signal::sigsuspend(SigSet(0));
    ensure!(e == Errno::EINTR && count() == 1, "SA_NOCLDWAIT: sigsuspend: {e}, handler ran {} times", count());
    ensure!(PID.load(Ordering::SeqCst) == pid, "si_pid {} for {pid}", PID.load(Ordering::SeqCst));
    expect_errno("wait4 with SA_NOCLDWAIT", process::wait4(pid, 0), Errno::ECHILD)?;

    signal::sigaction_raw(SIGCHLD, SIG_IGN, SaFlags::empty(), SigSet(0)).ctx("SIG_IGN")?;
    signal::sigprocmask(signal::SIG_UNBLOCK, Some(chld)).ctx("unblock")?;
    match process::fork().ctx("fork")? {
        Fork::Child => process::exit_group(4),
        Fork::Parent(_) => {}
    }
    expect_errno("wait4 with SIGCHLD ignored", process::wait4(-1, 0), Errno::ECHILD)
}

/// kill(0, ...) reaches the caller's process group, kill(-pgid, ...) a
/// group; setpgid/getpgid/getsid/setsid.
pub fn process_groups(_: &Context) -> TestResult {
    let me = process::getpid();
    let sid = signal::getsid(0).ctx("getsid")?;
    ensure!(signal::getpgid(0).ctx("getpgid")? != me, "the test starts in its own group");
    signal::setpgid(0, 0).ctx("setpgid(0, 0)")?;
    ensure!(signal::getpgid(0).ctx("getpgid")? == me, "setpgid(0, 0) did not make a group");
    ensure!(signal::getsid(0).ctx("getsid")? == sid, "the session changed");
    expect_errno("setsid as a group leader", signal::setsid(), Errno::EPERM)?;
    expect_errno("getpgid of nobody", signal::getpgid(0x3fff_fff0), Errno::ESRCH)?;
    signal::sigaction_raw(SIGUSR1, SIG_IGN, SaFlags::empty(), SigSet(0)).ctx("SIG_IGN")?;
    let shared = Region::anon(1, Prot::READ | Prot::WRITE, MapFlags::SHARED)?;
    let (ready_a, ready_b) = (Stage::at(&shared, 0), Stage::at(&shared, 4));
    let sleeper = |ready: &Stage| {
        signal::sigaction_raw(SIGUSR1, SIG_DFL, SaFlags::empty(), SigSet(0)).ctx("SIG_DFL")?;
        ready.set(1);
        loop {
            time::sleep_ms(1000).ctx("nanosleep")?;
        }
    };
    let a = spawn(|| sleeper(&ready_a))?;
    let b = spawn(|| sleeper(&ready_b))?;
    ready_a.wait_for(1, Some(a))?;
    ready_b.wait_for(1, Some(b))?;
    signal::kill(0, SIGUSR1).ctx("kill(0)")?;
    for pid in [a, b] {
        let (_, status) = process::wait4(pid, 0).ctx("wait4")?;
        ensure!(status.signal() == Some(SIGUSR1), "kill(0) left {pid} with {status}");
    }
    let c = spawn(|| {
        signal::setpgid(0, 0).ctx("setpgid")?;
        loop {
            time::sleep_ms(1000).ctx("nanosleep")?;
        }
    })?;
    while signal::getpgid(c).ctx("getpgid")? != c {
        process::sched_yield().ctx("sched_yield")?;
    }
    signal::kill(-c, SIGTERM).ctx("kill(-pgid)")?;
    let (_, status) = process::wait4(c, 0).ctx("wait4")?;
    ensure!(status.signal() == Some(SIGTERM), "kill(-pgid) left {c} with {status}");
    expect_errno("kill of an empty group", signal::kill(-c, SIGTERM), Errno::ESRCH)?;
    Ok(())
}

/// Default actions: SIGUSR1 ends the process (status = the signal, no
/// core bit); SIGCHLD, SIGURG, SIGWINCH and SIGCONT do nothing.
pub fn default_actions(_: &Context) -> TestResult {
    let status = child_status(|| {
        signal::kill(process::getpid(), SIGUSR1).ctx("kill")?;
        Err(alloc::string::String::from("SIGUSR1 did not end the process"))
    })?;
    ensure!(status.0 == SIGUSR1 as u32, "killed by SIGUSR1: status {:#x}", status.0);
    let status = child_status(|| {
        let me = process::getpid();
        for signo in [SIGCHLD, SIGURG, SIGWINCH, SIGCONT] {
            signal::kill(me, signo).ctx("kill")?;
        }
        Ok(())
    })?;
    ensure!(status.success(), "a default-ignored signal ended the process: {status}");
    Ok(())
}

/// An execve'd program has SIG_DFL where a handler was, SIG_IGN where the
/// signal was ignored, and the mask kept.
pub fn exec_resets_handlers(ctx: &Context) -> TestResult {
    let status = child_status(|| {
        signal::handle(SIGUSR1, counter, SaFlags::empty()).ctx("sigaction")?;
        signal::sigaction_raw(SIGUSR2, SIG_IGN, SaFlags::empty(), SigSet(0)).ctx("SIG_IGN")?;
        signal::sigprocmask(signal::SIG_BLOCK, Some(signal::set_of(&[SIGTERM]))).ctx("block")?;
        let e = process::execve(ctx.exe, &[ctx.exe, CHILD_SIGNALS], &[]);
        Err(alloc::format!("execve: {e}"))
    })?;
    ensure!(status.success(), "the exec'd program saw: {status} (exit 1: SIGUSR1, 2: SIGUSR2, 3: mask)");
    Ok(())
}

/// `usertests --child-signals`: what [`exec_resets_handlers`] checks in
/// the new program.
pub const CHILD_SIGNALS: &core::ffi::CStr = c"--child-signals";

/// The exec'd side of [`exec_resets_handlers`]: 0 when all is as Linux.
pub fn child_signals() -> i32 {
    if signal::action_of(SIGUSR1).map(|a| a.handler) != Ok(SIG_DFL) {
        return 1;
    }
    if signal::action_of(SIGUSR2).map(|a| a.handler) != Ok(SIG_IGN) {
        return 2;
    }
    if signal::sigprocmask(signal::SIG_BLOCK, None) != Ok(signal::set_of(&[SIGTERM])) {
        return 3;
    }
    0
}

extern "C" fn clobber_fp(_signo: i32) {
    // SAFETY: only FP/SIMD registers and FPCR change, which the kernel must
    // restore on return from the handler.
    unsafe {
        asm!(
            "movi v0.16b, #0xee", "movi v1.16b, #0xee", "movi v2.16b, #0xee", "movi v3.16b, #0xee",
            "movi v4.16b, #0xee", "movi v5.16b, #0xee", "movi v6.16b, #0xee", "movi v7.16b, #0xee",
            "movi v8.16b, #0xee", "movi v9.16b, #0xee", "movi v10.16b, #0xee", "movi v11.16b, #0xee",
            "movi v12.16b, #0xee", "movi v13.16b, #0xee", "movi v14.16b, #0xee", "movi v15.16b, #0xee",
            "movi v16.16b, #0xee", "movi v17.16b, #0xee", "movi v18.16b, #0xee", "movi v19.16b, #0xee",
            "movi v20.16b, #0xee", "movi v21.16b, #0xee", "movi v22.16b, #0xee", "movi v23.16b, #0xee",
            "movi v24.16b, #0xee", "movi v25.16b, #0xee", "movi v26.16b, #0xee", "movi v27.16b, #0xee",
            "movi v28.16b, #0xee", "movi v29.16b, #0xee", "movi v30.16b, #0xee", "movi v31.16b, #0xee",
            "msr fpcr, xzr",
            out("v0") _, out("v1") _, out("v2") _, out("v3") _, out("v4") _, out("v5") _, out("v6") _,
            out("v7") _, out("v8") _, out("v9") _, out("v10") _, out("v11") _, out("v12") _, out("v13") _,
            out("v14") _, out("v15") _, out("v16") _, out("v17") _, out("v18") _, out("v19") _, out("v20") _,
            out("v21") _, out("v22") _, out("v23") _, out("v24") _, out("v25") _, out("v26") _, out("v27") _,
            out("v28") _, out("v29") _, out("v30") _, out("v31") _,
        )
    };
    COUNT.fetch_add(1, Ordering::SeqCst);
}

/// q0-q31 and FPCR are what they were after a handler that clobbered them.
pub fn fp_preserved(_: &Context) -> TestResult {
    reset();
    signal::handle(SIGUSR1, clobber_fp, SaFlags::empty()).ctx("sigaction")?;
    let me = process::getpid();
    let mut after = [0u64; 32];
    let fpcr: u64;
    // SAFETY: the block sets v0-v31 and FPCR (round towards zero), makes
    // the kill system call, and stores the low half of each register into
    // `after`; FPCR is restored to 0 at the end.
    unsafe {
        asm!(
            "mov x9, #0x00c00000", "msr fpcr, x9",
            "mov x9, #1", "fmov d0, x9", "mov x9, #2", "fmov d1, x9", "mov x9, #3", "fmov d2, x9",
            "mov x9, #4", "fmov d3, x9", "mov x9, #5", "fmov d4, x9", "mov x9, #6", "fmov d5, x9",
            "mov x9, #7", "fmov d6, x9", "mov x9, #8", "fmov d7, x9", "mov x9, #9", "fmov d8, x9",
            "mov x9, #10", "fmov d9, x9", "mov x9, #11", "fmov d10, x9", "mov x9, #12", "fmov d11, x9",
            "mov x9, #13", "fmov d12, x9", "mov x9, #14", "fmov d13, x9", "mov x9, #15", "fmov d14, x9",
            "mov x9, #16", "fmov d15, x9", "mov x9, #17", "fmov d16, x9", "mov x9, #18", "fmov d17, x9",
            "mov x9, #19", "fmov d18, x9", "mov x9, #20", "fmov d19, x9", "mov x9, #21", "fmov d20, x9",
            "mov x9, #22", "fmov d21, x9", "mov x9, #23", "fmov d22, x9", "mov x9, #24", "fmov d23, x9",
            "mov x9, #25", "fmov d24, x9", "mov x9, #26", "fmov d25, x9", "mov x9, #27", "fmov d26, x9",
            "mov x9, #28", "fmov d27, x9", "mov x9, #29", "fmov d28, x9", "mov x9, #30", "fmov d29, x9",
            "mov x9, #31", "fmov d30, x9", "mov x9, #32", "fmov d31, x9",
            "svc #0",
            "stp d0, d1, [x10, #0]", "stp d2, d3, [x10, #16]", "stp d4, d5, [x10, #32]",
            "stp d6, d7, [x10, #48]", "stp d8, d9, [x10, #64]", "stp d10, d11, [x10, #80]",
            "stp d12, d13, [x10, #96]", "stp d14, d15, [x10, #112]", "stp d16, d17, [x10, #128]",
            "stp d18, d19, [x10, #144]", "stp d20, d21, [x10, #160]", "stp d22, d23, [x10, #176]",
            "stp d24, d25, [x10, #192]", "stp d26, d27, [x10, #208]", "stp d28, d29, [x10, #224]",
            "stp d30, d31, [x10, #240]",
            "mrs {fpcr}, fpcr", "msr fpcr, xzr",
            fpcr = out(reg) fpcr,
            in("x8") aspen_sys::raw::Sysno::Kill.number(),
            inlateout("x0") me as usize => _,
            in("x1") SIGUSR1 as usize,
            in("x10") after.as_mut_ptr(),
            out("x9") _,
            out("v0") _, out("v1") _, out("v2") _, out("v3") _, out("v4") _, out("v5") _, out("v6") _,
            out("v7") _, out("v8") _, out("v9") _, out("v10") _, out("v11") _, out("v12") _, out("v13") _,
            out("v14") _, out("v15") _, out("v16") _, out("v17") _, out("v18") _, out("v19") _, out("v20") _,
            out("v21") _, out("v22") _, out("v23") _, out("v24") _, out("v25") _, out("v26") _, out("v27") _,
            out("v28") _, out("v29") _, out("v30") _, out("v31") _,
        )
    };
    ensure!(count() == 1, "the handler ran {} times", count());
    for (i, v) in after.iter().enumerate() {
        ensure!(*v == i as u64 + 1, "d{i} is {v:#x} after the handler, expected {}", i + 1);
    }
    ensure!(fpcr == 0x00c0_0000, "FPCR is {fpcr:#x} after the handler");
    Ok(())
}

/// A handler's frame that cannot be written (the alternate stack is not
/// writable) ends the process with SIGSEGV.
pub fn frame_fault_kills(_: &Context) -> TestResult {
    let status = child_status(|| {
        let stack = Region::anon(4, Prot::READ, MapFlags::PRIVATE)?;
        let alt = StackT { sp: stack.addr as u64, flags: 0, size: 4 * P as u64 };
        signal::sigaltstack(Some(&alt)).ctx("sigaltstack")?;
        signal::handle(SIGUSR1, counter, SaFlags::ONSTACK).ctx("sigaction")?;
        signal::kill(process::getpid(), SIGUSR1).ctx("kill")?;
        Err(alloc::format!("survived; the handler ran {} times", count()))
    })?;
    ensure!(status.signal() == Some(SIGSEGV), "expected signal={SIGSEGV}, got {status}");
    Ok(())
}

/// The second thread's id, and the word the kernel clears when it ends.
static THREAD_TID: AtomicI32 = AtomicI32::new(0);
static THREAD_DONE: AtomicI32 = AtomicI32::new(0);

extern "C" fn see_tid(_signo: i32) {
    SEEN.store(signal::gettid() as u64, Ordering::SeqCst);
    COUNT.fetch_add(1, Ordering::SeqCst);
}

/// The second thread: yields until told to end, then ends alone (`exit`).
extern "C" fn thread_body(_arg: usize) -> ! {
    THREAD_TID.store(signal::gettid(), Ordering::SeqCst);
    while THREAD_DONE.load(Ordering::SeqCst) == 0 {
        let _ = process::sched_yield();
    }
    loop {
        // SAFETY: ends this thread only; it touches no memory after.
        unsafe { aspen_sys::raw::syscall1(aspen_sys::raw::Sysno::Exit.number(), 0) };
    }
}

/// Starts a thread of this process running [`thread_body`] on `stack_top`;
/// the kernel clears `*clear_tid` when it ends.
fn start_thread(stack_top: usize, clear_tid: &AtomicI32) -> Result<i32, Errno> {
    const FLAGS: usize = 0x100 | 0x200 | 0x400 | 0x800 | 0x1_0000 | 0x4_0000 | 0x10_0000 | 0x20_0000;
    let ret: isize;
    // SAFETY: the new thread runs on its own stack and calls `thread_body`
    // (which never returns); the kernel preserves x9 and x10 in both.
    unsafe {
        asm!(
            "svc #0",
            "cbnz x0, 1f",
            "mov x0, xzr",
            "blr x9",
            "1:",
            in("x8") aspen_sys::raw::Sysno::Clone.number(),
            inlateout("x0") FLAGS => ret,
            in("x1") stack_top,
            in("x2") clear_tid.as_ptr(),
            in("x3") 0usize,
            in("x4") clear_tid.as_ptr(),
            in("x9") thread_body as extern "C" fn(usize) -> !,
            clobber_abi("C"),
        )
    };
    Errno::result(ret).map(|tid| tid as i32)
}

/// A signal sent to a process with two threads, the main one blocking it,
/// runs its handler in the other; one sent to the main thread with tgkill
/// waits for it.
pub fn thread_group(_: &Context) -> TestResult {
    reset();
    signal::handle(SIGUSR1, see_tid, SaFlags::empty()).ctx("sigaction")?;
    let stack = Region::anon(16, Prot::READ | Prot::WRITE, MapFlags::PRIVATE)?;
    let clear_tid = AtomicI32::new(-1);
    let tid = start_thread(stack.addr + 16 * P, &clear_tid).ctx("clone(CLONE_THREAD)")?;
    signal::sigprocmask(signal::SIG_BLOCK, Some(signal::set_of(&[SIGUSR1]))).ctx("block")?;
    let me = process::getpid();
    signal::kill(me, SIGUSR1).ctx("kill")?;
    let deadline = time::counter() + time::counter_frequency();
    while count() == 0 && time::counter() < deadline {
        process::sched_yield().ctx("sched_yield")?;
    }
    let seen = SEEN.load(Ordering::SeqCst) as i32;
    let result = if count() != 1 {
        Err(alloc::format!("the handler ran {} times", count()))
    } else if seen != tid {
        Err(alloc::format!("the handler ran in thread {seen}, not in {tid} (main {me})"))
    } else {
        signal::tgkill(me, me, SIGUSR1).ctx("tgkill")?;
        let pending = signal::sigpending().ctx("sigpending")?;
        if pending != signal::set_of(&[SIGUSR1]) || count() != 1 {
            Err(alloc::format!("tgkill to the blocking main thread: pending {pending:?}, handler ran {}", count()))
        } else {
            Ok(())
        }
    };
    THREAD_DONE.store(1, Ordering::SeqCst);
    while clear_tid.load(Ordering::SeqCst) != 0 {
        process::sched_yield().ctx("sched_yield")?;
    }
    ensure!(THREAD_TID.load(Ordering::SeqCst) == tid, "the thread's gettid {}", THREAD_TID.load(Ordering::SeqCst));
    result
}

/// A handler installed without SA_RESTORER (as glibc installs them on
/// arm64) returns through the kernel's trampoline (Linux: the vDSO's).
pub fn no_restorer(_: &Context) -> TestResult {
    reset();
    let action =
        signal::SigAction { handler: counter as extern "C" fn(i32) as usize as u64, ..signal::SigAction::DEFAULT };
    let bytes = action.to_bytes();
    // SAFETY: a 32-byte struct sigaction in, no old action out.
    let ret = unsafe {
        aspen_sys::raw::syscall4(
            aspen_sys::raw::Sysno::RtSigaction.number(),
            SIGUSR2 as usize,
            bytes.as_ptr() as usize,
            0,
            8,
        )
    };
    Errno::result(ret).ctx("rt_sigaction without SA_RESTORER")?;
    signal::kill(process::getpid(), SIGUSR2).ctx("kill")?;
    signal::kill(process::getpid(), SIGUSR2).ctx("kill")?;
    ensure!(count() == 2, "the handler ran {} times", count());
    Ok(())
}

/// nanosleep interrupted by a handler fails with EINTR and writes the time
/// left, SA_RESTART or not.
pub fn nanosleep_eintr(_: &Context) -> TestResult {
    reset();
    signal::handle(SIGUSR1, counter, SaFlags::RESTART).ctx("sigaction")?;
    let pid = spawn(|| {
        time::sleep_ms(30).ctx("nanosleep")?;
        signal::kill(process::getppid(), SIGUSR1).ctx("kill(parent)")
    })?;
    let request = Timespec { tv_sec: 5, tv_nsec: 0 };
    let mut left = Timespec::default();
    // SAFETY: the kernel reads `request` and may write `left`.
    let ret = unsafe {
        aspen_sys::raw::syscall2(
            aspen_sys::raw::Sysno::Nanosleep.number(),
            &request as *const Timespec as usize,
            &mut left as *mut Timespec as usize,
        )
    };
    join(pid, "child")?;
    expect_errno("nanosleep interrupted", Errno::result(ret), Errno::EINTR)?;
    ensure!(count() == 1, "the handler ran {} times", count());
    ensure!(left.tv_sec >= 3 && left.tv_sec < 5, "time left {left:?} of 5 s after about 30 ms");
    Ok(())
}

/// A fault whose signal is blocked (with a handler) or ignored kills the
/// process with it, as Linux's force_sig_info.
pub fn blocked_fault_kills(_: &Context) -> TestResult {
    for blocked in [true, false] {
        let status = child_status(|| {
            if blocked {
                signal::handle(SIGSEGV, counter, SaFlags::empty()).ctx("sigaction")?;
                signal::sigprocmask(signal::SIG_BLOCK, Some(signal::set_of(&[SIGSEGV]))).ctx("block")?;
            } else {
                signal::sigaction_raw(SIGSEGV, SIG_IGN, SaFlags::empty(), SigSet(0)).ctx("SIG_IGN")?;
            }
            crate::harness::probe_write(0, 1);
            Err(alloc::format!("survived the fault; the handler ran {} times", count()))
        })?;
        ensure!(status.signal() == Some(SIGSEGV), "blocked {blocked}: expected signal={SIGSEGV}, got {status}");
    }
    Ok(())
}

/// The futex word the handler changes.
static FUTEX_WORD: AtomicI32 = AtomicI32::new(0);

extern "C" fn change_word(signo: i32) {
    FUTEX_WORD.store(1, Ordering::SeqCst);
    counter(signo);
}

/// An untimed FUTEX_WAIT interrupted by a handler: restarted with
/// SA_RESTART (and then the word the handler changed gives EAGAIN), EINTR
/// without.
pub fn restart_futex(_: &Context) -> TestResult {
    for (flags, want) in [(SaFlags::RESTART, Errno::EAGAIN), (SaFlags::empty(), Errno::EINTR)] {
        reset();
        FUTEX_WORD.store(0, Ordering::SeqCst);
        signal::handle(SIGUSR1, change_word, flags).ctx("sigaction")?;
        let pid = spawn(|| {
            time::sleep_ms(30).ctx("nanosleep")?;
            signal::kill(process::getppid(), SIGUSR1).ctx("kill(parent)")
        })?;
        const FUTEX_WAIT_PRIVATE: usize = 128;
        // SAFETY: the kernel reads the word; no timeout.
        let ret = unsafe {
            aspen_sys::raw::syscall4(
                aspen_sys::raw::Sysno::Futex.number(),
                FUTEX_WORD.as_ptr() as usize,
                FUTEX_WAIT_PRIVATE,
                0,
                0,
            )
        };
        join(pid, "child")?;
        ensure!(count() == 1, "{flags:?}: the handler ran {} times", count());
        expect_errno(&alloc::format!("futex wait with {flags:?}"), Errno::result(ret), want)?;
    }
    Ok(())
}
