//! What became of a call, as the breaker counts it, and the one counter
//! type indexed by it.
//!
//! Every list of outcomes in the crate comes from here: adding an outcome
//! means adding it to [`Outcome`] and [`Outcome::ALL`] (with its name and
//! plural), and every total, per-thread slot and fold follows.

use std::fmt;
use std::ops::{Index, IndexMut};

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

/// How a caller's classifier judges a finished call.
///
/// By default `Ok` is a success and `Err` a failure; a classifier can say
/// otherwise, for example that a "not found" error is no sign of an outage.
///
/// ```
/// use vibezen_recovery::prelude::*;
///
/// let call = ProtectedCall::new(async { Err::<u32, _>("404 not found".to_string()) })
///     .classify(|result| match result {
///         Err(e) if e.starts_with("404") => Classification::Ignored,
///         Err(_) => Classification::Failure,
///         Ok(_) => Classification::Success,
///     });
/// # drop(call);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    /// Counts as a success.
    Success,
    /// Counts as a failure.
    Failure,
    /// Counts toward neither: the window, the consecutive-failure count and
    /// the half-open trial count do not see it.
    Ignored,
}

impl Classification {
    /// The default rule: `Ok` is a success, `Err` a failure.
    pub fn of_result<T, E>(result: &Result<T, E>) -> Self {
        match result {
            Ok(_) => Classification::Success,
            Err(_) => Classification::Failure,
        }
    }
}

/// The recorded outcome of an admitted call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The call succeeded.
    Success = 0,
    /// The call failed.
    Failure = 1,
    /// The call ran past its deadline and was cut off (or its half-open slot
    /// was reclaimed); a kind of failure.
    Timeout = 2,
    /// The call panicked; a kind of failure.
    Panic = 3,
    /// The classifier said the outcome does not count.
    Ignored = 4,
    /// The call was given up before it reported (a permit dropped unused).
    Cancelled = 5,
}

impl Outcome {
    /// How many outcomes there are.
    pub const COUNT: usize = 6;

    /// Every outcome, in the order of their counters.
    pub const ALL: [Outcome; Outcome::COUNT] = [
        Outcome::Success,
        Outcome::Failure,
        Outcome::Timeout,
        Outcome::Panic,
        Outcome::Ignored,
        Outcome::Cancelled,
    ];

    /// Whether the outcome counts against the service.
    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::Failure | Outcome::Timeout | Outcome::Panic)
    }

    /// Whether the outcome enters the failure-rate window (a success or any
    /// kind of failure; ignored and cancelled calls do not).
    pub fn is_judged(self) -> bool {
        !matches!(self, Outcome::Ignored | Outcome::Cancelled)
    }

    /// The name of its counter in totals and exports: `"successes"`, ...
    pub fn plural(self) -> &'static str {
        match self {
            Outcome::Success => "successes",
            Outcome::Failure => "failures",
            Outcome::Timeout => "timeouts",
            Outcome::Panic => "panics",
            Outcome::Ignored => "ignored",
            Outcome::Cancelled => "cancelled",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Timeout => "timeout",
            Outcome::Panic => "panic",
            Outcome::Ignored => "ignored",
            Outcome::Cancelled => "cancelled",
        }
    }
}

impl From<Classification> for Outcome {
    fn from(classification: Classification) -> Self {
        match classification {
            Classification::Success => Outcome::Success,
            Classification::Failure => Outcome::Failure,
            Classification::Ignored => Outcome::Ignored,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One counter per [`Outcome`], indexed by it.
///
/// The same type holds a circuit's totals (`OutcomeCounts<u64>`) and each
/// thread's fast-path slot (`OutcomeCounts<AtomicU64>`).
///
/// ```
/// use vibezen_recovery::outcome::{Outcome, OutcomeCounts};
///
/// let mut counts = OutcomeCounts::default();
/// counts[Outcome::Failure] += 2;
/// counts[Outcome::Timeout] += 1;
/// counts[Outcome::Ignored] += 1;
/// assert_eq!(counts.total(), 4);
/// assert_eq!(counts.failures_of_any_kind(), 3);
/// assert_eq!(counts.judged(), 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutcomeCounts<T = u64>([T; Outcome::COUNT]);

impl<T> OutcomeCounts<T> {
    /// Each outcome with its counter, in [`Outcome::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Outcome, &T)> {
        Outcome::ALL.into_iter().zip(&self.0)
    }

    /// A counter per outcome, each made by `counter(outcome)`.
    pub fn from_fn(mut counter: impl FnMut(Outcome) -> T) -> Self {
        OutcomeCounts(Outcome::ALL.map(&mut counter))
    }

    /// Each counter mapped through `f`.
    pub fn map<U>(&self, mut f: impl FnMut(&T) -> U) -> OutcomeCounts<U> {
        OutcomeCounts::from_fn(|outcome| f(&self[outcome]))
    }
}

impl OutcomeCounts<u64> {
    /// Calls ended, whatever the outcome.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Failures, timeouts and panics.
    pub fn failures_of_any_kind(&self) -> u64 {
        self.sum_where(Outcome::is_failure)
    }

    /// Calls whose outcome enters the failure-rate window.
    pub fn judged(&self) -> u64 {
        self.sum_where(Outcome::is_judged)
    }

    fn sum_where(&self, keep: impl Fn(Outcome) -> bool) -> u64 {
        self.iter()
            .filter(|(outcome, _)| keep(*outcome))
            .map(|(_, count)| count)
            .sum()
    }

    /// Adds every counter of `other` to this one.
    pub fn add(&mut self, other: &OutcomeCounts) {
        for outcome in Outcome::ALL {
            self[outcome] += other[outcome];
        }
    }

    /// What was counted since `before`, counter by counter (counters only
    /// grow; one read a moment before its partner never goes negative).
    pub fn since(&self, before: &OutcomeCounts) -> OutcomeCounts {
        OutcomeCounts::from_fn(|outcome| self[outcome].saturating_sub(before[outcome]))
    }
}

impl<T> Index<Outcome> for OutcomeCounts<T> {
    type Output = T;

    fn index(&self, outcome: Outcome) -> &T {
        &self.0[outcome as usize]
    }
}

impl<T> IndexMut<Outcome> for OutcomeCounts<T> {
    fn index_mut(&mut self, outcome: Outcome) -> &mut T {
        &mut self.0[outcome as usize]
    }
}

/// A map from each outcome's [`plural`](Outcome::plural) to its count.
impl Serialize for OutcomeCounts<u64> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(Outcome::COUNT))?;
        for (outcome, count) in self.iter() {
            map.serialize_entry(outcome.plural(), count)?;
        }
        map.end()
    }
}
