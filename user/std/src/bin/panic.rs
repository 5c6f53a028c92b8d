//! panic: unwinding. A panic in a spawned thread is caught there with
//! `catch_unwind` (the payload comes back, the thread goes on, destructors
//! ran); an uncaught panic ends only its thread, and `join` returns it as
//! an error; a poisoned `Mutex` reports the poisoning.

use std::any::Any;
use std::hint::black_box;
use std::panic;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use aspen_std_programs::Checks;

static DROPPED: AtomicUsize = AtomicUsize::new(0);

/// Counts its drops: unwinding must run destructors.
struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

/// A panic's message: a `String` when it was formatted at run time, a
/// `&'static str` when it was a constant.
fn message(payload: &(dyn Any + Send)) -> Option<String> {
    payload.downcast_ref::<String>().cloned().or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
}

fn main() -> std::process::ExitCode {
    let mut c = Checks::new("std-panic");
    // The default hook prints each panic: keep the report readable.
    panic::set_hook(Box::new(|_| {}));

    let caught = thread::spawn(|| {
        let result = panic::catch_unwind(|| {
            let _guard = Guard;
            panic!("boom {}", black_box(42));
        });
        let message = result.err().and_then(|p| message(&*p));
        (message, "after the panic")
    })
    .join();
    match caught {
        Ok((message, after)) => c.check(
            message.as_deref() == Some("boom 42") && after == "after the panic" && DROPPED.load(Ordering::SeqCst) == 1,
            "catch_unwind in a thread returns the payload, destructors ran, the thread goes on",
            format!("payload {message:?}, {} drops", DROPPED.load(Ordering::SeqCst)),
        ),
        Err(_) => c.check(false, "catch_unwind in a thread", "the panic escaped catch_unwind"),
    }

    let joined = thread::spawn(|| -> u32 {
        let _guard = Guard;
        panic!("uncaught")
    })
    .join();
    let payload = joined.as_ref().err().and_then(|p| message(&**p));
    c.check(
        payload.as_deref() == Some("uncaught") && DROPPED.load(Ordering::SeqCst) == 2,
        "an uncaught panic ends its thread only: join returns it",
        format!("join gave {payload:?}, {} drops", DROPPED.load(Ordering::SeqCst)),
    );

    let shared = Arc::new(Mutex::new(5));
    let holder = Arc::clone(&shared);
    let _ = thread::spawn(move || {
        let _locked = holder.lock().unwrap();
        panic!("while holding the lock");
    })
    .join();
    let poisoned = shared.lock().map(|g| *g).map_err(|e| *e.into_inner());
    c.check(poisoned == Err(5), "a mutex held by a panicking thread is poisoned", format!("{poisoned:?}"));
    c.done()
}
