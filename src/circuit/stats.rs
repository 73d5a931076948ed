//! A circuit's statistics, for review, tuning and export.

use actix::{Context, Handler, Message, MessageResult};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{CircuitBreaker, StateChanged};
use crate::config::CircuitBreakerConfig;
use crate::state::CircuitState;
use crate::totals::CallTotals;

/// Asks a circuit for its [`CircuitStats`].
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::prelude::*;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let breaker = CircuitBreaker::new("cache", CircuitBreakerConfig::default())?.start();
/// let stats = breaker.send(Stats).await?;
/// assert_eq!(stats.state, CircuitState::Closed);
/// assert_eq!(stats.totals.calls, 0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "CircuitStats")]
pub struct Stats;

/// A snapshot of one circuit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CircuitStats {
    /// The circuit's name.
    pub name: String,
    /// Its state now.
    pub state: CircuitState,
    /// Its generation: grows with every transition and reset.
    pub generation: u64,
    /// Totals since creation.
    pub totals: CallTotals,
    /// Admitted calls whose outcome is not in yet.
    pub in_flight: u64,
    /// Failures in a row (CLOSED only).
    pub consecutive_failures: u32,
    /// Calls in the sliding window now.
    pub window_calls: u64,
    /// Failures in the sliding window now.
    pub window_failures: u64,
    /// The window's failure rate, or `None` below `min_calls` calls.
    pub failure_rate: Option<f64>,
    /// When the last failure, timeout or panic was counted.
    pub last_failure_at: Option<DateTime<Utc>>,
    /// When the circuit entered its current state (its creation if it
    /// never changed state).
    pub last_state_change_at: DateTime<Utc>,
    /// The last state changes, oldest first (at most
    /// [`HISTORY_LIMIT`](super::HISTORY_LIMIT)).
    pub state_changes: Vec<StateChanged>,
    /// Live subscribers to its state changes.
    pub subscribers: usize,
    /// The config the circuit runs with.
    pub config: CircuitBreakerConfig,
}

impl Handler<Stats> for CircuitBreaker {
    type Result = MessageResult<Stats>;

    fn handle(&mut self, _: Stats, ctx: &mut Context<Self>) -> Self::Result {
        let now = self.step(ctx, |_, _, now| now);
        let machine = &self.machine;
        let (window_calls, window_failures) = machine.window_counts(now);
        let totals = machine.totals();
        MessageResult(CircuitStats {
            name: self.name.to_string(),
            state: machine.state(),
            generation: machine.generation(),
            totals,
            in_flight: totals.in_flight(),
            consecutive_failures: machine.consecutive_failures(),
            window_calls,
            window_failures,
            failure_rate: machine.failure_rate(now),
            last_failure_at: machine.last_failure().map(|at| self.clock.wall(at)),
            last_state_change_at: self.clock.wall(machine.entered_at()),
            state_changes: self.history.iter().cloned().collect(),
            subscribers: self.subscribers.len(),
            config: machine.config().clone(),
        })
    }
}
