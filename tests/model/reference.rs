//! The reference model: one circuit's rules (issue 2 and
//! `docs/architecture.md`), written as plainly as possible so that it is
//! right by inspection. No running sums, no rings, no bucket bookkeeping: the
//! count window is the last `size` outcomes in a `VecDeque`, the time window
//! is every outcome with its instant, filtered by bucket when read, and the
//! calls in flight are a `Vec`. The real `StateMachine` is compared with it
//! after every operation.
//!
//! Where the rules leave a choice open, the model takes the machine's
//! documented choice and says so in a comment marked CHOICE.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use vibezen_recovery::config::{CircuitBreakerConfig, WindowConfig};
use vibezen_recovery::outcome::Outcome;
use vibezen_recovery::rules::{RECLAIM_GRACE, Refusal};
use vibezen_recovery::state::CircuitState;
use vibezen_recovery::state_machine::Rejection;
use vibezen_recovery::totals::CallTotals;
use vibezen_recovery::transition::{Transition, TransitionReason};

use CircuitState::{Closed, Disabled, ForcedOpen, HalfOpen, Open};

/// An admitted call whose outcome is not counted yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    pub id: u64,
    pub generation: u64,
    pub trial: bool,
    pub admitted_at: Instant,
    pub deadline: Option<Instant>,
    /// Admitted under the circuit's own guard (`try_acquire_guarded`),
    /// which cuts the call off at its deadline and reports the timeout;
    /// otherwise a permit, whose holder reports.
    pub guarded: bool,
}

impl Call {
    /// When the model takes back the slot of a trial that has not
    /// reported: `RECLAIM_GRACE` after the deadline for a permit's trial
    /// (time for a report already on its way to count as what it was);
    /// never for a guarded trial, whose slot is free only once its guard
    /// reports.
    pub fn reclaim_at(&self) -> Option<Instant> {
        if self.trial && !self.guarded {
            self.deadline.map(|deadline| deadline + RECLAIM_GRACE)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone)]
enum Window {
    /// The last `size` outcomes, oldest first; `true` is a failure.
    Count {
        size: usize,
        outcomes: VecDeque<bool>,
    },
    /// Every outcome since the last clear. Buckets are `duration / buckets`
    /// long and counted from `origin`, the first outcome after a clear; the
    /// window holds the bucket of `now` and the `buckets - 1` before it.
    Time {
        duration: Duration,
        buckets: u32,
        origin: Option<Instant>,
        outcomes: Vec<(Instant, bool)>,
    },
}

impl Window {
    fn new(config: &WindowConfig) -> Self {
        match *config {
            WindowConfig::Count { size } => Window::Count {
                size: size as usize,
                outcomes: VecDeque::new(),
            },
            WindowConfig::Time { duration, buckets } => Window::Time {
                duration,
                buckets,
                origin: None,
                outcomes: Vec::new(),
            },
        }
    }

    fn record(&mut self, failed: bool, now: Instant) {
        match self {
            Window::Count { size, outcomes } => {
                outcomes.push_back(failed);
                if outcomes.len() > *size {
                    outcomes.pop_front();
                }
            }
            Window::Time {
                origin, outcomes, ..
            } => {
                if origin.is_none() {
                    *origin = Some(now);
                }
                outcomes.push((now, failed));
            }
        }
    }

    /// (calls, failures) in the window as of `now`.
    fn counts(&self, now: Instant) -> (u64, u64) {
        let tally = |failed: &mut dyn Iterator<Item = bool>| {
            failed.fold((0, 0), |(calls, failures), failed| {
                (calls + 1, failures + u64::from(failed))
            })
        };
        match self {
            Window::Count { outcomes, .. } => tally(&mut outcomes.iter().copied()),
            Window::Time {
                duration,
                buckets,
                origin,
                outcomes,
            } => {
                let Some(origin) = *origin else {
                    return (0, 0);
                };
                let bucket_len = (*duration / *buckets).as_nanos();
                let bucket = |at: Instant| (at - origin).as_nanos() / bucket_len;
                let current = bucket(now);
                tally(
                    &mut outcomes
                        .iter()
                        .filter(|(at, _)| bucket(*at) + u128::from(*buckets) > current)
                        .map(|(_, failed)| *failed),
                )
            }
        }
    }

