//! Per-thread counters of fast-path calls: each thread owns one slot of a
//! circuit's counters and writes it with a plain load and store, so that
//! callers on different threads never write a shared cache line.

use std::sync::atomic::{AtomicU64, Ordering};

use super::thread_slot::{self, OWNED_SLOTS};
use crate::outcome::{Outcome, OutcomeCounts};

/// One thread's counters. 14 counters in 112 bytes, aligned to two cache
/// lines so that no other thread's slot shares a line (or its prefetch pair).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Slot {
    admitted: AtomicU64,
    rejections: AtomicU64,
    /// Outcomes of calls that ended in the generation they were admitted in.
    fresh: OutcomeCounts<AtomicU64>,
    /// Outcomes of calls whose generation had ended when they did: in the
    /// totals, never in a window. One store per outcome, either here or in
    /// `fresh`, so a fold never sees a stale outcome half counted.
    stale: OutcomeCounts<AtomicU64>,
}

/// What a caller counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Count {
    Admitted,
    Rejection,
    /// An outcome in the generation the call was admitted in.
    Fresh(Outcome),
    /// An outcome after the call's generation ended.
    Stale(Outcome),
}

/// Sums of every slot's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SlotTotals {
    pub(crate) admitted: u64,
    pub(crate) rejections: u64,
    pub(crate) fresh: OutcomeCounts,
    pub(crate) stale: OutcomeCounts,
}

impl SlotTotals {
    /// What was counted since `before`.
    pub(crate) fn since(&self, before: &SlotTotals) -> SlotTotals {
        SlotTotals {
            admitted: self.admitted.saturating_sub(before.admitted),
            rejections: self.rejections.saturating_sub(before.rejections),
            fresh: self.fresh.since(&before.fresh),
            stale: self.stale.since(&before.stale),
        }
    }

    /// Every call ended, fresh or stale.
    pub(crate) fn ended(&self) -> OutcomeCounts {
        let mut ended = self.fresh;
        ended.add(&self.stale);
        ended
    }
}

/// One slot per thread index, plus the shared overflow slot.
#[derive(Debug, Default)]
pub(crate) struct Slots([Slot; OWNED_SLOTS + 1]);

impl Slots {
    /// Adds one to `count` in this thread's slot. A thread that owns its
    /// slot is its only writer, so a plain load and store suffice: no
    /// read-modify-write, no shared cache line written.
    #[inline]
    pub(crate) fn add(&self, count: Count) {
        let index = thread_slot::current().min(OWNED_SLOTS);
        let slot = &self.0[index];
        let cell = match count {
            Count::Admitted => &slot.admitted,
            Count::Rejection => &slot.rejections,
            Count::Fresh(outcome) => &slot.fresh[outcome],
            Count::Stale(outcome) => &slot.stale[outcome],
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
    /// A call's counters are written in order (admitted, then its outcome),
    /// possibly from different threads if its task moved, and always with
    /// Release. Reading them in the opposite order with Acquire, across all
    /// slots, means that every outcome read has its admission read too: a
    /// fold never sees more outcomes than calls.
    pub(crate) fn totals(&self) -> SlotTotals {
        let read = |cell: &AtomicU64| cell.load(Ordering::Acquire);
        let mut totals = SlotTotals::default();
        for slot in &self.0 {
            totals.rejections += read(&slot.rejections);
            totals.fresh.add(&slot.fresh.map(read));
            totals.stale.add(&slot.stale.map(read));
        }
        for slot in &self.0 {
            totals.admitted += read(&slot.admitted);
        }
        totals
    }

    /// The fresh outcomes alone, for a caller's estimate of the window.
    pub(crate) fn fresh(&self) -> OutcomeCounts {
        let mut fresh = OutcomeCounts::default();
        for slot in &self.0 {
            fresh.add(&slot.fresh.map(|cell| cell.load(Ordering::Acquire)));
        }
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_fits_in_its_two_cache_lines() {
        assert_eq!(std::mem::size_of::<Slot>(), 128);
    }

    #[test]
    fn counts_add_up_per_kind() {
        let slots = Slots::default();
        for _ in 0..3 {
            slots.add(Count::Admitted);
        }
        slots.add(Count::Fresh(Outcome::Success));
        slots.add(Count::Stale(Outcome::Failure));
        slots.add(Count::Rejection);
        let totals = slots.totals();
        assert_eq!(totals.admitted, 3);
        assert_eq!(totals.rejections, 1);
        assert_eq!(totals.fresh[Outcome::Success], 1);
        assert_eq!(totals.ended().total(), 2);
        assert_eq!(slots.fresh().total(), 1);
        let later = slots.totals().since(&totals);
        assert_eq!(later, SlotTotals::default());
    }
}
