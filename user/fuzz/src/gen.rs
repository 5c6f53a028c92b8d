//! Generating calls: a system call number and six arguments drawn from
//! values that tend to find bugs (0, -1, page boundaries, the child's own
//! mappings, kernel and non-canonical addresses, lengths near 2^64, ...).
//!
//! What is *not* generated, so that the fuzz child cannot end the run or
//! hang for reasons that are not the kernel's fault:
//! - exit, exit_group (only at the end of a batch) and reboot;
//! - signals: kill, tkill, tgkill and rt_sigqueueinfo with random targets
//!   reach the test harness (kill(0) and kill(-1) too); rt_sigsuspend and
//!   rt_sigtimedwait without a timeout wait forever; rt_sigreturn and
//!   rt_sigaction send the child to random code, which may spin; only
//!   stop signals and SIGCONT, sent by the child to itself (the runner
//!   continues a stopped child, or kills it while stopped);
//! - long sleeps: nanosleep only gets a request the fuzzer wrote (at most
//!   100 µs, or invalid) or a pointer that can never be mapped;
//! - reads that block: the child closes its console descriptors first and
//!   never opens /dev/console; every pipe it makes is `O_NONBLOCK`, and
//!   `fcntl(F_SETFL)` never clears that;
//! - polls that block: ppoll and pselect6 always get a timeout the fuzzer
//!   wrote (at most 100 µs, or invalid) or one it cannot read;
//! - anything that changes files: openat gets O_RDONLY without O_CREAT,
//!   O_TRUNC or O_TMPFILE (so no tmpfs pages outlive a child, and the
//!   program's own files stay intact); sendfile writes only to what the
//!   child could write anyway (its pipes); the calls that make, remove,
//!   rename, chmod, chown, truncate or symlink names (also when a random
//!   number hits them)
//!   get only [`CHANGE_PATHS`], whose parent is missing or not a directory,
//!   on Aspen also the read-only initramfs (EROFS), never tmpfs; a pointer
//!   that cannot be read; descriptors that are not open (fchmod, fchown,
//!   fchdir), or the child's own read-only ones (ftruncate: EINVAL); so
//!   the working directory never becomes a tmpfs directory either; mount
//!   gets only targets that do not exist, umount2 the paths above (none is
//!   a mount point);
//! - a successful execve: the path is never an executable unless argv or
//!   envp holds a pointer that cannot be mapped (kernel or non-canonical);
//! - new contents under the child's own code, data or live stack: there
//!   calls may take access away (the child dies of a signal) but not map
//!   fresh readable memory or discard pages (zeroed jump tables or loop
//!   counters can make the child spin, which looks like a hang).
//!
//! On Linux (the reference) a few more are left out, as they would harm the
//! machine rather than test it: random system-call numbers are replaced by
//! unallocated ones, madvise(MADV_HWPOISON/SOFT_OFFLINE), clone with
//! CLONE_PARENT or an exit signal other than SIGCHLD, and ioctl requests
//! other than a few terminal ones. On Aspen every number from 0 to 500 but
//! exit, exit_group, reboot and the signal calls above is fair game.

use core::ffi::CStr;

use aspen_sys::mem::{MapFlags, USER_ADDR_END};
use aspen_sys::process::Signal;
use aspen_sys::raw::Sysno;

use crate::child::Env;
use crate::ring::{TOUCH_READ, TOUCH_WRITE};
use crate::rng::Rng;

// `--avoid` bits: kernel bugs the fuzzer steers clear of once known, so a
// run can look for others.

/// Shared anonymous mappings over 8 MiB (populating a large one exhausts
/// Aspen's kernel heap).
pub const AVOID_BIG_SHARED_ANON: u64 = 1;
/// File mappings over 64 MiB (populating or locking one walks every page
/// past the end of the file, for minutes, with the machine frozen).
pub const AVOID_BIG_FILE_MAP: u64 = 2;
/// Paths with a slash after a file name in execve (Aspen ignores the slash
/// and runs the program, where Linux says ENOTDIR).
pub const AVOID_TRAILING_SLASH_EXEC: u64 = 4;
/// Shared file mappings (Aspen lets mprotect make a shared mapping of a
/// read-only descriptor writable, and the stores change the file: here the
/// fuzz program itself).
pub const AVOID_SHARED_FILE_MAP: u64 = 8;

/// One generated call.
pub struct Call {
    pub nr: u64,
    pub args: [u64; 6],
}

/// The number of `clone`, which the child runs specially (see `child::execute`).
pub const CLONE: u64 = Sysno::Clone.number() as u64;

/// The calls that only read ids (getpid .. gettid).
const IDS: &[Sysno] =
    &[Sysno::Getpid, Sysno::Getppid, Sysno::Getuid, Sysno::Geteuid, Sysno::Getgid, Sysno::Getegid, Sysno::Gettid];

const PAGE: u64 = 4096;
const SIGCHLD: u64 = Signal::Chld as u64;
/// The signals the child sends itself: stops and continues.
const JOB_SIGNALS: &[u64] = &[Signal::Stop as u64, Signal::Tstp as u64, Signal::Cont as u64];

/// Addresses in the kernel half (TTBR1).
const KERNEL_ADDRS: &[u64] = &[
    0xffff_0000_0000_0000,
    0xffff_ffff_ffff_f000,
    0xffff_8000_0000_0000,
    0xffff_0000_4008_0000,
    0xffff_ffff_ffff_fff8,
    0xffff_ffff_ffff_ffff,
    0xffff_ff80_0000_0000,
];
/// Around the top of the user half (48-bit VA) and other edges.
const EDGE_ADDRS: &[u64] = &[
    0x0000_ffff_ffff_f000,
    0x0000_ffff_ffff_fff8,
    0x0000_ffff_ffff_ffff,
    0x0000_ffff_ffff_e000,
    USER_ADDR_END,
    0x0000_8000_0000_0000,
    0x0000_7fff_ffff_f000,
    0x0000_0080_0000_0000,
    0x0000_007f_ffff_f000,
];
/// Neither user nor kernel: bits 48-63 not all equal.
const NONCANONICAL: &[u64] = &[
    0x0010_0000_0000_0000,
    0x8000_0000_0000_0000,
    0x00ff_ffff_ffff_f000,
    0x0fff_0000_0000_0000,
    0x7fff_ffff_ffff_f000,
    0xdead_beef_dead_b000,
    0xfffe_ffff_ffff_f000,
];
const LOW_ADDRS: &[u64] = &[0, 1, 8, 0xfff, 0x1000, 0x1001, 0x10000, 0x3f_f000, 0x40_0000, 0x40_0001];
const LENGTHS: &[u64] = &[
    0,
    1,
    7,
    8,
    15,
    16,
    17,
    64,
    100,
    144,
    4095,
    4096,
    4097,
    8192,
    12288,
    65536,
    65537,
    1 << 20,
    0x7fff_f000,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    1 << 40,
    1 << 47,
    USER_ADDR_END,
    i64::MAX as u64,
    1 << 63,
    u64::MAX,
    u64::MAX - 4095,
    u64::MAX - 4096,
    u64::MAX - 4094,
    u64::MAX - 0xffff,
];
/// Lengths that are allocatable but large: populating them pushes memory hard.
const BIG_LENGTHS: &[u64] = &[64 << 20, 256 << 20, 512 << 20, 1 << 30];
const INTS: &[u64] = &[
    0,
    1,
    2,
    3,
    4,
    5,
    7,
    8,
    16,
    0x20,
    0x80,
    0xff,
    0x100,
    0xfff,
    0x1000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
    u64::MAX - 1,
    -100i64 as u64,
    -4095i64 as u64,
];

