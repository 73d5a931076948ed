//! The rules of one circuit, in plain Rust with the clock passed in.
//!
//! [`StateMachine`] knows nothing of actors, tasks or timers: every method
//! that can change the circuit takes `now`, applies whatever time-driven
//! transition has come due, and queues the [`Transition`]s it made for the
//! owner to publish ([`drain_transitions`](StateMachine::drain_transitions)).
//! [`next_deadline`](StateMachine::next_deadline) tells the owner when to
//! call [`poll`](StateMachine::poll) again. The circuit actor is a thin shell
//! around it; tests drive it with a virtual clock.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use vibezen_recovery::state_machine::StateMachine;
//! use vibezen_recovery::{CircuitBreakerConfig, CircuitState, Outcome};
//!
//! let config = CircuitBreakerConfig { failure_threshold: 2, ..Default::default() };
//! let t0 = Instant::now();
//! let mut machine = StateMachine::new(config, t0)?;
//! for _ in 0..2 {
//!     let ticket = machine.try_acquire(t0).expect("closed circuits admit");
//!     machine.record(ticket, Outcome::Failure, t0);
//! }
//! assert_eq!(machine.state(), CircuitState::Open);
//! assert!(machine.try_acquire(t0).is_err());
//!
//! // After `timeout` (60 s by default) the circuit probes again.
//! machine.poll(t0 + Duration::from_secs(60));
//! assert_eq!(machine.state(), CircuitState::HalfOpen);
//! assert_eq!(machine.drain_transitions().count(), 2);
//! # Ok::<(), vibezen_recovery::ConfigError>(())
//! ```

use std::fmt;
use std::time::Instant;

use serde::Serialize;

use crate::ConfigError;
use crate::config::CircuitBreakerConfig;
use crate::outcome::Outcome;
use crate::state::CircuitState;
use crate::window::SlidingWindow;

/// Why a circuit changed state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
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
    /// HALF_OPEN -> OPEN: a trial call held its slot past its deadline and
    /// the slot was reclaimed; its late outcome is ignored.
    TrialSlotReclaimed,
    /// HALF_OPEN -> CLOSED: no call was admitted for `reset_timeout`.
    Inactivity,
    /// Any state -> CLOSED: someone asked for a reset.
    ManualReset,
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

/// Proof that a call was admitted; hand it back to
/// [`StateMachine::record`] with the call's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    id: u64,
    generation: u64,
    trial: bool,
    admitted_at: Instant,
    deadline: Option<Instant>,
}

impl Ticket {
    /// The generation the call was admitted in.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether it is a HALF_OPEN trial call (it holds one of the trial slots).
    pub fn is_trial(&self) -> bool {
        self.trial
    }

    /// When the call was admitted.
    pub fn admitted_at(&self) -> Instant {
        self.admitted_at
    }

    /// When the call must be finished: `call_timeout` after admission, and
    /// for a trial call `timeout` when no call timeout is set. A call still
    /// running then counts as a timeout.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

/// Why a call was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    /// The state that refused it: OPEN, or HALF_OPEN with every trial slot taken.
    pub state: CircuitState,
    /// When a call may be admitted again, if the machine knows (the end of
    /// the OPEN timeout).
    pub retry_at: Option<Instant>,
}

/// Running totals since the circuit was created; never reset.
///
/// Every admitted call ends up in exactly one of the outcome counters, so
/// `calls == successes + failures + timeouts + panics + ignored + cancelled + in_flight()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct CallTotals {
    /// Calls admitted.
    pub calls: u64,
    /// Calls that succeeded.
    pub successes: u64,
    /// Calls that failed (not counting timeouts and panics).
    pub failures: u64,
    /// Calls cut off at their deadline, or trial calls whose slot was reclaimed.
    pub timeouts: u64,
    /// Calls that panicked.
    pub panics: u64,
    /// Calls whose outcome the classifier said to ignore.
    pub ignored: u64,
    /// Calls given up without an outcome (a permit dropped unused).
    pub cancelled: u64,
    /// Calls refused without running.
    pub rejections: u64,
}

impl CallTotals {
    /// Admitted calls whose outcome is not in yet.
    pub fn in_flight(&self) -> u64 {
        self.calls
            - (self.successes
                + self.failures
                + self.timeouts
                + self.panics
                + self.ignored
                + self.cancelled)
    }

    fn count(&mut self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Success => &mut self.successes,
            Outcome::Failure => &mut self.failures,
            Outcome::Timeout => &mut self.timeouts,
            Outcome::Panic => &mut self.panics,
            Outcome::Ignored => &mut self.ignored,
            Outcome::Cancelled => &mut self.cancelled,
        };
        *counter += 1;
    }
}

/// A trial call that holds a HALF_OPEN slot until it reports or its
/// deadline passes. Leases outlive the generation they were taken in, so a
/// trial that hangs across a transition still holds its slot and is still
/// counted exactly once.
#[derive(Debug, Clone, Copy)]
struct Lease {
    id: u64,
    generation: u64,
    deadline: Instant,
}

