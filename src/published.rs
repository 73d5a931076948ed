//! What a circuit's state machine publishes for callers to read without a
//! message: its state as one atomic word, the consecutive-failure run, and
//! per-thread counters that callers on the fast path write.
//!
//! The state machine stays the only writer of transitions: callers only
//! count, and the one caller whose outcome crosses a threshold marks the
//! word *pending* (so every later call is refused at once) and tells the
//! actor, which makes the transition.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::state::CircuitState;
use crate::thread_slot::{self, OWNED_SLOTS};

const STATE_MASK: u64 = 0b11;
/// A caller crossed a threshold; the transition to OPEN is on its way.
const PENDING: u64 = 0b100;
/// The circuit actor is gone.
const STOPPED: u64 = 0b1000;
const GENERATION_SHIFT: u32 = 4;

/// A decoded state word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word(u64);

impl Word {
    pub(crate) fn new(state: CircuitState, generation: u64) -> Self {
        let state = match state {
            CircuitState::Closed => 0,
            CircuitState::Open => 1,
            CircuitState::HalfOpen => 2,
        };
        Word(state | (generation << GENERATION_SHIFT))
    }

    #[inline]
    pub(crate) fn state(self) -> CircuitState {
        match self.0 & STATE_MASK {
            0 => CircuitState::Closed,
            1 => CircuitState::Open,
            _ => CircuitState::HalfOpen,
        }
    }

    #[inline]
    pub(crate) fn generation(self) -> u64 {
        self.0 >> GENERATION_SHIFT
    }

    /// CLOSED with no trip pending: a fast-path call may go ahead.
    #[inline]
    pub(crate) fn admits(self) -> bool {
        self.0 & (STATE_MASK | PENDING | STOPPED) == 0
    }

    #[inline]
    pub(crate) fn is_pending(self) -> bool {
        self.0 & PENDING != 0
    }

    #[inline]
    pub(crate) fn is_stopped(self) -> bool {
        self.0 & STOPPED != 0
    }
}

/// Aligned to two cache lines, so that a value written often by one party
/// shares no line (nor its prefetch pair) with anything else.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// The CLOSED-state failure-rate window as the state machine last saw it,
/// with what the per-thread counters held at that moment. A failing caller
/// adds what was counted since to estimate the rate now.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RateBase {
    pub(crate) window_calls: u64,
    pub(crate) window_failures: u64,
    pub(crate) folded: WindowTally,
}

/// Outcomes that count toward the window (current generation only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WindowTally {
    pub(crate) successes: u64,
    pub(crate) failures: u64,
}

/// Shared between a circuit's state machine and its handles.
#[derive(Debug)]
pub(crate) struct Published {
    word: Padded<AtomicU64>,
    /// `(generation as u32) << 32 | consecutive failures`, for CLOSED.
    run: Padded<AtomicU64>,
    /// Nanoseconds after `epoch` when the OPEN timeout ends; 0 for none.
    open_until: AtomicU64,
    epoch: Instant,
    rate_base: Mutex<RateBase>,
}

impl Published {
    pub(crate) fn new(epoch: Instant) -> Self {
        Published {
            word: Padded(AtomicU64::new(Word::new(CircuitState::Closed, 0).0)),
            run: Padded(AtomicU64::new(0)),
            open_until: AtomicU64::new(0),
            epoch,
            rate_base: Mutex::new(RateBase::default()),
        }
    }

    /// A detached copy of what is published now.
    pub(crate) fn snapshot(&self) -> Self {
        Published {
            word: Padded(AtomicU64::new(self.word.0.load(Ordering::Acquire))),
            run: Padded(AtomicU64::new(self.run.0.load(Ordering::Acquire))),
            open_until: AtomicU64::new(self.open_until.load(Ordering::Relaxed)),
            epoch: self.epoch,
            rate_base: Mutex::new(self.rate_base()),
        }
    }

    #[inline]
    pub(crate) fn word(&self) -> Word {
        Word(self.word.0.load(Ordering::Acquire))
    }

    /// Publishes a new state; clears a pending trip. Only the state machine calls it.
    pub(crate) fn publish(
        &self,
        state: CircuitState,
        generation: u64,
        open_until: Option<Instant>,
    ) {
        let until = open_until.map_or(0, |until| {
            (until.saturating_duration_since(self.epoch).as_nanos() as u64).max(1)
        });
        self.open_until.store(until, Ordering::Relaxed);
        if state == CircuitState::Closed {
            self.run.0.store(run_word(generation, 0), Ordering::Relaxed);
        }
        let stopped = self.word.0.load(Ordering::Relaxed) & STOPPED;
        self.word
            .0
            .store(Word::new(state, generation).0 | stopped, Ordering::Release);
    }

    /// Marks the circuit gone: handles answer "unavailable" from now on.
    pub(crate) fn mark_stopped(&self) {
        self.word.0.fetch_or(STOPPED, Ordering::AcqRel);
    }