/// Paths openat and newfstatat get (never /dev/console: reading it blocks),
/// symbolic links among them: loops, a dangling one, ".." through links.
const PATHS: &[&CStr] = &[
    c"/",
    c"/bin",
    c"/bin/fuzz",
    c"/init",
    c"/etc",
    c"/etc/aspen-autorun",
    c"/proc",
    c"/proc/meminfo",
    c"/proc/self/maps",
    c"/proc/self/stat",
    c"/proc/self/cmdline",
    c"/proc/1/maps",
    c"/proc/1/stat",
    c"/proc/self",
    c"/proc/self/",
    c"/proc/self/status",
    c"/proc/self/statm",
    c"/proc/self/task",
    c"/proc/thread-self",
    c"/proc/thread-self/stat",
    c"/proc/1/task/1/status",
    c"/proc/loadavg",
    c"/proc/stat",
    c"/proc/uptime",
    c"/proc/cpuinfo",
    c"/proc/mounts",
    c"/tmp",
    c"/tmp/",
    c"/dev",
    c"/nonexistent",
    c"/bin/fuzz/x",
    c"/bin/fuzz/",
    c"//bin///fuzz",
    c"/tmp/../bin/fuzz",
    c"/./etc/../init",
    c"/..",
    c"",
    c".",
    c"..",
    c"bin/fuzz",
    c"init",
    // The links the parent makes before its baseline (crate::LINKS).
    c"/tmp/fuzz-links/loop",
    c"/tmp/fuzz-links/loop/",
    c"/tmp/fuzz-links/ping/x",
    c"/tmp/fuzz-links/dangling",
    c"/tmp/fuzz-links/up/fuzz-links/up/..",
    c"/tmp/fuzz-links/root/bin/fuzz",
    c"/tmp/fuzz-links/fuzz",
    c"/tmp/fuzz-links/self/maps",
    c"/tmp/fuzz-links/deep",
];
/// Paths the calls that change names get: nothing can be made, removed or
/// changed there, on Linux either (Linux's rootfs is writable).
const CHANGE_PATHS: &[&CStr] = &[c"/nonexistent/x", c"/bin/fuzz/x", c"/proc/self/x", c"", c"/nonexistent/"];
/// More of them on Aspen only, where the initramfs is read-only (EROFS).
const CHANGE_PATHS_ASPEN: &[&CStr] = &[c"/bin/fuzz", c"/init", c"/etc", c"/bin", c"/", c"/..", c"/nonexistent"];

/// The regular files of [`PATHS`] (the parent reads them in full before its
/// baseline, so their page caches are complete).
pub const FILES: &[&CStr] = &[c"/bin/fuzz", c"/init", c"/etc/aspen-autorun"];
/// What execve may get as a path with sound argv and envp: nothing runnable.
const NOT_EXECUTABLE: &[&CStr] = &[
    c"/",
    c"/etc/aspen-autorun",
    c"/proc/meminfo",
    c"/nonexistent",
    c"",
    c"/tmp",
    c"/bin",
    c"/bin/fuzz/",
    c"/dev",
    c"/tmp/fuzz-links/loop",
    c"/tmp/fuzz-links/dangling",
    c"/tmp/fuzz-links/root",
];

/// The string argv[0] of an execve carries; a fuzz process started with it
/// exits at once with [`crate::EXEC_MARKER_EXIT`].
pub const EXEC_MARKER: &CStr = c"fuzz-exec-marker";

/// Bytes of the argument buffer (see [`crate::child`]): its layout.
pub const ARG_TIMESPEC: u64 = 0;
pub const ARG_MARKER: u64 = 0x40;
pub const ARG_SIGPAIR: u64 = 0x200;
pub const ARG_POLL: u64 = 0x400;
const ARG_POLL_MAX: u64 = 32;
/// Two futex words (and a robust list head at +0x10).
const ARG_FUTEX: u64 = 0x80;
pub const ARG_IOV: u64 = 0x800;
const ARG_IOV_MAX: u64 = 64;
pub const ARG_PATH: u64 = PAGE;
/// A symbolic link's target (symlinkat), after the path slots.
const ARG_LINK_TARGET: u64 = ARG_PATH + 256;
/// sendfile's offset.
const ARG_OFFSET: u64 = ARG_PATH + 512;
pub const ARG_ARRAY: u64 = 2 * PAGE;
const ARG_ARRAY_MAX: u64 = 2 * PAGE / 8 - 1;
pub const ARG_LONG_PATH: u64 = 4 * PAGE;
/// Pages of the argument buffer; an unmapped page follows it.
pub const ARG_PAGES: u64 = 8;

/// The operations and their weights.
#[derive(Clone, Copy)]
enum Op {
    Read,
    Write,
    Readv,
    Writev,
    Openat,
    Close,
    Lseek,
    Getdents,
    Fstat,
    Newfstatat,
    Ioctl,
    Clone,
    Execve,
    Wait4,
    JobSignal,
    Ids,
    Yield,
    Nanosleep,
    ClockGettime,
    Uname,
    Sysinfo,
    Brk,
    Mmap,
    Munmap,
    Mprotect,
    Msync,
    Mlock,
    Munlock,
    Mlockall,
    Munlockall,
    Madvise,
    Pipe2,
    Dup,
    Fcntl,
    Ppoll,
    Pselect,
    Futex,
    RobustList,
    Sched,
    Random,
    Touch,
    PathInfo,
    PathChange,
    Sendfile,
}

const OPS: &[(Op, u32)] = &[
    (Op::Read, 60),
    (Op::Write, 30),
    (Op::Readv, 25),
    (Op::Writev, 20),
    (Op::Openat, 60),
    (Op::Close, 25),
    (Op::Lseek, 25),
    (Op::Getdents, 25),
    (Op::Fstat, 25),
    (Op::Newfstatat, 30),
    (Op::Ioctl, 15),
    (Op::Clone, 3),
    (Op::Execve, 3),
    (Op::Wait4, 15),
    (Op::JobSignal, 3),
    (Op::Ids, 10),
    (Op::Yield, 5),
    (Op::Nanosleep, 5),
    (Op::ClockGettime, 15),
    (Op::Uname, 10),
    (Op::Sysinfo, 10),
    (Op::Brk, 35),
    (Op::Mmap, 140),
    (Op::Munmap, 70),
    (Op::Mprotect, 70),
    (Op::Msync, 25),
    (Op::Mlock, 25),
    (Op::Munlock, 20),
    (Op::Mlockall, 8),
    (Op::Munlockall, 5),
    (Op::Madvise, 45),
    (Op::Pipe2, 10),
    (Op::Dup, 15),
    (Op::Fcntl, 20),
    (Op::Ppoll, 10),
    (Op::Pselect, 10),
    (Op::Futex, 30),
    (Op::RobustList, 5),
    (Op::Sched, 15),
    (Op::Random, 50),
    (Op::Touch, 60),
    (Op::PathInfo, 20),
    (Op::PathChange, 20),
    (Op::Sendfile, 15),
];

/// Generates the next call (writing what it points to into the argument buffer).
pub fn generate(rng: &mut Rng, env: &mut Env) -> Call {
    let mut weights = [0u32; OPS.len()];
    for (w, (_, weight)) in weights.iter_mut().zip(OPS) {
        *w = *weight;
    }
    let op = OPS[rng.weighted(&weights)].0;
    op_call(op, rng, env)
}

fn call(sysno: Sysno, args: [u64; 6]) -> Call {
    Call { nr: sysno.number() as u64, args }
}

