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
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::ConfigError;
use crate::config::{CircuitBreakerConfig, WindowConfig};
use crate::outcome::Outcome;
use crate::published::{Published, RateBase, SlotTotals, Slots};
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
    /// HALF_OPEN -> OPEN: a permit's trial did not report within
    /// `RECLAIM_GRACE` of its deadline and its slot was reclaimed; its late
    /// outcome is ignored.
    TrialSlotReclaimed,
    /// HALF_OPEN -> CLOSED: no call admitted, finishing or in flight for
    /// `reset_timeout`.
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
/// [`StateMachine::record`] with the call's outcome. It is not `Clone`, so
/// an outcome cannot be recorded twice:
///
/// ```compile_fail
/// # use std::time::Instant;
/// # use vibezen_recovery::{state_machine::StateMachine, CircuitBreakerConfig, Outcome};
/// # let now = Instant::now();
/// # let mut machine = StateMachine::new(CircuitBreakerConfig::default(), now).unwrap();
/// let ticket = machine.try_acquire(now).unwrap();
/// machine.record(ticket, Outcome::Success, now);
/// machine.record(ticket, Outcome::Success, now); // moved already
/// ```
#[derive(Debug, PartialEq, Eq)]
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
        self.calls.saturating_sub(
            self.successes
                + self.failures
                + self.timeouts
                + self.panics
                + self.ignored
                + self.cancelled,
        )
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

/// How long after its deadline the machine reclaims the slot of a permit's
/// trial that has not reported: time for a report that was already on its
/// way (a busy circuit may read it late) to count as what it was.
pub const RECLAIM_GRACE: Duration = Duration::from_millis(100);

/// A trial call that holds a HALF_OPEN slot until it reports, or until the
/// machine reclaims it. Leases outlive the generation they were taken in,
/// so a trial that hangs across a transition still holds its slot and is
/// still counted exactly once.
#[derive(Debug, Clone, Copy)]
struct Lease {
    id: u64,
    generation: u64,
    /// When the machine takes the slot back: `RECLAIM_GRACE` after the
    /// deadline for a permit, never for a guarded call, whose guard cuts it
    /// off at its deadline and reports the timeout itself (so the slot is
    /// free only once the call is really gone).
    reclaim_at: Option<Instant>,
}

/// The state machine of one circuit. See the [module docs](self).
#[derive(Debug)]
pub struct StateMachine {
    config: CircuitBreakerConfig,
    state: CircuitState,
    generation: u64,
    entered_at: Instant,
    /// In OPEN: when the timeout ends.
    open_until: Option<Instant>,
    trial_successes: u32,
    window: SlidingWindow,
    leases: Vec<Lease>,
    last_activity: Option<Instant>,
    last_failure: Option<Instant>,
    next_call_id: u64,
    totals: CallTotals,
    transitions: Vec<Transition>,
    /// State word and consecutive-failure run, readable without a message.
    published: Arc<Published>,
    /// The fast path's per-thread counters, once a handle asked for them.
    fast_path: Option<FastPath>,
}

/// What the machine keeps of the fast path's counters.
#[derive(Debug)]
struct FastPath {
    slots: Arc<Slots>,
    /// The slot totals as of the last fold.
    folded: SlotTotals,
    last_fold: Instant,
}

