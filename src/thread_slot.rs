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

struct ThreadIndex(Cell<Option<usize>>);

impl Drop for ThreadIndex {
    fn drop(&mut self) {
        if let Some(index) = self.0.get().filter(|&index| index < OWNED_SLOTS) {
            // A poisoned registry only means another thread panicked while
            // holding it; the data (a counter and a free list) is still sound.
            let mut registry = REGISTRY
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            registry.free.push(index);
        }
    }
}

thread_local! {
    static INDEX: ThreadIndex = const { ThreadIndex(Cell::new(None)) };
}

/// This thread's index: the slot it owns, or [`OWNED_SLOTS`] for the shared
/// overflow slot.
#[inline]
pub(crate) fn current() -> usize {
    INDEX
        .try_with(|index| match index.0.get() {
            Some(index) => index,
            None => {
                let claimed = claim();
                index.0.set(Some(claimed));
                claimed
            }
        })
        // During thread teardown the thread-local is gone: share the overflow slot.
        .unwrap_or(OWNED_SLOTS)
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
