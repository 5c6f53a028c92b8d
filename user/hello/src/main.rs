//! `hello [args...]`: prints its pid, its parent's pid, its arguments and the
//! generic timer's counter and frequency; exits 0. A first program to run from
//! Aspen's shell, and a check that argv and EL0 counter access work.
#![no_std]
#![no_main]

use aspen_sys::{println, process, time, Args};

aspen_sys::entry!(main);

fn main(args: Args) -> i32 {
    println!("hello from pid {} (parent {})", process::getpid(), process::getppid());
    for (i, arg) in args.iter().enumerate() {
        println!("  argv[{i}] = {:?}", arg);
    }
    println!("  counter {} at {} Hz", time::counter(), time::counter_frequency());
    0
}
