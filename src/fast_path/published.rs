//! What a circuit publishes for callers to read without a message: the
//! state word, the consecutive-failure run, when the OPEN timeout ends, the
//! window the rate estimate starts from, and a trip a caller proposed.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::word::{DORMANT, Word};
use crate::rules::Status;
use crate::state::CircuitState;
use crate::transition::TransitionReason;
use crate::window::WindowCounts;

/// Aligned to two cache lines, so that a value written often by one party
/// shares no line (nor its prefetch pair) with anything else.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// The CLOSED-state window of one generation as the circuit last saw it,
/// with the fresh outcomes the slots held at that moment: a failing caller
/// adds what was counted since to estimate the rate now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RateBase {
    pub(crate) generation: u64,
    pub(crate) window: WindowCounts,
    pub(crate) folded: WindowCounts,
}

/// A threshold a caller saw crossed, waiting for the circuit to open.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PendingTrip {
    pub(crate) generation: u64,
    pub(crate) reason: TransitionReason,
    pub(crate) at: Instant,
}

/// Shared between a circuit actor and its handles. The actor is the only
/// writer of the word's state and generation; callers only set its pending
/// bit (by compare-and-swap) and count the run.
#[derive(Debug)]
pub(crate) struct Published {
    word: Padded<AtomicU64>,
    /// `(generation as u32) << 32 | consecutive failures`, for CLOSED.
    run: Padded<AtomicU64>,
    /// Nanoseconds after `epoch` when the OPEN timeout ends; 0 for none.
    open_until: AtomicU64,
    epoch: Instant,
    rate_base: Mutex<RateBase>,
    trip: Mutex<Option<PendingTrip>>,
}

impl Published {
    pub(crate) fn new(status: Status, generation: u64, run: u32, epoch: Instant) -> Self {
        Published {
            word: Padded(AtomicU64::new(Word::new(status, generation).0)),
            run: Padded(AtomicU64::new(run_word(generation, run))),
            open_until: AtomicU64::new(0),
            epoch,
            rate_base: Mutex::new(RateBase {
                generation,
                ..RateBase::default()
            }),
            trip: Mutex::new(None),
        }
    }

    #[inline]
    pub(crate) fn word(&self) -> Word {
        Word(self.word.0.load(Ordering::Acquire))
    }

    /// Publishes a new state word; clears a pending trip. Only the owner
    /// calls it. The run of a CLOSED generation starts at zero.
    pub(crate) fn publish(&self, word: Word, open_until: Option<Instant>) {
        self.open_until
            .store(open_until.map_or(0, |at| self.nanos(at)), Ordering::Relaxed);
        if word.state() == CircuitState::Closed {
            self.run
                .0
                .store(run_word(word.generation(), 0), Ordering::Relaxed);
        }
        let stopped = self.word().is_stopped();
        let word = if stopped { word.stopped() } else { word };
        self.word.0.store(word.0, Ordering::Release);
    }

    /// The owner stops folding until a caller counts something. Ordered
    /// before the owner's next read of the slots (its last fold), so that a
    /// caller that counted without seeing the mark is in that fold.
    pub(crate) fn fall_asleep(&self) {
        self.word.0.fetch_or(DORMANT, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
    }

    /// Clears the dormant mark; true for the one caller (or owner) that
    /// cleared it, which then wakes the owner if it is a caller.
    #[cold]
    pub(crate) fn wake(&self) -> bool {
        self.word.0.fetch_and(!DORMANT, Ordering::AcqRel) & DORMANT != 0
    }

    /// Marks the circuit gone: handles answer "unavailable" from now on.
    pub(crate) fn mark_stopped(&self) {
        self.word.0.fetch_or(Word(0).stopped().0, Ordering::AcqRel);
    }

    /// Proposes a trip seen in the generation of `seen`: the one caller
    /// whose compare-and-swap sets the pending bit leaves the trip for the
    /// owner and returns true (it then wakes the owner); from that moment
    /// every call is refused.
    pub(crate) fn propose_trip(&self, seen: Word, reason: TransitionReason, at: Instant) -> bool {
        // Under the lock, so that an owner that sees the pending bit finds
        // the trip left beside it.
        let mut trip = lock(&self.trip);
        let mut expected = seen;
        let won = loop {
            match self.word.0.compare_exchange(
                expected.0,
                expected.pending().0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break true,
                // Only the dormant mark came or went: the same word.
                Err(actual) if Word(actual).awake() == seen.awake() => expected = Word(actual),
                Err(_) => break false,
            }
        };
        if won {
            *trip = Some(PendingTrip {
                generation: seen.generation(),
                reason,
                at,
            });
        }
        won
    }

    /// The trip a caller left, if the word is pending.
    pub(crate) fn take_trip(&self) -> Option<PendingTrip> {
        if self.word().is_pending() {
            lock(&self.trip).take()
        } else {
            None
        }
    }

    /// The instant the published times count from.
    #[inline]
    pub(crate) fn epoch(&self) -> Instant {
        self.epoch
    }

    /// The OPEN timeout's end as published: nanoseconds after the
    /// [`epoch`](Self::epoch), 0 for none; turned into an instant only when
    /// someone asks.
    #[inline]
    pub(crate) fn open_until_nanos(&self) -> u64 {
        self.open_until.load(Ordering::Relaxed)
    }

    fn nanos(&self, at: Instant) -> u64 {
        (at.saturating_duration_since(self.epoch).as_nanos() as u64).max(1)
    }

    /// Consecutive failures of `generation` so far.
    pub(crate) fn consecutive_failures(&self, generation: u64) -> u32 {
        let run = self.run.0.load(Ordering::Acquire);
        if run >> 32 == generation & 0xffff_ffff {
            run as u32
        } else {
            0
        }
    }

    /// A success in `generation` ends the run; `Some(0)`, or `None` if the
    /// generation's run is over. Read-only while there is no run to end,
    /// which is the steady state.
    #[inline]
    pub(crate) fn run_success(&self, generation: u64) -> Option<u32> {
        let run = self.run.0.load(Ordering::Relaxed);
        if run >> 32 != generation & 0xffff_ffff {
            return None;
        }
        if run as u32 != 0 {
            let _ = self.run.0.compare_exchange(
                run,
                run_word(generation, 0),
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
        Some(0)
    }

    /// A failure in `generation` extends the run; returns its new length,
    /// or `None` if the generation's run is over.
    pub(crate) fn run_failure(&self, generation: u64) -> Option<u32> {
        let mut run = self.run.0.load(Ordering::Relaxed);
        loop {
            if run >> 32 != generation & 0xffff_ffff {
                return None;
            }
            let next = run_word(generation, (run as u32).saturating_add(1));
            match self
                .run
                .0
                .compare_exchange_weak(run, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Some(next as u32),
                Err(actual) => run = actual,
            }
        }
    }

    pub(crate) fn rate_base(&self) -> RateBase {
        *lock(&self.rate_base)
    }

    pub(crate) fn set_rate_base(&self, base: RateBase) {
        *lock(&self.rate_base) = base;
    }
}

/// A poisoned lock only means a thread panicked while holding it; the data
/// (plain counts) is still sound.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn run_word(generation: u64, failures: u32) -> u64 {
    ((generation & 0xffff_ffff) << 32) | u64::from(failures)
}
