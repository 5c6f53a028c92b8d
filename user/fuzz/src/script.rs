//! `fuzz --run CALL ARG... [/ CALL ARG...]...`: makes the given calls, in
//! order, in a forked child, printing each before and its result after; then
//! reports how the child ended and how free memory moved. For turning a
//! fuzzer finding into a minimal reproducer.
//!
//! A call is a name (`mmap`, `mlock`, ..., `load` and `store` for the child's
//! own one-byte accesses, `fill ADDR LEN BYTE` and `put ADDR U64` to write
//! memory, `jump ADDR` to call code there) or a number, then up to six arguments. An argument is a sum of
//! terms joined by `+` or `-`: a number (decimal or `0x` hex), `$N` (the
//! result of call N, counted from 0) or `iK` (K times the repetition index).
//! `repeat N` before a call makes it N times (printing only the first and
//! last, and the first error). Examples:
//! `fuzz --run mmap 0 0x40000000 3 0x21 -1 0 / mlock $0 0x40000000`,
//! `fuzz --run mmap 0 0x20000000 0 0x22 -1 0 / repeat 40000 mprotect $0+i0x2000 0x1000 1`.

use core::ffi::CStr;

use aspen_sys::process::{self, Fork};
use aspen_sys::raw::Sysno;
use aspen_sys::{println, time};

use crate::child;
use crate::free_memory;
use crate::gen::Call;
use crate::ring::{self, Logged, FILL, JUMP, PUT, TOUCH_READ, TOUCH_WRITE};

/// Most calls in a script.
const MAX_CALLS: usize = 32;

/// A call argument: `constant + result[call] * uses_result + index * per_index`.
#[derive(Clone, Copy, Default)]
struct Arg {
    constant: u64,
    result: Option<usize>,
    per_index: u64,
}

impl Arg {
    fn value(self, results: &[u64], index: u64) -> u64 {
        let r = self.result.and_then(|c| results.get(c).copied()).unwrap_or(0);
        self.constant.wrapping_add(r).wrapping_add(index.wrapping_mul(self.per_index))
    }
}

#[derive(Clone, Copy)]
struct Step {
    nr: u64,
    repeat: u64,
    args: [Arg; 6],
}

fn number(s: &str) -> Option<u64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let v = match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => s.parse().ok()?,
    };
    Some(if neg { v.wrapping_neg() } else { v })
}

fn arg(s: &str) -> Option<Arg> {
    let mut a = Arg::default();
    let mut rest = s;
    let mut negative = false;
    loop {
        let end = rest.get(1..).and_then(|r| r.find(['+', '-'])).map_or(rest.len(), |p| p + 1);
        let (term, next) = rest.split_at(end);
        let sign = |v: u64| if negative { v.wrapping_neg() } else { v };
        if let Some(call) = term.strip_prefix('$') {
            a.result = Some(call.parse().ok()?);
        } else if let Some(k) = term.strip_prefix('i') {
            a.per_index = a.per_index.wrapping_add(sign(number(k)?));
        } else {
            a.constant = a.constant.wrapping_add(sign(number(term)?));
        }
        if next.is_empty() {
            return Some(a);
        }
        negative = next.starts_with('-');
        rest = &next[1..];
    }
}

fn call_number(name: &str) -> Option<u64> {
    match name {
        "load" => return Some(TOUCH_READ),
        "store" => return Some(TOUCH_WRITE),
        "fill" => return Some(FILL),
        "put" => return Some(PUT),
        "jump" => return Some(JUMP),
        _ => {}
    }
    let listed = Sysno::ALL.iter().find(|sysno| sysno.name() == name);
    listed.map(|sysno| sysno.number() as u64).or_else(|| number(name))
}

/// Parses the words after `--run`.
fn parse<'a>(words: impl Iterator<Item = &'a CStr>) -> Result<([Option<Step>; MAX_CALLS], usize), &'a str> {
    let mut steps = [None; MAX_CALLS];
    let mut count = 0;
    let mut current: Option<(Step, usize)> = None;
    let mut repeat = 1;
    let mut expect_count = false;
    for word in words {
        let w = word.to_str().map_err(|_| "?")?;
        if expect_count {
            repeat = number(w).ok_or(w)?;
            expect_count = false;
            continue;
        }
        if w == "/" {
            if let Some((step, _)) = current.take() {
                *steps.get_mut(count).ok_or(w)? = Some(step);
                count += 1;
            }
            continue;
        }
        match current.as_mut() {
            None if w == "repeat" => expect_count = true,
            None => {
                let nr = call_number(w).ok_or(w)?;
                current = Some((Step { nr, repeat, args: [Arg::default(); 6] }, 0));
                repeat = 1;
            }
            Some((step, n)) => {
                *step.args.get_mut(*n).ok_or(w)? = arg(w).ok_or(w)?;
                *n += 1;
            }
        }
    }
    if let Some((step, _)) = current {
        *steps.get_mut(count).ok_or("(too many calls)")? = Some(step);
        count += 1;
    }
    Ok((steps, count))
}

