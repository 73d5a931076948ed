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
//! use vibezen_recovery::prelude::*;
//! use vibezen_recovery::state_machine::StateMachine;
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
//! # Ok::<(), vibezen_recovery::config::ConfigError>(())
//! ```

use std::collections::VecDeque;
use std::time::Instant;

use crate::config::{CircuitBreakerConfig, ConfigError};
use crate::outcome::{Outcome, OutcomeCounts};
use crate::rules::{Admission, RECLAIM_GRACE, Refusal, Rules, Status};
use crate::state::CircuitState;
use crate::totals::CallTotals;
use crate::transition::{Transition, TransitionReason};
use crate::window::{SlidingWindow, WindowCounts};

/// Proof that a call was admitted; hand it back to
/// [`StateMachine::record`] with the call's outcome. It is not `Clone`, so
/// an outcome cannot be recorded twice:
///
/// ```compile_fail
/// # use std::time::Instant;
/// # use vibezen_recovery::prelude::*;
/// # use vibezen_recovery::state_machine::StateMachine;
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

    /// When the call must be finished ([`Rules::deadline`]). A call still
    /// running then counts as a timeout.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

/// Why a call was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    /// What refused it.
    pub refusal: Refusal,
    /// When a call may be admitted again, if the machine knows (the end of
    /// the OPEN timeout).
    pub retry_at: Option<Instant>,
}

impl Rejection {
    /// The state that refused it: OPEN, or HALF_OPEN with every trial slot taken.
    pub fn state(&self) -> CircuitState {
        self.refusal.state()
    }
}

/// What fast-path callers counted since the last batch, for
/// [`StateMachine::absorb`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Batch {
    /// The generation the window counts belong to.
    pub generation: u64,
    /// Calls admitted.
    pub admitted: u64,
    /// Calls refused.
    pub rejections: u64,
    /// Calls ended, by outcome, whatever their generation.
    pub ended: OutcomeCounts,
    /// Of those, the judged outcomes of calls admitted and ended in
    /// `generation`: they enter the window.
    pub window: WindowCounts,
    /// The consecutive-failure run of `generation` as the callers counted it.
    pub consecutive_failures: u32,
}

