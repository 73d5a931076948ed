//! The health of a set of circuits as one number, and the picture behind it.

use serde::Serialize;

use crate::circuit::CircuitStats;
use crate::state::CircuitState;

/// How much a critical circuit weighs in the system score, against 1 for
/// any other.
pub const CRITICAL_WEIGHT: f64 = 3.0;

/// The health of every circuit a manager owns, at one moment.
///
/// # The score
///
/// A circuit's own score ([`circuit_score`]) says how much of its service
/// the workflow can count on now, and the system score is the weighted mean
/// of the own scores of the circuits that have been called:
///
/// | circuit | own score | in the system score |
/// |---|---|---|
/// | CLOSED | `1 - failure_rate` (a rate below `min_calls` calls counts as 0) | weighs 1, or [`CRITICAL_WEIGHT`] if critical |
/// | HALF_OPEN | half of that: only trial calls get through | likewise |
/// | OPEN | 0 | likewise |
/// | FORCED_OPEN (by an operator) | 0: no call gets through | likewise |
/// | DISABLED (by an operator) | 1: every call gets through, and it keeps no window to say otherwise | likewise |
/// | never called (`calls` = 0) | 1 (it is CLOSED) | left out |
///
/// A circuit no call has reached since it was created (or recreated by its
/// manager) is left out of the mean: it says nothing about its service, and
/// a preset circuit the service never uses must not pad the score. With no
/// called circuits the score is 1. So the score is 1 when every called
/// circuit is closed and healthy, 0 when every called circuit is open, and
/// in between otherwise; one critical circuit down costs three times what an
/// optional one does.
///
/// # Readiness
///
/// [`should_continue`](Self::should_continue) is the rule behind
/// `should_continue_workflow` and `HealthReport::should_continue`: false while
/// any critical circuit is down, from the moment it opens until it closes
/// again (OPEN or HALF_OPEN: a probe is not a recovery) or while an
/// operator holds it FORCED_OPEN, or while the score is below the floor. A
/// DISABLED critical circuit is not down: its calls all go through,
/// unprotected.
///
/// ```
/// use vibezen_recovery::health::HealthSnapshot;
///
/// let empty = HealthSnapshot::from_stats(&[]);
/// assert_eq!(empty.health_score, 1.0);
/// assert!(empty.open.is_empty());
/// assert!(empty.should_continue(0.5));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthSnapshot {
    /// The system score in [0, 1] (see [the score](Self#the-score)).
    pub health_score: f64,
    /// Each circuit's health, sorted by name.
    pub circuits: Vec<CircuitHealth>,
    /// The names of the OPEN circuits, sorted.
    pub open: Vec<String>,
    /// The names of the HALF_OPEN circuits, sorted.
    pub half_open: Vec<String>,
    /// The names of the circuits an operator forced open, sorted.
    pub forced_open: Vec<String>,
    /// The names of the circuits an operator disabled, sorted.
    pub disabled: Vec<String>,
}

/// One circuit's part in a [`HealthSnapshot`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CircuitHealth {
    /// The circuit's name.
    pub name: String,
    /// Its state.
    pub state: CircuitState,
    /// Its own score in [0, 1] (see [`circuit_score`]).
    pub score: f64,
    /// Whether it is critical, and so weighs [`CRITICAL_WEIGHT`].
    pub critical: bool,
    /// Its window's failure rate, or `None` below `min_calls` calls.
    pub failure_rate: Option<f64>,
    /// Calls admitted since it was created (or recreated by its manager).
    /// A circuit with none is left out of the system score.
    pub calls: u64,
}

impl CircuitHealth {
    /// Whether the workflow must not count on it being there: it is
    /// critical and down, from the moment it opens until it closes again,
    /// or forced open by an operator. A DISABLED circuit lets every call
    /// through, so it is not down.
    fn critical_and_down(&self) -> bool {
        self.critical
            && matches!(
                self.state,
                CircuitState::Open | CircuitState::HalfOpen | CircuitState::ForcedOpen
            )
    }
}

/// A circuit's own score: `1 - failure_rate` when CLOSED (a missing rate
/// counts as 0), half of that when HALF_OPEN, 0 when OPEN or FORCED_OPEN;
/// always in [0, 1]. DISABLED scores as CLOSED: every call reaches the
/// service, as in CLOSED, and with no window its rate is missing, so 1.
/// (The operator vouched for the service by disabling its circuit; the
/// report still says it is DISABLED.)
///
/// ```
/// use vibezen_recovery::health::circuit_score;
/// use vibezen_recovery::state::CircuitState;
///
/// assert_eq!(circuit_score(CircuitState::Closed, None), 1.0);
/// assert_eq!(circuit_score(CircuitState::Closed, Some(0.25)), 0.75);
/// assert_eq!(circuit_score(CircuitState::HalfOpen, Some(0.5)), 0.25);
/// assert_eq!(circuit_score(CircuitState::Open, None), 0.0);
/// assert_eq!(circuit_score(CircuitState::ForcedOpen, None), 0.0);
/// assert_eq!(circuit_score(CircuitState::Disabled, None), 1.0);
/// ```
pub fn circuit_score(state: CircuitState, failure_rate: Option<f64>) -> f64 {
    // A NaN rate cannot come from a circuit, but must not poison the mean.
    let rate = failure_rate
        .filter(|rate| rate.is_finite())
        .unwrap_or(0.0)
        .clamp(0.0, 1.0);
    let closed = 1.0 - rate;
    match state {
        CircuitState::Closed | CircuitState::Disabled => closed,
        CircuitState::HalfOpen => 0.5 * closed,
        CircuitState::Open | CircuitState::ForcedOpen => 0.0,
    }
}