/// Makes the parent's memory use flat: its stack faulted in, a first
/// fork/exit/wait done.
fn settle() {
    crate::touch_stack();
    if let Ok(Fork::Child) = process::fork() {
        process::exit_group(0);
    }
    let _ = process::wait4(-1, 0);
    let _ = free_memory();
}

/// Runs the script in `words`; returns the exit code.
pub fn run<'a>(words: impl Iterator<Item = &'a CStr>, linux: bool) -> i32 {
    let (steps, count) = match parse(words) {
        Ok(parsed) => parsed,
        Err(word) => {
            println!("fuzz --run: cannot parse {word:?}");
            return 2;
        }
    };
    settle();
    let before = free_memory();
    let pid = match process::fork() {
        Ok(Fork::Child) => {
            let mut results = [0u64; MAX_CALLS];
            for (i, step) in steps.iter().take(count).flatten().enumerate() {
                let mut first_error = None;
                let mut errors = 0u64;
                for index in 0..step.repeat {
                    let mut args = [0u64; 6];
                    for (a, spec) in args.iter_mut().zip(step.args) {
                        *a = spec.value(&results, index);
                    }
                    let log = Logged { seq: i as u64, nr: step.nr, args, ret: ring::PENDING };
                    let shown = index == 0 || index + 1 == step.repeat;
                    if shown {
                        println!("fuzz: #{i} [{index}] calling {}", ring::Display(&log));
                    }
                    let t0 = time::counter();
                    let ret = match step.nr {
                        FILL => {
                            for off in 0..args[1] {
                                // SAFETY: none: the script asked for this store.
                                unsafe { ((args[0] + off) as *mut u8).write_volatile(args[2] as u8) };
                            }
                            0
                        }
                        PUT => {
                            // SAFETY: none: the script asked for this store.
                            unsafe { (args[0] as *mut u64).write_unaligned(args[1]) };
                            0
                        }
                        JUMP => {
                            // SAFETY: none: the script asked to run code at this address.
                            unsafe { core::arch::asm!("blr {a}", a = in(reg) args[0], clobber_abi("C")) };
                            0
                        }
                        // SAFETY: none: the script asked for this call.
                        _ => unsafe { child::execute(&Call { nr: step.nr, args }) },
                    };
                    results[i] = ret;
                    if (ret as i64) < 0 && (ret as i64) >= -4095 {
                        errors += 1;
                        if first_error.is_none() {
                            first_error = Some((index, Logged { ret, ..log }));
                        }
                    }
                    let us = (time::counter() - t0) * 1_000_000 / time::counter_frequency().max(1);
                    if shown || (index % 1000 == 999) {
                        println!("fuzz: #{i} [{index}] {} ({us} us)", ring::Display(&Logged { ret, ..log }));
                    }
                }
                if step.repeat > 1 {
                    println!("fuzz: #{i}: {} calls, {errors} failed", step.repeat);
                    if let Some((index, log)) = first_error {
                        println!("fuzz: #{i}: first failure [{index}] {}", ring::Display(&log));
                    }
                }
            }
            process::exit_group(0)
        }
        Ok(Fork::Parent(pid)) => pid,
        Err(e) => {
            println!("fuzz --run: fork: {e}");
            return 1;
        }
    };
    let status = match process::wait4(pid, 0) {
        Ok((_, status)) => status,
        Err(e) => {
            println!("fuzz --run: wait4: {e}");
            return 1;
        }
    };
    println!("fuzz: the child ended with {status}");
    let _ = time::sleep_ms(100);
    match (before, free_memory()) {
        (Ok(b), Ok(a)) => println!(
            "fuzz: free memory {a} bytes after, {b} before ({:+} bytes){}",
            a as i64 - b as i64,
            if linux { " (Linux: for information)" } else { "" }
        ),
        _ => println!("fuzz: cannot read /proc/meminfo"),
    }
    0
}