    /// Sets the pending bit if the word is still `seen`; true for the one
    /// caller that wins.
    pub(crate) fn mark_pending(&self, seen: Word) -> bool {
        self.word
            .0
            .compare_exchange(
                seen.0,
                seen.0 | PENDING,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// When the OPEN timeout ends, if the circuit is OPEN.
    #[inline]
    pub(crate) fn open_until(&self) -> Option<Instant> {
        match self.open_until.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(self.epoch + Duration::from_nanos(nanos)),
        }
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

    /// A success in `generation` ends the run. Read-only while there is no
    /// run to end, which is the steady state.
    #[inline]
    pub(crate) fn run_success(&self, generation: u64) {
        let run = self.run.0.load(Ordering::Relaxed);
        if run as u32 != 0 && run >> 32 == generation & 0xffff_ffff {
            let _ = self.run.0.compare_exchange(
                run,
                run_word(generation, 0),
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }

    /// A failure in `generation` extends the run; returns its new length,
    /// or `None` if the generation is over.
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
        *self
            .rate_base
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn set_rate_base(&self, base: RateBase) {
        *self
            .rate_base
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = base;
    }
}

fn run_word(generation: u64, failures: u32) -> u64 {
    ((generation & 0xffff_ffff) << 32) | u64::from(failures)
}

/// One thread's counters of fast-path calls.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Slot {
    admitted: AtomicU64,
    successes: AtomicU64,
    failures: AtomicU64,
    timeouts: AtomicU64,
    panics: AtomicU64,
    ignored: AtomicU64,
    cancelled: AtomicU64,
    rejections: AtomicU64,
    /// Successes and failures (any kind) of calls whose generation ended
    /// before they did: in the totals, not in the window.
    stale_successes: AtomicU64,
    stale_failures: AtomicU64,
}

/// Which counter of a slot to add to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counter {
    Admitted,
    Success,
    Failure,
    Timeout,
    Panic,
    Ignored,
    Cancelled,
    Rejection,
    StaleSuccess,
    StaleFailure,
}

/// Sums of every slot's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SlotTotals {
    pub(crate) admitted: u64,
    pub(crate) successes: u64,
    pub(crate) failures: u64,
    pub(crate) timeouts: u64,
    pub(crate) panics: u64,
    pub(crate) ignored: u64,
    pub(crate) cancelled: u64,
    pub(crate) rejections: u64,
    pub(crate) stale_successes: u64,
    pub(crate) stale_failures: u64,
}

impl SlotTotals {
    /// What was counted since `before` (each counter only grows; a counter
    /// read a moment apart from its partner never makes a difference negative).
    pub(crate) fn since(&self, before: &SlotTotals) -> SlotTotals {
        let added = |now: u64, before: u64| now.saturating_sub(before);
        SlotTotals {
            admitted: added(self.admitted, before.admitted),
            successes: added(self.successes, before.successes),
            failures: added(self.failures, before.failures),
            timeouts: added(self.timeouts, before.timeouts),
            panics: added(self.panics, before.panics),
            ignored: added(self.ignored, before.ignored),
            cancelled: added(self.cancelled, before.cancelled),
            rejections: added(self.rejections, before.rejections),
            stale_successes: added(self.stale_successes, before.stale_successes),
            stale_failures: added(self.stale_failures, before.stale_failures),
        }
    }

    /// What of these totals counts toward the window.
    pub(crate) fn window(&self) -> WindowTally {
        WindowTally {
            successes: self.successes.saturating_sub(self.stale_successes),
            failures: (self.failures + self.timeouts + self.panics)
                .saturating_sub(self.stale_failures),
        }
    }
}

/// One slot per thread index, plus the shared overflow slot.
#[derive(Debug, Default)]
pub(crate) struct Slots([Slot; OWNED_SLOTS + 1]);

impl Slots {
    /// Adds one to `counter` in this thread's slot. A thread that owns its
    /// slot is its only writer, so a plain load and store suffice: no
    /// read-modify-write, no shared cache line written.
    #[inline]
    pub(crate) fn add(&self, counter: Counter) {
        let index = thread_slot::current().min(OWNED_SLOTS);
        let slot = &self.0[index];
        let cell = match counter {
            Counter::Admitted => &slot.admitted,
            Counter::Success => &slot.successes,
            Counter::Failure => &slot.failures,
            Counter::Timeout => &slot.timeouts,
            Counter::Panic => &slot.panics,
            Counter::Ignored => &slot.ignored,
            Counter::Cancelled => &slot.cancelled,
            Counter::Rejection => &slot.rejections,
            Counter::StaleSuccess => &slot.stale_successes,
            Counter::StaleFailure => &slot.stale_failures,
        };
        // Release: a reader that sees this count (with Acquire) also sees
        // every count this thread made before it, such as the call's
        // admission before its outcome. A plain store on x86.
        if index < OWNED_SLOTS {
            cell.store(cell.load(Ordering::Relaxed) + 1, Ordering::Release);
        } else {
            cell.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Every slot added up, consistently: no outcome without its call.
    ///
    /// A call's counters are written in order (admitted, then its outcome,
    /// then whether the outcome was stale), possibly from different threads
    /// if its task moved, and always with Release. Reading them in the
    /// opposite order with Acquire, across all slots, means that every
    /// outcome read has its admission read too, and every stale mark its
    /// outcome: a fold never sees more outcomes than calls.
    pub(crate) fn totals(&self) -> SlotTotals {
        let read = |cell: &AtomicU64| cell.load(Ordering::Acquire);
        let mut totals = SlotTotals::default();
        for slot in &self.0 {
            totals.stale_successes += read(&slot.stale_successes);
            totals.stale_failures += read(&slot.stale_failures);
        }
        for slot in &self.0 {
            totals.successes += read(&slot.successes);
            totals.failures += read(&slot.failures);
            totals.timeouts += read(&slot.timeouts);
            totals.panics += read(&slot.panics);
            totals.ignored += read(&slot.ignored);
            totals.cancelled += read(&slot.cancelled);
            totals.rejections += read(&slot.rejections);
        }
        for slot in &self.0 {
            totals.admitted += read(&slot.admitted);
        }
        totals
    }
}