fn op_call(op: Op, rng: &mut Rng, env: &mut Env) -> Call {
    let r = rng.next();
    match op {
        Op::Read => {
            let buf = buffer(rng, env);
            call(Sysno::Read, [fd(rng, env), buf, below_live_stack(env, buf, len(rng)), r, 0, 0])
        }
        Op::Write => call(Sysno::Write, [fd(rng, env), buffer(rng, env), len(rng), r, 0, 0]),
        Op::Readv => call(Sysno::Readv, [fd(rng, env), iovecs(rng, env), iov_count(rng), r, 0, 0]),
        Op::Writev => call(Sysno::Writev, [fd(rng, env), iovecs(rng, env), iov_count(rng), r, 0, 0]),
        Op::Openat => {
            call(Sysno::Openat, [dirfd(rng, env), path(rng, env), open_flags(rng), rng.next() & 0o7777, r, 0])
        }
        Op::Close => call(Sysno::Close, [fd(rng, env), r, 0, 0, 0, 0]),
        Op::Lseek => {
            let offset = match rng.below(4) {
                0 => rng.pick(INTS),
                1 => rng.pick(LENGTHS),
                2 => (rng.pick(LENGTHS)).wrapping_neg(),
                _ => rng.below(1 << 20),
            };
            let whence = if rng.chance(4, 5) { rng.below(5) } else { rng.pick(INTS) };
            call(Sysno::Lseek, [fd(rng, env), offset, whence, r, 0, 0])
        }
        Op::Getdents => call(Sysno::Getdents64, [fd(rng, env), addr(rng, env), len(rng), r, 0, 0]),
        Op::Fstat => call(Sysno::Fstat, [fd(rng, env), addr(rng, env), r, 0, 0, 0]),
        Op::Newfstatat => {
            let flags = if rng.chance(4, 5) { rng.pick(&[0, 0x100, 0x1000, 0x1100, 0x800, 0x1]) } else { rng.next() };
            call(Sysno::Newfstatat, [dirfd(rng, env), path(rng, env), addr(rng, env), flags, r, 0])
        }
        Op::Ioctl => {
            const REQUESTS: &[u64] = &[0x5401, 0x5402, 0x5403, 0x5404, 0x5413, 0x541b, 0x5421, 0x5450, 0x5451, 0];
            let request = if env.linux || rng.chance(2, 3) {
                rng.pick(REQUESTS)
            } else if rng.chance(1, 2) {
                rng.next() & 0xffff_ffff
            } else {
                rng.next()
            };
            call(Sysno::Ioctl, [fd(rng, env), request, addr(rng, env), r, 0, 0])
        }
        Op::Clone => clone(rng, env),
        Op::Execve => execve(rng, env),
        Op::Wait4 => {
            let pid = match rng.below(6) {
                0 | 1 => u64::MAX,
                2 => 0,
                3 => env.pid,
                4 => rng.pick(&[1, i32::MIN as u32 as u64, i32::MIN as i64 as u64, 0x7fff_ffff, 0x1_0000_0000 | 1]),
                _ => rng.next(),
            };
            let options = match rng.below(5) {
                0 | 1 => 1,
                2 => 0,
                3 => rng.pick(&[0x4000_0001, 0x8000_0001, 0x2000_0001, 3, 5, 9, 0x1000_0001]),
                _ => rng.next(),
            };
            call(Sysno::Wait4, [pid, addr(rng, env), options, addr(rng, env), r, 0])
        }
        Op::Ids => call(rng.pick(IDS), [r, rng.next(), 0, 0, 0, 0]),
        Op::Yield => call(Sysno::SchedYield, [r, 0, 0, 0, 0, 0]),
        Op::JobSignal => call(Sysno::Kill, [env.pid, rng.pick(JOB_SIGNALS), r, 0, 0, 0]),
        Op::Nanosleep => nanosleep(rng, env),
        Op::ClockGettime => {
            let clock = if rng.chance(3, 4) { rng.below(13) } else { rng.pick(INTS) };
            call(Sysno::ClockGettime, [clock, addr(rng, env), r, 0, 0, 0])
        }
        Op::Uname => call(Sysno::Uname, [addr(rng, env), r, 0, 0, 0, 0]),
        Op::Sysinfo => call(Sysno::Sysinfo, [addr(rng, env), r, 0, 0, 0, 0]),
        Op::Brk => {
            let target = match rng.below(5) {
                0 => 0,
                1 | 2 => env.heap.addr.wrapping_add(rng.below(64) * PAGE).wrapping_sub(16 * PAGE),
                3 => env.heap.addr.wrapping_add(rng.next() % (1 << 32)),
                _ => target(rng, env),
            };
            call(Sysno::Brk, [target, r, 0, 0, 0, 0])
        }
        Op::Mmap => mmap(rng, env),
        Op::Munmap => call(Sysno::Munmap, [target(rng, env), len(rng), r, 0, 0, 0]),
        Op::Mprotect => {
            let (start, length, mut prot) = (target(rng, env), len(rng), prot(rng));
            if in_own_image_or_live_stack(env, start, length) {
                // Take access away (the child then faults), never give it.
                prot &= 1;
            }
            call(Sysno::Mprotect, [start, length, prot, r, 0, 0])
        }
        Op::Msync => {
            let flags = if rng.chance(4, 5) { rng.below(8) } else { rng.pick(INTS) };
            call(Sysno::Msync, [addr(rng, env), len(rng), flags, r, 0, 0])
        }
        Op::Mlock => call(Sysno::Mlock, [addr(rng, env), len(rng), r, 0, 0, 0]),
        Op::Munlock => call(Sysno::Munlock, [addr(rng, env), len(rng), r, 0, 0, 0]),
        Op::Mlockall => {
            let flags = if rng.chance(4, 5) { rng.below(9) } else { rng.pick(INTS) };
            call(Sysno::Mlockall, [flags, r, 0, 0, 0, 0])
        }
        Op::Munlockall => call(Sysno::Munlockall, [r, 0, 0, 0, 0, 0]),
        Op::Madvise => {
            let mut advice = match rng.below(5) {
                0..=2 => rng.below(26),
                3 => rng.pick(&[100, 101, 0xffff_ffff, 0x1_0000_0004]),
                _ => rng.next(),
            };
            // MADV_HWPOISON and MADV_SOFT_OFFLINE would take pages from Linux for good.
            if env.linux && matches!(advice & 0xffff_ffff, 100 | 101) {
                advice = 4;
            }
            let (start, length) = (target(rng, env), len(rng));
            if in_own_image_or_live_stack(env, start, length) {
                // No advice that discards contents (see `in_own_image_or_live_stack`).
                advice &= 3;
            }
            call(Sysno::Madvise, [start, length, advice, r, 0, 0])
        }
        Op::Pipe2 => {
            let any = rng.next();
            let extra = rng.pick(&[0, O_CLOEXEC, O_DIRECT, 0o2000, any]);
            call(Sysno::Pipe2, [addr(rng, env), O_NONBLOCK | extra, r, 0, 0, 0])
        }
        Op::Dup if rng.chance(1, 3) => call(Sysno::Dup, [fd(rng, env), r, 0, 0, 0, 0]),
        Op::Dup => {
            let any = rng.next();
            let flags = rng.pick(&[0, O_CLOEXEC, O_NONBLOCK, any]);
            call(Sysno::Dup3, [fd(rng, env), fd(rng, env), flags, r, 0, 0])
        }
        Op::Fcntl => fcntl(rng, env),
        Op::Ppoll => ppoll(rng, env),
        Op::Pselect => pselect(rng, env),
        Op::Futex => futex(rng, env),
        Op::RobustList => robust_list(rng, env),
        Op::Sched => sched(rng, env),
        Op::Random => random_call(rng, env),
        Op::Touch => touch(rng, env),
        Op::PathInfo => path_info(rng, env),
        Op::PathChange => path_change(rng, env),
        Op::Sendfile => sendfile(rng, env),
    }
}

/// Where sendfile's offset goes when the fuzzer writes one.
pub fn sendfile_offset(env: &Env) -> u64 {
    env.argbuf + ARG_OFFSET
}

/// sendfile between the child's descriptors (read-only files, non-blocking
/// pipes, nonsense), at its position or at an offset the fuzzer wrote (or
/// behind a pointer that cannot be read, or only read: the program's text).
/// Not [`addr`]: the offset written back could land on the loop's frame.
fn sendfile(rng: &mut Rng, env: &mut Env) -> Call {
    let r = rng.next();
    let offset = match rng.below(5) {
        0 => 0,
        1 => bad_pointer(rng),
        2 => env.text.addr + rng.below(64) * 8,
        _ => {
            let at = if rng.chance(1, 4) { rng.pick(INTS) } else { rng.pick(LENGTHS) };
            put_u64(env, ARG_OFFSET, at);
            sendfile_offset(env)
        }
    };
    call(Sysno::Sendfile, [fd(rng, env), fd(rng, env), offset, len(rng), r, 0])
}

