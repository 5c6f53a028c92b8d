//! `bench --sweep`: the memory calls over a range of sizes and patterns,
//! one line per case and size:
//!
//! ```text
//! sweep <case> pages=<n> n=<ops> ticks_per_op=<t> ticks_per_page=<t> freq=<hz>
//! ```
//!
//! The same static binary runs on Aspen and on Linux (`make bench`), so the
//! two columns compare directly. Cases: `fork` (a touched private region of
//! 1, 16, 128 MiB; fork, the child exits, wait), `map_touch_unmap`,
//! `munmap` (of touched pages, timed alone), `mprotect_rw_write` (read-only,
//! then read-write, then a write to every page), `file_read_fault` and
//! `file_cow` (a private mapping of a /tmp file: a read, or a write, of every
//! page), `shared_fork` (a shared anonymous region written by a forked
//! child), `populate` (`MAP_POPULATE` + munmap) and, over 1 GiB with one
//! page touched in every 2 MiB, `sparse_touch` and `sparse_unmap`.

use aspen_sys::fs::{self, OpenFlags};
use aspen_sys::mem::{self, Advice, MapFlags, Prot, PAGE_SIZE};
use aspen_sys::process::{self, Fork};
use aspen_sys::{path, println, time};

use crate::{anon, fail, touch};

/// One case at one size: `ticks` over `ops` operations of `pages` pages.
fn report(case: &str, pages: usize, ops: u64, ticks: u64) {
    let per = |v: u64, d: u64| {
        let x = v as f64 / d as f64;
        let whole = x as u64;
        alloc::format!("{whole}.{:03}", ((x - whole as f64) * 1000.0) as u64)
    };
    println!(
        "sweep {case} pages={pages} n={ops} ticks_per_op={} ticks_per_page={} freq={}",
        per(ticks, ops),
        per(ticks, ops * pages as u64),
        time::counter_frequency()
    );
}

/// Operations per size: enough to time small sizes well, few for large.
fn ops_for(pages: usize) -> u64 {
    match pages {
        0..=16 => 200,
        17..=256 => 40,
        257..=4096 => 8,
        _ => 2,
    }
}

/// Unmaps a mapping this module made.
fn unmap(addr: usize, len: usize) {
    // SAFETY: the range is a mapping made here, and no reference into it lives on.
    unsafe { mem::munmap(addr, len) }.unwrap_or_else(|e| fail("munmap", e));
}

fn fork_cycle() {
    match process::fork() {
        Ok(Fork::Child) => process::exit_group(0),
        Ok(Fork::Parent(pid)) => {
            let _ = process::wait4(pid, 0);
        }
        Err(e) => fail("fork", e),
    }
}

fn fork(mib: usize) {
    let len = mib << 20;
    let addr = anon(len);
    touch(addr, len);
    fork_cycle(); // warm-up
    let ops = if mib >= 128 { 3 } else { 10 };
    let start = time::counter();
    for _ in 0..ops {
        fork_cycle();
    }
    report("fork", len / PAGE_SIZE, ops, time::counter() - start);
    unmap(addr, len);
}

fn map_touch_unmap(pages: usize) {
    let len = pages * PAGE_SIZE;
    let ops = ops_for(pages);
    let start = time::counter();
    for _ in 0..ops {
        let addr = anon(len);
        touch(addr, len);
        unmap(addr, len);
    }
    report("map_touch_unmap", pages, ops, time::counter() - start);
}

fn munmap_alone(pages: usize) {
    let len = pages * PAGE_SIZE;
    let ops = ops_for(pages);
    let mut ticks = 0;
    for _ in 0..ops {
        let addr = anon(len);
        touch(addr, len);
        let start = time::counter();
        unmap(addr, len);
        ticks += time::counter() - start;
    }
    report("munmap", pages, ops, ticks);
}