/// How many reclaimed trials the machine remembers, so that their reports
/// can still correct the totals: more than a circuit has trials in flight
/// unless reports are lost for good (a permit leaked with `mem::forget`).
const RECLAIMED_KEPT: usize = 64;

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
#[derive(Debug, Clone)]
pub struct StateMachine {
    config: CircuitBreakerConfig,
    rules: Rules,
    state: CircuitState,
    generation: u64,
    entered_at: Instant,
    /// In OPEN: when the timeout ends.
    open_until: Option<Instant>,
    consecutive_failures: u32,
    trial_successes: u32,
    window: SlidingWindow,
    leases: Vec<Lease>,
    /// The ids of the trials whose slots were reclaimed last (at most
    /// [`RECLAIMED_KEPT`]), counted as timeouts until they report.
    reclaimed: VecDeque<u64>,
    last_activity: Option<Instant>,
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
            rules: Rules::new(&config),
            config,
            state: CircuitState::Closed,
            generation: 0,
            entered_at: now,
            open_until: None,
            consecutive_failures: 0,
            trial_successes: 0,
            leases: Vec::new(),
            reclaimed: VecDeque::new(),
            last_activity: None,
            last_failure: None,
            next_call_id: 0,
            totals: CallTotals::default(),
            transitions: Vec::new(),
        })
    }

    /// Asks to run one call whose holder reports its outcome (a permit).
    /// [`Rules::admission`] decides. A trial that has not reported
    /// [`RECLAIM_GRACE`] after its deadline loses its slot and counts as a
    /// timeout.
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
        let trial = match self.rules.admission(self.status()) {
            Admission::Admit => false,
            Admission::Trial => true,
            Admission::Refuse(refusal) => {
                self.totals.rejections += 1;
                return Err(Rejection {
                    refusal,
                    retry_at: self.open_until.filter(|_| refusal.waits_for_open_timeout()),
                });
            }
        };
        let deadline = self.rules.deadline(now, trial);
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

    /// What admission sees now. The machine never has a trip pending: a
    /// trip decided elsewhere reaches it through [`trip`](Self::trip).
    pub fn status(&self) -> Status {
        Status {
            state: self.state,
            trip_pending: false,
            trial_slot_free: self.rules.trial_slot_free(self.leases.len()),
        }
    }

    /// Records the outcome of an admitted call.
    ///
    /// It is counted in the totals once; it drives the state only if the call
    /// was admitted in the current generation. A trial whose slot was
    /// already reclaimed (and counted as a timeout then) drives nothing;
    /// the totals count what it reports in place of that timeout.
    pub fn record(&mut self, ticket: Ticket, outcome: Outcome, now: Instant) {
        self.record_with_run(ticket, outcome, None, now);
    }

    /// A trial's report, made at `reported_at` by its holder's clock, is on
    /// its way: if that was before the slot was due to be reclaimed, the
    /// slot is held for the report, which counts as what it was however
    /// late it is [recorded](Self::record) (a busy circuit, a mailbox
    /// behind). For an owner that does other work between the report's
    /// arrival and recording it.
    pub fn hold_for_report(&mut self, ticket: &Ticket, reported_at: Instant) {
        let in_time = |lease: &&mut Lease| {
            lease.id == ticket.id && lease.reclaim_at.is_some_and(|at| reported_at < at)
        };
        if let Some(lease) = self.leases.iter_mut().find(in_time) {
            lease.reclaim_at = None;
        }
    }

    /// Like [`record`](Self::record), where the consecutive-failure run is
    /// counted elsewhere too (by the fast path, which shares one run with
    /// the circuit): `run` is the run's length with this outcome counted in
    /// it, or `None` to count it here.
    pub fn record_with_run(
        &mut self,
        ticket: Ticket,
        outcome: Outcome,
        run: Option<u32>,
        now: Instant,
    ) {
        self.poll(now);
        if ticket.trial {
            match self.leases.iter().position(|lease| lease.id == ticket.id) {
                Some(index) => {
                    self.leases.swap_remove(index);
                }
                None => return self.correct_reclaimed(ticket.id, outcome),
            }
        }
        self.count(outcome, now);
        if ticket.generation != self.generation || !outcome.is_judged() {
            return;
        }
        match self.state {
            // Nothing moves OPEN but its timer, and nothing moves the
            // operator's states but the operator: the totals have it.
            CircuitState::Open | CircuitState::ForcedOpen | CircuitState::Disabled => {}
            CircuitState::Closed => {
                let failed = outcome.is_failure();
                self.consecutive_failures = run.unwrap_or(if failed {
                    self.consecutive_failures.saturating_add(1)
                } else {
                    0
                });
                self.window.record(failed, now);
                let window = self.window.counts(now);
                let trip = if failed {
                    self.rules
                        .after_failure(self.state, self.consecutive_failures, || window)
                } else {
                    self.rules.rate_trips(window)
                };
                if let Some(reason) = trip {
                    self.enter(CircuitState::Open, reason, now);
                }
            }
            CircuitState::HalfOpen => {
                if outcome == Outcome::Success {
                    self.trial_successes += 1;
                }
                if let Some((to, reason)) = self.rules.after_trial(outcome, self.trial_successes) {
                    self.enter(to, reason, now);
                }
            }
        }
    }

    /// Takes in what fast-path callers counted: every call into the totals,
    /// and the current generation's judged outcomes into the window, after
    /// which the rate rule runs. A batch of an earlier generation only adds
    /// to the totals.
    pub fn absorb(&mut self, batch: Batch, now: Instant) {
        self.poll(now);
        self.totals.calls += batch.admitted;
        self.totals.rejections += batch.rejections;
        self.totals.outcomes.add(&batch.ended);
        if batch.admitted + batch.ended.total() > 0 {
            self.note_activity(now);
        }
        if batch.ended.failures_of_any_kind() > 0 {
            self.last_failure = Some(self.last_failure.map_or(now, |last| last.max(now)));
        }
        if batch.generation != self.generation || self.state != CircuitState::Closed {
            return;
        }
        self.consecutive_failures = batch.consecutive_failures;
        if batch.window.calls > 0 {
            self.window.record_batch(batch.window, now);
            if let Some(reason) = self.rules.rate_trips(self.window.counts(now)) {
                self.enter(CircuitState::Open, reason, now);
            }
        }
    }

    /// Back to CLOSED with an empty window and counters, in a new generation,
    /// whatever the state was, the operator's states included. Calls still
    /// in flight are counted when they end but no longer drive the state.
    pub fn reset(&mut self, now: Instant) {
        self.poll(now);
        self.enter(CircuitState::Closed, TransitionReason::ManualReset, now);
    }

    /// An operator forces the circuit open, from any state: every call is
    /// refused ([`Refusal::ForcedOpen`]) until [`release`](Self::release)
    /// or [`reset`](Self::reset). No timer runs and no outcome moves it; calls
    /// and trials in flight finish and are counted in the totals, in an
    /// older generation, so they drive nothing. Forcing open a circuit that
    /// is already FORCED_OPEN changes nothing.
    pub fn force_open(&mut self, now: Instant) {
        self.poll(now);
        if self.state != CircuitState::ForcedOpen {
            self.enter(CircuitState::ForcedOpen, TransitionReason::ForcedOpen, now);
        }
    }

    /// An operator disables the circuit, from any state: every call is
    /// admitted (no trials) and counted in the totals, and nothing trips it:
    /// no window, no timer, no reset for inactivity. A call's
    /// `call_timeout` still applies, so a hung call is still cut off and
    /// counted as a timeout. Calls in flight finish in an older generation
    /// and drive nothing. Disabling a DISABLED circuit changes nothing.
    pub fn disable(&mut self, now: Instant) {
        self.poll(now);
        if self.state != CircuitState::Disabled {
            self.enter(CircuitState::Disabled, TransitionReason::Disabled, now);
        }
    }

    /// An operator releases a FORCED_OPEN or DISABLED circuit: back to
    /// CLOSED in a new generation, with an empty window. A circuit in any
    /// other state is not the operator's to release, and is left as it is
    /// (so that a late or repeated release cannot reset a circuit that
    /// has opened on its own since); [`reset`](Self::reset) is for that.
    pub fn release(&mut self, now: Instant) {
        self.poll(now);
        if matches!(
            self.state,
            CircuitState::ForcedOpen | CircuitState::Disabled
        ) {
            self.enter(CircuitState::Closed, TransitionReason::Released, now);
        }
    }

    /// Opens the circuit for a threshold that was seen crossed elsewhere
    /// (by a fast-path caller) in `generation` at `at`. The circuit counts
    /// as open since `at`, so a busy owner does not stretch the OPEN
    /// timeout. A trip from an earlier generation is ignored.
    pub fn trip(&mut self, generation: u64, reason: TransitionReason, at: Instant, now: Instant) {
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
        loop {
            let due = |lease: &Lease| lease.reclaim_at.is_some_and(|at| at <= now);
            if let Some(index) = self.leases.iter().position(due) {
                let lease = self.leases.swap_remove(index);
                self.count(Outcome::Timeout, lease.reclaim_at.unwrap_or(now));
                if self.reclaimed.len() == RECLAIMED_KEPT {
                    self.reclaimed.pop_front();
                }
                self.reclaimed.push_back(lease.id);
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
    /// Inactivity means no call admitted, none finishing and none in flight;
    /// it counts from the latest of the last admission, the last outcome and
    /// the entry into the current state, so a circuit that has just turned
    /// HALF_OPEN waits a whole `reset_timeout` for a trial call, and a call
    /// slower than `reset_timeout` does not lose its failure to a reset.
    fn inactivity_deadline(&self, now: Instant) -> Option<Instant> {
        let has_something_to_reset = match self.state {
            // OPEN has its own timer; the operator's states only end by hand.
            CircuitState::Open | CircuitState::ForcedOpen | CircuitState::Disabled => false,
            CircuitState::HalfOpen => true,
            CircuitState::Closed => self.consecutive_failures > 0 || !self.window.is_empty(now),
        };
        if !has_something_to_reset || self.totals.in_flight() > 0 {
            return None;
        }
        let since = self
            .last_activity
            .map_or(self.entered_at, |at| at.max(self.entered_at));
        Some(since + self.rules.reset_timeout())
    }

    /// Counts a call's end, which is activity: a circuit is not idle while
    /// calls finish (or are reclaimed at their deadline).
    /// The report of trial `id`, which arrived after its slot was
    /// reclaimed: the totals count what the holder reported instead of the
    /// timeout counted then (the holder judged its own lateness, so a
    /// success here ended in time and only its report was slow). The state
    /// moved on long ago and stays as it is.
    fn correct_reclaimed(&mut self, id: u64, outcome: Outcome) {
        let Some(index) = self.reclaimed.iter().position(|&reclaimed| reclaimed == id) else {
            return;
        };
        self.reclaimed.remove(index);
        self.totals[Outcome::Timeout] -= 1;
        self.totals[outcome] += 1;
    }

    fn count(&mut self, outcome: Outcome, at: Instant) {
        self.note_activity(at);
        self.totals[outcome] += 1;
        if outcome.is_failure() {
            self.last_failure = Some(self.last_failure.map_or(at, |last| last.max(at)));
        }
    }

    fn note_activity(&mut self, at: Instant) {
        self.last_activity = Some(self.last_activity.map_or(at, |last| last.max(at)));
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
        self.open_until = (to == CircuitState::Open).then(|| self.rules.open_until(now));
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

    /// The rules it obeys, built from the config.
    pub fn rules(&self) -> &Rules {
        &self.rules
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
        self.rules.failure_rate(self.window.counts(now))
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