/// A call that reads names or attributes, or changes only the child's own
/// working directory or umask.
fn path_info(rng: &mut Rng, env: &mut Env) -> Call {
    let r = rng.next();
    let mode = if rng.chance(4, 5) { rng.below(8) } else { rng.pick(INTS) };
    let flags = if rng.chance(4, 5) { rng.pick(&[0, 0x100, 0x200, 0x1000, 0x6000, 0x800]) } else { rng.next() };
    match rng.below(10) {
        0 => call(Sysno::Getcwd, [buffer(rng, env), len(rng), r, 0, 0, 0]),
        1 => call(Sysno::Chdir, [path(rng, env), r, 0, 0, 0, 0]),
        2 => call(Sysno::Faccessat, [dirfd(rng, env), path(rng, env), mode, r, 0, 0]),
        3 => call(Sysno::Faccessat2, [dirfd(rng, env), path(rng, env), mode, flags, r, 0]),
        4 => call(Sysno::Statfs, [path(rng, env), addr(rng, env), r, 0, 0, 0]),
        5 => call(Sysno::Fstatfs, [fd(rng, env), addr(rng, env), r, 0, 0, 0]),
        6 => call(Sysno::Statx, [dirfd(rng, env), path(rng, env), flags, rng.pick(INTS), addr(rng, env), r]),
        7 => call(Sysno::Readlinkat, [dirfd(rng, env), path(rng, env), buffer(rng, env), len(rng), r, 0]),
        8 => call(Sysno::Umask, [rng.pick(INTS), r, 0, 0, 0, 0]),
        _ => call(rng.pick(&[Sysno::Fsync, Sysno::Fdatasync]), [fd(rng, env), r, 0, 0, 0, 0]),
    }
}

/// A path the calls that change names get: one of [`CHANGE_PATHS`] (on
/// Aspen also [`CHANGE_PATHS_ASPEN`]), unchanged, at its own place in the
/// argument buffer (`slot` 0 or 1), or a pointer that cannot be read.
fn change_path(rng: &mut Rng, env: &Env, slot: u64) -> u64 {
    if rng.chance(1, 5) {
        return bad_pointer(rng);
    }
    let p = if !env.linux && rng.chance(1, 2) { rng.pick(CHANGE_PATHS_ASPEN) } else { rng.pick(CHANGE_PATHS) };
    let at = ARG_PATH + slot * 64;
    put(env, at, p.to_bytes_with_nul());
    env.argbuf + at
}

/// A descriptor that is never open.
fn closed_fd(rng: &mut Rng) -> u64 {
    rng.pick(&[u64::MAX, -100i64 as u64, 0x7fff_ffff, 1u64 << 31, -4095i64 as u64])
}

/// A call that would make, remove, rename, chmod, chown, truncate or link
/// a name, with arguments for which it cannot (see the module doc).
fn path_change(rng: &mut Rng, env: &mut Env) -> Call {
    let r = rng.next();
    let dirfd = if rng.chance(3, 4) { -100i64 as u64 } else { closed_fd(rng) };
    let mode = if rng.chance(4, 5) { rng.below(0o10000) } else { rng.pick(INTS) };
    let flags = if rng.chance(4, 5) { rng.pick(&[0, 1, 2, 4, 0x100, 0x200, 0x1000]) } else { rng.next() };
    let (a, b) = (change_path(rng, env, 0), change_path(rng, env, 1));
    let id = rng.pick(&[0, 1, 65534, u64::MAX, 0xffff_ffff]);
    match rng.below(16) {
        15 => {
            // Any target (links may dangle), at a name that cannot be made.
            let target = if rng.chance(1, 5) {
                bad_pointer(rng)
            } else {
                put(env, ARG_LINK_TARGET, rng.pick(PATHS).to_bytes_with_nul());
                env.argbuf + ARG_LINK_TARGET
            };
            call(Sysno::Symlinkat, [target, dirfd, a, r, 0, 0])
        }
        11 => {
            // Mount targets only where nothing is (a mount over a directory
            // of the initramfs would stay for the rest of the run).
            let target = if rng.chance(1, 5) {
                bad_pointer(rng)
            } else {
                put(env, ARG_PATH + 128, rng.pick(CHANGE_PATHS).to_bytes_with_nul());
                env.argbuf + ARG_PATH + 128
            };
            let fstype = rng.pick(&[c"tmpfs", c"devtmpfs", c"proc", c"sysfs", c"ext4", c""]).to_bytes_with_nul();
            put(env, ARG_PATH + 192, fstype);
            call(Sysno::Mount, [a, target, env.argbuf + ARG_PATH + 192, flags, 0, r])
        }
        12 => call(Sysno::Umount2, [a, flags, r, 0, 0, 0]),
        13 => call(Sysno::Linkat, [dirfd, a, dirfd, b, flags, r]),
        14 => call(Sysno::Utimensat, [dirfd, a, addr(rng, env), flags, r, 0]),
        0 => call(Sysno::Mkdirat, [dirfd, a, mode, r, 0, 0]),
        1 => call(Sysno::Unlinkat, [dirfd, a, flags, r, 0, 0]),
        2 => call(Sysno::Renameat, [dirfd, a, dirfd, b, r, 0]),
        3 => call(Sysno::Renameat2, [dirfd, a, dirfd, b, flags, r]),
        4 => call(Sysno::Fchmodat, [dirfd, a, mode, r, 0, 0]),
        5 => call(Sysno::Fchownat, [dirfd, a, id, id, flags, r]),
        6 => call(Sysno::Fchmod, [closed_fd(rng), mode, r, 0, 0, 0]),
        7 => call(Sysno::Fchown, [closed_fd(rng), id, id, r, 0, 0]),
        8 => call(Sysno::Truncate, [a, rng.pick(LENGTHS), r, 0, 0, 0]),
        9 => call(Sysno::Ftruncate, [fd(rng, env), rng.pick(LENGTHS), r, 0, 0, 0]),
        _ => call(Sysno::Fchdir, [closed_fd(rng), r, 0, 0, 0, 0]),
    }
}

/// A random system-call number with random arguments; numbers the fuzzer
/// knows get their own generator.
fn random_call(rng: &mut Rng, env: &mut Env) -> Call {
    let mut n = match rng.below(10) {
        0..=6 => rng.below(500),
        7 => rng.pick(&[500, 1000, 0xffff, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, u64::MAX, i64::MAX as u64]),
        8 => (1 << 32) | rng.below(500),
        _ => rng.next(),
    };
    let known = [
        (Sysno::Ioctl, Op::Ioctl),
        (Sysno::Openat, Op::Openat),
        (Sysno::Close, Op::Close),
        (Sysno::Getdents64, Op::Getdents),
        (Sysno::Lseek, Op::Lseek),
        (Sysno::Read, Op::Read),
        (Sysno::Write, Op::Write),
        (Sysno::Readv, Op::Readv),
        (Sysno::Writev, Op::Writev),
        (Sysno::Newfstatat, Op::Newfstatat),
        (Sysno::Fstat, Op::Fstat),
        (Sysno::Nanosleep, Op::Nanosleep),
        (Sysno::ClockGettime, Op::ClockGettime),
        (Sysno::SchedYield, Op::Yield),
        (Sysno::Uname, Op::Uname),
        (Sysno::Sysinfo, Op::Sysinfo),
        (Sysno::Brk, Op::Brk),
        (Sysno::Munmap, Op::Munmap),
        (Sysno::Clone, Op::Clone),
        (Sysno::Execve, Op::Execve),
        (Sysno::Mmap, Op::Mmap),
        (Sysno::Mprotect, Op::Mprotect),
        (Sysno::Msync, Op::Msync),
        (Sysno::Mlock, Op::Mlock),
        (Sysno::Munlock, Op::Munlock),
        (Sysno::Mlockall, Op::Mlockall),
        (Sysno::Munlockall, Op::Munlockall),
        (Sysno::Madvise, Op::Madvise),
        (Sysno::Wait4, Op::Wait4),
        (Sysno::Pipe2, Op::Pipe2),
        (Sysno::Dup, Op::Dup),
        (Sysno::Dup3, Op::Dup),
        (Sysno::Fcntl, Op::Fcntl),
        (Sysno::Ppoll, Op::Ppoll),
        (Sysno::Pselect6, Op::Pselect),
        (Sysno::Futex, Op::Futex),
        (Sysno::SetRobustList, Op::RobustList),
        (Sysno::GetRobustList, Op::RobustList),
        (Sysno::SchedSetscheduler, Op::Sched),
        (Sysno::SchedSetparam, Op::Sched),
        (Sysno::Mkdirat, Op::PathChange),
        (Sysno::Unlinkat, Op::PathChange),
        (Sysno::Renameat, Op::PathChange),
        (Sysno::Renameat2, Op::PathChange),
        (Sysno::Fchmodat, Op::PathChange),
        (Sysno::Fchownat, Op::PathChange),
        (Sysno::Fchmod, Op::PathChange),
        (Sysno::Fchown, Op::PathChange),
        (Sysno::Truncate, Op::PathChange),
        (Sysno::Ftruncate, Op::PathChange),
        (Sysno::Fchdir, Op::PathChange),
        (Sysno::Mount, Op::PathChange),
        (Sysno::Umount2, Op::PathChange),
        (Sysno::Linkat, Op::PathChange),
        (Sysno::Utimensat, Op::PathChange),
        (Sysno::Symlinkat, Op::PathChange),
        (Sysno::Sendfile, Op::Sendfile),
    ];
    if let Some((_, op)) = known.iter().find(|(k, _)| k.number() as u64 == n) {
        return op_call(*op, rng, env);
    }
    let low = n & 0xffff_ffff;
    let excluded = Sysno::from_number(low as usize).is_some_and(|sysno| {
        matches!(
            sysno,
            Sysno::Exit
                | Sysno::ExitGroup
                | Sysno::Reboot
                | Sysno::Kill
                | Sysno::Tkill
                | Sysno::Tgkill
                | Sysno::RtSigqueueinfo
                | Sysno::RtSigsuspend
                | Sysno::RtSigtimedwait
                | Sysno::RtSigreturn
                | Sysno::RtSigaction
        )
    });
    if excluded {
        n += 1000;
    }
    // Linux takes the low 32 bits as the number; there only unallocated
    // numbers (arm64 has no arch-specific calls at 244-259) are safe with
    // arbitrary arguments.
    if env.linux && (n & 0xffff_ffff) < 1024 && !(244..=259).contains(&(n & 0xffff_ffff)) {
        n = 244 + n % 16;
    }
    let mut args = [0u64; 6];
    for a in args.iter_mut() {
        *a = match rng.below(4) {
            0 => addr(rng, env),
            1 => rng.pick(INTS),
            2 => len(rng),
            _ => rng.next(),
        };
    }
    Call { nr: n, args }
}

