//! The rulebook: every decision a circuit makes, written once.
//!
//! [`Rules`] is built once from a [`CircuitBreakerConfig`] and answers the
//! questions every call path asks: may this call go ahead, and as what
//! ([`Rules::admission`]); by when must it end ([`Rules::deadline`]); does
//! this outcome change the state, and why ([`Rules::after_failure`],
//! [`Rules::rate_trips`], [`Rules::after_trial`]). The state machine asks
//! them with what it holds; the fast-path handle asks the same functions
//! with what the circuit publishes. A new rule goes here, and every path
//! obeys it.
//!
//! ```
//! use vibezen_recovery::prelude::*;
//! use vibezen_recovery::rules::{Admission, Refusal, Rules, Status, WindowCounts};
//! use vibezen_recovery::transition::TransitionReason;
//!
//!
//! let rules = Rules::new(&CircuitBreakerConfig { failure_threshold: 3, ..Default::default() });
//! let open = Status { state: CircuitState::Open, trip_pending: false, trial_slot_free: true };
//! assert_eq!(rules.admission(open), Admission::Refuse(Refusal::Open));
//!
//! let no_rate = || WindowCounts { calls: 3, failures: 3 }; // below min_calls (10)
//! assert_eq!(rules.after_failure(CircuitState::Closed, 2, no_rate), None);
//! assert_eq!(
//!     rules.after_failure(CircuitState::Closed, 3, no_rate),
//!     Some(TransitionReason::ConsecutiveFailures { count: 3 })
//! );
//! // A DISABLED circuit admits everything and nothing trips it.
//! let disabled = Status { state: CircuitState::Disabled, ..open };
//! assert_eq!(rules.admission(disabled), Admission::Admit);
//! assert_eq!(rules.after_failure(CircuitState::Disabled, 3, no_rate), None);
//! ```

use std::time::{Duration, Instant};

use crate::config::CircuitBreakerConfig;
use crate::outcome::Outcome;
use crate::state::CircuitState;
use crate::transition::TransitionReason;
pub use crate::window::WindowCounts;

/// How long after its deadline a circuit reclaims the slot of a permit's
/// trial that has not reported. A report made in time counts as what it
/// was however late the circuit reads it; the grace keeps the circuit's own
/// timer from reclaiming the slot while such a report is still on its way.
pub const RECLAIM_GRACE: Duration = Duration::from_millis(100);

/// The decisions of one circuit, built once from its config.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    failure_threshold: u32,
    failure_rate_threshold: f64,
    min_calls: u64,
    success_threshold: u32,
    max_trials: usize,
    timeout: Duration,
    call_timeout: Option<Duration>,
    reset_timeout: Duration,
}

/// What admission looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The circuit's state.
    pub state: CircuitState,
    /// A caller saw a threshold crossed; the transition to OPEN is on its way.
    pub trip_pending: bool,
    /// In HALF_OPEN: fewer than `half_open_max_calls` trials hold a slot.
    pub trial_slot_free: bool,
}

/// Whether a call may go ahead, and as what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// An ordinary call, in CLOSED or DISABLED.
    Admit,
    /// A HALF_OPEN trial: it takes one of the trial slots.
    Trial,
    /// Refused without running.
    Refuse(Refusal),
}

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// The circuit is OPEN; a trial goes through when its timeout ends.
    Open,
    /// A threshold was just crossed; the circuit is opening.
    TripPending,
    /// HALF_OPEN with every trial slot taken; one may free up at any moment.
    TrialsTaken,
    /// An operator forced the circuit open; only an operator's release (or
    /// a reset) lets calls through again.
    ForcedOpen,
}

impl Refusal {
    /// The state the refusal is reported in.
    pub fn state(self) -> CircuitState {
        match self {
            Refusal::Open | Refusal::TripPending => CircuitState::Open,
            Refusal::TrialsTaken => CircuitState::HalfOpen,
            Refusal::ForcedOpen => CircuitState::ForcedOpen,
        }
    }

    /// Whether a retry should wait for the end of the OPEN timeout (and
    /// the refusal can say when that is).
    pub fn waits_for_open_timeout(self) -> bool {
        self == Refusal::Open
    }
}

impl Rules {
    /// The rules of a circuit with `config` (which the caller has validated).
    pub fn new(config: &CircuitBreakerConfig) -> Self {
        Rules {
            failure_threshold: config.failure_threshold,
            failure_rate_threshold: config.failure_rate_threshold,
            min_calls: u64::from(config.min_calls),
            success_threshold: config.success_threshold,
            max_trials: config.max_trial_calls() as usize,
            timeout: config.timeout,
            call_timeout: config.call_timeout,
            reset_timeout: config.reset_timeout,
        }
    }

