//! Writable and executable memory (issue 14): code in a
//! `PROT_READ|PROT_WRITE|PROT_EXEC` page that stores into its own page
//! finishes, and on Aspen `/proc/self/status` counts the write/execute
//! flips it took (Aspen's own `WxFlips` and `WxVareas` lines).

use core::arch::asm;

use aspen_sys::fs;
use aspen_sys::mem::{MapFlags, Prot};

use super::segv::sync_icache;
use crate::ensure;
use crate::harness::{Context, Ctx, Region, TestResult};

/// `str w1, [x0]`: stores the second argument where the first points.
const STR_W1_X0: u32 = 0xb900_0001;
/// `ret`.
const RET: u32 = 0xd65f_03c0;
/// Where in the page the routine stores: its own page, past its code.
const DATA: usize = 2048;
/// Calls of the routine: each stores into the page it runs from.
const CALLS: u32 = 1000;
/// Aspen's flip bound (`aspen_mm::aspace::WX_FLIP_BOUND`): the routine's
/// first store takes one flip more than this before it completes.
const WX_FLIP_BOUND: u64 = 4;

/// Calls the routine at `code` with `x0 = target`, `w1 = value`.
fn call_store(code: usize, target: usize, value: u32) {
    // SAFETY: `code` holds `str w1, [x0]; ret`, written by the test: it
    // stores `value` at `target` (a word of the test's own mapping that no
    // Rust object uses) and returns, clobbering only what the C ABI allows.
    unsafe {
        asm!(
            "blr {code}",
            code = in(reg) code,
            inout("x0") target => _,
            inout("x1") u64::from(value) => _,
            clobber_abi("C"),
        )
    };
}

/// The number on the `key:` line of `/proc/self/status`.
fn status_field(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| line.strip_prefix(key)?.strip_prefix(':')?.trim().parse().ok())
}

/// A routine storing into its own RWX page runs [`CALLS`] times; the
/// stored words are there; Aspen reports the flips past the bound.
pub fn self_modifying_page(ctx: &Context) -> TestResult {
    let page = Region::anon(1, Prot::READ | Prot::WRITE | Prot::EXEC, MapFlags::PRIVATE)?;
    for (i, byte) in STR_W1_X0.to_le_bytes().into_iter().chain(RET.to_le_bytes()).enumerate() {
        page.write(i, byte);
    }
    sync_icache(page.addr);
    let target = page.addr + DATA;
    for value in 1..=CALLS {
        call_store(page.addr, target, value);
        let stored = page.read_u64(DATA) as u32;
        ensure!(stored == value, "call {value}: the page holds {stored}");
    }
    let mut buf = [0u8; 2048];
    let n = fs::read_file(c"/proc/self/status", &mut buf).ctx("read /proc/self/status")?;
    let status = core::str::from_utf8(&buf[..n]).map_err(|_| "/proc/self/status is not UTF-8")?;
    ensure!(status.lines().any(|l| l.starts_with("Name:\t")), "no Name line in {status:?}");
    let pid = aspen_sys::process::getpid() as u64;
    ensure!(status_field(status, "Pid") == Some(pid), "Pid is not {pid} in {status:?}");
    if ctx.linux {
        // Linux maps the page writable and executable at once: no flips.
        return Ok(());
    }
    let flips = status_field(status, "WxFlips");
    ensure!(flips.is_some_and(|f| f > WX_FLIP_BOUND), "WxFlips is {flips:?}, want more than {WX_FLIP_BOUND}");
    let vareas = status_field(status, "WxVareas");
    ensure!(vareas.is_some_and(|v| v >= 1), "WxVareas is {vareas:?}, want at least 1");
    Ok(())
}