    fn clear(&mut self) {
        match self {
            Window::Count { outcomes, .. } => outcomes.clear(),
            Window::Time {
                origin, outcomes, ..
            } => {
                *origin = None;
                outcomes.clear();
            }
        }
    }
}

/// One circuit, by the rules.
#[derive(Debug, Clone)]
pub struct Model {
    config: CircuitBreakerConfig,
    pub state: CircuitState,
    pub generation: u64,
    /// When the current state was entered (a CLOSED -> CLOSED reset enters
    /// no state).
    pub entered_at: Instant,
    /// In OPEN: when the timeout ends.
    pub open_until: Option<Instant>,
    /// Failures in a row in CLOSED, this generation.
    pub consecutive_failures: u32,
    /// Successful trials in HALF_OPEN, this generation.
    pub trial_successes: u32,
    window: Window,
    /// Admitted calls not counted yet. A trial call in here holds a slot.
    pub in_flight: Vec<Call>,
    /// Trials whose slots were reclaimed, counted as timeouts until they
    /// report.
    reclaimed: Vec<u64>,
    /// The latest admission or counted outcome.
    last_activity: Option<Instant>,
    pub last_failure: Option<Instant>,
    pub totals: CallTotals,
    transitions: Vec<Transition>,
    next_id: u64,
    /// How often each rule fired, to show the search reaches them all.
    pub fired: BTreeMap<String, u64>,
}

impl Model {
    pub fn new(config: CircuitBreakerConfig, now: Instant) -> Self {
        Model {
            window: Window::new(&config.window),
            config,
            state: Closed,
            generation: 0,
            entered_at: now,
            open_until: None,
            consecutive_failures: 0,
            trial_successes: 0,
            in_flight: Vec::new(),
            reclaimed: Vec::new(),
            last_activity: None,
            last_failure: None,
            totals: CallTotals::default(),
            transitions: Vec::new(),
            next_id: 0,
            fired: BTreeMap::new(),
        }
    }

    // ------------------------------------------------------------ operations

    /// Asks to run a call: a permit (`guarded == false`) or a call under
    /// the circuit's guard. Both are admitted alike.
    pub fn acquire(&mut self, now: Instant, guarded: bool) -> Result<Call, Rejection> {
        self.catch_up(now);
        let trial = match self.state {
            Closed | Disabled => false,
            ForcedOpen => {
                self.fired("rejected while FORCED_OPEN");
                self.totals.rejections += 1;
                return Err(Rejection {
                    refusal: Refusal::ForcedOpen,
                    retry_at: None,
                });
            }
            HalfOpen if self.trials_in_flight() < self.max_trials() => true,
            Open => {
                self.fired("rejected while OPEN");
                self.totals.rejections += 1;
                return Err(Rejection {
                    refusal: Refusal::Open,
                    retry_at: self.open_until,
                });
            }
            HalfOpen => {
                self.fired("rejected: every trial slot taken");
                self.totals.rejections += 1;
                return Err(Rejection {
                    refusal: Refusal::TrialsTaken,
                    retry_at: None,
                });
            }
        };
        // A trial must end by `call_timeout`, else by `timeout`; other calls
        // by `call_timeout` if there is one (the actor enforces that one and
        // reports a timeout; the machine only reclaims the slots of
        // permits' trials, `RECLAIM_GRACE` after that deadline).
        let deadline = match self.config.call_timeout {
            Some(call_timeout) => Some(now + call_timeout),
            None if trial => Some(now + self.config.timeout),
            None => None,
        };
        let call = Call {
            id: self.next_id,
            generation: self.generation,
            trial,
            admitted_at: now,
            deadline,
            guarded,
        };
        self.next_id += 1;
        self.totals.calls += 1;
        self.last_activity = Some(now);
        self.in_flight.push(call);
        Ok(call)
    }