    /// May a call go ahead? CLOSED admits unless a trip is pending; OPEN
    /// refuses; HALF_OPEN admits a trial while a slot is free. The
    /// operator's states: FORCED_OPEN refuses everything, DISABLED admits
    /// everything. No trip is ever pending in DISABLED (nothing trips it);
    /// the pending test comes first all the same, so that one mask on the
    /// published word decides admission for CLOSED and DISABLED alike.
    #[inline]
    pub fn admission(&self, status: Status) -> Admission {
        match status.state {
            CircuitState::ForcedOpen => Admission::Refuse(Refusal::ForcedOpen),
            _ if status.trip_pending => Admission::Refuse(Refusal::TripPending),
            CircuitState::Disabled => Admission::Admit,
            CircuitState::Closed => Admission::Admit,
            CircuitState::HalfOpen if status.trial_slot_free => Admission::Trial,
            CircuitState::HalfOpen => Admission::Refuse(Refusal::TrialsTaken),
            CircuitState::Open => Admission::Refuse(Refusal::Open),
        }
    }

    /// Whether `trials` slots in flight leave one free.
    pub fn trial_slot_free(&self, trials: usize) -> bool {
        trials < self.max_trials
    }

    /// When a call admitted at `admitted_at` must be done: `call_timeout`
    /// after admission, and for a trial `timeout` when no call timeout is
    /// set (so that a trial never holds its slot forever).
    pub fn deadline(&self, admitted_at: Instant, trial: bool) -> Option<Instant> {
        match (self.call_timeout, trial) {
            (Some(call_timeout), _) => Some(admitted_at + call_timeout),
            (None, true) => Some(admitted_at + self.timeout),
            (None, false) => None,
        }
    }

    /// How long a call may run, where only a length is needed (a call
    /// timed on the caller's side).
    pub fn call_timeout(&self) -> Option<Duration> {
        self.call_timeout
    }

    /// Whether a call that ended at `ended_at` ran past its deadline. One
    /// that ends at the deadline itself is in time; one that ends after it
    /// is late even if it ended in the poll where its timer fired (tokio's
    /// timers fire on the first millisecond tick at or after their
    /// instant), so that a permit holder who cuts its work off at the
    /// deadline and reports a failure counts a timeout, as the circuit's
    /// own guard does.
    #[inline]
    pub fn is_late(deadline: Instant, ended_at: Instant) -> bool {
        ended_at > deadline
    }

    /// What an outcome reported by the caller counts as: whatever the call
    /// came to, if it ended past its deadline ([`is_late`](Self::is_late))
    /// it is a timeout, as a call the circuit cuts off is. Only a call given
    /// up unreported stays cancelled.
    pub fn judge_report(outcome: Outcome, deadline: Option<Instant>, now: Instant) -> Outcome {
        match outcome {
            Outcome::Success | Outcome::Failure | Outcome::Ignored
                if deadline.is_some_and(|at| Rules::is_late(at, now)) =>
            {
                Outcome::Timeout
            }
            outcome => outcome,
        }
    }

    /// After a failure in `state` that made the run `consecutive` long:
    /// does the circuit open? Only a CLOSED circuit can: a DISABLED one
    /// counts its failures but never trips (that is what disabling means),
    /// and no other state has a run. The consecutive rule first; the
    /// window (read only if needed, as it is dear on the fast path) for the
    /// rate rule.
    #[inline]
    pub fn after_failure(
        &self,
        state: CircuitState,
        consecutive: u32,
        window: impl FnOnce() -> WindowCounts,
    ) -> Option<TransitionReason> {
        if state != CircuitState::Closed {
            return None;
        }
        if consecutive >= self.failure_threshold {
            return Some(TransitionReason::ConsecutiveFailures { count: consecutive });
        }
        self.rate_trips(window())
    }

    /// CLOSED, after outcomes that left `window` as it is: does the failure
    /// rate open the circuit? (A success can bring the window to `min_calls`.)
    pub fn rate_trips(&self, window: WindowCounts) -> Option<TransitionReason> {
        let rate = self.failure_rate(window)?;
        (rate >= self.failure_rate_threshold).then_some(TransitionReason::FailureRate {
            rate,
            calls: window.calls,
        })
    }

    /// The window's failure rate, or `None` while it holds fewer than
    /// `min_calls` calls.
    pub fn failure_rate(&self, window: WindowCounts) -> Option<f64> {
        (window.calls >= self.min_calls && window.calls > 0)
            .then(|| window.failures as f64 / window.calls as f64)
    }

    /// HALF_OPEN, after a trial ended in `outcome`, with `successes` trial
    /// successes counted so far (this one included): where to go, if anywhere.
    pub fn after_trial(
        &self,
        outcome: Outcome,
        successes: u32,
    ) -> Option<(CircuitState, TransitionReason)> {
        match outcome {
            Outcome::Ignored | Outcome::Cancelled => None,
            Outcome::Success if successes >= self.success_threshold => Some((
                CircuitState::Closed,
                TransitionReason::TrialsSucceeded { successes },
            )),
            Outcome::Success => None,
            outcome => Some((
                CircuitState::Open,
                TransitionReason::TrialFailed { outcome },
            )),
        }
    }

    /// When an OPEN circuit entered at `opened_at` turns HALF_OPEN.
    pub fn open_until(&self, opened_at: Instant) -> Instant {
        opened_at + self.timeout
    }

    /// How long without activity before a circuit forgets its counters.
    pub fn reset_timeout(&self) -> Duration {
        self.reset_timeout
    }
}