impl HealthSnapshot {
    /// The snapshot of the circuits whose statistics these are.
    ///
    /// ```
    /// use actix::Actor;
    /// use vibezen_recovery::health::HealthSnapshot;
    /// use vibezen_recovery::prelude::*;
    ///
    /// # #[actix::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let breaker = CircuitBreaker::new("cache", CircuitBreakerConfig::default())?.start();
    /// let health = HealthSnapshot::from_stats(&[breaker.send(Stats).await?]);
    /// assert_eq!(health.health_score, 1.0);
    /// assert_eq!(health.circuits[0].name, "cache");
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_stats(stats: &[CircuitStats]) -> Self {
        let mut circuits: Vec<CircuitHealth> = stats
            .iter()
            .map(|stats| CircuitHealth {
                name: stats.name.clone(),
                state: stats.state,
                score: circuit_score(stats.state, stats.failure_rate),
                critical: stats.config.critical,
                failure_rate: stats.failure_rate,
                calls: stats.totals.calls,
            })
            .collect();
        circuits.sort_by(|a, b| a.name.cmp(&b.name));
        let named = |state| {
            circuits
                .iter()
                .filter(|circuit| circuit.state == state)
                .map(|circuit| circuit.name.clone())
                .collect::<Vec<_>>()
        };
        let open = named(CircuitState::Open);
        let half_open = named(CircuitState::HalfOpen);
        let forced_open = named(CircuitState::ForcedOpen);
        let disabled = named(CircuitState::Disabled);
        HealthSnapshot {
            health_score: system_score(&circuits),
            circuits,
            open,
            half_open,
            forced_open,
            disabled,
        }
    }

    /// The critical circuits that are down, from the moment they open until
    /// they close again (OPEN or HALF_OPEN), or forced open, sorted.
    ///
    /// ```
    /// use vibezen_recovery::health::HealthSnapshot;
    ///
    /// assert!(HealthSnapshot::from_stats(&[]).critical_down().is_empty());
    /// ```
    pub fn critical_down(&self) -> Vec<String> {
        self.circuits
            .iter()
            .filter(|circuit| circuit.critical_and_down())
            .map(|circuit| circuit.name.clone())
            .collect()
    }

    /// Whether the workflow may go on (see [readiness](Self#readiness)):
    /// no critical circuit is down (OPEN, HALF_OPEN or FORCED_OPEN; a
    /// DISABLED one lets every call through) and the score is at
    /// least `min_health_score`. A critical circuit that is probing its
    /// service counts as down until its trial calls close it, so a readiness
    /// check built on this does not turn ready for every probe of a service
    /// that is still failing.
    ///
    /// ```
    /// use actix::Actor;
    /// use vibezen_recovery::health::HealthSnapshot;
    /// use vibezen_recovery::prelude::*;
    ///
    /// # #[actix::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = CircuitBreakerConfig { failure_threshold: 1, critical: true, ..Default::default() };
    /// let ai = CircuitBreaker::new("ai", config)?.start();
    /// assert!(HealthSnapshot::from_stats(&[ai.send(Stats).await?]).should_continue(0.5));
    ///
    /// let _ = ai.call(async { Err::<(), _>("503") }).await;
    /// let health = HealthSnapshot::from_stats(&[ai.send(Stats).await?]);
    /// assert!(!health.should_continue(0.0), "a critical circuit is down");
    /// # Ok(())
    /// # }
    /// ```
    pub fn should_continue(&self, min_health_score: f64) -> bool {
        !self.circuits.iter().any(CircuitHealth::critical_and_down)
            && self.health_score >= min_health_score
    }

    /// Whether any critical circuit is OPEN or FORCED_OPEN (refusing every
    /// call). A critical circuit probing its service (HALF_OPEN) is not
    /// counted here, though it is still down: decide readiness with
    /// [`should_continue`](Self::should_continue).
    ///
    /// ```
    /// use vibezen_recovery::health::HealthSnapshot;
    ///
    /// assert!(!HealthSnapshot::from_stats(&[]).any_critical_open());
    /// ```
    pub fn any_critical_open(&self) -> bool {
        self.circuits.iter().any(|circuit| {
            circuit.critical
                && matches!(circuit.state, CircuitState::Open | CircuitState::ForcedOpen)
        })
    }
}

fn system_score(circuits: &[CircuitHealth]) -> f64 {
    let weight = |circuit: &CircuitHealth| {
        if circuit.critical {
            CRITICAL_WEIGHT
        } else {
            1.0
        }
    };
    let called = || circuits.iter().filter(|circuit| circuit.calls > 0);
    let total: f64 = called().map(weight).sum();
    if total == 0.0 {
        return 1.0;
    }
    let weighted: f64 = called().map(|c| weight(c) * c.score).sum();
    (weighted / total).clamp(0.0, 1.0)
}
