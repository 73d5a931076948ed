//! Why and how a circuit changed state.

use std::fmt;
use std::time::Instant;

use serde::Serialize;

use crate::outcome::Outcome;
use crate::state::CircuitState;

/// Why a circuit changed state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TransitionReason {
    /// CLOSED -> OPEN: `count` failures in a row reached `failure_threshold`.
    ConsecutiveFailures {
        /// The consecutive failures counted.
        count: u32,
    },
    /// CLOSED -> OPEN: the window's failure rate reached `failure_rate_threshold`.
    FailureRate {
        /// The failure rate, in [0, 1].
        rate: f64,
        /// The calls in the window it was measured over.
        calls: u64,
    },
    /// OPEN -> HALF_OPEN: `timeout` elapsed.
    OpenTimeoutElapsed,
    /// HALF_OPEN -> CLOSED: `successes` trial calls succeeded.
    TrialsSucceeded {
        /// Successful trial calls counted.
        successes: u32,
    },
    /// HALF_OPEN -> OPEN: a trial call failed, timed out or panicked.
    TrialFailed {
        /// What the trial call came to.
        outcome: Outcome,
    },
    /// HALF_OPEN -> OPEN: a permit's trial did not report within
    /// [`RECLAIM_GRACE`](crate::rules::RECLAIM_GRACE) of its deadline and
    /// its slot was reclaimed; its late outcome is ignored.
    TrialSlotReclaimed,
    /// HALF_OPEN -> CLOSED: no call admitted, finishing or in flight for
    /// `reset_timeout`.
    Inactivity,
    /// Any state -> CLOSED: someone asked for a reset.
    ManualReset,
    /// Any state -> FORCED_OPEN: an operator isolated the circuit.
    ForcedOpen,
    /// Any state -> DISABLED: an operator took the circuit out of the way.
    Disabled,
    /// FORCED_OPEN or DISABLED -> CLOSED: an operator released it.
    Released,
}

impl fmt::Display for TransitionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransitionReason::ConsecutiveFailures { count } => {
                write!(f, "{count} consecutive failures")
            }
            TransitionReason::FailureRate { rate, calls } => {
                write!(
                    f,
                    "failure rate {:.1}% over the last {calls} calls",
                    rate * 100.0
                )
            }
            TransitionReason::OpenTimeoutElapsed => f.write_str("open timeout elapsed"),
            TransitionReason::TrialsSucceeded { successes } => {
                write!(f, "{successes} trial calls succeeded")
            }
            TransitionReason::TrialFailed { outcome } => write!(f, "trial call ended in {outcome}"),
            TransitionReason::TrialSlotReclaimed => {
                f.write_str("trial call hung past its deadline; slot reclaimed")
            }
            TransitionReason::Inactivity => f.write_str("full reset after inactivity"),
            TransitionReason::ManualReset => f.write_str("manual reset"),
            TransitionReason::ForcedOpen => f.write_str("forced open by an operator"),
            TransitionReason::Disabled => f.write_str("disabled by an operator"),
            TransitionReason::Released => f.write_str("released by an operator"),
        }
    }
}

/// One change of state, as the machine made it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    /// The state left.
    pub from: CircuitState,
    /// The state entered.
    pub to: CircuitState,
    /// Why.
    pub reason: TransitionReason,
    /// The generation the new state runs in.
    pub generation: u64,
    /// When, on the machine's clock.
    pub at: Instant,
}