/// The state machine of one circuit. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct StateMachine {
    config: CircuitBreakerConfig,
    state: CircuitState,
    generation: u64,
    entered_at: Instant,
    /// In OPEN: when the timeout ends.
    open_until: Option<Instant>,
    consecutive_failures: u32,
    trial_successes: u32,
    window: SlidingWindow,
    leases: Vec<Lease>,
    last_admission: Option<Instant>,
    last_failure: Option<Instant>,
    next_call_id: u64,
    totals: CallTotals,
    transitions: Vec<Transition>,
}

impl StateMachine {
    /// A CLOSED circuit in generation 0, as of `now`.
    pub fn new(config: CircuitBreakerConfig, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(StateMachine {
            window: SlidingWindow::new(&config.window),
            config,
            state: CircuitState::Closed,
            generation: 0,
            entered_at: now,
            open_until: None,
            consecutive_failures: 0,
            trial_successes: 0,
            leases: Vec::new(),
            last_admission: None,
            last_failure: None,
            next_call_id: 0,
            totals: CallTotals::default(),
            transitions: Vec::new(),
        })
    }

    /// Asks to run one call. CLOSED admits; OPEN rejects; HALF_OPEN admits
    /// while a trial slot is free.
    pub fn try_acquire(&mut self, now: Instant) -> Result<Ticket, Rejection> {
        self.poll(now);
        let trial = match self.state {
            CircuitState::Closed => false,
            CircuitState::HalfOpen
                if self.leases.len() < self.config.max_trial_calls() as usize =>
            {
                true
            }
            state => {
                self.totals.rejections += 1;
                return Err(Rejection {
                    state,
                    retry_at: self.open_until,
                });
            }
        };
        let deadline = match (self.config.call_timeout, trial) {
            (Some(call_timeout), _) => Some(now + call_timeout),
            (None, true) => Some(now + self.config.timeout),
            (None, false) => None,
        };
        let ticket = Ticket {
            id: self.next_call_id,
            generation: self.generation,
            trial,
            admitted_at: now,
            deadline,
        };
        self.next_call_id += 1;
        self.totals.calls += 1;
        self.last_admission = Some(now);
        if let (true, Some(deadline)) = (trial, deadline) {
            self.leases.push(Lease {
                id: ticket.id,
                generation: ticket.generation,
                deadline,
            });
        }
        Ok(ticket)
    }

    /// Records the outcome of an admitted call.
    ///
    /// It is counted in the totals once; it drives the state only if the call
    /// was admitted in the current generation. The outcome of a trial call
    /// whose slot was already reclaimed is ignored entirely: it was counted
    /// as a timeout then.
    pub fn record(&mut self, ticket: Ticket, outcome: Outcome, now: Instant) {
        self.poll(now);
        if ticket.trial {
            match self.leases.iter().position(|lease| lease.id == ticket.id) {
                Some(index) => {
                    self.leases.swap_remove(index);
                }
                None => return,
            }
        }
        self.count(outcome, now);
        if ticket.generation != self.generation {
            return;
        }
        match (self.state, outcome) {
            (_, Outcome::Ignored | Outcome::Cancelled) | (CircuitState::Open, _) => {}
            (CircuitState::Closed, Outcome::Success) => {
                self.consecutive_failures = 0;
                self.window.record(false, now);
                self.check_failure_rate(now);
            }
            (CircuitState::Closed, _) => {
                self.consecutive_failures += 1;
                self.window.record(true, now);
                if self.consecutive_failures >= self.config.failure_threshold {
                    let count = self.consecutive_failures;
                    self.enter(
                        CircuitState::Open,
                        TransitionReason::ConsecutiveFailures { count },
                        now,
                    );
                } else {
                    self.check_failure_rate(now);
                }
            }
            (CircuitState::HalfOpen, Outcome::Success) => {
                self.trial_successes += 1;
                if self.trial_successes >= self.config.success_threshold {
                    let successes = self.trial_successes;
                    self.enter(
                        CircuitState::Closed,
                        TransitionReason::TrialsSucceeded { successes },
                        now,
                    );
                }
            }
            (CircuitState::HalfOpen, outcome) => {
                self.enter(
                    CircuitState::Open,
                    TransitionReason::TrialFailed { outcome },
                    now,
                );
            }
        }
    }

    /// Back to CLOSED with an empty window and counters, in a new generation,
    /// whatever the state was. Calls still in flight are counted when they
    /// end but no longer drive the state.
    pub fn reset(&mut self, now: Instant) {
        self.poll(now);
        self.enter(CircuitState::Closed, TransitionReason::ManualReset, now);
    }