    /// The outcome of call `id` arrives.
    pub fn record(&mut self, id: u64, outcome: Outcome, now: Instant) {
        self.catch_up(now);
        let Some(index) = self.in_flight.iter().position(|call| call.id == id) else {
            // A trial whose slot was reclaimed: counted as a timeout then,
            // its late outcome drives nothing but takes that timeout's
            // place in the totals.
            self.fired("late outcome of a reclaimed trial corrects the totals");
            let index = self.reclaimed.iter().position(|&reclaimed| reclaimed == id);
            self.reclaimed
                .remove(index.expect("only reclaimed trials report late"));
            self.totals[Outcome::Timeout] -= 1;
            self.totals[outcome] += 1;
            return;
        };
        let call = self.in_flight.remove(index);
        if call.trial
            && call.guarded
            && call
                .deadline
                .is_some_and(|deadline| deadline + RECLAIM_GRACE <= now)
        {
            // A permit's trial would have lost its slot by now.
            self.fired("guarded trial kept its slot past a permit's grace");
        }
        self.count(outcome, now);
        self.last_activity = Some(now);
        if call.generation != self.generation {
            // Counted in the totals, but an earlier generation's outcome
            // does not drive the state.
            self.fired("outcome of an earlier generation");
            return;
        }
        let failed = match outcome {
            Outcome::Success => false,
            Outcome::Failure | Outcome::Timeout | Outcome::Panic => true,
            Outcome::Ignored | Outcome::Cancelled => return,
        };
        match self.state {
            Closed => {
                assert!(
                    !call.trial,
                    "model: a trial of the current generation in CLOSED"
                );
                self.window.record(failed, now);
                if failed {
                    self.consecutive_failures += 1;
                } else {
                    self.consecutive_failures = 0;
                }
                // CHOICE: when one outcome reaches both thresholds, the
                // consecutive rule is named as the reason.
                if self.consecutive_failures >= self.config.failure_threshold {
                    let count = self.consecutive_failures;
                    self.enter(Open, TransitionReason::ConsecutiveFailures { count }, now);
                } else if let Some(rate) = self.failure_rate(now) {
                    if rate >= self.config.failure_rate_threshold {
                        let calls = self.window.counts(now).0;
                        self.enter(Open, TransitionReason::FailureRate { rate, calls }, now);
                    }
                }
            }
            HalfOpen if failed => {
                self.enter(Open, TransitionReason::TrialFailed { outcome }, now);
            }
            HalfOpen => {
                self.trial_successes += 1;
                if self.trial_successes >= self.config.success_threshold {
                    let successes = self.trial_successes;
                    self.enter(Closed, TransitionReason::TrialsSucceeded { successes }, now);
                }
            }
            Open => panic!("model: a call of the current generation finished in OPEN"),
            ForcedOpen | Disabled => {
                assert!(
                    !call.trial,
                    "model: a trial of the current generation in {}",
                    self.state
                );
                // Only the operator moves these; the totals have the call.
                self.fired("outcome in an operator state");
            }
        }
    }

    /// `ForceOpen`: FORCED_OPEN from any state other than itself.
    pub fn force_open(&mut self, now: Instant) {
        self.catch_up(now);
        if self.state != ForcedOpen {
            self.enter(ForcedOpen, TransitionReason::ForcedOpen, now);
        }
    }

    /// `Disable`: DISABLED from any state other than itself.
    pub fn disable(&mut self, now: Instant) {
        self.catch_up(now);
        if self.state != Disabled {
            self.enter(Disabled, TransitionReason::Disabled, now);
        }
    }

    /// `Release`: CLOSED from FORCED_OPEN or DISABLED; nothing otherwise.
    pub fn release(&mut self, now: Instant) {
        self.catch_up(now);
        if matches!(self.state, ForcedOpen | Disabled) {
            self.enter(Closed, TransitionReason::Released, now);
        } else {
            self.fired("release outside an operator state");
        }
    }

    /// `Reset`: CLOSED, everything cleared, a new generation.
    pub fn reset(&mut self, now: Instant) {
        self.catch_up(now);
        self.enter(Closed, TransitionReason::ManualReset, now);
    }

    /// Applies every time-driven rule that is due by `now`.
    ///
    /// CHOICE: a rule applied late (the machine was not asked at the very
    /// deadline) takes effect, and is dated, when it is applied: the
    /// machine is driven by whoever calls it, and the actor arms its timer
    /// at `next_deadline`.
    pub fn catch_up(&mut self, now: Instant) {
        loop {
            // A permit's trial still unreported `RECLAIM_GRACE` after its
            // deadline loses its slot and counts as a timeout, dated at that
            // instant; if it belongs to the current HALF_OPEN generation the
            // circuit opens again. A guarded trial is never reclaimed.
            let mut due: Vec<Call> = self
                .in_flight
                .iter()
                .copied()
                .filter(|call| call.reclaim_at().is_some_and(|at| at <= now))
                .collect();
            if !due.is_empty() {
                self.in_flight.retain(|call| !due.contains(call));
                due.sort_by_key(Call::reclaim_at);
                let reopen = self.state == HalfOpen
                    && due.iter().any(|call| call.generation == self.generation);
                for call in &due {
                    if call.generation != self.generation {
                        self.fired("trial of an earlier generation reclaimed");
                    }
                    let reclaimed = call.reclaim_at().expect("due, so it has one");
                    self.count(Outcome::Timeout, reclaimed);
                    self.reclaimed.push(call.id);
                    // A reclaimed trial stops being in flight when it is
                    // reclaimed: that is when the circuit's idleness starts.
                    self.last_activity = Some(
                        self.last_activity
                            .map_or(reclaimed, |last| last.max(reclaimed)),
                    );
                }
                if reopen {
                    self.enter(Open, TransitionReason::TrialSlotReclaimed, now);
                }
                continue;
            }
            if self.open_until.is_some_and(|until| until <= now) {
                self.enter(HalfOpen, TransitionReason::OpenTimeoutElapsed, now);
                continue;
            }
            if self.inactivity_deadline(now).is_some_and(|due| due <= now) {
                self.enter(Closed, TransitionReason::Inactivity, now);
                continue;
            }
            return;
        }
    }

