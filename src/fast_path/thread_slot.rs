//! A small, dense, per-thread index, so that each thread can own one slot of
//! a circuit's counters and write it without an atomic read-modify-write.
//!
//! Indexes are handed out in order of first use and returned when a thread
//! exits, so a process that keeps creating threads (a blocking pool, say)
//! reuses the low indexes instead of growing without bound. A thread that
//! found every index taken shares the overflow slot until one is returned,
//! and then takes it.

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Indexes below this own a slot; a thread with a higher index shares the
/// overflow slot (and pays for atomic adds there).
pub(crate) const OWNED_SLOTS: usize = 16;

struct Registry {
    next: usize,
    free: Vec<usize>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next: 0,
    free: Vec::new(),
});

/// How many returned indexes wait in the registry's free list: read by
/// threads on the overflow slot, so that they take one when it frees.
static FREE: AtomicUsize = AtomicUsize::new(0);

/// No index claimed yet.
const UNCLAIMED: usize = usize::MAX;

thread_local! {
    // No destructor, so reading it is a plain thread-local load; returning
    // the index at thread exit is the job of `RELEASE`, registered once.
    static INDEX: Cell<usize> = const { Cell::new(UNCLAIMED) };
    static RELEASE: Release = const { Release };
}

/// Returns this thread's index to the registry when the thread exits.
struct Release;

impl Drop for Release {
    fn drop(&mut self) {
        let index = INDEX.with(|index| index.replace(OWNED_SLOTS));
        if index < OWNED_SLOTS {
            // A poisoned registry only means another thread panicked while
            // holding it; the data (a counter and a free list) is still sound.
            let mut registry = REGISTRY
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            registry.free.push(index);
            FREE.store(registry.free.len(), Ordering::Relaxed);
        }
    }
}

/// This thread's index: the slot it owns, or [`OWNED_SLOTS`] for the shared
/// overflow slot.
#[inline]
pub(crate) fn current() -> usize {
    let index = INDEX.with(Cell::get);
    if index < OWNED_SLOTS {
        index
    } else {
        unowned(index)
    }
}

/// A thread without a slot of its own: on first use it claims one; on the
/// overflow slot it takes one as soon as one is returned.
#[cold]
fn unowned(index: usize) -> usize {
    if index == OWNED_SLOTS && FREE.load(Ordering::Relaxed) == 0 {
        return index;
    }
    // Registering the release can fail only while the thread is already
    // tearing down (or has released its index); such a thread shares the
    // overflow slot for good.
    let index = match RELEASE.try_with(|_| ()) {
        Ok(()) => claim(),
        Err(_) => OWNED_SLOTS,
    };
    INDEX.with(|cell| cell.set(index));
    index
}

#[cold]
fn claim() -> usize {
    let mut registry = REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(index) = registry.free.pop() {
        FREE.store(registry.free.len(), Ordering::Relaxed);
        return index;
    }
    let index = registry.next;
    if index < OWNED_SLOTS {
        registry.next += 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_keeps_its_index_and_another_thread_gets_another() {
        let mine = current();
        assert_eq!(current(), mine);
        let theirs = std::thread::spawn(current).join().unwrap();
        if mine < OWNED_SLOTS {
            assert_ne!(mine, theirs);
        }
    }

    #[test]
    fn indexes_of_finished_threads_are_reused() {
        let seen: Vec<usize> = (0..200)
            .map(|_| std::thread::spawn(current).join().unwrap())
            .collect();
        // One thread at a time: each reuses what the last one returned, so
        // 200 threads never run out of owned slots.
        assert!(seen.iter().all(|&index| index < OWNED_SLOTS), "{seen:?}");
    }

    /// Issue 15: a thread that found every index taken shares the overflow
    /// slot (atomic adds on a shared line) only until one is returned. The
    /// registry is process-wide and the other tests' threads take indexes
    /// from it too, so this runs in a child process of its own.
    #[test]
    fn a_thread_on_the_overflow_slot_takes_an_index_once_one_is_returned() {
        const CHILD: &str = "THREAD_SLOT_OVERFLOW_CHILD";
        let name = "fast_path::thread_slot::tests::\
                    a_thread_on_the_overflow_slot_takes_an_index_once_one_is_returned";
        if std::env::var_os(CHILD).is_none() {
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", name, "--test-threads=1"])
                .env(CHILD, "1")
                .status()
                .unwrap();
            assert!(status.success(), "the child process failed: {status}");
            return;
        }
        use std::sync::mpsc::channel;
        let holders: Vec<_> = (0..OWNED_SLOTS)
            .map(|_| {
                let (claimed, got) = channel();
                let (release, released) = channel::<()>();
                let thread = std::thread::spawn(move || {
                    claimed.send(current()).unwrap();
                    let _ = released.recv();
                });
                assert!(got.recv().unwrap() < OWNED_SLOTS);
                (thread, release)
            })
            .collect();
        let (report, reports) = channel();
        let (ask, asked) = channel::<()>();
        let late = std::thread::spawn(move || {
            report.send(current()).unwrap();
            asked.recv().unwrap();
            report.send(current()).unwrap();
        });
        assert_eq!(
            reports.recv().unwrap(),
            OWNED_SLOTS,
            "every index was taken"
        );
        let mut holders = holders.into_iter();
        let (first, release) = holders.next().unwrap();
        release.send(()).unwrap();
        first.join().unwrap();
        ask.send(()).unwrap();
        assert!(
            reports.recv().unwrap() < OWNED_SLOTS,
            "it stayed on the overflow slot"
        );
        late.join().unwrap();
        for (thread, release) in holders {
            release.send(()).unwrap();
            thread.join().unwrap();
        }
    }
}
