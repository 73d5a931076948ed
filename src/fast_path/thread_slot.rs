//! A small, dense, per-thread index, so that each thread can own one slot of
//! a circuit's counters and write it without an atomic read-modify-write.
//!
//! Indexes are handed out in order of first use and returned when a thread
//! exits, so a process that keeps creating threads (a blocking pool, say)
//! reuses the low indexes instead of growing without bound.

use std::cell::Cell;
use std::sync::Mutex;

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
        }
    }
}

/// This thread's index: the slot it owns, or [`OWNED_SLOTS`] for the shared
/// overflow slot.
#[inline]
pub(crate) fn current() -> usize {
    let index = INDEX.with(Cell::get);
    if index == UNCLAIMED {
        first_use()
    } else {
        index
    }
}

#[cold]
fn first_use() -> usize {
    // Registering the release can fail only while the thread is already
    // tearing down; such a thread shares the overflow slot for good.
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
}
