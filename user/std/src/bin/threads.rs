//! threads: std's threads over clone and futexes. Channels (`mpsc` with
//! several senders, a bounded `sync_channel`), `Mutex` and `Condvar`,
//! `Barrier`, `thread_local!` (a value per thread, its destructor run when
//! the thread exits), scoped threads, thread names, park/unpark,
//! `recv_timeout` timing out, and many threads created and joined.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use aspen_std_programs::Checks;

const SENDERS: u64 = 4;
const MESSAGES: u64 = 1000;

static TLS_DROPS: AtomicUsize = AtomicUsize::new(0);

/// A thread-local value whose destructor counts.
struct Counted(Cell<u64>);

impl Drop for Counted {
    fn drop(&mut self) {
        TLS_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

thread_local! {
    static MINE: Counted = const { Counted(Cell::new(7)) };
}

fn channels(c: &mut Checks) {
    let (tx, rx) = mpsc::channel();
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let tx = tx.clone();
            thread::spawn(move || (0..MESSAGES).for_each(|i| tx.send(s * MESSAGES + i).unwrap()))
        })
        .collect();
    drop(tx);
    let mut got: Vec<u64> = rx.iter().collect();
    senders.into_iter().for_each(|t| t.join().unwrap());
    got.sort_unstable();
    c.check(
        got == (0..SENDERS * MESSAGES).collect::<Vec<_>>(),
        "mpsc: every message from 4 senders arrives once; the channel ends when they are gone",
        format!("{} messages", got.len()),
    );

    let (tx, rx) = mpsc::sync_channel(0);
    let echo = thread::spawn(move || rx.iter().map(|v: u64| v * 2).sum::<u64>());
    (1..=100).for_each(|v| tx.send(v).unwrap());
    drop(tx);
    let sum = echo.join().unwrap();
    c.check(sum == 10100, "sync_channel(0): a rendezvous for every message", format!("sum {sum}"));

    let (_tx, rx) = mpsc::channel::<()>();
    let start = Instant::now();
    let r = rx.recv_timeout(Duration::from_millis(50));
    let waited = start.elapsed();
    c.check(
        r == Err(mpsc::RecvTimeoutError::Timeout) && waited >= Duration::from_millis(50),
        "recv_timeout times out, not before its time",
        format!("{r:?} after {waited:?}"),
    );
}

fn locks(c: &mut Checks) {
    let counter = Arc::new(Mutex::new(0u64));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let counter = Arc::clone(&counter);
            thread::spawn(move || (0..10000).for_each(|_| *counter.lock().unwrap() += 1))
        })
        .collect();
    workers.into_iter().for_each(|t| t.join().unwrap());
    let total = *counter.lock().unwrap();
    c.check(total == 40000, "Mutex: 4 threads x 10000 increments", format!("{total}"));

    let pair = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
    let producer = {
        let pair = Arc::clone(&pair);
        thread::spawn(move || {
            for i in 0..100 {
                let (queue, ready) = &*pair;
                queue.lock().unwrap().push(i);
                ready.notify_one();
            }
        })
    };
    let mut received = Vec::new();
    let (queue, ready) = &*pair;
    while received.len() < 100 {
        let mut q = ready.wait_while(queue.lock().unwrap(), |q| q.is_empty()).unwrap();
        received.append(&mut q);
    }
    producer.join().unwrap();
    c.check(
        received == (0..100).collect::<Vec<_>>(),
        "Condvar: the consumer wakes for every item, in order",
        format!("{} items", received.len()),
    );

    let guard = queue.lock().unwrap();
    let start = Instant::now();
    let (_guard, timeout) = ready.wait_timeout(guard, Duration::from_millis(50)).unwrap();
    c.check(
        timeout.timed_out() && start.elapsed() >= Duration::from_millis(50),
        "Condvar::wait_timeout times out",
        format!("after {:?}", start.elapsed()),
    );
}

fn barrier(c: &mut Checks) {
    const N: usize = 6;
    let barrier = Arc::new(Barrier::new(N));
    let arrived = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..N)
        .map(|_| {
            let (barrier, arrived) = (Arc::clone(&barrier), Arc::clone(&arrived));
            thread::spawn(move || {
                arrived.fetch_add(1, Ordering::SeqCst);
                let leader = barrier.wait().is_leader();
                (leader, arrived.load(Ordering::SeqCst))
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let leaders = results.iter().filter(|r| r.0).count();
    let early = results.iter().filter(|r| r.1 != N).count();
    c.check(
        leaders == 1 && early == 0,
        "Barrier: nobody leaves before all arrived; one leader",
        format!("{leaders} leaders, {early} left early"),
    );
}

fn thread_locals(c: &mut Checks) {
    MINE.with(|m| m.0.set(1));
    let drops_before = TLS_DROPS.load(Ordering::SeqCst);
    let seen: Vec<(u64, u64)> = (0..4u64)
        .map(|i| {
            thread::spawn(move || {
                let initial = MINE.with(|m| m.0.get());
                MINE.with(|m| m.0.set(100 + i));
                thread::sleep(Duration::from_millis(10));
                (initial, MINE.with(|m| m.0.get()))
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let ok = seen.iter().enumerate().all(|(i, &(initial, last))| initial == 7 && last == 100 + i as u64);
    c.check(
        ok && MINE.with(|m| m.0.get()) == 1,
        "thread_local!: each thread starts from the initial value and keeps its own",
        format!("{seen:?}"),
    );
    let drops = TLS_DROPS.load(Ordering::SeqCst) - drops_before;
    c.check(drops == 4, "thread_local! destructors run when the threads exit", format!("{drops} drops"));
}

fn misc(c: &mut Checks) {
    let name = thread::Builder::new()
        .name("worker-7".into())
        .spawn(|| thread::current().name().map(str::to_owned))
        .unwrap()
        .join()
        .unwrap();
    c.check(name.as_deref() == Some("worker-7"), "thread names", format!("{name:?}"));

    let mut data = vec![1u64; 1000];
    thread::scope(|s| {
        for chunk in data.chunks_mut(250) {
            s.spawn(move || chunk.iter_mut().for_each(|v| *v *= 3));
        }
    });
    c.check(data.iter().all(|&v| v == 3), "scoped threads borrow and finish before the scope ends", "");

    let parked = thread::spawn(|| {
        let start = Instant::now();
        thread::park();
        start.elapsed()
    });
    thread::sleep(Duration::from_millis(50));
    parked.thread().unpark();
    let slept = parked.join().unwrap();
    c.check(slept >= Duration::from_millis(40), "park sleeps until unpark", format!("{slept:?}"));

    let mut sum = 0;
    for _ in 0..10 {
        let batch: Vec<_> = (0..50u64).map(|i| thread::spawn(move || i)).collect();
        sum += batch.into_iter().map(|t| t.join().unwrap()).sum::<u64>();
    }
    c.check(sum == 10 * 1225, "500 threads, 50 at a time, all joined with their results", format!("sum {sum}"));
}

fn main() -> std::process::ExitCode {
    let mut c = Checks::new("std-threads");
    channels(&mut c);
    locks(&mut c);
    barrier(&mut c);
    thread_locals(&mut c);
    misc(&mut c);
    c.done()
}
