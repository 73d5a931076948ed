//! A circuit's running totals since it was created.

use std::ops::{Index, IndexMut};

use serde::Serialize;

use crate::outcome::{Outcome, OutcomeCounts};

/// Running totals since the circuit was created; never reset.
///
/// Every admitted call ends up in exactly one outcome counter, so
/// `calls == outcomes.total() + in_flight()` at every moment; calls refused
/// without running are counted apart, in `rejections`. Indexing by
/// [`Outcome`] reads one counter.
///
/// In JSON the outcome counters sit beside `calls` and `rejections`, each
/// under its [`plural`](Outcome::plural): `{"calls": 3, "successes": 2, ...}`.
///
/// ```
/// use vibezen_recovery::outcome::Outcome;
/// use vibezen_recovery::totals::CallTotals;
///
/// let mut totals = CallTotals::default();
/// totals.calls = 3;
/// totals[Outcome::Success] = 2;
/// assert_eq!(totals.in_flight(), 1);
/// assert_eq!(serde_json::to_value(totals).unwrap()["successes"], 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct CallTotals {
    /// Calls admitted.
    pub calls: u64,
    /// How the calls that ended came out, one counter per outcome.
    #[serde(flatten)]
    pub outcomes: OutcomeCounts,
    /// Calls refused without running.
    pub rejections: u64,
}

impl CallTotals {
    /// Admitted calls whose outcome is not in yet.
    pub fn in_flight(&self) -> u64 {
        self.calls.saturating_sub(self.outcomes.total())
    }
}

impl Index<Outcome> for CallTotals {
    type Output = u64;

    fn index(&self, outcome: Outcome) -> &u64 {
        &self.outcomes[outcome]
    }
}

impl IndexMut<Outcome> for CallTotals {
    fn index_mut(&mut self, outcome: Outcome) -> &mut u64 {
        &mut self.outcomes[outcome]
    }
}