/// A file descriptor: one the child opened, a small number, or nonsense.
fn fd(rng: &mut Rng, env: &Env) -> u64 {
    let fd = match rng.below(10) {
        0..=4 => rng.pick(&env.fds),
        5..=7 => rng.below(10),
        8 => rng.pick(&[
            u64::MAX,
            -100i64 as u64,
            1023,
            1024,
            65535,
            0x7fff_ffff,
            0x8000_0000,
            0x1_0000_0003,
            i64::MIN as u64,
        ]),
        _ => rng.next(),
    };
    // With --trace fd 2 is the console the trace goes to: keep calls off it.
    if env.trace && fd == 2 {
        1002
    } else {
        fd
    }
}

fn dirfd(rng: &mut Rng, env: &Env) -> u64 {
    if rng.chance(1, 2) {
        -100i64 as u64
    } else {
        fd(rng, env)
    }
}

/// Open flags: read-only, no O_CREAT, O_TRUNC or O_TMPFILE (see the module doc).
fn open_flags(rng: &mut Rng) -> u64 {
    const FLAGS: &[u64] = &[
        0o40000, 0o100000, 0o2000000, 0o4000, 0o2000, 0o200, 0o400, 0o10000000, 0o400000, 0o200000, 0o4010000,
        0o1000000,
    ];
    let mut flags = 0;
    if rng.chance(1, 6) {
        flags = rng.next();
    } else {
        for _ in 0..rng.below(4) {
            flags |= rng.pick(FLAGS);
        }
    }
    flags & !(0o3 | 0o100 | 0o1000 | 0o20000000)
}

/// A length: an interesting size, a small one, a page multiple, rarely a big one.
fn len(rng: &mut Rng) -> u64 {
    match rng.below(200) {
        0 => rng.pick(BIG_LENGTHS),
        1..=90 => rng.pick(LENGTHS),
        91..=140 => rng.below(64) * PAGE,
        141..=180 => rng.below(PAGE * 3),
        _ => rng.next() >> rng.below(64),
    }
}

/// A protection: mostly the defined bits, sometimes more.
fn prot(rng: &mut Rng) -> u64 {
    match rng.below(10) {
        0..=7 => rng.below(8),
        8 => rng.below(8) | rng.pick(&[0x8, 0x10, 0x20, 0x100, 0x0100_0000, 0x0200_0000, 1 << 32]),
        _ => rng.next(),
    }
}

/// An address: in the child's own mappings (with an offset that may spill
/// over their ends), its stack below the live frames, its image, low
/// memory, the top of the user half, the kernel half, non-canonical, or random.
pub fn addr(rng: &mut Rng, env: &Env) -> u64 {
    let percent = rng.below(100);
    pick_addr(rng, env, percent)
}

/// An address for a call that changes what it points at (munmap, mprotect,
/// MAP_FIXED, ...): the fuzz child's own stack and image only rarely, or
/// few batches would live long.
fn target(rng: &mut Rng, env: &Env) -> u64 {
    let p = rng.below(100);
    let p = if (40..=53).contains(&p) && rng.chance(5, 6) { rng.below(40) } else { p };
    pick_addr(rng, env, p)
}

fn pick_addr(rng: &mut Rng, env: &Env, percent: u64) -> u64 {
    match percent {
        0..=39 => {
            let (base, size) = own_region(rng, env);
            offset_into(rng, base, size)
        }
        40..=47 => {
            // Below the fuzz loop's frame: only dead frames live there. At
            // least a page below it, so that what a call writes there (a
            // `stat`, a `utsname`, directory entries) cannot reach the
            // loop's own locals: a few bytes below them, one overwrote the
            // loop's counter and random state and the child looped for
            // ever (seed 7 batch 671, seed 8 batch 58).
            let below = if rng.chance(3, 4) { (rng.below(16) + 1) * PAGE } else { PAGE + rng.below(15 * PAGE) };
            env.stack.wrapping_sub(below)
        }
        48..=53 => {
            let r = if rng.chance(1, 2) { env.text } else { env.data };
            offset_into(rng, r.addr, r.len)
        }
        54..=59 => rng.pick(LOW_ADDRS),
        60..=67 => rng.pick(KERNEL_ADDRS),
        68..=75 => rng.pick(EDGE_ADDRS),
        76..=81 => rng.pick(NONCANONICAL),
        82..=84 => {
            // A tagged pointer (top byte set) to the child's own memory.
            let (base, size) = own_region(rng, env);
            offset_into(rng, base, size) | (rng.below(255) + 1) << 56
        }
        85..=92 => {
            let a = rng.next() & 0x0000_ffff_ffff_ffff;
            if rng.chance(1, 2) {
                a & !(PAGE - 1)
            } else {
                a
            }
        }
        _ => rng.next(),
    }
}

/// A pointer no kernel can let a user process use: the kernel half or
/// non-canonical (unlike NULL, which root may map on Linux).
fn bad_pointer(rng: &mut Rng) -> u64 {
    if rng.chance(1, 2) {
        rng.pick(KERNEL_ADDRS)
    } else {
        rng.pick(NONCANONICAL)
    }
}

/// A read or write buffer: mostly from [`addr`], sometimes one that runs
/// from the end of the argument buffer into the unmapped page after it, so
/// that the copy faults part-way (the child then checks that the file
/// offset moved by exactly the bytes reported). Only the long-path area is
/// overwritten there, which [`long_path`] rewrites before each use.
/// `len`, cut so that bytes written at `buf` stop below the fuzz loop's
/// frame when `buf` is aimed just below it: a read that wrote over the
/// loop's own locals would make its checks report nonsense.
fn below_live_stack(env: &Env, buf: u64, len: u64) -> u64 {
    let dead_frames = env.stack.saturating_sub(16 * PAGE + PAGE)..env.stack;
    if dead_frames.contains(&buf) {
        len.min(env.stack - buf)
    } else {
        len
    }
}

fn buffer(rng: &mut Rng, env: &Env) -> u64 {
    if rng.chance(1, 5) {
        env.argbuf + ARG_PAGES * PAGE - 1 - rng.below(PAGE)
    } else {
        addr(rng, env)
    }
}

/// One of the child's own regions (base, length).
fn own_region(rng: &mut Rng, env: &Env) -> (u64, u64) {
    let r = own(rng, env);
    (r.addr, r.len.clamp(PAGE, 1 << 24))
}