    pub fn drain_transitions(&mut self) -> Vec<Transition> {
        std::mem::take(&mut self.transitions)
    }

    // ------------------------------------------------------------ readings

    pub fn max_trials(&self) -> usize {
        self.config
            .half_open_max_calls
            .unwrap_or(self.config.success_threshold) as usize
    }

    pub fn trials_in_flight(&self) -> usize {
        self.in_flight.iter().filter(|call| call.trial).count()
    }

    pub fn window_counts(&self, now: Instant) -> (u64, u64) {
        self.window.counts(now)
    }

    /// The failure rate, once the window holds `min_calls` calls.
    pub fn failure_rate(&self, now: Instant) -> Option<f64> {
        let (calls, failures) = self.window.counts(now);
        (calls > 0 && calls >= u64::from(self.config.min_calls))
            .then(|| failures as f64 / calls as f64)
    }

    /// The earliest instant at which a time-driven rule is due.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        self.in_flight
            .iter()
            .filter_map(Call::reclaim_at)
            .chain(self.open_until)
            .chain(self.inactivity_deadline(now))
            .min()
    }

    /// The full reset: after `reset_timeout` with no call admitted,
    /// finishing or in flight, counted from the latest admission, outcome or
    /// state entry. OPEN is only left through its timeout.
    ///
    /// CHOICE: a CLOSED circuit with nothing to forget (no failure run,
    /// an empty window as of `now`) is not reset, so it starts no new
    /// generation.
    fn inactivity_deadline(&self, now: Instant) -> Option<Instant> {
        let something_to_forget = match self.state {
            Open | ForcedOpen | Disabled => return None,
            HalfOpen => true,
            Closed => self.consecutive_failures > 0 || self.window.counts(now).0 > 0,
        };
        if !something_to_forget || !self.in_flight.is_empty() {
            return None;
        }
        let since = match self.last_activity {
            Some(at) => at.max(self.entered_at),
            None => self.entered_at,
        };
        Some(since + self.config.reset_timeout)
    }

    // ------------------------------------------------------------ helpers

    fn fired(&mut self, rule: &str) {
        *self.fired.entry(rule.to_owned()).or_default() += 1;
    }

    fn count(&mut self, outcome: Outcome, at: Instant) {
        self.totals[outcome] += 1;
        if matches!(
            outcome,
            Outcome::Failure | Outcome::Timeout | Outcome::Panic
        ) {
            self.last_failure = Some(self.last_failure.map_or(at, |last| last.max(at)));
        }
    }

    /// Every transition and every reset starts a new generation with every
    /// decision counter empty. CLOSED -> CLOSED is no transition.
    fn enter(&mut self, to: CircuitState, reason: TransitionReason, now: Instant) {
        let from = self.state;
        let why = match reason {
            TransitionReason::ConsecutiveFailures { .. } => "consecutive failures",
            TransitionReason::FailureRate { .. } => "failure rate",
            TransitionReason::OpenTimeoutElapsed => "open timeout",
            TransitionReason::TrialsSucceeded { .. } => "trials succeeded",
            TransitionReason::TrialFailed { .. } => "trial failed",
            TransitionReason::TrialSlotReclaimed => "trial slot reclaimed",
            TransitionReason::Inactivity => "inactivity",
            TransitionReason::ManualReset => "manual reset",
            TransitionReason::ForcedOpen => "forced open",
            TransitionReason::Disabled => "disabled",
            TransitionReason::Released => "released",
            other => panic!("the reference model has no rule that gives {other:?}"),
        };
        self.fired(&format!("{from} -> {to}: {why}"));
        self.generation += 1;
        self.state = to;
        self.consecutive_failures = 0;
        self.trial_successes = 0;
        self.window.clear();
        self.open_until = (to == Open).then(|| now + self.config.timeout);
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
}
