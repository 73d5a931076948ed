//! The states of a circuit: three it moves between by itself, and two an
//! operator puts it in.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a circuit stands.
///
/// ```text
///            failures reach a threshold
///   CLOSED ─────────────────────────────▶ OPEN
///     ▲                                   │  ▲
///     │ success_threshold                 │  │ a trial fails
///     │ trial successes     timeout       ▼  │ or hangs
///     └───────────────────────────────── HALF_OPEN
/// ```
///
/// An operator may take any circuit out of that cycle: FORCED_OPEN (every
/// call rejected) or DISABLED (every call admitted, nothing trips), until
/// it is released back to CLOSED. A reset also ends either.
///
/// ```
/// use vibezen_recovery::prelude::*;
///
/// assert_eq!(CircuitState::ForcedOpen.to_string(), "FORCED_OPEN");
/// assert_eq!(serde_json::to_string(&CircuitState::Disabled)?, r#""DISABLED""#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CircuitState {
    /// Normal operation: every call goes through and its outcome is counted.
    Closed,
    /// The service is failing: every call is rejected at once.
    Open,
    /// Probing: a few trial calls go through to see if the service recovered.
    HalfOpen,
    /// Forced open by an operator: every call is rejected until it is
    /// released; no timer and no outcome moves it.
    ForcedOpen,
    /// Disabled by an operator: every call is admitted and counted in the
    /// totals, nothing trips and no timer runs, until it is released.
    Disabled,
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CircuitState::Closed => "CLOSED",
            CircuitState::Open => "OPEN",
            CircuitState::HalfOpen => "HALF_OPEN",
            CircuitState::ForcedOpen => "FORCED_OPEN",
            CircuitState::Disabled => "DISABLED",
        })
    }
}