/// One of the child's own regions, with the protection it was made with.
fn own(rng: &mut Rng, env: &Env) -> crate::child::Mapping {
    match rng.below(6) {
        i @ 0..=3 => env.regions[i as usize],
        _ => rng.pick(&env.maps),
    }
}

/// An address in (or just around) `[base, base + size)`.
fn offset_into(rng: &mut Rng, base: u64, size: u64) -> u64 {
    let pages = size / PAGE + 2;
    if rng.chance(7, 10) {
        base.wrapping_add(rng.below(pages) * PAGE).wrapping_sub(PAGE)
    } else {
        base.wrapping_add(rng.below(size + 2 * PAGE)).wrapping_sub(PAGE)
    }
}

/// Writes `bytes` into the argument buffer at `offset`.
fn put(env: &Env, offset: u64, bytes: &[u8]) {
    for (i, b) in bytes.iter().enumerate() {
        // SAFETY: the argument buffer is the child's own private mapping,
        // which no Rust object uses; if a fuzzed call unmapped or protected
        // it, this faults and the (disposable) child dies of SIGSEGV.
        unsafe { ((env.argbuf + offset + i as u64) as *mut u8).write_volatile(*b) };
    }
}

fn put_u64(env: &Env, offset: u64, value: u64) {
    put(env, offset, &value.to_le_bytes());
}

/// A path: one of [`PATHS`] (maybe mangled), a long one, or a pointer from [`addr`].
fn path(rng: &mut Rng, env: &Env) -> u64 {
    match rng.below(10) {
        0..=6 => {
            let p = rng.pick(PATHS).to_bytes_with_nul();
            put(env, ARG_PATH, p);
            if rng.chance(1, 10) && p.len() > 1 {
                // Flip a byte (maybe the NUL: then the string runs on).
                let at = rng.below(p.len() as u64);
                put(env, ARG_PATH + at, &[rng.next() as u8]);
            }
            env.argbuf + ARG_PATH
        }
        7 => long_path(rng, env),
        _ => addr(rng, env),
    }
}

/// A path of 255 to 16 KiB bytes: a long name, a long path, or no NUL
/// before the unmapped page after the argument buffer.
fn long_path(rng: &mut Rng, env: &Env) -> u64 {
    let area = ARG_PAGES * PAGE - ARG_LONG_PATH;
    let n = rng.pick(&[255, 256, 4094, 4095, 4096, 4097, area - 1, area]);
    let start = ARG_LONG_PATH + area - n;
    let slashes = rng.chance(1, 2);
    for i in 0..n {
        let b = if i == 0 || (slashes && i % 8 == 0) { b'/' } else { b'a' };
        put(env, start + i, &[b]);
    }
    // Terminated unless it fills the area (then it runs into the guard page).
    if n < area {
        put(env, start + n - 1, &[0]);
    }
    env.argbuf + start
}

/// An iovec array (in the argument buffer) or a pointer from [`addr`].
fn iovecs(rng: &mut Rng, env: &Env) -> u64 {
    if rng.chance(1, 4) {
        return addr(rng, env);
    }
    for i in 0..ARG_IOV_MAX {
        let base = addr(rng, env);
        let length = if rng.chance(1, 2) { rng.below(2 * PAGE) } else { len(rng) };
        // As for read: a readv must not write over the fuzz loop's locals.
        let length = below_live_stack(env, base, length);
        put_u64(env, ARG_IOV + 16 * i, base);
        put_u64(env, ARG_IOV + 16 * i + 8, length);
    }
    env.argbuf + ARG_IOV
}

fn iov_count(rng: &mut Rng) -> u64 {
    match rng.below(8) {
        0..=4 => rng.below(5),
        5 => rng.below(ARG_IOV_MAX + 1),
        6 => rng.pick(&[1023, 1024, 1025, 0x7fff_ffff, 0x8000_0000, u64::MAX, 1 << 32]),
        _ => rng.next(),
    }
}

/// A flag set for clone.
fn clone(rng: &mut Rng, env: &Env) -> Call {
    const CLONE_PARENT: u64 = 0x8000;
    // What glibc's pthread_create and posix_spawn ask for.
    const THREAD: u64 = 0x3d_0f00;
    const VFORK: u64 = 0x4100 | SIGCHLD;
    let flags = match rng.below(6) {
        0 | 1 => SIGCHLD,
        2 => SIGCHLD | rng.pick(&[0x100, 0x200, 0x400, 0x800, 0x1_0000, 0x4000, 0x10_0000, 0x100_0000, 0x8000_0000]),
        3 => THREAD,
        4 => VFORK,
        _ => rng.next(),
    };
    let flags = if env.linux && flags != SIGCHLD {
        // No CLONE_PARENT (the new process would be the fuzz runner's child)
        // and SIGCHLD or no exit signal (another would kill the fuzz child).
        (flags & !0xff & !CLONE_PARENT) | rng.pick(&[SIGCHLD, 0])
    } else {
        flags
    };
    let stack = if rng.chance(3, 4) { 0 } else { addr(rng, env) };
    call(Sysno::Clone, [flags, stack, addr(rng, env), rng.next(), addr(rng, env), 0])
}

/// An execve that must fail: a path that is not a program, or a program
/// with an argv or envp the kernel cannot read in full.
fn execve(rng: &mut Rng, env: &Env) -> Call {
    put(env, ARG_MARKER, EXEC_MARKER.to_bytes_with_nul());
    let marker = env.argbuf + ARG_MARKER;
    // A sound array of `n` marker strings, optionally ending in a bad pointer.
    let array = |rng: &mut Rng, bad: bool| -> u64 {
        let n = if rng.chance(3, 4) { rng.below(4) } else { rng.below(ARG_ARRAY_MAX - 1) };
        for i in 0..n {
            put_u64(env, ARG_ARRAY + 8 * i, marker);
        }
        let mut end = n;
        if bad {
            put_u64(env, ARG_ARRAY + 8 * end, bad_pointer(rng));
            end += 1;
        }
        put_u64(env, ARG_ARRAY + 8 * end, 0);
        env.argbuf + ARG_ARRAY
    };
    let (path, argv, envp) = match rng.below(4) {
        0 => {
            // Not a program: any argv and envp.
            let mut path = rng.pick(NOT_EXECUTABLE);
            if env.avoid & AVOID_TRAILING_SLASH_EXEC != 0 && path == c"/bin/fuzz/" {
                path = c"/nonexistent";
            }
            put(env, ARG_PATH, path.to_bytes_with_nul());
            let argv = if rng.chance(1, 2) { array(rng, false) } else { addr(rng, env) };
            (env.argbuf + ARG_PATH, argv, addr(rng, env))
        }
        1 => {
            // A program, argv unreadable.
            put(env, ARG_PATH, env.exe.to_bytes_with_nul());
            let argv = if rng.chance(1, 2) { bad_pointer(rng) } else { array(rng, true) };
            (env.argbuf + ARG_PATH, argv, rng.pick(&[0, argv]))
        }
        2 => {
            // A program, argv sound (or NULL), envp unreadable.
            put(env, ARG_PATH, env.exe.to_bytes_with_nul());
            let argv = if rng.chance(1, 2) { 0 } else { env.argbuf + ARG_MARKER + 0x100 };
            put_u64(env, ARG_MARKER + 0x100, marker);
            put_u64(env, ARG_MARKER + 0x108, 0);
            let envp = if rng.chance(1, 2) { bad_pointer(rng) } else { array(rng, true) };
            (env.argbuf + ARG_PATH, argv, envp)
        }
        _ => {
            // The path itself unreadable or too long.
            let path = if rng.chance(1, 2) { bad_pointer(rng) } else { long_path(rng, env) };
            (path, addr(rng, env), addr(rng, env))
        }
    };
    call(Sysno::Execve, [path, argv, envp, rng.next(), 0, 0])
}

