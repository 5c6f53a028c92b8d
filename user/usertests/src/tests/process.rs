//! Processes: fork's pids, execve, wait4 statuses and errors.

use core::sync::atomic::{AtomicU32, Ordering};

use aspen_sys::mem::{MapFlags, Prot};
use aspen_sys::process::{self, Fork, WaitStatus, WNOHANG};
use aspen_sys::Errno;

use crate::ensure;
use crate::harness::{expect_errno, join, spawn, Context, Ctx, Region, Stage, TestResult};

/// What an exec'd copy of usertests exits with in this test.
const EXEC_EXIT_CODE: i32 = 42;

/// Runs `exe --child-exit <code>` in a child and returns its status.
pub fn exec_self(ctx: &Context, code: &core::ffi::CStr) -> Result<WaitStatus, alloc::string::String> {
    match process::fork().ctx("fork")? {
        Fork::Child => {
            let e = process::execve(ctx.exe, &[ctx.exe, c"--child-exit", code], &[]);
            aspen_sys::println!("usertests: execve {:?}: {e}", ctx.exe);
            process::exit_group(127)
        }
        Fork::Parent(pid) => process::wait4(pid, 0).map(|(_, status)| status).ctx("wait4"),
    }
}

pub fn fork_exec_wait(ctx: &Context) -> TestResult {
    let me = process::getpid();
    let shared = Region::anon(1, Prot::READ | Prot::WRITE, MapFlags::SHARED)?;
    let ids = |i: usize| -> &AtomicU32 {
        // SAFETY: two aligned words inside the mapped shared page, used atomically.
        unsafe { &*((shared.addr + 4 * i) as *const AtomicU32) }
    };
    let pid = spawn(|| {
        ids(0).store(process::getpid() as u32, Ordering::Release);
        ids(1).store(process::getppid() as u32, Ordering::Release);
        Ok(())
    })?;
    join(pid, "child")?;
    let (child_pid, child_ppid) = (ids(0).load(Ordering::Acquire) as i32, ids(1).load(Ordering::Acquire) as i32);
    ensure!(child_pid == pid, "the child's getpid() is {child_pid}, fork returned {pid}");
    ensure!(child_ppid == me, "the child's getppid() is {child_ppid}, the parent is {me}");

    let status = exec_self(ctx, c"42")?;
    ensure!(
        status.exit_code() == Some(EXEC_EXIT_CODE),
        "exec'd program ended with {status}, expected exit={EXEC_EXIT_CODE}"
    );
    let status = exec_self(ctx, c"200")?;
    ensure!(status.exit_code() == Some(200), "exit code 200 came back as {status}");

    let pid = spawn(|| {
        let e = process::execve(c"/nonexistent/program", &[c"program"], &[]);
        ensure!(e == Errno::ENOENT, "execve of a missing file: {e}, expected ENOENT");
        Ok(())
    })?;
    join(pid, "child")?;

    let stage = Stage::at(&shared, 8);
    let pid = spawn(|| stage.wait_for(1, None))?;
    let early = process::wait4(pid, WNOHANG).ctx("wait4(WNOHANG)")?;
    ensure!(early.0 == 0, "wait4(WNOHANG) on a running child returned {early:?}");
    stage.set(1);
    join(pid, "waiting child")?;
    expect_errno("wait4(-1) without children", process::wait4(-1, 0), Errno::ECHILD)?;
    expect_errno("wait4(-1, WNOHANG) without children", process::wait4(-1, WNOHANG), Errno::ECHILD)?;
    Ok(())
}