fn mprotect_rw_write(pages: usize) {
    let len = pages * PAGE_SIZE;
    let ops = ops_for(pages);
    let addr = anon(len);
    touch(addr, len);
    let start = time::counter();
    for _ in 0..ops {
        // SAFETY: nothing writes the range while it is read-only.
        unsafe { mem::mprotect(addr, len, Prot::READ) }.unwrap_or_else(|e| fail("mprotect", e));
        // SAFETY: giving write back changes no content.
        unsafe { mem::mprotect(addr, len, Prot::READ | Prot::WRITE) }.unwrap_or_else(|e| fail("mprotect", e));
        touch(addr, len);
    }
    report("mprotect_rw_write", pages, ops, time::counter() - start);
    unmap(addr, len);
}

/// A file in /tmp of `pages` pages, written (so in the page cache); its fd.
fn cached_file(pages: usize) -> i32 {
    let name = c"/tmp/bench-sweep";
    let fd = fs::open(name, OpenFlags::RDWR | OpenFlags::CREAT | OpenFlags::TRUNC, 0o600)
        .unwrap_or_else(|e| fail("open", e));
    let _ = path::unlinkat(fs::AT_FDCWD, name, 0);
    let page = [0x5a_u8; PAGE_SIZE];
    for _ in 0..pages {
        fs::write(fd, &page).unwrap_or_else(|e| fail("write", e));
    }
    fd
}

/// A private mapping of the file: every page read (`write` false) or
/// written (copy on write).
fn file_private(pages: usize, write: bool) {
    let len = pages * PAGE_SIZE;
    let fd = cached_file(pages);
    let ops = ops_for(pages);
    let start = time::counter();
    for _ in 0..ops {
        // SAFETY: no MAP_FIXED.
        let addr = unsafe { mem::mmap(0, len, Prot::READ | Prot::WRITE, MapFlags::PRIVATE, fd, 0) }
            .unwrap_or_else(|e| fail("mmap file", e));
        for page in (0..len).step_by(PAGE_SIZE) {
            let p = (addr + page) as *mut u8;
            if write {
                // SAFETY: inside the read-write mapping just made.
                unsafe { p.write_volatile(1) };
            } else {
                // SAFETY: as above.
                let _ = unsafe { p.read_volatile() };
            }
        }
        unmap(addr, len);
    }
    report(if write { "file_cow" } else { "file_read_fault" }, pages, ops, time::counter() - start);
    let _ = fs::close(fd);
}

/// A shared anonymous region, touched, then written by a forked child.
fn shared_fork(pages: usize) {
    let len = pages * PAGE_SIZE;
    // SAFETY: no MAP_FIXED.
    let addr = unsafe { mem::mmap(0, len, Prot::READ | Prot::WRITE, MapFlags::SHARED | MapFlags::ANONYMOUS, -1, 0) }
        .unwrap_or_else(|e| fail("mmap shared", e));
    touch(addr, len);
    let ops = ops_for(pages).min(40);
    let start = time::counter();
    for _ in 0..ops {
        match process::fork() {
            Ok(Fork::Child) => {
                touch(addr, len);
                process::exit_group(0)
            }
            Ok(Fork::Parent(pid)) => {
                let _ = process::wait4(pid, 0);
            }
            Err(e) => fail("fork", e),
        }
    }
    report("shared_fork", pages, ops, time::counter() - start);
    unmap(addr, len);
}

fn populate(pages: usize) {
    let len = pages * PAGE_SIZE;
    let ops = ops_for(pages);
    let flags = MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::POPULATE;
    let start = time::counter();
    for _ in 0..ops {
        // SAFETY: no MAP_FIXED.
        let addr = unsafe { mem::mmap(0, len, Prot::READ | Prot::WRITE, flags, -1, 0) }
            .unwrap_or_else(|e| fail("mmap populate", e));
        unmap(addr, len);
    }
    report("populate", pages, ops, time::counter() - start);
}

