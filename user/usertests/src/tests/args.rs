//! execve's argument limits, as Linux 6.1's: the strings and their
//! pointers may take a quarter of `RLIMIT_STACK` (at least 128 KiB, at most
//! 6 MiB), one string at most 128 KiB with its NUL; more is `E2BIG`. With
//! the default 8 MiB stack limit 100,000 arguments run.

use alloc::vec;
use alloc::vec::Vec;
use core::ffi::CStr;

use aspen_sys::process::{self, Fork};
use aspen_sys::raw::{syscall3, Sysno};
use aspen_sys::{Args, Errno};

use crate::ensure;
use crate::harness::{Context, Ctx, TestResult};

/// `usertests --child-argc N ARG...` exits 0 when N arguments follow.
pub const CHILD_ARGC: &CStr = c"--child-argc";
/// Linux's `MAX_ARG_STRLEN`: the longest string, its NUL included.
const MAX_ARG_STRLEN: usize = 32 * 4096;
/// `RLIMIT_STACK`.
const RLIMIT_STACK: u32 = 3;

/// The `--child-argc` mode: 0 when the count is right, 1 when not, 2 when
/// there is no count.
pub fn child_argc(args: &Args) -> i32 {
    let Some(want) = args.get(2).and_then(|a| a.to_str().ok()?.parse::<usize>().ok()) else { return 2 };
    i32::from(args.iter().skip(3).count() != want)
}

/// In a child: runs `exe --child-argc N` with the `extra` strings
/// (NUL-terminated) after them, optionally under a stack limit first; the
/// child's exit code is the execve error's number when execve fails.
fn exec_in_child(exe: &CStr, extra: &[*const u8], stack_limit: Option<u64>) -> Result<i32, alloc::string::String> {
    let count = alloc::format!("{}\0", extra.len());
    let mut argv: Vec<usize> = Vec::new();
    argv.try_reserve(extra.len() + 4).map_err(|_| "no memory for the argument array")?;
    argv.extend([exe.as_ptr() as usize, CHILD_ARGC.as_ptr() as usize, count.as_ptr() as usize]);
    argv.extend(extra.iter().map(|&p| p as usize));
    argv.push(0);
    let envp = [0usize];
    match process::fork().ctx("fork")? {
        Fork::Child => {
            if let Some(limit) = stack_limit {
                if process::setrlimit(RLIMIT_STACK, limit, limit).is_err() {
                    process::exit_group(100);
                }
            }
            // SAFETY: the path and every string are NUL-terminated; both arrays end with NULL.
            let ret = unsafe {
                syscall3(Sysno::Execve.number(), exe.as_ptr() as usize, argv.as_ptr() as usize, envp.as_ptr() as usize)
            };
            let code = Errno::result(ret).err().map_or(101, |e| e.as_i32());
            process::exit_group(code)
        }
        Fork::Parent(pid) => {
            let (_, status) = process::wait4(pid, 0).ctx("wait4")?;
            status.exit_code().ok_or_else(|| alloc::format!("the child ended with {status}"))
        }
    }
}

pub fn many_arguments(ctx: &Context) -> TestResult {
    let exe = ctx.exe;
    let x = c"x".as_ptr().cast::<u8>();

    let code = exec_in_child(exe, &vec![x; 100_000], None)?;
    ensure!(code == 0, "100,000 arguments: the child exited {code} (0: all arrived; 7: E2BIG)");

    // The longest string there may be, and one byte more.
    let mut longest = vec![b'y'; MAX_ARG_STRLEN];
    longest[MAX_ARG_STRLEN - 1] = 0;
    let code = exec_in_child(exe, &[longest.as_ptr()], None)?;
    ensure!(code == 0, "a string of MAX_ARG_STRLEN bytes with its NUL: the child exited {code}");
    let mut too_long = vec![b'y'; MAX_ARG_STRLEN + 1];
    too_long[MAX_ARG_STRLEN] = 0;
    let code = exec_in_child(exe, &[too_long.as_ptr()], None)?;
    ensure!(code == Errno::E2BIG.as_i32(), "a string one byte over MAX_ARG_STRLEN: exit {code}, expected E2BIG");

    // 20 strings of 120,000 bytes: 2.4 MB, over a quarter of 8 MiB.
    let mut big = vec![b'z'; 120_000];
    big[119_999] = 0;
    let code = exec_in_child(exe, &[big.as_ptr(); 20], None)?;
    ensure!(code == Errno::E2BIG.as_i32(), "2.4 MB of strings under an 8 MiB stack limit: exit {code}, expected E2BIG");

    // Under a 256 KiB stack limit the floor, 128 KiB, applies.
    let code = exec_in_child(exe, &vec![x; 20_000], Some(256 << 10))?;
    ensure!(code == Errno::E2BIG.as_i32(), "20,000 arguments under a 256 KiB stack limit: exit {code}, expected E2BIG");
    let code = exec_in_child(exe, &vec![x; 10_000], Some(256 << 10))?;
    ensure!(code == 0, "10,000 arguments under a 256 KiB stack limit: exit {code}");
    Ok(())
}
