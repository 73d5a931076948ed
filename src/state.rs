//! The three states of a circuit.

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CircuitState {
    /// Normal operation: every call goes through and its outcome is counted.
    Closed,
    /// The service is failing: every call is rejected at once.
    Open,
    /// Probing: a few trial calls go through to see if the service recovered.
    HalfOpen,
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CircuitState::Closed => "CLOSED",
            CircuitState::Open => "OPEN",
            CircuitState::HalfOpen => "HALF_OPEN",
        })
    }
}