/// nanosleep of at most 100 µs, an invalid request, or an unreadable one.
fn nanosleep(rng: &mut Rng, env: &Env) -> Call {
    let request = if rng.chance(4, 5) {
        let (sec, nsec) = match rng.below(6) {
            0..=2 => (0, rng.below(100_001)),
            3 => (0, rng.pick(&[1_000_000_000, u64::MAX, 1 << 63, 0x7fff_ffff_ffff_ffff])),
            4 => (u64::MAX, rng.below(1000)),
            _ => (rng.pick(&[u64::MAX, 1 << 63, u64::MAX - 1]), rng.pick(&[0, 1_000_000_000, u64::MAX])),
        };
        put_u64(env, ARG_TIMESPEC, sec);
        put_u64(env, ARG_TIMESPEC + 8, nsec);
        env.argbuf + ARG_TIMESPEC
    } else {
        bad_pointer(rng)
    };
    call(Sysno::Nanosleep, [request, addr(rng, env), rng.next(), 0, 0, 0])
}

/// `O_NONBLOCK`, `O_CLOEXEC` and `O_DIRECT` (arm64).
const O_NONBLOCK: u64 = 0o4000;
const O_CLOEXEC: u64 = 0o2000000;
const O_DIRECT: u64 = 0o200000;

/// fcntl with a known or unknown command; `F_SETFL` keeps `O_NONBLOCK`
/// (no pipe may start blocking).
fn fcntl(rng: &mut Rng, env: &Env) -> Call {
    const F_SETFL: u64 = 4;
    let any = rng.next();
    let cmd = rng.pick(&[0, 1, 2, 3, F_SETFL, F_SETFL, 1030, 5, 1031, 0x1_0000_0003, any]);
    // The kernel takes the command's low 32 bits.
    let arg = match cmd & 0xffff_ffff {
        F_SETFL => O_NONBLOCK | rng.pick(&[0, 0o2000, O_DIRECT, 0o20000, 0o1000000, 2, any]),
        _ => rng.pick(INTS),
    };
    call(Sysno::Fcntl, [fd(rng, env), cmd, arg, 0, 0, 0])
}

/// ppoll of entries the fuzzer wrote (descriptors from [`fd`], random
/// events) or of any address, always with a timeout the fuzzer wrote (at
/// most 100 µs, or invalid) or cannot read.
fn ppoll(rng: &mut Rng, env: &Env) -> Call {
    let (fds, nfds) = if rng.chance(2, 3) {
        let n = rng.below(ARG_POLL_MAX + 1);
        for i in 0..n {
            let events = rng.next() & 0xffff;
            put_u64(env, ARG_POLL + 8 * i, (fd(rng, env) & 0xffff_ffff) | (events << 32));
        }
        (env.argbuf + ARG_POLL, n)
    } else {
        (addr(rng, env), rng.pick(&[0, 1, 2, 1024, 1025, 0xffff_ffff, u64::MAX]))
    };
    let timeout = poll_timeout(rng, env);
    let (mask, size) = if rng.chance(1, 2) { (0, 0) } else { (addr(rng, env), rng.pick(&[8, 4, 16, 0])) };
    call(Sysno::Ppoll, [fds, nfds, timeout, mask, size, 0])
}

/// A timeout for ppoll or pselect6 that never waits long: at most 100 µs,
/// invalid, or unreadable.
fn poll_timeout(rng: &mut Rng, env: &Env) -> u64 {
    if rng.chance(5, 6) {
        let nsec = if rng.chance(4, 5) { rng.below(100_001) } else { 1_000_000_000 };
        put_u64(env, ARG_TIMESPEC, 0);
        put_u64(env, ARG_TIMESPEC + 8, nsec);
        env.argbuf + ARG_TIMESPEC
    } else {
        bad_pointer(rng)
    }
}

/// pselect6 of sets the fuzzer wrote (random bits) or of any addresses,
/// with a short timeout and sometimes a mask pair.
fn pselect(rng: &mut Rng, env: &Env) -> Call {
    let n = rng.pick(&[0, 1, 3, 10, 64, 65, 1024, 1025, u64::MAX, 0x7fff_ffff]);
    let mut set = || {
        if rng.chance(1, 3) {
            return 0;
        }
        if rng.chance(1, 3) {
            return addr(rng, env);
        }
        // Three 128-byte sets side by side in the poll area.
        let offset = ARG_POLL + 128 * rng.below(2);
        for word in 0..16 {
            let bits = if rng.chance(1, 2) { rng.below(1 << 10) } else { rng.next() };
            put_u64(env, offset + 8 * word, bits);
        }
        env.argbuf + offset
    };
    let sets = [set(), set(), set()];
    let timeout = poll_timeout(rng, env);
    let sig = if rng.chance(1, 2) {
        0
    } else {
        put_u64(env, ARG_SIGPAIR, addr(rng, env));
        put_u64(env, ARG_SIGPAIR + 8, rng.pick(&[8, 4, 0]));
        env.argbuf + ARG_SIGPAIR
    };
    call(Sysno::Pselect6, [n, sets[0], sets[1], sets[2], timeout, sig])
}

/// A futex call on a word of the argument buffer (or a pointer from
/// [`addr`]); every command that can wait gets a timeout of at most 100 µs,
/// so the child never waits long (a child that sleeps is killed anyway).
fn futex(rng: &mut Rng, env: &Env) -> Call {
    const COMMANDS: &[u64] = &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
    let word = if rng.chance(3, 4) { env.argbuf + ARG_FUTEX + 4 * rng.below(3) } else { addr(rng, env) };
    let value = match rng.below(5) {
        0 => 0,
        1 => aspen_sys::thread::FUTEX_WAITERS | rng.below(64) as u32,
        2 => aspen_sys::thread::FUTEX_OWNER_DIED | rng.below(64) as u32,
        3 => rng.below(64) as u32,
        _ => rng.next() as u32,
    };
    put(env, ARG_FUTEX, &value.to_le_bytes());
    let mut op = rng.pick(COMMANDS);
    if rng.chance(1, 2) {
        op |= 128;
    }
    if rng.chance(1, 8) {
        op |= 256;
    }
    if rng.chance(1, 20) {
        op = rng.next();
    }
    put_u64(env, ARG_TIMESPEC, 0);
    put_u64(env, ARG_TIMESPEC + 8, rng.below(100_001));
    let command = op & !(128 | 256);
    let waits = matches!(command, 0 | 6 | 9 | 11 | 13);
    // A deadline (every command but FUTEX_WAIT) of 0-100 µs after reset
    // has passed: the wait ends at once.
    let fourth = if waits || rng.chance(1, 2) { env.argbuf + ARG_TIMESPEC } else { rng.pick(INTS) };
    let val = if rng.chance(1, 2) { u64::from(value) } else { rng.pick(INTS) };
    let word2 = if rng.chance(3, 4) { env.argbuf + ARG_FUTEX + 4 } else { addr(rng, env) };
    call(Sysno::Futex, [word, op, val, fourth, word2, rng.next()])
}

/// set_robust_list (a head in the argument buffer whose entries point
/// anywhere, walked when the child ends) or get_robust_list.
fn robust_list(rng: &mut Rng, env: &Env) -> Call {
    if rng.chance(1, 3) {
        let pid = if rng.chance(1, 2) { 0 } else { rng.pick(INTS) };
        return call(Sysno::GetRobustList, [pid, addr(rng, env), addr(rng, env), 0, 0, 0]);
    }
    let head = env.argbuf + ARG_FUTEX + 0x10;
    put_u64(env, ARG_FUTEX + 0x10, if rng.chance(1, 2) { head } else { addr(rng, env) | rng.below(2) });
    put_u64(env, ARG_FUTEX + 0x18, if rng.chance(1, 2) { (ARG_FUTEX as i64 - 0x10) as u64 } else { rng.next() });
    put_u64(env, ARG_FUTEX + 0x20, if rng.chance(1, 2) { 0 } else { addr(rng, env) });
    let len = if rng.chance(4, 5) { 24 } else { len(rng) };
    call(Sysno::SetRobustList, [if rng.chance(4, 5) { head } else { addr(rng, env) }, len, 0, 0, 0, 0])
}