    /// Applies every time-driven change that is due by `now`: a trial slot
    /// reclaimed, OPEN -> HALF_OPEN after `timeout`, the full reset after
    /// `reset_timeout` of inactivity.
    pub fn poll(&mut self, now: Instant) {
        loop {
            if let Some(index) = self.leases.iter().position(|lease| lease.deadline <= now) {
                let lease = self.leases.swap_remove(index);
                self.count(Outcome::Timeout, lease.deadline);
                if lease.generation == self.generation && self.state == CircuitState::HalfOpen {
                    self.enter(
                        CircuitState::Open,
                        TransitionReason::TrialSlotReclaimed,
                        now,
                    );
                }
            } else if self.open_until.is_some_and(|until| until <= now) {
                self.enter(
                    CircuitState::HalfOpen,
                    TransitionReason::OpenTimeoutElapsed,
                    now,
                );
            } else if self.inactivity_deadline(now).is_some_and(|due| due <= now) {
                self.enter(CircuitState::Closed, TransitionReason::Inactivity, now);
            } else {
                return;
            }
        }
    }

    /// The earliest instant at which [`poll`](Self::poll) has something to do.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let lease = self.leases.iter().map(|lease| lease.deadline).min();
        [lease, self.open_until, self.inactivity_deadline(now)]
            .into_iter()
            .flatten()
            .min()
    }

    /// The transitions made since the last drain, oldest first.
    pub fn drain_transitions(&mut self) -> std::vec::Drain<'_, Transition> {
        self.transitions.drain(..)
    }

    /// When a full reset for inactivity is due, if there is anything to reset.
    ///
    /// Inactivity counts from the later of the last admitted call and the
    /// entry into the current state, so a circuit that has just turned
    /// HALF_OPEN waits a whole `reset_timeout` for a trial call. A HALF_OPEN
    /// circuit with a trial in flight is not inactive.
    fn inactivity_deadline(&self, now: Instant) -> Option<Instant> {
        let has_something_to_reset = match self.state {
            CircuitState::Open => false,
            CircuitState::HalfOpen => !self
                .leases
                .iter()
                .any(|lease| lease.generation == self.generation),
            CircuitState::Closed => self.consecutive_failures > 0 || !self.window.is_empty(now),
        };
        if !has_something_to_reset {
            return None;
        }
        let since = self
            .last_admission
            .map_or(self.entered_at, |at| at.max(self.entered_at));
        Some(since + self.config.reset_timeout)
    }

    fn check_failure_rate(&mut self, now: Instant) {
        let counts = self.window.counts(now);
        if counts.calls < u64::from(self.config.min_calls) {
            return;
        }
        let rate = counts.failures as f64 / counts.calls as f64;
        if rate >= self.config.failure_rate_threshold {
            let reason = TransitionReason::FailureRate {
                rate,
                calls: counts.calls,
            };
            self.enter(CircuitState::Open, reason, now);
        }
    }

    fn count(&mut self, outcome: Outcome, at: Instant) {
        self.totals.count(outcome);
        if outcome.is_failure() {
            self.last_failure = Some(self.last_failure.map_or(at, |last| last.max(at)));
        }
    }

    /// Starts a new generation in `to`, with every decision counter empty.
    /// A CLOSED -> CLOSED reset starts a generation but is no transition.
    fn enter(&mut self, to: CircuitState, reason: TransitionReason, now: Instant) {
        let from = self.state;
        self.generation += 1;
        self.state = to;
        self.consecutive_failures = 0;
        self.trial_successes = 0;
        self.window.clear();
        self.open_until = (to == CircuitState::Open).then(|| now + self.config.timeout);
        if from != to {
            self.entered_at = now;
            self.transitions.push(Transition {
                from,
                to,
                reason,
                generation: self.generation,
                at: now,
            });
        }
    }

    /// The current state. Call [`poll`](Self::poll) first for it to reflect
    /// every timer due by now.
    pub fn state(&self) -> CircuitState {
        self.state
    }

    /// The current generation; it grows with every transition and reset.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The config the machine runs with.
    pub fn config(&self) -> &CircuitBreakerConfig {
        &self.config
    }

    /// Failures in a row in CLOSED.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Successful trial calls so far in HALF_OPEN.
    pub fn trial_successes(&self) -> u32 {
        self.trial_successes
    }

    /// Trial calls holding a HALF_OPEN slot.
    pub fn trials_in_flight(&self) -> usize {
        self.leases.len()
    }

    /// Calls and failures in the window as of `now`.
    pub fn window_counts(&self, now: Instant) -> (u64, u64) {
        let counts = self.window.counts(now);
        (counts.calls, counts.failures)
    }

    /// The window's failure rate, or `None` while it holds fewer than
    /// `min_calls` calls.
    pub fn failure_rate(&self, now: Instant) -> Option<f64> {
        let counts = self.window.counts(now);
        (counts.calls >= u64::from(self.config.min_calls) && counts.calls > 0)
            .then(|| counts.failures as f64 / counts.calls as f64)
    }

    /// Totals since creation.
    pub fn totals(&self) -> CallTotals {
        self.totals
    }

    /// When the current state was entered (creation, for a circuit that
    /// never changed state).
    pub fn entered_at(&self) -> Instant {
        self.entered_at
    }

    /// When the last failure, timeout or panic was counted.
    pub fn last_failure(&self) -> Option<Instant> {
        self.last_failure
    }

    /// In OPEN, when the timeout ends.
    pub fn open_until(&self) -> Option<Instant> {
        self.open_until
    }
}

#[cfg(test)]
mod tests;