/// 1 GiB with one page touched in every 2 MiB: the touches, then the unmap.
fn sparse() {
    const LEN: usize = 1 << 30;
    const STRIDE: usize = 2 << 20;
    const ROUNDS: u64 = 4;
    let (mut touch_ticks, mut unmap_ticks) = (0, 0);
    // MAP_NORESERVE: Linux's default overcommit refuses 1 GiB on a 1 GiB machine without it.
    let flags = MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::NORESERVE;
    for _ in 0..ROUNDS {
        // SAFETY: no MAP_FIXED.
        let addr = unsafe { mem::mmap(0, LEN, Prot::READ | Prot::WRITE, flags, -1, 0) }
            .unwrap_or_else(|e| fail("mmap 1 GiB", e));
        // 4 KiB pages on Linux too (a 2 MiB page per touch would fill the machine).
        // SAFETY: advice only.
        let _ = unsafe { mem::madvise(addr, LEN, Advice::NoHugePage) };
        let start = time::counter();
        for at in (0..LEN).step_by(STRIDE) {
            // SAFETY: inside the read-write mapping just made.
            unsafe { ((addr + at) as *mut u8).write_volatile(1) };
        }
        touch_ticks += time::counter() - start;
        let start = time::counter();
        unmap(addr, LEN);
        unmap_ticks += time::counter() - start;
    }
    let touched = LEN / STRIDE;
    report("sparse_touch", touched, ROUNDS, touch_ticks);
    report("sparse_unmap", touched, ROUNDS, unmap_ticks);
}

/// Whether `arg` names `case` (`CASE`) or `case` at `size` (`CASE=SIZE`,
/// the size as the case counts it: pages, or MiB for `fork`).
fn names(arg: &[u8], case: &str, size: usize) -> bool {
    match arg.iter().position(|&b| b == b'=') {
        None => arg == case.as_bytes(),
        Some(eq) => {
            let digits = &arg[eq + 1..];
            let parsed = digits.iter().try_fold(0usize, |n, &d| {
                d.is_ascii_digit().then(|| n.checked_mul(10)?.checked_add(usize::from(d - b'0'))).flatten()
            });
            &arg[..eq] == case.as_bytes() && !digits.is_empty() && parsed == Some(size)
        }
    }
}

/// Runs the named cases (`fork`, `map_touch_unmap`, `munmap`,
/// `mprotect_rw_write`, `file` (both file cases), `shared_fork`,
/// `populate`, `sparse`) at every size, or at one size given as
/// `CASE=SIZE` (`munmap=1`, for `scripts/profile.sh`); every case when none
/// is named.
pub fn run(only: &[&[u8]]) {
    let wanted_at = |case: &str, size: usize| only.is_empty() || only.iter().any(|arg| names(arg, case, size));
    let wanted = |case: &str| only.is_empty() || only.contains(&case.as_bytes());
    for mib in [1, 16, 128] {
        if wanted_at("fork", mib) {
            fork(mib);
        }
    }
    for pages in [1, 16, 256, 4096] {
        if wanted_at("map_touch_unmap", pages) {
            map_touch_unmap(pages);
        }
    }
    for pages in [1, 16, 256, 4096, 65536] {
        if wanted_at("munmap", pages) {
            munmap_alone(pages);
        }
    }
    for pages in [16, 256, 4096] {
        if wanted_at("mprotect_rw_write", pages) {
            mprotect_rw_write(pages);
        }
    }
    if wanted("file") {
        for pages in [16, 1024] {
            file_private(pages, false);
            file_private(pages, true);
        }
    }
    for pages in [16, 1024] {
        if wanted_at("shared_fork", pages) {
            shared_fork(pages);
        }
    }
    for pages in [16, 1024, 16384] {
        if wanted_at("populate", pages) {
            populate(pages);
        }
    }
    if wanted("sparse") {
        sparse();
    }
}