/// The scheduling calls. Only non-real-time policies are set: a child at a
/// real-time priority that never blocks would starve the fuzzer itself
/// (Aspen has no real-time throttling).
fn sched(rng: &mut Rng, env: &Env) -> Call {
    let pid = if rng.chance(2, 3) { 0 } else { rng.pick(INTS) };
    let param = if rng.chance(3, 4) { env.argbuf + ARG_TIMESPEC } else { addr(rng, env) };
    put_u64(env, ARG_TIMESPEC, rng.pick(&[0, 1, 50, 99, 100, 0xffff_ffff]));
    match rng.below(8) {
        0 => {
            // Never a valid real-time policy with a priority of 1-99.
            let policy = rng.pick(&[0, 3, 5, 4, 6, 7, 0x4000_0000, 0x4000_0003, u64::MAX]);
            call(Sysno::SchedSetscheduler, [pid, policy, param, 0, 0, 0])
        }
        1 => call(Sysno::SchedGetscheduler, [pid, 0, 0, 0, 0, 0]),
        2 => call(Sysno::SchedGetparam, [pid, param, 0, 0, 0, 0]),
        3 => call(Sysno::SchedGetPriorityMax, [rng.pick(INTS), 0, 0, 0, 0, 0]),
        4 => call(Sysno::SchedGetPriorityMin, [rng.pick(INTS), 0, 0, 0, 0, 0]),
        5 => call(Sysno::SchedRrGetInterval, [pid, addr(rng, env), 0, 0, 0, 0]),
        6 => call(Sysno::SchedSetaffinity, [pid, len(rng), addr(rng, env), 0, 0, 0]),
        _ => call(Sysno::SchedGetaffinity, [pid, len(rng), addr(rng, env), 0, 0, 0]),
    }
}

fn mmap(rng: &mut Rng, env: &Env) -> Call {
    const EXTRA: &[MapFlags] = &[
        MapFlags::GROWSDOWN,
        MapFlags::DENYWRITE,
        MapFlags::EXECUTABLE,
        MapFlags::LOCKED,
        MapFlags::NORESERVE,
        MapFlags::POPULATE,
        MapFlags::NONBLOCK,
        MapFlags::STACK,
        MapFlags::HUGETLB,
        MapFlags::SYNC,
        MapFlags::FIXED_NOREPLACE,
        MapFlags::UNINITIALIZED,
    ];
    let fixed = rng.chance(3, 10);
    let addr_arg = if rng.chance(3, 10) && (!fixed || rng.chance(1, 10)) { 0 } else { target(rng, env) };
    let mut flags = match rng.below(10) {
        0..=3 => MapFlags::PRIVATE,
        4..=6 => MapFlags::SHARED,
        7 => MapFlags::SHARED_VALIDATE,
        8 => MapFlags::empty(),
        _ => MapFlags::from_bits_retain(rng.below(16)),
    };
    flags.set(MapFlags::FIXED, fixed);
    let anonymous = rng.chance(6, 10);
    flags.set(MapFlags::ANONYMOUS, anonymous);
    for _ in 0..rng.below(3) {
        if rng.chance(1, 2) {
            flags |= rng.pick(EXTRA);
        }
    }
    if rng.chance(1, 20) {
        flags |= MapFlags::from_bits_retain(rng.next());
    }
    // The SHARED bit: MAP_SHARED, MAP_SHARED_VALIDATE or an invalid type.
    let shared_bit = flags.contains(MapFlags::SHARED);
    if env.avoid & AVOID_SHARED_FILE_MAP != 0 && !flags.contains(MapFlags::ANONYMOUS) && shared_bit {
        flags = flags.difference(MapFlags::SHARED_VALIDATE) | MapFlags::PRIVATE;
    }
    let fd_arg = if anonymous && rng.chance(4, 5) { u64::MAX } else { fd(rng, env) };
    let offset = match rng.below(10) {
        0..=5 => 0,
        6 | 7 => rng.below(16) * PAGE,
        8 => rng.pick(&[1, 100, 4095, 1 << 40, u64::MAX - 4095, i64::MAX as u64 & !(PAGE - 1), 1 << 63]),
        _ => rng.next(),
    };
    let mut length = len(rng);
    if env.avoid & AVOID_BIG_SHARED_ANON != 0
        && flags.contains(MapFlags::ANONYMOUS | MapFlags::SHARED)
        && length > 8 << 20
    {
        length %= 8 << 20;
    }
    if env.avoid & AVOID_BIG_FILE_MAP != 0 && !flags.contains(MapFlags::ANONYMOUS) && length > 64 << 20 {
        length %= 64 << 20;
    }
    let mut prot = prot(rng);
    if flags.contains(MapFlags::FIXED) && in_own_image_or_live_stack(env, addr_arg, length) {
        // A new mapping there must fault, not run or feed the child's code
        // with zeros (see `in_own_image_or_live_stack`).
        prot = 0;
    }
    call(Sysno::Mmap, [addr_arg, length, prot, flags.bits(), fd_arg, offset])
}

/// Whether `[start, start + len)` overlaps the child's image or its live
/// stack (the frames of the fuzz loop and above). Calls there may take
/// access away (munmap, mprotect to less, MAP_FIXED with PROT_NONE: the
/// child then dies of a signal) but not change what the child reads: zeroed
/// jump tables or loop counters can make its own code spin forever, which
/// would look like a hang of the kernel.
fn in_own_image_or_live_stack(env: &Env, start: u64, len: u64) -> bool {
    let end = start.saturating_add(len.max(1));
    let image = (env.text.addr, env.data.addr + env.data.len + PAGE);
    let stack = (env.stack.saturating_sub(PAGE), env.stack.saturating_add(8 << 20));
    [image, stack].iter().any(|&(lo, hi)| start < hi && lo < end)
}

/// A load or store by the child itself: demand faults, copy-on-write and
/// protection faults on whatever the fuzzed calls left behind.
fn touch(rng: &mut Rng, env: &Env) -> Call {
    let mut write = rng.chance(1, 2);
    let target = if !write && rng.chance(1, 50) {
        addr(rng, env)
    } else {
        let m = own(rng, env);
        // Mostly what the mapping allows (later calls may have changed it).
        if rng.chance(97, 100) {
            if m.prot & 3 == 0 {
                // Neither readable nor writable (as far as the fuzzer knows).
                return call(Sysno::Getpid, [0; 6]);
            }
            if m.prot & 1 == 0 {
                write = m.prot & 2 != 0;
            }
            if m.prot & 2 == 0 {
                write = false;
            }
        }
        m.addr.wrapping_add(rng.below(m.len.clamp(1, 1 << 24)))
    };
    let nr = if write { TOUCH_WRITE } else { TOUCH_READ };
    Call { nr, args: [target, rng.next() & 0xff, 0, 0, 0, 0] }
}

/// Notes what a call made (new mappings and descriptors) and, roughly, how
/// it changed the child's mappings, so that later loads and stores mostly
/// go where they may.
pub fn observe(env: &mut Env, call: &Call, ret: u64) {
    use crate::child::Mapping;
    let failed = (ret as i64) < 0 && (ret as i64) >= -4095;
    if failed {
        return;
    }
    let [a0, a1, a2, a3, ..] = call.args;
    let page_len = |len: u64| len.wrapping_add(PAGE - 1) & !(PAGE - 1);
    // Lowers the protection of every known mapping that [start, start + len) overlaps.
    let restrict = |env: &mut Env, start: u64, len: u64, prot: u64| {
        let end = start.saturating_add(page_len(len));
        for m in env.regions.iter_mut().chain(env.maps.iter_mut()) {
            if m.addr < end && start < m.addr.saturating_add(m.len) {
                m.prot &= prot;
            }
        }
    };
    match Sysno::from_number(call.nr as usize) {
        Some(Sysno::Mmap) => {
            let prot = if a2 & !7 == 0 { a2 } else { 0 };
            if a3 & 0x10 != 0 {
                restrict(env, ret, a1, prot);
            }
            env.maps[env.next_map % env.maps.len()] = Mapping { addr: ret, len: page_len(a1), prot };
            env.next_map += 1;
        }
        Some(Sysno::Munmap) => restrict(env, a0, a1, 0),
        Some(Sysno::Mprotect) => restrict(env, a0, a1, a2),
        Some(Sysno::Madvise) if a2 & 0xffff_ffff == 9 || a2 & 0xffff_ffff == 100 => restrict(env, a0, a1, 0),
        Some(Sysno::Brk) => {
            let heap = &mut env.regions[3];
            if ret < heap.addr.saturating_add(heap.len) {
                heap.len = ret.saturating_sub(heap.addr);
            }
        }
        Some(Sysno::Openat) => {
            env.fds[env.next_fd % env.fds.len()] = ret;
            env.next_fd += 1;
        }
        _ => {}
    }
}
