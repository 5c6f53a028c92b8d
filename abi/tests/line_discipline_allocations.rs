//! The line discipline takes input without allocating once its buffers are
//! reserved (`LineDiscipline::reserve`): the kernel's terminal thread passes
//! every typed byte through it and has no way to fail softly. Counted by
//! this test binary's own global allocator, over input that fills the
//! buffer with lines, empty `VEOF` lines, edits, reprints, word and line
//! erases, signal keys and mode switches, with echo into a fixed buffer.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use aspen_abi::tty::{LineDiscipline, Sink, Termios, ECHOKE, ICANON, INPUT_BUFFER, IUTF8};

/// The system allocator, counting this thread's allocations while a
/// measurement runs.
struct Counting;

thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the thread's locals may be gone while it exits.
    let _ = MEASURING.try_with(|measuring| {
        if measuring.get() {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: every call goes to the system allocator unchanged; counting
// touches only thread-locals, which do not allocate once set up.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// How many allocations `f` made on this thread.
fn allocations_of(f: impl FnOnce()) -> usize {
    ALLOCATIONS.with(|n| n.set(0));
    MEASURING.with(|m| m.set(true));
    f();
    MEASURING.with(|m| m.set(false));
    ALLOCATIONS.with(Cell::get)
}

/// Echo into a fixed buffer, drained (counted and dropped) when full, as
/// the kernel's terminal thread writes it to the console.
struct FixedEcho {
    bytes: [u8; 64],
    len: usize,
    drained: usize,
}

impl Sink for FixedEcho {
    fn put(&mut self, byte: u8) {
        if self.len == self.bytes.len() {
            self.drained += self.len;
            self.len = 0;
        }
        self.bytes[self.len] = byte;
        self.len += 1;
    }
}

/// Input that exercises every path of the discipline that keeps or edits
/// bytes, well past its buffer's size.
fn stress_input() -> Vec<u8> {
    let mut input = Vec::new();
    for round in 0..8u8 {
        input.extend(std::iter::repeat_n(b'a' + round, INPUT_BUFFER + 100));
        input.extend(b"\n\x12\x7f\x17\x15 w\x16\x03x\xc3\xa9\x7f\t\x7f\x01\x7f\r");
        input.extend(std::iter::repeat_n(b'\n', INPUT_BUFFER + 10));
        input.extend(std::iter::repeat_n(0x04, INPUT_BUFFER + 10));
        input.extend(b"abc\x12def\x03ghi\x1c\x1a");
    }
    input
}

#[test]
fn taking_input_allocates_nothing_once_reserved() {
    let input = stress_input();
    let mut ld = LineDiscipline::default();
    ld.reserve().expect("room for the discipline's buffers");
    let mut echo = FixedEcho { bytes: [0; 64], len: 0, drained: 0 };
    let mut signals = 0;
    let mut read = Vec::with_capacity(INPUT_BUFFER);
    let allocations = allocations_of(|| {
        for (at, &byte) in input.iter().enumerate() {
            signals += usize::from(ld.receive(byte, &mut echo).is_some());
            // Modes switch and readers take input now and then, as on a
            // terminal in use.
            if at % 5000 == 4999 {
                let mut t = ld.termios();
                t.lflag ^= ICANON;
                t.lflag ^= ECHOKE;
                t.iflag ^= IUTF8;
                ld.set_termios(t);
            }
            if at % 7000 == 6999 {
                read.clear();
                ld.read(INPUT_BUFFER, &mut read);
            }
        }
        ld.set_termios(Termios::console());
    });
    assert_eq!(allocations, 0, "the discipline allocated while taking input");
    assert!(
        signals > 0 && echo.drained > INPUT_BUFFER,
        "the input went through: {signals} signals, echo {}",
        echo.drained
    );
    // The buffer stayed bounded: at most INPUT_BUFFER bytes readable.
    let mut total = 0;
    while ld.can_read() && total <= 2 * INPUT_BUFFER {
        read.clear();
        total += ld.read(INPUT_BUFFER, &mut read);
    }
    assert!(total <= INPUT_BUFFER, "{total} bytes kept");
}

#[test]
fn without_reserve_the_same_input_does_allocate() {
    // The measurement can see the discipline's growth: without the
    // reserve, its buffers grow as input comes.
    let input = stress_input();
    let mut ld = LineDiscipline::default();
    let mut echo = FixedEcho { bytes: [0; 64], len: 0, drained: 0 };
    let allocations = allocations_of(|| {
        for &byte in &input {
            ld.receive(byte, &mut echo);
        }
    });
    assert!(allocations > 0);
}