/// A detached copy, for simulation and "what if" checks: it shares nothing
/// with the original, so calls made through the original's handles after
/// the copy are not seen by it.
impl Clone for StateMachine {
    fn clone(&self) -> Self {
        StateMachine {
            config: self.config.clone(),
            state: self.state,
            generation: self.generation,
            entered_at: self.entered_at,
            open_until: self.open_until,
            trial_successes: self.trial_successes,
            window: self.window.clone(),
            leases: self.leases.clone(),
            last_activity: self.last_activity,
            last_failure: self.last_failure,
            next_call_id: self.next_call_id,
            totals: self.totals,
            transitions: self.transitions.clone(),
            published: Arc::new(self.published.snapshot()),
            fast_path: None,
        }
    }
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
            trial_successes: 0,
            leases: Vec::new(),
            last_activity: None,
            last_failure: None,
            next_call_id: 0,
            totals: CallTotals::default(),
            transitions: Vec::new(),
            published: Arc::new(Published::new(now)),
            fast_path: None,
        })
    }

    /// Asks to run one call whose holder reports its outcome (a permit).
    /// CLOSED admits; OPEN rejects; HALF_OPEN admits while a trial slot is
    /// free. A trial that has not reported `RECLAIM_GRACE` after its
    /// deadline loses its slot and counts as a timeout.
    pub fn try_acquire(&mut self, now: Instant) -> Result<Ticket, Rejection> {
        self.admit(now, false)
    }

    /// Like [`try_acquire`](Self::try_acquire), for a call whose guard cuts
    /// it off at its deadline and then reports a timeout (a protected call
    /// run by the circuit): the machine never reclaims its slot, so a new
    /// trial never starts while it still runs.
    pub fn try_acquire_guarded(&mut self, now: Instant) -> Result<Ticket, Rejection> {
        self.admit(now, true)
    }

    fn admit(&mut self, now: Instant, guarded: bool) -> Result<Ticket, Rejection> {
        self.poll(now);
        let trial = match self.state {
            // A fast-path caller crossed a threshold; its trip is on the way.
            CircuitState::Closed if self.published.word().is_pending() => {
                self.totals.rejections += 1;
                return Err(Rejection {
                    state: CircuitState::Open,
                    retry_at: None,
                });
            }
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
        self.last_activity = Some(now);
        if trial {
            self.leases.push(Lease {
                id: ticket.id,
                generation: ticket.generation,
                reclaim_at: deadline.filter(|_| !guarded).map(|at| at + RECLAIM_GRACE),
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
                self.published.run_success(self.generation);
                self.window.record(false, now);
                self.check_failure_rate(now);
            }
            (CircuitState::Closed, _) => {
                let run = self.published.run_failure(self.generation).unwrap_or(0);
                self.window.record(true, now);
                if run >= self.config.failure_threshold {
                    let count = run;
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
        if self.state == CircuitState::Closed {
            self.share_rate_base(now);
        }
    }

    /// Back to CLOSED with an empty window and counters, in a new generation,
    /// whatever the state was. Calls still in flight are counted when they
    /// end but no longer drive the state.
    pub fn reset(&mut self, now: Instant) {
        self.poll(now);
        self.enter(CircuitState::Closed, TransitionReason::ManualReset, now);
    }

    /// Opens the circuit for a threshold that a fast-path caller saw crossed
    /// in `generation` at `at` (it marked the published word pending and
    /// sent this on). The circuit counts as open since `at`, so a busy actor
    /// does not stretch the OPEN timeout. A trip from an earlier generation
    /// is ignored.
    pub(crate) fn trip(
        &mut self,
        generation: u64,
        reason: TransitionReason,
        at: Instant,
        now: Instant,
    ) {
        self.poll(now);
        if generation == self.generation && self.state == CircuitState::Closed {
            self.enter(CircuitState::Open, reason, at.clamp(self.entered_at, now));
            // The timeout may be over already if the trip took long to arrive.
            self.poll(now);
        }
    }

    /// Applies every time-driven change that is due by `now`: a trial slot
    /// reclaimed, OPEN -> HALF_OPEN after `timeout`, the full reset after
    /// `reset_timeout` of inactivity.
    pub fn poll(&mut self, now: Instant) {
        self.fold(now, true);
        loop {
            let due = |lease: &Lease| lease.reclaim_at.is_some_and(|at| at <= now);
            if let Some(index) = self.leases.iter().position(due) {
                let lease = self.leases.swap_remove(index);
                self.count(Outcome::Timeout, lease.reclaim_at.unwrap_or(now));
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
        let lease = self
            .leases
            .iter()
            .filter_map(|lease| lease.reclaim_at)
            .min();
        let fold = self
            .fast_path
            .as_ref()
            .filter(|_| self.state == CircuitState::Closed)
            .map(|fast| fast.last_fold + self.fold_interval());
        [lease, self.open_until, self.inactivity_deadline(now), fold]
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
    /// Inactivity means no call admitted, none finishing and none in flight;
    /// it counts from the latest of the last admission, the last outcome and
    /// the entry into the current state, so a circuit that has just turned
    /// HALF_OPEN waits a whole `reset_timeout` for a trial call, and a call
    /// slower than `reset_timeout` does not lose its failure to a reset.
    fn inactivity_deadline(&self, now: Instant) -> Option<Instant> {
        let has_something_to_reset = match self.state {
            CircuitState::Open => false,
            CircuitState::HalfOpen => true,
            CircuitState::Closed => self.consecutive_failures() > 0 || !self.window.is_empty(now),
        };
        if !has_something_to_reset || self.totals.in_flight() > 0 {
            return None;
        }
        let since = self
            .last_activity
            .map_or(self.entered_at, |at| at.max(self.entered_at));
        Some(since + self.config.reset_timeout)
    }

    /// The published state word and run, for handles.
    pub(crate) fn published(&self) -> &Arc<Published> {
        &self.published
    }

    /// The fast path's counters, created on first use: a circuit that no
    /// handle ever calls through pays nothing for them.
    pub(crate) fn fast_path_slots(&mut self, now: Instant) -> Arc<Slots> {
        let fast = self.fast_path.get_or_insert_with(|| FastPath {
            slots: Arc::new(Slots::default()),
            folded: SlotTotals::default(),
            last_fold: now,
        });
        let slots = Arc::clone(&fast.slots);
        self.share_rate_base(now);
        slots
    }

    /// How often the machine folds the fast path's counters in while CLOSED:
    /// every bucket of a time window (so outcomes land in the right bucket),
    /// every second for a count window (so a success that brings the window
    /// to `min_calls` is noticed within a second).
    fn fold_interval(&self) -> std::time::Duration {
        use std::time::Duration;
        match self.config.window {
            WindowConfig::Time { duration, buckets } => {
                (duration / buckets).clamp(Duration::from_millis(10), Duration::from_secs(1))
            }
            WindowConfig::Count { .. } => Duration::from_secs(1),
        }
    }

    /// Takes in what fast-path callers counted since the last fold: every
    /// counter into the totals and, when `into_window`, the current
    /// generation's outcomes into the window (then the rate rule runs).
    fn fold(&mut self, now: Instant, into_window: bool) {
        let Some(fast) = &mut self.fast_path else {
            return;
        };
        let totals = fast.slots.totals();
        let before = std::mem::replace(&mut fast.folded, totals);
        fast.last_fold = now;
        let new = totals.since(&before);
        let finished =
            new.successes + new.failures + new.timeouts + new.panics + new.ignored + new.cancelled;
        self.totals.calls += new.admitted;
        self.totals.successes += new.successes;
        self.totals.failures += new.failures;
        self.totals.timeouts += new.timeouts;
        self.totals.panics += new.panics;
        self.totals.ignored += new.ignored;
        self.totals.cancelled += new.cancelled;
        self.totals.rejections += new.rejections;
        if new.admitted + finished > 0 {
            self.last_activity = Some(now);
        }
        if new.failures + new.timeouts + new.panics > 0 {
            self.last_failure = Some(now);
        }
        let window = totals.window();
        let window_before = before.window();
        let successes = window.successes.saturating_sub(window_before.successes);
        let failures = window.failures.saturating_sub(window_before.failures);
        if into_window && self.state == CircuitState::Closed && successes + failures > 0 {
            self.window.record_batch(successes, failures, now);
            self.check_failure_rate(now);
        }
        self.share_rate_base(now);
    }

    /// Tells fast-path callers what the window holds, so that a failing
    /// caller can estimate the failure rate without asking the actor.
    fn share_rate_base(&self, now: Instant) {
        let Some(fast) = &self.fast_path else { return };
        let counts = self.window.counts(now);
        self.published.set_rate_base(RateBase {
            window_calls: counts.calls,
            window_failures: counts.failures,
            folded: fast.folded.window(),
        });
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

    /// Counts a call's end, which is activity: a circuit is not idle while
    /// calls finish (or are reclaimed at their deadline).
    fn count(&mut self, outcome: Outcome, at: Instant) {
        self.last_activity = Some(self.last_activity.map_or(at, |last| last.max(at)));
        self.totals.count(outcome);
        if outcome.is_failure() {
            self.last_failure = Some(self.last_failure.map_or(at, |last| last.max(at)));
        }
    }

    /// Starts a new generation in `to`, with every decision counter empty.
    /// A CLOSED -> CLOSED reset starts a generation but is no transition.
    fn enter(&mut self, to: CircuitState, reason: TransitionReason, now: Instant) {
        // What fast-path callers counted in the old generation is theirs:
        // into the totals, not into the new state's window.
        self.fold(now, false);
        let from = self.state;
        self.generation += 1;
        self.state = to;
        self.trial_successes = 0;
        self.window.clear();
        self.open_until = (to == CircuitState::Open).then(|| now + self.config.timeout);
        self.published.publish(to, self.generation, self.open_until);
        self.share_rate_base(now);
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
        match self.state {
            CircuitState::Closed => self.published.consecutive_failures(self.generation),
            _ => 0,
        }
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
